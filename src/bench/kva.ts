/**
 * `vmalloc bench kva`: the free-tree core on the VA-only test_vmalloc patterns, side by side
 * with the C yardstick (../shared/tools/cref) when its path is given.
 *
 * Holds: the six patterns (tests 1, 2, 4, 8, 16, 32 of lib/test_vmalloc.c, each vmalloc
 * reserving one guard page), the scaling runs (B busy 1-page areas with B holes), the heap
 * check, and the comparison with the C benchmark in the same session (--record: kva-record.ts).
 * Invariant: every pattern uses the C benchmark's space ([2^40, 2^40 + 32 TiB)), sizes,
 * alignments and random sequence (xorshift64*, same seeds), so the two do the same work.
 * Callers: src/cli/main.ts.
 *
 * Timing covers the measured loop only (setup and teardown are not timed), as in the C tool.
 * Each repetition runs on a fresh VmapSpace after an untimed warm-up run (the JIT), and C and
 * JS alternate test by test, so a slow-down of the machine hits both; the ratio reported is the
 * median of the per-repetition ratios.
 */

import { execFileSync } from 'node:child_process';
import { VmapSpace } from '../kva/vmap-space.js';
import { fmt, max, median, min, nowNs, pairedRatio } from './stats.js';
import { Xorshift64Star } from './xorshift.js';

const P = 4096;
const VSTART = 2 ** 40;
const VEND = VSTART + 32 * 2 ** 40;
/** vmalloc(n pages) reserves n + 1 pages: the guard page. */
const vm = (pages: number): number => (pages + 1) * P;

export interface KvaPattern {
  id: number;
  name: string;
  what: string;
}

export const KVA_PATTERNS: readonly KvaPattern[] = [
  { id: 1, name: 'fix_size_alloc_test', what: 'alloc 1p, free' },
  { id: 2, name: 'full_fit_alloc_test', what: 'alloc 1p, free (16384 2-page holes)' },
  {
    id: 4,
    name: 'long_busy_list_alloc_test',
    what: 'alloc 100p + alloc 1p, free both (15000 busy)',
  },
  { id: 8, name: 'random_size_alloc_test', what: 'alloc 1..100p, free' },
  { id: 16, name: 'fix_align_alloc_test', what: 'alloc 5p align 32K, free' },
  { id: 32, name: 'random_size_align_alloc_test', what: 'alloc 1..10p align 2^(0..22), free' },
];

const newSpace = (): VmapSpace => new VmapSpace({ start: VSTART, end: VEND, pageSize: P });

/** The view of a fresh space a run calls (--record: one that records its calls). */
export type SpaceWrap = (sp: VmapSpace) => VmapSpace;

/** The random bytes the C benchmark draws for test `id` (seed 0x9E3779B97F4A7C15 ^ id). */
function randomTable(id: number, loops: number, map: (r: bigint) => number): Uint8Array {
  const rng = new Xorshift64Star(0x9e3779b97f4a7c15n ^ BigInt(id));
  const t = new Uint8Array(loops);
  for (let i = 0; i < loops; i++) t[i] = map(rng.next());
  return t;
}

// One function per pattern, so each timed loop is compiled for its own shapes.

function fixSize(sp: VmapSpace, loops: number): number {
  const size = vm(1);
  const t0 = nowNs();
  for (let i = 0; i < loops; i++) sp.free(sp.alloc(size)!);
  return nowNs() - t0;
}

function fullFit(sp: VmapSpace, loops: number): number {
  const n = 2 * ((32 << 20) / P); // fls(2 CPUs) * 32 MiB / PAGE_SIZE, as the C benchmark
  const ptr = new Float64Array(n);
  const junk = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    ptr[i] = sp.alloc(vm(1))!;
    junk[i] = sp.alloc(vm(1))!;
  }
  for (let i = 0; i < n; i++) sp.free(junk[i]!);
  const size = vm(1);
  const t0 = nowNs();
  for (let i = 0; i < loops; i++) sp.free(sp.alloc(size)!);
  const ns = nowNs() - t0;
  for (let i = 0; i < n; i++) sp.free(ptr[i]!);
  return ns;
}

function longBusyList(sp: VmapSpace, loops: number): number {
  const n = 15000;
  const ptr = new Float64Array(n);
  for (let i = 0; i < n; i++) ptr[i] = sp.alloc(vm(1))!;
  const big = vm(100);
  const small = vm(1);
  const t0 = nowNs();
  for (let i = 0; i < loops; i++) {
    const p = sp.alloc(big)!;
    const q = sp.alloc(small)!;
    sp.free(p);
    sp.free(q);
  }
  const ns = nowNs() - t0;
  for (let i = 0; i < n; i++) sp.free(ptr[i]!);
  return ns;
}

function randomSize(sp: VmapSpace, loops: number, pages: Uint8Array): number {
  const t0 = nowNs();
  for (let i = 0; i < loops; i++) sp.free(sp.alloc((pages[i]! + 1) * P)!);
  return nowNs() - t0;
}

function fixAlign(sp: VmapSpace, loops: number): number {
  const opts = { align: 2 * 16384 }; // THREAD_ALIGN << 1 on x86_64
  const size = vm(5);
  const t0 = nowNs();
  for (let i = 0; i < loops; i++) sp.free(sp.alloc(size, opts)!);
  return nowNs() - t0;
}

function randomSizeAlign(sp: VmapSpace, loops: number, rnd: Uint8Array): number {
  const opts: { align: number }[] = [];
  for (let k = 0; k < 23; k++) opts.push({ align: 2 ** k });
  const t0 = nowNs();
  for (let i = 0; i < loops; i++) {
    const r = rnd[i]!;
    sp.free(sp.alloc(vm((r % 10) + 1), opts[r % 23])!);
  }
  return nowNs() - t0;
}

/**
 * ns per iteration of pattern `id` on a fresh space; checks that the space ends empty.
 * `wrap` gives the view the pattern calls (--record: a recording one).
 */
export function runKvaPattern(id: number, loops: number, wrap?: SpaceWrap): number {
  const space = newSpace();
  const sp = wrap === undefined ? space : wrap(space);
  let ns: number;
  switch (id) {
    case 1:
      ns = fixSize(sp, loops);
      break;
    case 2:
      ns = fullFit(sp, loops);
      break;
    case 4:
      ns = longBusyList(sp, loops);
      break;
    case 8:
      ns = randomSize(
        sp,
        loops,
        randomTable(8, loops, (r) => Number(r % 100n)),
      );
      break;
    case 16:
      ns = fixAlign(sp, loops);
      break;
    case 32:
      ns = randomSizeAlign(
        sp,
        loops,
        randomTable(32, loops, (r) => Number(r & 0xffn)),
      );
      break;
    default:
      throw new Error(`unknown kva pattern ${id}`);
  }
  if (space.busyCount !== 0 || space.freeCount !== 1) {
    throw new Error(
      `pattern ${id} did not end clean: ${space.busyCount} busy, ${space.freeCount} free blocks`,
    );
  }
  return ns / loops;
}

/** Scaling: B busy 1-page areas, each followed by a 1-page hole; alloc(2 pages) + free. */
export function runKvaScale(
  b: number,
  loops: number,
  mixed: boolean,
  wrap?: SpaceWrap,
): { ns: number; freeBlocks: number } {
  const space = newSpace();
  const sp = wrap === undefined ? space : wrap(space);
  const busy = new Float64Array(b);
  const holes = new Float64Array(b);
  for (let i = 0; i < b; i++) {
    busy[i] = sp.alloc(P)!;
    holes[i] = sp.alloc(P)!;
  }
  for (let i = 0; i < b; i++) sp.free(holes[i]!);
  const freeBlocks = sp.freeCount;
  const size = 2 * P;
  const aligns = [{ align: 1 }, { align: 16384 }];
  const t0 = nowNs();
  if (mixed) {
    for (let i = 0; i < loops; i++) sp.free(sp.alloc(size, aligns[i & 1])!);
  } else {
    for (let i = 0; i < loops; i++) sp.free(sp.alloc(size)!);
  }
  const ns = (nowNs() - t0) / loops;
  for (let i = 0; i < b; i++) sp.free(busy[i]!);
  return { ns, freeBlocks };
}

/** Heap growth over `pairs` alloc/free pairs (random sizes), measured after full GCs. */
export function measureHeap(
  pairs: number,
  gc: () => void,
): { beforeBytes: number; afterBytes: number; deltaBytes: number } {
  const sp = newSpace();
  const pages = randomTable(8, pairs, (r) => Number(r % 100n));
  randomSize(sp, Math.min(pairs, 100000), pages); // warm up: optimized code, grown arenas
  gc();
  gc();
  const beforeBytes = process.memoryUsage().heapUsed;
  randomSize(sp, pairs, pages);
  gc();
  gc();
  const afterBytes = process.memoryUsage().heapUsed;
  return { beforeBytes, afterBytes, deltaBytes: afterBytes - beforeBytes };
}

// ---- the C yardstick ----

function crefPattern(cref: string, id: number, loops: number): number {
  const out = execFileSync(
    cref,
    ['bench', '-a', 'new', '-m', String(id), '-r', '1', '-n', String(loops)],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  // The row of its markdown table: | id | test | one iteration | new ns/iter | ...
  const row = out.split('\n').find((l) => l.startsWith(`| ${id} |`));
  const ns = row === undefined ? NaN : Number(row.split('|')[4]);
  if (!Number.isFinite(ns)) throw new Error(`cannot read the C benchmark's output:\n${out}`);
  return ns;
}

function crefScale(cref: string, b: number, loops: number): { steady: number; mixed: number } {
  const out = execFileSync(
    cref,
    ['scale', '-a', 'new', '-B', String(b), '-s', String(loops), '-r', '1'],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const row = out.split('\n').find((l) => l.startsWith(`| ${b} |`));
  if (!row) throw new Error(`cannot read the C scaling output:\n${out}`);
  const cells = row.split('|').map((c) => c.trim());
  return { steady: Number(cells[3]), mixed: Number(cells[6]) };
}

// ---- the whole run ----

export interface KvaBenchOptions {
  loops: number;
  reps: number;
  mask: number;
  scaleB: number[];
  scaleLoops: number;
  heapPairs: number;
  cref?: string;
  gc?: () => void;
  progress?: (line: string) => void;
}

export interface KvaPatternResult extends KvaPattern {
  js: number[];
  c: number[];
  jsMedian: number;
  cMedian: number;
  /** median of per-repetition JS/C ratios (NaN without C) */
  ratio: number;
}

export interface KvaScaleResult {
  b: number;
  freeBlocks: number;
  steady: number[];
  mixed: number[];
  cSteady: number[];
  cMixed: number[];
}

export interface KvaBenchResult {
  patterns: KvaPatternResult[];
  scale: KvaScaleResult[];
  heap?: { pairs: number; beforeBytes: number; afterBytes: number; deltaBytes: number };
}

export function runKvaBench(o: KvaBenchOptions): KvaBenchResult {
  const say = o.progress ?? (() => {});
  const patterns: KvaPatternResult[] = [];
  for (const p of KVA_PATTERNS) {
    if ((o.mask & p.id) === 0) continue;
    runKvaPattern(p.id, Math.max(1000, Math.floor(o.loops / 10))); // JIT warm-up, untimed
    const js: number[] = [];
    const c: number[] = [];
    for (let r = 0; r < o.reps; r++) {
      if (o.cref) c.push(crefPattern(o.cref, p.id, o.loops));
      js.push(runKvaPattern(p.id, o.loops));
      say(
        `test ${p.id} rep ${r + 1}/${o.reps}: js ${fmt(js[r]!)} ns${o.cref ? `, c ${fmt(c[r]!)} ns` : ''}`,
      );
    }
    patterns.push({
      ...p,
      js,
      c,
      jsMedian: median(js),
      cMedian: median(c),
      ratio: o.cref ? pairedRatio(js, c) : NaN,
    });
  }
  const scale: KvaScaleResult[] = [];
  for (const b of o.scaleB) {
    runKvaScale(Math.min(b, 1000), 1000, false);
    runKvaScale(Math.min(b, 1000), 1000, true);
    const row: KvaScaleResult = {
      b,
      freeBlocks: 0,
      steady: [],
      mixed: [],
      cSteady: [],
      cMixed: [],
    };
    for (let r = 0; r < o.reps; r++) {
      if (o.cref) {
        const c = crefScale(o.cref, b, o.scaleLoops);
        row.cSteady.push(c.steady);
        row.cMixed.push(c.mixed);
      }
      const s = runKvaScale(b, o.scaleLoops, false);
      row.steady.push(s.ns);
      row.freeBlocks = s.freeBlocks;
      row.mixed.push(runKvaScale(b, o.scaleLoops, true).ns);
      say(
        `scale B=${b} rep ${r + 1}/${o.reps}: steady ${fmt(row.steady[r]!)} ns, mixed ${fmt(row.mixed[r]!)} ns`,
      );
    }
    scale.push(row);
  }
  const result: KvaBenchResult = { patterns, scale };
  if (o.gc && o.heapPairs > 0) {
    result.heap = { pairs: o.heapPairs, ...measureHeap(o.heapPairs, o.gc) };
  }
  return result;
}

/** The result as the markdown kept in BENCHMARKS.md. */
export function formatKvaBench(r: KvaBenchResult, withC: boolean): string {
  const lines: string[] = [];
  lines.push(
    '### test_vmalloc VA-only patterns (ns per loop iteration, median of repetitions)',
    '',
  );
  if (withC) {
    lines.push('| id | test | one iteration | JS ns/iter | C ns/iter | JS/C | within 3x |');
    lines.push('|---:|---|---|---:|---:|---:|:---:|');
  } else {
    lines.push('| id | test | one iteration | JS ns/iter [min..max] |');
    lines.push('|---:|---|---|---:|');
  }
  for (const p of r.patterns) {
    const js = `${fmt(p.jsMedian)} [${fmt(min(p.js))}..${fmt(max(p.js))}]`;
    if (withC) {
      lines.push(
        `| ${p.id} | ${p.name} | ${p.what} | ${js} | ${fmt(p.cMedian)} | ${fmt(p.ratio, 2)} | ${p.ratio <= 3 ? 'yes' : 'NO'} |`,
      );
    } else {
      lines.push(`| ${p.id} | ${p.name} | ${p.what} | ${js} |`);
    }
  }
  if (r.scale.length > 0) {
    lines.push(
      '',
      '### Scaling (ns per alloc(2 pages) + free; B busy 1-page areas each followed by a 1-page hole)',
      '',
    );
    const head = withC
      ? '| B | free blocks | JS steady | C steady | JS/C | JS mixed-align | C mixed-align | JS/C |'
      : '| B | free blocks | JS steady | JS mixed-align |';
    lines.push(head, head.replace(/[^|]+/g, '---:'));
    for (const s of r.scale) {
      if (withC) {
        lines.push(
          `| ${s.b} | ${s.freeBlocks} | ${fmt(median(s.steady))} | ${fmt(median(s.cSteady))} | ${fmt(pairedRatio(s.steady, s.cSteady), 2)} | ` +
            `${fmt(median(s.mixed))} | ${fmt(median(s.cMixed))} | ${fmt(pairedRatio(s.mixed, s.cMixed), 2)} |`,
        );
      } else {
        lines.push(
          `| ${s.b} | ${s.freeBlocks} | ${fmt(median(s.steady))} | ${fmt(median(s.mixed))} |`,
        );
      }
    }
    const first = r.scale[0]!;
    const last = r.scale[r.scale.length - 1]!;
    if (r.scale.length > 1) {
      lines.push(
        '',
        `Cost at B=${last.b} over cost at B=${first.b}: steady ${fmt(median(last.steady) / median(first.steady), 2)}x, ` +
          `mixed-align ${fmt(median(last.mixed) / median(first.mixed), 2)}x (required: within 5x).`,
      );
    }
  }
  if (r.heap) {
    const h = r.heap;
    lines.push(
      '',
      `### Heap`,
      '',
      `JS heap after ${h.pairs.toLocaleString('en-US')} alloc/free pairs (random 1..100 pages), measured after full GCs: ` +
        `${fmt(h.beforeBytes / 1024, 0)} KiB before, ${fmt(h.afterBytes / 1024, 0)} KiB after, delta ${h.deltaBytes >= 0 ? '+' : ''}${fmt(h.deltaBytes / 1024, 1)} KiB.`,
    );
  }
  return lines.join('\n');
}
