// Allocation cost against the number of free blocks: the 2018 RFC's first fit over the free
// list ('rfc2018') against the augmented tree ('global'), in two settings.
//
//   npm run build && node scripts/bench-rfc2018.mjs [--blocks 10,100,1000,10000,50000] [--iters 2000]
//
// The free space: 2N one-page areas (two pages with the guard page) side by side, every other
// one freed, leave N free holes of two pages below the rest of the window. Each timed iteration
// asks for three pages, which fit no hole: first fit walks all N holes before it reaches the
// big block; the augmented search skips them by their subtree maximum.
//
//   kva:     the free-space operations alone, one thread, no lock: firstFitAlloc + mergeFree
//            against allocFromFreeTree + mergeOrAddVmapArea (each iteration allocates and
//            gives the range straight back);
//   vmalloc: through the subsystem, get_vm_area(2 pages) + remove_vm_area, the lazily
//            removed areas purged by the drains as in the kernel (alike for both designs).
//
// Reported: the median over rounds of the mean time per iteration (µs), as a Markdown table
// on stdout. On a loaded machine, compare the columns of one run, not runs with each other.

import { createVmalloc } from '../dist/src/index.js';
import { VaStore } from '../dist/src/kva/vmap-area.js';
import { allocFromFreeTree, mergeOrAddVmapArea } from '../dist/src/kva/free-tree.js';
import { firstFitAlloc, mergeFree, F_RESV } from '../dist/src/designs/rfc2018-free.js';
import { newHead } from '../dist/src/designs/free-space.js';

const PAGE = 4096;

function arg(name, dflt) {
  const at = process.argv.indexOf(name);
  return at < 0 ? dflt : process.argv[at + 1];
}

const blocks = arg('--blocks', '10,100,1000,10000,50000').split(',').map(Number);
const iters = Number(arg('--iters', '2000'));
const ROUNDS = 7;

function median(loop) {
  loop(Math.min(iters, 500)); // warm-up
  const means = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    loop(iters);
    means.push(((performance.now() - t0) * 1000) / iters);
  }
  means.sort((a, b) => a - b);
  return means[ROUNDS >> 1];
}

/** The free-space operations alone over a VaStore. */
function kvaLoop(design, n) {
  const s = VaStore.create({ shared: false });
  const h = newHead(s);
  const ctl = new Int32Array(2);
  const rfc = design === 'rfc2018';
  const LO = 2 ** 40;
  const HI = LO + 2 ** 36;
  const win = new Float64Array([LO, HI]);
  const add = (va) => {
    if (rfc) mergeFree(s, h, va, ctl, 0, 4096);
    else mergeOrAddVmapArea(s, h, va, true);
  };
  const take = (size) => {
    const va = s.alloc();
    const err = rfc
      ? firstFitAlloc(s, h, va, size, size, PAGE, LO, HI, ctl, 0, 4096)
      : allocFromFreeTree(s, h, va, size, PAGE, win, PAGE, ctl, 1);
    if (err !== 0) throw new Error(`no fit (${err})`);
    return va;
  };
  const first = s.alloc();
  s.setRange(first, LO, HI);
  s.f[(first << 3) + F_RESV] = HI;
  add(first);
  const areas = [];
  for (let k = 0; k < 2 * n; k++) areas.push(take(2 * PAGE));
  for (let k = 0; k < 2 * n; k += 2) add(areas[k]);
  const count = s.vm(h);
  return { count, loop: (m) => { for (let k = 0; k < m; k++) add(take(3 * PAGE)); } }; // prettier-ignore
}

/** Through the subsystem. */
function vmallocLoop(design, n) {
  const vm = createVmalloc({ design, nrCpus: 1, logger: null });
  const areas = [];
  for (let k = 0; k < 2 * n; k++) areas.push(vm.getVmArea(PAGE).addr);
  for (let k = 0; k < 2 * n; k += 2) vm.removeVmArea(areas[k]);
  vm.purge();
  const count = vm.stats().freeBlocks;
  return { count, loop: (m) => { for (let k = 0; k < m; k++) vm.removeVmArea(vm.getVmArea(2 * PAGE).addr); } }; // prettier-ignore
}

for (const [level, make] of [
  ['kva', kvaLoop],
  ['vmalloc', vmallocLoop],
]) {
  // A throw-away run of each, so that the first row is not the JIT's.
  for (const d of ['rfc2018', 'global']) median(make(d, 100).loop);
  console.log(`\n### ${level}: allocation + free, µs per iteration (median of ${ROUNDS} rounds of ${iters})\n`); // prettier-ignore
  console.log('| free holes N | free blocks (rfc2018 / global) | rfc2018 | global | rfc2018 / global |'); // prettier-ignore
  console.log('|---:|---:|---:|---:|---:|');
  for (const n of blocks) {
    const r = make('rfc2018', n);
    const g = make('global', n);
    const ru = median(r.loop);
    const gu = median(g.loop);
    console.log(`| ${n} | ${r.count} / ${g.count} | ${ru.toFixed(2)} | ${gu.toFixed(2)} | ${(ru / gu).toFixed(1)}x |`); // prettier-ignore
  }
}
