/**
 * Free space as the 5.2+ kernels keep it: one augmented free tree + address-sorted list under
 * free_vmap_area_lock, with a per-CPU spare record for the no-edge split; and the busy/lazy
 * list helpers the designs built on it share.
 *
 * Holds: FreeSpace (the free tree's words, lock and operations) and the helpers that insert
 * into, find in, unlink from and detach a tree + list under its lock.
 * Invariant: the free blocks are disjoint and fully coalesced; a cpu's preload slot holds 0 or
 * one record that belongs to no tree.
 * Callers: the 'global' and 'nodes' designs (a design without a free tree does not use it).
 *
 * Kernel: free_vmap_area_root / free_vmap_area_list, preload_this_cpu_lock(),
 * __alloc_vmap_area(), free_vmap_area(), merge_or_add_vmap_area_augment(), reclaim_list_global().
 */

import { invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import { findVmapArea, insertVmapArea, unlinkVmapArea } from '../kva/busy-tree.js';
import { checkCoalesced, checkRbList } from '../kva/check.js';
import { allocFromFreeTree, mergeOrAddVmapArea, vaClip } from '../kva/free-tree.js';
import { rbListCount, rbListFirst, rbListInit, rbListNext } from '../kva/rb-list.js';
import { VaFlags, type VaStore } from '../kva/vmap-area.js';
import { LINE_WORDS, type ControlLayout } from '../shared/control-layout.js';
import { Lock, type LockTable } from '../shared/lock.js';
import type { PcpuSeam, VmapCore } from './design.js';
import { S_BUSY_LINKED, S_PURGE_MERGING, S_UNLINK_LOCKED, stepHook } from '../shared/step-hook.js';

/** Offsets of the free space's words and lock. */
export interface FreeSpaceDecl {
  /** free head, scratch head (read-mostly line) */
  heads: number;
  /** + cpu * LINE_WORDS: that cpu's preload slot */
  preload: number;
  lock: number;
}

const W_FREE_HEAD = 0;
const W_SCRATCH_HEAD = 1;

export class FreeSpace {
  private readonly core: VmapCore;
  private readonly s: VaStore;
  private readonly ctl: Int32Array;
  private readonly decl: FreeSpaceDecl;
  /** free_vmap_area_lock */
  readonly lock: Lock;
  /** This thread's request window [vstart, vend) for allocFromFreeTree (no boxed doubles). */
  private readonly win = new Float64Array(2);

  static declare(layout: ControlLayout, nrCpus: number): FreeSpaceDecl {
    return {
      heads: layout.lines(2),
      preload: layout.lines(nrCpus * LINE_WORDS),
      lock: layout.lock('free_vmap_area_lock'),
    };
  }

  constructor(core: VmapCore, decl: FreeSpaceDecl, table: LockTable) {
    this.core = core;
    this.s = core.s;
    this.ctl = core.ctl;
    this.decl = decl;
    this.lock = new Lock(table, decl.lock, 'free_vmap_area_lock');
  }

  /** Creates the heads and the single free block [start, end). */
  init(start: number, end: number): void {
    const s = this.s;
    this.ctl[this.decl.heads + W_FREE_HEAD] = newHead(s);
    this.ctl[this.decl.heads + W_SCRATCH_HEAD] = newHead(s);
    const va = s.alloc();
    s.setRange(va, start, end);
    mergeOrAddVmapArea(s, this.head, va, true);
  }

  get head(): number {
    return this.ctl[this.decl.heads + W_FREE_HEAD]!;
  }

  /** A spare head for temporary lists (the nodes design's decay); empty between uses. */
  get scratchHead(): number {
    return this.ctl[this.decl.heads + W_SCRATCH_HEAD]!;
  }

  /**
   * Clips [addr, addr + size) for record `va` out of the lowest free block that fits the
   * window: true, or false when none does (nothing changed).
   */
  alloc(
    cpu: number,
    va: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
  ): boolean {
    const slot = this.decl.preload + cpu * LINE_WORDS;
    // preload_this_cpu_lock(): a spare record for a no-edge split, before the lock is taken.
    if (this.ctl[slot] === 0) this.ctl[slot] = this.s.alloc();
    const win = this.win;
    win[0] = vstart;
    win[1] = vend;
    this.core.take(this.lock, cpu);
    const err = allocFromFreeTree(
      this.s,
      this.head,
      va,
      size,
      align,
      win,
      this.core.cfg.pageSize,
      this.ctl,
      slot,
    );
    this.lock.unlock();
    return err === 0;
  }

  /**
   * pcpu_get_vm_areas()'s access to this free tree, with `insertBusy` putting a carved area
   * where the design keeps busy areas.
   */
  pcpuSeam(insertBusy: (cpu: number, va: number) => void): PcpuSeam {
    const ctl = this.ctl;
    const s = this.s;
    const slotOf = (cpu: number): number => this.decl.preload + cpu * LINE_WORDS;
    const heads = this.decl.heads;
    return {
      lock: this.lock,
      get head(): number {
        return ctl[heads + W_FREE_HEAD]!;
      },
      preload: (cpu) => {
        const slot = slotOf(cpu);
        if (ctl[slot] === 0) ctl[slot] = s.alloc();
      },
      clipLocked: (cpu, fva, nva) => vaClip(s, this.head, fva, nva, ctl, slotOf(cpu)),
      mergeLocked: (va) => mergeOrAddVmapArea(s, this.head, va, true) !== 0,
      insertBusy,
    };
  }

  /** Puts an unlinked area straight back. Kernel: free_vmap_area(). */
  freeNow(cpu: number, va: number): void {
    this.core.take(this.lock, cpu);
    const ok = mergeOrAddVmapArea(this.s, this.head, va, true);
    this.lock.unlock();
    if (ok === 0) invariantFailure(`vmalloc bug: freed area #${va} overlaps a free block`);
  }

  /**
   * Merges records into the free tree under its lock, in the order given. With `resched`, the
   * lock is let go briefly every 32 records while the backlog is below twice
   * lazy_max_pages() (5.x's cond_resched_lock()), so allocations on other CPUs are not held
   * off by a long purge. Kernel: the merge loop of __purge_vmap_area_lazy() (<= 6.8),
   * reclaim_list_global() (6.9+).
   */
  mergeAll(cpu: number, vas: readonly number[], resched: boolean): void {
    const s = this.s;
    const limit = this.core.cfg.lazyMaxPages * 2;
    this.core.take(this.lock, cpu);
    for (let k = 0; k < vas.length; k++) {
      const va = vas[k]!;
      if (stepHook !== null) stepHook(S_PURGE_MERGING);
      if (mergeOrAddVmapArea(s, this.head, va, true) === 0) {
        this.lock.unlock();
        invariantFailure(
          `vmalloc bug: range [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a free block`,
        );
      }
      if (resched && (k & 31) === 31 && this.core.lazyPages < limit) {
        this.lock.unlock();
        this.core.take(this.lock, cpu);
      }
    }
    this.lock.unlock();
  }

  get count(): number {
    return rbListCount(this.s, this.head);
  }

  /** Checks the free tree; returns its blocks, and adds heads and spares to `own`. */
  check(start: number, end: number, own: number[]): number[] {
    const s = this.s;
    const free = checkRbList(s, this.head, true, 'free tree', start, end);
    checkCoalesced(s, free, 'free tree');
    own.push(this.head, this.scratchHead);
    if (rbListCount(s, this.scratchHead) !== 0) invariantFailure('the scratch list is not empty');
    for (let cpu = 0; cpu < this.core.cfg.nrCpus; cpu++) {
      const p = this.ctl[this.decl.preload + cpu * LINE_WORDS]!;
      if (p !== 0) own.push(p);
    }
    return free;
  }
}

// ---------------------------------------------------------------- tree + list helpers

/** A new empty tree + list head. */
export function newHead(s: VaStore): number {
  const h = s.alloc();
  rbListInit(s, h);
  return h;
}

/** Inserts busy area `va` into the tree at head `h` under `lock`. Kernel: insert_vmap_area(). */
export function insertBusy(core: VmapCore, lock: Lock, h: number, cpu: number, va: number): void {
  core.take(lock, cpu);
  const ok = insertVmapArea(core.s, h, va);
  if (stepHook !== null) stepHook(S_BUSY_LINKED);
  lock.unlock();
  if (!ok) {
    const s = core.s;
    invariantFailure(
      `vmalloc bug: allocated [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a busy area`,
    );
  }
}

/** The area of tree `h` containing `addr`, or 0, under `lock`. */
export function findIn(core: VmapCore, lock: Lock, h: number, cpu: number, addr: number): number {
  core.take(lock, cpu);
  const va = findVmapArea(core.s, h, addr);
  lock.unlock();
  return va;
}

/**
 * In tree `h` under `lock`: unlinks the area starting exactly at `addr` (with a vm_struct
 * when `requireVm`) and returns it; 0 when no area contains addr; -id when area `id` contains
 * it but does not qualify (left in place).
 */
export function findUnlinkIn(
  core: VmapCore,
  lock: Lock,
  h: number,
  cpu: number,
  addr: number,
  requireVm: boolean,
): number {
  const s = core.s;
  core.take(lock, cpu);
  const va = findVmapArea(s, h, addr);
  // requireVm (vfree, vunmap, remove_vm_area): a pcpu_get_vm_areas() area does not qualify,
  // it is pcpu_free_vm_areas()'s.
  const ok =
    va !== 0 &&
    s.start(va) === addr &&
    (!requireVm || (s.vm(va) !== 0 && (s.flags(va) & VaFlags.PCPU) === 0));
  if (ok) {
    unlinkVmapArea(s, h, va);
    if (stepHook !== null) stepHook(S_UNLINK_LOCKED);
  }
  lock.unlock();
  return ok || va === 0 ? va : -va;
}

/**
 * Empties the tree + list at `h` under `lock` and returns its first record: the records keep
 * their list links, a chain ending at `h` that only the caller walks now (0: it was empty).
 * Kernel: list_replace_init() of a purge list.
 */
export function detachList(core: VmapCore, lock: Lock, h: number, cpu: number): number {
  core.take(lock, cpu);
  const first = rbListFirst(core.s, h);
  if (first !== 0) rbListInit(core.s, h);
  lock.unlock();
  return first;
}

/** The records of list `h` in order, appended to `out`. */
export function listIds(s: VaStore, h: number, out: number[] = []): number[] {
  for (let x = rbListFirst(s, h); x !== 0; x = rbListNext(s, h, x)) out.push(x);
  return out;
}
