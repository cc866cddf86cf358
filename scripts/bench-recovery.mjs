// Recovery after a worker's death: which mechanism, chosen by measurement (issue 9).
//
//   node scripts/bench-recovery.mjs [--live 1000,100000] [--ops 200000] [--rounds 5] [--recover 100000,1000000]
//
// 1. Hot-path cost, in one process, rounds interleaved (A B C A B C ...), on the real
//    vmalloc path (allocate + unlink + release of the 'global' design, one page each) with
//    `live` areas held:
//      A  base: the operation alone;
//      B  rebuild: A + what recovery by rebuilding costs an operation: the recovery gate's
//         enter/leave (a sequentially consistent store and a load, a plain store);
//      C  intent log: A + the least an undo/redo log costs: an intent record per operation
//         (op, cpu, address, size; its sequence word stored atomically, cleared at the end)
//         and a pre-image of every record the operation writes, copied before it is written.
//         How many records an alloc + free writes is measured first by diffing the record
//         buffer (K below); C copies K records of the operation's own tree path (the busy
//         area and its ancestors), which are in cache, so C is a lower bound: a real log also
//         pays a branch at every write and logs vm_structs, frames and page-table entries.
//    Reported: ns per alloc+free pair, median over rounds, and the ratios B/A and C/A.
// 2. Recovery time: vm.recover() with `recover` busy areas (get_vm_area, no pages), which is
//    what the rebuild costs once per death; an intent log's recovery is one operation's undo.
// 3. With `--base <dir>` (the root of another build of the package, its dist/ compiled, e.g.
//    the commit before a change): the public calls whose paths recovery touches, this build
//    against that one in one process, rounds interleaved: vm_map_ram + vm_unmap_ram (1..8
//    pages, from the vmap blocks), vmalloc + kvfreeRcu (1 page, an rcuBarrier every 1,000),
//    vmalloc + vfree (the control). Reported: ns per pair, median (and least) over rounds, in
//    ABBA order, and this/base.
//    `--sections 3` runs it alone.

import { performance } from 'node:perf_hooks';
import { createVmalloc } from '../dist/src/index.js';
import { allocate } from '../dist/src/mm/alloc-path.js';
import { releaseArea, unlinkForFree, freesPagesOnVfree } from '../dist/src/mm/free-path.js';
import { enterOp, leaveOp } from '../dist/src/mm/recovery.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const LIVE = arg('live', '1000,100000').split(',').map(Number);
const OPS = Number(arg('ops', '200000'));
const ROUNDS = Number(arg('rounds', '5'));
const RECOVER = arg('recover', '100000,1000000').split(',').map(Number);
const BASE = arg('base', '');
const SECTIONS = arg('sections', BASE === '' ? '1,2' : '1,2,3')
  .split(',')
  .map(Number);

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function setup(live) {
  const vm = createVmalloc({
    design: 'global',
    logger: null,
    physicalMemory: 2 ** 31,
  });
  const ctx = vm.ctx;
  const held = [];
  for (let k = 0; k < live; k++) held.push(vm.vmalloc(4096));
  // Free every other one: the free tree has `live / 2` blocks to search.
  for (let k = 0; k < live; k += 2) vm.vfree(held[k]);
  vm.purge();
  return { vm, ctx };
}

function vfreeAt(ctx, addr) {
  const va = unlinkForFree(ctx, 'vfree', addr);
  const vm = ctx.vmOf(va);
  releaseArea(ctx, va, vm, freesPagesOnVfree(ctx, vm));
}

/** Records written by one alloc + free, by diffing the record buffer (average of 200). */
function recordsWritten(ctx) {
  let total = 0;
  for (let k = 0; k < 200; k++) {
    ctx.s.refreshViews();
    const before = new Int32Array(ctx.s.i);
    const a = allocate(ctx, 'vmalloc', 4096, undefined, false, 0);
    vfreeAt(ctx, a);
    const after = ctx.s.i;
    const seen = new Set();
    for (let w = 0; w < before.length; w++) if (before[w] !== after[w]) seen.add(w >> 4);
    total += seen.size;
  }
  return total / 200;
}

// Every variant makes the two busy-tree lookups C needs to find its path, so that the
// difference between them is the mechanism alone.
function loopA(ctx, n) {
  const t0 = performance.now();
  for (let k = 0; k < n; k++) {
    const a = allocate(ctx, 'vmalloc', 4096, undefined, false, 0);
    ctx.areas.find(ctx.cpu, a);
    ctx.areas.find(ctx.cpu, a);
    vfreeAt(ctx, a);
  }
  return ((performance.now() - t0) * 1e6) / n;
}

function loopB(ctx, n) {
  const t0 = performance.now();
  for (let k = 0; k < n; k++) {
    enterOp(ctx);
    const a = allocate(ctx, 'vmalloc', 4096, undefined, false, 0);
    ctx.areas.find(ctx.cpu, a);
    leaveOp(ctx);
    enterOp(ctx);
    ctx.areas.find(ctx.cpu, a);
    vfreeAt(ctx, a);
    leaveOp(ctx);
  }
  return ((performance.now() - t0) * 1e6) / n;
}

/** The intent log's least cost: intent words, and K record pre-images per alloc + free. */
function makeLoopC(K) {
  const log = new Int32Array(new SharedArrayBuffer(64 + K * 64 + 64));
  const logF = new Float64Array(log.buffer);
  let seq = 0;
  function preImages(ctx, va, count) {
    const i = ctx.s.i;
    let x = va;
    let at = 16;
    for (let c = 0; c < count; c++) {
      const o = x << 4;
      for (let w = 0; w < 16; w++) log[at + w] = i[o + w];
      at += 16;
      const p = i[o + 6] >> 1; // the parent
      x = p === 0 ? va : p;
    }
  }
  return function loopC(ctx, n) {
    const half = Math.round(K / 2);
    const t0 = performance.now();
    for (let k = 0; k < n; k++) {
      logF[1] = 4096;
      log[4] = 1; // op: vmalloc
      log[5] = ctx.cpu;
      Atomics.store(log, 0, ++seq);
      const a = allocate(ctx, 'vmalloc', 4096, undefined, false, 0);
      preImages(ctx, ctx.areas.find(ctx.cpu, a), half);
      Atomics.store(log, 0, 0);
      logF[1] = a;
      log[4] = 2; // op: vfree
      Atomics.store(log, 0, ++seq);
      preImages(ctx, ctx.areas.find(ctx.cpu, a), K - half);
      vfreeAt(ctx, a);
      Atomics.store(log, 0, 0);
    }
    return ((performance.now() - t0) * 1e6) / n;
  };
}

if (SECTIONS.includes(1)) hotPath();
if (SECTIONS.includes(2)) recoveryTime();
if (SECTIONS.includes(3) && BASE !== '') await paired(BASE);

function hotPath() {
  console.log(
    '## Hot path: ns per vmalloc + vfree pair (global design, 1 page), median of rounds\n',
  );
  console.log(
    '| live areas | K records written | A base | B rebuild (gate) | C intent log (lower bound) | B/A | C/A |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const live of LIVE) {
    const { ctx } = setup(live);
    const K = recordsWritten(ctx);
    const loopC = makeLoopC(Math.round(K));
    const a = [];
    const b = [];
    const c = [];
    loopA(ctx, OPS / 4);
    loopB(ctx, OPS / 4);
    loopC(ctx, OPS / 4);
    for (let r = 0; r < ROUNDS; r++) {
      a.push(loopA(ctx, OPS));
      b.push(loopB(ctx, OPS));
      c.push(loopC(ctx, OPS));
    }
    const ma = median(a);
    const mb = median(b);
    const mc = median(c);
    console.log(
      `| ${live} | ${K.toFixed(1)} | ${ma.toFixed(0)} | ${mb.toFixed(0)} | ${mc.toFixed(0)} | ${(mb / ma).toFixed(3)} | ${(mc / ma).toFixed(3)} |`,
    );
  }
}

function recoveryTime() {
  console.log('\n## Recovery time: vm.recover() with N busy areas (get_vm_area, no pages)\n');
  console.log('| busy areas | recover() ms | areas kept |');
  console.log('|---|---|---|');
  for (const n of RECOVER) {
    const vm = createVmalloc({ design: 'global', logger: null });
    for (let k = 0; k < n; k++) vm.getVmArea(4096);
    const r = vm.recover();
    vm.check();
    console.log(`| ${n} | ${r.ms.toFixed(0)} | ${r.areas} |`);
  }
}

/** Section 3: this build against the one at `base`, rounds interleaved. */
async function paired(base) {
  const { pathToFileURL } = await import('node:url');
  const { resolve } = await import('node:path');
  const other = await import(pathToFileURL(resolve(base, 'dist/src/index.js')).href);
  const builds = [
    ['this', createVmalloc],
    ['base', other.createVmalloc],
  ];
  const n = Math.max(1000, Math.round(OPS / 4));
  const cases = {
    'vm_map_ram + vm_unmap_ram': (vm) => {
      const pfns = vm.allocPages(8);
      return () => {
        const t0 = performance.now();
        for (let k = 0; k < n; k++) {
          const c = 1 + (k & 7);
          vm.vmUnmapRam(vm.vmMapRam(pfns, c), c);
        }
        return ((performance.now() - t0) * 1e6) / n;
      };
    },
    'vmalloc + kvfreeRcu': (vm) => () => {
      const t0 = performance.now();
      for (let k = 0; k < n; k++) {
        vm.kvfreeRcu(vm.vmalloc(4096));
        if (k % 1000 === 999) vm.rcuBarrier();
      }
      vm.rcuBarrier();
      return ((performance.now() - t0) * 1e6) / n;
    },
    'vmalloc + vfree (control)': (vm) => () => {
      const t0 = performance.now();
      for (let k = 0; k < n; k++) vm.vfree(vm.vmalloc(4096));
      return ((performance.now() - t0) * 1e6) / n;
    },
  };
  console.log(
    `\n## Paired with ${base}: ns per pair (nodes design, ${n} pairs a round), median of ${ROUNDS} rounds\n`,
  );
  console.log('| operation | this | base | this/base |');
  console.log('|---|---|---|---|');
  for (const [name, make] of Object.entries(cases)) {
    const loops = builds.map(([, create]) => make(create({ logger: null, nrCpus: 2 })));
    for (const loop of loops) loop(); // warm-up
    const times = loops.map(() => []);
    // ABBA: which build goes first alternates, so neither always runs right after the other.
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) times[i].push(loops[i]());
    }
    const [mt, mb] = times.map(median);
    const [lt, lb] = times.map((xs) => Math.min(...xs));
    console.log(
      `| ${name} | ${mt.toFixed(0)} (min ${lt.toFixed(0)}) | ${mb.toFixed(0)} (min ${lb.toFixed(0)}) | ${(mt / mb).toFixed(3)} (min ${(lt / lb).toFixed(3)}) |`,
    );
  }
}
