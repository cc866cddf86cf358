/**
 * Recovery's part for the percpu allocator: every live chunk made to agree with its areas, the
 * page table and itself again after a worker died holding pcpu_alloc_mutex half-way through
 * populating or depopulating a page, marking or clearing an allocation, or making or
 * destroying a chunk.
 *
 * Holds: percpuPart (a RecoveryPart; recovery-parts.ts lists it after the areas part, so
 * run.keptVa is decided, and before the frames and page-table parts, so the pages it unmaps
 * are neither counted as mapped nor left in the page table, and the areas it drops are free).
 * Invariant: afterwards percpu-check.ts holds: every live chunk's units are kept busy pcpu
 * areas, a page is mapped in every unit exactly when its populated bit is set, the maps agree
 * with the counters, the header counts the live chunks and their pages. pcpu_alloc_mutex is
 * in the lock table, released by recover() when its holder is dead.
 * Callers: recover() through recoveryParts() (src/mm/recovery-parts.ts).
 *
 * The rules (percpu.ts's order of operations: a page is populated, in every unit, before an
 * allocation on it is marked, and depopulated only when no allocation covers it):
 * - a page mapped in every unit with its bit set stays; any other page (bit set but a unit
 *   unmapped: depopulation stopped; mapped in some units, bit clear: population stopped) holds
 *   no allocation, so it is unmapped in every unit and its bit cleared (its frames go back to
 *   the free lists through the frames part);
 * - allocation maps: the change in flight that mark() / clear() record in the header before
 *   they write is settled: a mark undone (that allocation was the dead caller's and never
 *   returned), a clear finished; then, as a safety net, a bound bit on a free unit is cleared
 *   and allocated units no bound bit starts are freed, and the counters recomputed. A mark
 *   that completed stays, as a dead cpu's vmalloc area does, until freed by address;
 * - a chunk CREATING (its areas being made) or DESTROYING (being depopulated, its areas
 *   freed), or one whose units are not all kept areas, is dropped whole: its kept areas leave
 *   run.keptVa (their ranges are free afterwards), its slot is free. A dropped chunk held no
 *   allocation (made empty, destroyed empty).
 */

import { VaFlags } from '../kva/vmap-area.js';
import { ChunkState, PCPU_OP_MARK } from './percpu-chunk.js';
import type { RecoveryPart, RecoveryRun } from './recovery.js';

function bump(run: RecoveryRun, kind: string, n = 1): void {
  if (n !== 0) run.counts[kind] = (run.counts[kind] ?? 0) + n;
}

/** Decided by collect, written by restore (one run at a time per thread). */
let keptChunks: number[] = [];
let droppedChunks: number[] = [];
/** Per kept chunk (same index): the pages to depopulate. */
let depopulate: number[][] = [];

export const percpuPart: RecoveryPart = {
  name: 'percpu chunks',

  collect(run) {
    const ctx = run.ctx;
    const chunks = ctx.pcpu;
    chunks.refresh();
    const g = chunks.g;
    const s = ctx.s;
    const pt = ctx.pageTable;
    const ps = ctx.pageSize;
    // Kept pcpu areas of a unit's size, by start.
    const unitAreas = new Map<number, number>();
    for (const va of run.keptVa)
      if ((s.flags(va) & VaFlags.PCPU) !== 0 && s.size(va) === g.unitSize)
        unitAreas.set(s.start(va), va);
    keptChunks = [];
    droppedChunks = [];
    depopulate = [];
    const drop = new Set<number>();
    for (let c = 0; c < chunks.slots; c++) {
      const state = chunks.state(c);
      if (state === ChunkState.FREE) continue;
      const base = chunks.base(c);
      let units = 0;
      if (Number.isSafeInteger(base) && base > 0)
        for (let cpu = 0; cpu < g.nrCpus; cpu++)
          if (unitAreas.has(base + cpu * g.unitSize)) units++;
      if (state !== ChunkState.LIVE || units !== g.nrCpus) {
        // Half made or half destroyed: its areas go (those a user's own pcpu_get_vm_areas()
        // made elsewhere are not at its units).
        if (units > 0)
          for (let cpu = 0; cpu < g.nrCpus; cpu++) {
            const va = unitAreas.get(base + cpu * g.unitSize);
            if (va !== undefined) drop.add(va);
          }
        droppedChunks.push(c);
        bump(
          run,
          state === ChunkState.CREATING
            ? 'half-made percpu chunks'
            : state === ChunkState.DESTROYING
              ? 'half-destroyed percpu chunks'
              : 'broken percpu chunks',
        );
        continue;
      }
      const pages: number[] = [];
      for (let p = 0; p < g.unitPages; p++) {
        let mapped = 0;
        for (let cpu = 0; cpu < g.nrCpus; cpu++)
          if (pt.lookup(base + cpu * g.unitSize + p * ps) >= 0) mapped++;
        const bit = chunks.isPopulated(c, p);
        if (bit ? mapped !== g.nrCpus : mapped !== 0) pages.push(p);
      }
      keptChunks.push(c);
      depopulate.push(pages);
    }
    if (drop.size > 0) {
      run.keptVa = run.keptVa.filter((va) => !drop.has(va));
      const vms = new Set<number>();
      for (const va of drop) vms.add(s.vm(va));
      run.keptVm = run.keptVm.filter((vm) => !vms.has(vm));
      bump(run, 'percpu chunk areas', drop.size);
    }
  },

  reset() {},

  restore(run) {
    const ctx = run.ctx;
    const chunks = ctx.pcpu;
    const g = chunks.g;
    const pt = ctx.pageTable;
    const ps = ctx.pageSize;
    for (const c of droppedChunks) chunks.drop(c);
    // The map change in flight: a mark undone (its allocation never returned), a clear done.
    const op = chunks.takeInflight();
    if (op !== null && chunks.settle(op[0], op[1], op[2], op[3]))
      bump(run, op[0] === PCPU_OP_MARK ? 'percpu marks undone' : 'percpu clears finished');
    let pages = 0;
    let units = 0;
    keptChunks.forEach((c, k) => {
      const base = chunks.base(c);
      for (const p of depopulate[k]!) {
        for (let cpu = 0; cpu < g.nrCpus; cpu++) {
          const addr = base + cpu * g.unitSize + p * ps;
          if (pt.lookup(addr) >= 0) pt.unmap(addr, 1);
        }
        chunks.clearPopulatedBit(c, p);
        pages++;
      }
      units += chunks.repairMaps(c);
    });
    chunks.recount();
    bump(run, 'half-populated percpu pages', pages);
    bump(run, 'half-marked percpu units', units);
    keptChunks = [];
    droppedChunks = [];
    depopulate = [];
  },
};
