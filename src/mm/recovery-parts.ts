/**
 * The parts of the vmalloc subsystem that recovery rebuilds, and the order it runs them in.
 *
 * Holds: recoveryParts() (the list: a new structure joins recovery by adding its part here),
 * and the parts of the existing structures: the vmap areas (the design's trees, lists and
 * pools, the vmap-area and vm_struct records, the page-array pool), the page frames, and the
 * page table.
 * Invariant: see recovery.ts; each part's collect() only reads, reset() empties, restore()
 * puts back exactly the kept areas (ids, addresses, vm_structs and pages unchanged).
 * Callers: recover() (src/mm/recovery.ts).
 *
 * What is kept: a busy area found on the design's busy lists (a forward walk of an
 * address-sorted list stays correct across one half-done insert or unlink: a record's own
 * links are set before it is linked in, and an unlink sets one forward link) whose record
 * and vm_struct agree, whose vm_struct is complete (not VM_UNINITIALIZED) and whose pages
 * array is a live pool range of its page count; a vm_map_ram area (VMAP_RAM, no vm_struct).
 * A nested pages-array area goes with its parent. What is not kept is free afterwards: lazy
 * areas (as after a purge: the TLB generation moves), pooled areas, and whatever a dead or
 * aborted operation had half made.
 */

import { type VaStore, VaFlags } from '../kva/vmap-area.js';
import { invariantFailure } from '../debug.js';
import { FRAME_AREA, FRAME_FREE, FRAME_USER } from './page-alloc.js';
import type { RecoveryPart, RecoveryRun } from './recovery.js';
import { percpuPart } from './recovery-percpu.js';
import { rcuPart } from './recovery-rcu.js';
import { vmapBlockPart } from './recovery-vmap-block.js';
import type { VmContext } from './shared-state.js';
import { VmFlags, type VmStore } from './vm-struct.js';

/**
 * Every part, in order. Parts that keep areas of their own (vm_map_ram blocks, percpu chunks,
 * kvfree_rcu batches) add theirs after 'vmap areas', so they find run.keptVa decided and the
 * records reset; see RecoveryPart. The vmap blocks' and percpu chunks' parts may drop areas
 * from run.keptVa (half-made blocks, mappings and chunks) and unmap pages, so they come
 * before the frames and the page table, which count what stays mapped.
 */
export function recoveryParts(ctx: VmContext): RecoveryPart[] {
  void ctx;
  return [areasPart, vmapBlockPart, percpuPart, rcuPart, framesPart, pageTablePart];
}

function bump(run: RecoveryRun, kind: string, n = 1): void {
  if (n !== 0) run.counts[kind] = (run.counts[kind] ?? 0) + n;
}

/**
 * The kept areas' flags, by record id, saved by the areas part between its phases (one run at
 * a time per thread); by id, as a later part's collect may still drop areas from run.keptVa.
 */
let savedFlags = new Int32Array(0);

const areasPart: RecoveryPart = {
  name: 'vmap areas',

  collect(run) {
    const ctx = run.ctx;
    const s = ctx.s;
    const vms = ctx.vms;
    const cfg = ctx.config;
    const ps = ctx.pageSize;
    const pool = new Map(ctx.pool.ranges().map((r) => [r.start, r.end - r.start]));
    const seen = new Uint8Array(s.highWater);
    const cand: number[] = [];
    const droppedVm: number[] = [];
    for (const va of ctx.areas.design.busyIds()) {
      if (!(va >= 1 && va < s.highWater) || seen[va] !== 0) continue;
      seen[va] = 1;
      const start = s.start(va);
      const end = s.end(va);
      if (!(start >= cfg.spaceStart && end <= cfg.spaceEnd && start < end && start % ps === 0)) {
        bump(run, 'half-made areas');
        continue;
      }
      const vm = s.vm(va);
      if (vm === 0 && (s.flags(va) & VaFlags.VMAP_RAM) !== 0) {
        cand.push(va);
      } else if (vm > 0 && vm < vms.highWater && vms.va(vm) === va) {
        if (completeVm(ctx, vms, vm, start, end, pool, s.flags(va))) cand.push(va);
        else {
          droppedVm.push(vm);
          bump(run, 'half-made areas');
        }
      } else bump(run, 'half-made areas');
    }
    cand.sort((a, b) => s.start(a) - s.start(b));
    // Two busy records over one range cannot both be right: keep the first.
    const kept: number[] = [];
    let last = -1;
    for (const va of cand) {
      if (s.start(va) < last) {
        bump(run, 'overlapping areas');
        continue;
      }
      kept.push(va);
      last = s.end(va);
    }
    run.keptVa = dropNested(s, vms, kept, droppedVm, run);
    run.keptVm = [];
    for (const va of run.keptVa) if (s.vm(va) !== 0) run.keptVm.push(s.vm(va));
    savedFlags = new Int32Array(s.highWater);
    for (const va of run.keptVa) savedFlags[va] = s.flags(va);
  },

  reset(run) {
    const ctx = run.ctx;
    const s = ctx.s;
    const vms = ctx.vms;
    const usedVa = new Uint8Array(s.highWater);
    for (const va of run.keptVa) usedVa[va] = 1;
    bump(run, 'vmap_area records', s.rebuildFree(usedVa));
    const usedVm = new Uint8Array(vms.highWater);
    for (const vm of run.keptVm) usedVm[vm] = 1;
    bump(run, 'vm_structs', vms.rebuildFree(usedVm));
    // The page-array pools, with the kept areas' arrays only (a dead cpu may have died
    // holding a pool's lock, half-way through changing it).
    const keep: { slot: number; n: number }[] = [];
    for (const vm of run.keptVm)
      if (vms.nrPages(vm) > 0) keep.push({ slot: vms.pages(vm), n: vms.nrPages(vm) });
    // (The arrays in the cpus' free caches are no area's: they go back to the pools unsaid.)
    bump(run, 'pages arrays', ctx.pool.ranges().length - ctx.pool.cached().size - keep.length);
    ctx.pool.rebuild(keep);
    // The design's and the core's words: trees, lists, pools, vmap_lazy_nr. They were
    // declared first (src/mm/shared-state.ts), so they are the words below the core's last.
    const ctl = new Int32Array(ctx.handle.ctl);
    const core = ctx.parts.core;
    const gen = Atomics.load(ctl, core.tlbGen);
    bump(run, 'lazy pages purged', ctx.areas.lazyPages);
    for (let w = 0; w <= core.lazyNr; w++) Atomics.store(ctl, w, 0);
    Atomics.store(ctl, core.tlbGen, gen + 1); // lazy ranges become free: as a purge's flush
  },

  restore(run) {
    const ctx = run.ctx;
    const s = ctx.s;
    const d = ctx.areas.design;
    ctx.areas.init(ctx.config.spaceStart, ctx.config.spaceEnd);
    for (const va of run.keptVa) {
      const start = s.start(va);
      const end = s.end(va);
      const vm = s.vm(va);
      s.setFlags(va, savedFlags[va]!);
      if (
        !d.allocRange(ctx.cpu, va, end - start, ctx.pageSize, start, end) ||
        s.start(va) !== start
      )
        invariantFailure(`recovery could not put area #${va} back at ${start}`);
      s.setVm(va, vm);
    }
  },
};

/** Is vm_struct `vm` of busy area [start, end) complete, with its pages array intact? */
function completeVm(
  ctx: VmContext,
  vms: VmStore,
  vm: number,
  start: number,
  end: number,
  pool: Map<number, number>,
  vaFlags: number,
): boolean {
  const flags = vms.flags(vm);
  if ((flags & VmFlags.VM_UNINITIALIZED) !== 0) return false;
  if (vms.addr(vm) !== start || vms.size(vm) !== end - start) return false;
  const n = vms.nrPages(vm);
  const ps = ctx.pageSize;
  // A pcpu_get_vm_areas() area is VM_ALLOC with no pages array: its chunk maps its pages.
  if ((vaFlags & VaFlags.PCPU) !== 0) return n === 0;
  if ((flags & VmFlags.VM_ALLOC) !== 0 && n !== vms.areaSize(vm, ps) / ps) return false;
  if (n === 0) return true;
  const slot = vms.pages(vm);
  if (pool.get(slot) !== ctx.pool.lengthFor(n)) return false;
  const view = ctx.pool.view(slot);
  const at = ctx.pool.offset(slot);
  const frames = ctx.frames.nrFrames;
  for (let k = 0; k < n; k++) {
    const pfn = view[at + k]!;
    if (!(pfn >= 0 && pfn < frames)) return false;
  }
  return true;
}

/**
 * A vmalloc area whose pages array is a nested area is kept only with it, and the nested
 * area of a dropped one is dropped too.
 */
function dropNested(
  s: VaStore,
  vms: VmStore,
  kept: number[],
  droppedVm: number[],
  run: RecoveryRun,
): number[] {
  const keptVm = new Set<number>();
  for (const va of kept) if (s.vm(va) !== 0) keptVm.add(s.vm(va));
  const drop = new Set<number>();
  for (let pass = 0; pass < 3; pass++) {
    for (const vm of droppedVm) {
      const p = vms.pagesVm(vm);
      if (p !== 0 && keptVm.delete(p)) drop.add(p);
    }
    droppedVm = [];
    for (const vm of keptVm) {
      const p = vms.pagesVm(vm);
      if (p !== 0 && !keptVm.has(p)) {
        keptVm.delete(vm);
        drop.add(vm);
        droppedVm.push(vm);
      }
    }
  }
  bump(run, 'half-made areas', drop.size);
  return kept.filter((va) => s.vm(va) === 0 || keptVm.has(s.vm(va)));
}

const framesPart: RecoveryPart = {
  name: 'page frames',
  collect() {},
  reset() {},
  restore(run) {
    const ctx = run.ctx;
    const frames = ctx.frames;
    const old = frames.owners();
    const owner = new Int32Array(old.length);
    const maps = new Int32Array(old.length);
    forEachPage(run, (vm, pfn, owns) => {
      if (owns) owner[pfn] = FRAME_AREA;
      else maps[pfn]!++;
    });
    // Pages that kept areas without pages arrays map (the page table still holds them): a
    // percpu chunk's own frames, and the user's frames vm_map_ram maps (one map each).
    forEachKeptMapping(run, (flags, pfn) => {
      if ((flags & VaFlags.PCPU) !== 0) owner[pfn] = FRAME_AREA;
      else maps[pfn]!++;
    });
    for (let pfn = 0; pfn < old.length; pfn++) {
      if (owner[pfn] === FRAME_AREA) continue;
      const user = old[pfn]! >= FRAME_USER || maps[pfn]! > 0;
      owner[pfn] = user ? FRAME_USER + maps[pfn]! : FRAME_FREE;
    }
    bump(run, 'page frames', frames.rebuild(owner));
  },
};

/** Calls fn for every page of every kept vm_struct (`owns`: the area owns the frame). */
function forEachPage(run: RecoveryRun, fn: (vm: number, pfn: number, owns: boolean) => void): void {
  const ctx = run.ctx;
  const vms = ctx.vms;
  for (const vm of run.keptVm) {
    const n = vms.nrPages(vm);
    if (n === 0) continue;
    const flags = vms.flags(vm);
    const owns = (flags & VmFlags.VM_MAP) === 0 || (flags & VmFlags.VM_MAP_PUT_PAGES) !== 0;
    const slot = vms.pages(vm);
    const view = ctx.pool.view(slot);
    const at = ctx.pool.offset(slot);
    for (let k = 0; k < n; k++) fn(vm, view[at + k]!, owns);
  }
}

/**
 * Calls fn for every page the page table maps inside a kept area whose pages are its part's
 * business (expectedPfn KEEP: vm_map_ram areas and percpu chunks), with the area's flags.
 */
function forEachKeptMapping(run: RecoveryRun, fn: (vaFlags: number, pfn: number) => void): void {
  const ctx = run.ctx;
  const s = ctx.s;
  const starts = run.keptVa.map((va) => s.start(va));
  for (const r of ctx.pageTable.entries()) {
    for (let k = 0; k < r.pfns.length; k++) {
      const addr = r.addr + k * ctx.pageSize;
      const va = keptAreaAt(run, starts, addr);
      if (va !== 0 && expectedPfn(ctx, run, starts, addr) === KEEP) fn(s.flags(va), r.pfns[k]!);
    }
  }
}

const pageTablePart: RecoveryPart = {
  name: 'page table',
  collect() {},
  reset() {},
  restore(run) {
    const ctx = run.ctx;
    const s = ctx.s;
    const vms = ctx.vms;
    const ps = ctx.pageSize;
    const starts = run.keptVa.map((va) => s.start(va));
    const pt = ctx.pageTable;
    const stale: number[] = [];
    for (const r of pt.entries()) {
      for (let k = 0; k < r.pfns.length; k++) {
        const addr = r.addr + k * ps;
        const want = expectedPfn(ctx, run, starts, addr);
        if (want !== KEEP && r.pfns[k] !== want) stale.push(addr);
      }
    }
    for (const addr of stale) pt.unmap(addr, 1);
    bump(run, 'stale mappings', stale.length);
    for (const vm of run.keptVm) {
      const n = vms.nrPages(vm);
      if (n === 0) continue;
      const slot = vms.pages(vm);
      pt.map(vms.addr(vm), ctx.pool.view(slot), ctx.pool.offset(slot), n);
    }
  },
};

/** expectedPfn() of a page that a kept area without a vm_struct maps: its part's business. */
const KEEP = -2;

/** The kept area holding `addr` (starts: the kept areas' starts, ascending), or 0. */
function keptAreaAt(run: RecoveryRun, starts: number[], addr: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= addr) lo = mid;
    else hi = mid - 1;
  }
  if (starts.length === 0 || starts[lo]! > addr) return 0;
  const va = run.keptVa[lo]!;
  return addr < run.ctx.s.end(va) ? va : 0;
}

/**
 * The pfn a kept area maps at `addr`, -1 for none, or KEEP: a vm_map_ram area (no vm_struct)
 * or a percpu chunk's unit (populated page by page, no pages array), whose pages stay mapped.
 */
function expectedPfn(ctx: VmContext, run: RecoveryRun, starts: number[], addr: number): number {
  const va = keptAreaAt(run, starts, addr);
  if (va === 0) return -1;
  const vm = ctx.s.vm(va);
  if (vm === 0 || (ctx.s.flags(va) & VaFlags.PCPU) !== 0) return KEEP;
  const k = (addr - ctx.vms.addr(vm)) / ctx.pageSize;
  if (k >= ctx.vms.nrPages(vm)) return -1;
  return ctx.pfnAt(vm, k);
}
