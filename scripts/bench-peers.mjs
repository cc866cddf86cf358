// The library's VmapSpace next to the range allocators on npm, on the same workloads, in one
// process: @thi.ng/malloc (MemPool: a first-fit free list over an ArrayBuffer) and
// number-allocator (a sorted set of vacant intervals; one number at a time, so it runs the
// fixed-size workload only). The peers are devDependencies; this is not part of the CLI.
//
//   npm run bench:peers [-- --pairs N]
//
// Workloads, in units of 16 bytes (the spaces are 2^19 units, 8 MiB for MemPool's buffer):
//   fixed:   1 unit, 10,000 live;
//   random:  1 to 16 units, 10,000 live;
//   aligned: 1 to 16 units, each aligned to 2^k units with k from 0 to 6 (mixed), 10,000 live.
// Each step frees a random live range and allocates a new one (the same random sequence for
// every allocator). Timed: --pairs steps (default 20,000) after 10,000 untimed ones; reported in
// ns per operation (an alloc or a free: the step's time / 2). Then the largest free block, in
// units, after the churn: the pooled space's pools and lazy lists are purged first (they
// are free space it keeps ready, not fragmentation).
// MemPool has one alignment for the whole pool, not per call: the aligned workload asks it for
// size + align - 1 units and rounds the address up, as a JavaScript caller would.

import { MemPool } from '@thi.ng/malloc';
import numberAllocator from 'number-allocator';
import { VmapSpace } from '../dist/src/index.js';

const { NumberAllocator } = numberAllocator;
const UNIT = 16;
const UNITS = 2 ** 19;
const LIVE = 10_000;
const at = process.argv.indexOf('--pairs');
const PAIRS = at < 0 ? 20_000 : Number(process.argv[at + 1]);
const WARMUP = 10_000;

function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/** Allocators, each: alloc(units, alignUnits) -> handle or null, free(handle), largest(). */
const ALLOCATORS = {
  'VmapSpace (default fit)': () => space({}),
  "VmapSpace (fit: 'exact')": () => space({ fit: 'exact' }),
  'VmapSpace (pools, 1 worker)': () => space({ concurrent: true, pools: true }),
  '@thi.ng/malloc MemPool': () => {
    const pool = new MemPool({ size: UNITS * UNIT, align: 8 });
    return {
      alloc(n, a) {
        const p = pool.malloc((n + a - 1) * UNIT);
        if (p === 0) return null;
        return p;
      },
      free: (p) => pool.free(p),
      largest() {
        // The free list (block size includes the 8-byte header), and the space above `top`.
        let best = pool.end - pool.top;
        for (let b = pool._free; b !== 0; b = pool.blockNext(b))
          best = Math.max(best, pool.blockSize(b));
        return Math.floor(best / UNIT);
      },
      aligned: 'emulated',
    };
  },
  'number-allocator': () => {
    const na = new NumberAllocator(0, UNITS - 1);
    return {
      alloc(n, a) {
        if (n !== 1 || a !== 1) return undefined; // one number at a time
        return na.alloc();
      },
      free: (x) => na.free(x),
      largest() {
        let best = 0;
        for (const iv of na.ss) best = Math.max(best, iv.high - iv.low + 1);
        return best;
      },
    };
  },
};

function space(opts) {
  const sp = new VmapSpace({ start: 0, end: UNITS, pageSize: 1, ...opts });
  return {
    alloc: (n, a) => sp.alloc(n, a === 1 ? undefined : { align: a }),
    free: (x) => sp.free(x),
    largest() {
      sp.purge();
      return sp.largestFree;
    },
  };
}

const WORKLOADS = {
  fixed: () => [1, 1],
  random: (r) => [1 + r(16), 1],
  aligned: (r) => [1 + r(16), 2 ** r(7)],
};

function run(make, workload) {
  const a = make();
  const r = rng(0x5eed);
  const live = [];
  const pick = WORKLOADS[workload];
  for (let k = 0; k < LIVE; k++) {
    const [n, al] = pick(r);
    const h = a.alloc(n, al);
    if (h === undefined) return null;
    if (h === null) throw new Error('out of space while filling');
    live.push(h);
  }
  let t0 = 0;
  for (let step = 0; step < WARMUP + PAIRS; step++) {
    if (step === WARMUP) t0 = performance.now();
    const k = r(LIVE);
    a.free(live[k]);
    const [n, al] = pick(r);
    const h = a.alloc(n, al);
    if (h === null) throw new Error('out of space during the churn');
    live[k] = h;
  }
  const ns = ((performance.now() - t0) * 1e6) / (2 * PAIRS);
  return { ns, largest: a.largest() };
}

const rows = [];
for (const [name, make] of Object.entries(ALLOCATORS)) {
  const cells = [];
  for (const w of Object.keys(WORKLOADS)) {
    const res = run(make, w);
    process.stderr.write(
      `  ${name} ${w}: ${res === null ? 'n/a' : `${res.ns.toFixed(0)} ns/op, largest ${res.largest}`}\n`,
    );
    cells.push(res);
  }
  rows.push([name, cells]);
}
const cell = (c) =>
  c === null ? 'n/a' : `${c.ns < 10_000 ? c.ns.toFixed(0) : (c.ns / 1000).toFixed(1) + ' k'}`;
const out = [
  `bench:peers, ${PAIRS} timed steps per workload (ns per alloc or free; largest free block after the churn, in units of ${UNIT} bytes, of ${UNITS})`,
  '',
  '| allocator | fixed ns/op | random ns/op | aligned ns/op | fixed largest | random largest | aligned largest |',
  '|---|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    ([name, c]) =>
      `| ${name} | ${c.map(cell).join(' | ')} | ${c.map((x) => (x === null ? 'n/a' : x.largest)).join(' | ')} |`,
  ),
  '',
  '@thi.ng/malloc aligned: emulated (size + align - 1 units, address rounded up); number-allocator: one number per call, so fixed size only.',
];
process.stdout.write(out.join('\n') + '\n');
