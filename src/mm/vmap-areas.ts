/**
 * Vmap-area management for the 'global' design (kernels 5.2 to 6.8): one free tree under
 * free_vmap_area_lock, one busy tree under vmap_area_lock, one lazy ("purge") tree under
 * purge_vmap_area_lock, purges serialized by vmap_purge_lock.
 *
 * Holds: alloc_vmap_area() with its retry loop (purge once, then the purge notifiers, then a
 * rate-limited warning and failure), the busy-tree lookups, lazy free (vmap_lazy_nr and the
 * lazily freed ranges, merged as they arrive), and the purge that returns them to the free tree.
 * Invariant (outside a purge): free blocks, busy areas and lazy ranges tile the managed space;
 * vmap_lazy_nr equals the pages in the lazy tree.
 * Callers: the vmalloc layer (src/mm/vmalloc.ts).
 *
 * Kernel: alloc_vmap_area(), find_vmap_area(), find_unlink_vmap_area(), free_vmap_area(),
 * free_vmap_area_noflush(), __purge_vmap_area_lazy(), drain_vmap_area_work(),
 * reclaim_and_purge_vmap_areas() (purge_vmap_area_lazy() before 6.9), lazy_max_pages().
 * Differs from kernel: the drain runs in the freeing thread when vmap_lazy_nr exceeds
 * lazy_max_pages() (the kernel schedules a work item); a worker that finds another purging
 * leaves the drain to it. "Flushing the TLB" is counted, there being no TLB.
 *
 * Lock order: vmap_purge_lock, then at most one of the spinlocks at a time (the kernel never
 * nests free_vmap_area_lock, vmap_area_lock and purge_vmap_area_lock).
 */

import { invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import { findVmapArea, insertVmapArea, unlinkVmapArea } from '../kva/busy-tree.js';
import { checkCoalesced, checkRbList } from '../kva/check.js';
import { allocFromFreeTree, mergeOrAddVmapArea } from '../kva/free-tree.js';
import { rbListCount, rbListFirst, rbListInit, rbListNext } from '../kva/rb-list.js';
import type { VaStore } from '../kva/vmap-area.js';
import type { Lock } from '../shared/lock.js';
import type { RateLimitedLog } from './logger.js';

/** Words of the control block (Int32). */
const C_FREE_HEAD = 0;
const C_BUSY_HEAD = 1;
const C_LAZY_HEAD = 2;
const C_LAZY_NR = 3; // vmap_lazy_nr: pages (guard pages included) lazily freed, not yet purged
const C_PRELOAD = 8; // + cpu: the per-CPU spare record for a no-edge split
export const VA_CTL_WORDS = (nrCpus: number): number => C_PRELOAD + nrCpus;

/** Statistics (Float64 words). */
export const VaStat = {
  PURGES: 0,
  PURGED_AREAS: 1,
  TLB_FLUSHES: 2,
  ALLOC_FAILURES: 3,
  ALLOC_RETRIES: 4,
  NOTIFIER_CALLS: 5,
  DRAINS: 6,
} as const;
export const VA_STAT_WORDS = 8;

export interface VmapAreasConfig {
  pageSize: number;
  nrCpus: number;
  /** lazy_max_pages(): fls(nrCpus) * 32 MiB / pageSize. */
  lazyMaxPages: number;
  /** Failure message style: the 6.9+ text or the older one. */
  modernWarning: boolean;
}

export interface VmapAreasLocks {
  freeLock: Lock; // free_vmap_area_lock
  busyLock: Lock; // vmap_area_lock
  lazyLock: Lock; // purge_vmap_area_lock
  purgeMutex: Lock; // vmap_purge_lock
}

function bump(stat: Float64Array, k: number): void {
  stat[k] = stat[k]! + 1;
}

/** A purge notifier: releases what it can and returns how many pages (or areas) it freed. */
export type PurgeNotifier = () => number;

export class VmapAreas {
  readonly s: VaStore;
  readonly ctl: Int32Array;
  readonly stat: Float64Array;
  private readonly cfg: VmapAreasConfig;
  private readonly locks: VmapAreasLocks;
  private readonly log: RateLimitedLog;
  private readonly notifiers: PurgeNotifier[] = [];

  constructor(
    s: VaStore,
    ctl: Int32Array,
    stat: Float64Array,
    cfg: VmapAreasConfig,
    locks: VmapAreasLocks,
    log: RateLimitedLog,
  ) {
    this.s = s;
    this.ctl = ctl;
    this.stat = stat;
    this.cfg = cfg;
    this.locks = locks;
    this.log = log;
  }

  /** Sets up an empty state whose free space is [start, end). Kernel: vmap_init_free_space(). */
  init(start: number, end: number): void {
    const s = this.s;
    for (const slot of [C_FREE_HEAD, C_BUSY_HEAD, C_LAZY_HEAD]) {
      const h = s.alloc();
      rbListInit(s, h);
      this.ctl[slot] = h;
    }
    const va = s.alloc();
    s.setRange(va, start, end);
    mergeOrAddVmapArea(s, this.ctl[C_FREE_HEAD]!, va, true);
  }

  get freeHead(): number {
    return this.ctl[C_FREE_HEAD]!;
  }
  get busyHead(): number {
    return this.ctl[C_BUSY_HEAD]!;
  }
  get lazyHead(): number {
    return this.ctl[C_LAZY_HEAD]!;
  }

  /** vmap_lazy_nr */
  get lazyPages(): number {
    return Atomics.load(this.ctl, C_LAZY_NR);
  }

  registerNotifier(fn: PurgeNotifier): void {
    this.notifiers.push(fn);
  }

  unregisterNotifier(fn: PurgeNotifier): boolean {
    const at = this.notifiers.indexOf(fn);
    if (at >= 0) this.notifiers.splice(at, 1);
    return at >= 0;
  }

  /**
   * Reserves [addr, addr + size) in the window [vstart, vend) and makes it busy: the new
   * area's record id, or 0 when no space can be found even after purging and asking the
   * notifiers (a warning has then been logged). Kernel: alloc_vmap_area().
   */
  alloc(
    cpu: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
    vaFlags: number,
  ): number {
    const s = this.s;
    const va = s.alloc();
    if (va === 0) return 0;
    let purged = false;
    for (;;) {
      this.preload(cpu);
      this.locks.freeLock.lock(cpu);
      const err = allocFromFreeTree(
        s,
        this.ctl[C_FREE_HEAD]!,
        va,
        size,
        align,
        vstart,
        vend,
        this.cfg.pageSize,
        this.ctl,
        C_PRELOAD + cpu,
      );
      this.locks.freeLock.unlock();
      if (err === 0) break;
      // Overflow: purge once and retry; then let the notifiers free what they hold, and retry
      // for as long as they report progress; then give up.
      bump(this.stat, VaStat.ALLOC_RETRIES);
      if (!purged) {
        this.reclaimAndPurge(cpu);
        purged = true;
        continue;
      }
      if (this.callNotifiers() > 0) {
        purged = false;
        continue;
      }
      bump(this.stat, VaStat.ALLOC_FAILURES);
      this.warnAllocFailed(size, vstart, vend);
      s.free(va);
      return 0;
    }
    s.setFlags(va, vaFlags);
    s.setVm(va, 0);
    this.locks.busyLock.lock(cpu);
    const ok = insertVmapArea(s, this.ctl[C_BUSY_HEAD]!, va);
    this.locks.busyLock.unlock();
    if (!ok)
      invariantFailure(
        `vmalloc bug: allocated [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a busy area`,
      );
    return va;
  }

  /**
   * Makes sure this CPU has a spare record for a no-edge split before the free tree's lock is
   * taken. Kernel: preload_this_cpu_lock().
   */
  private preload(cpu: number): void {
    if (this.ctl[C_PRELOAD + cpu] === 0) this.ctl[C_PRELOAD + cpu] = this.s.alloc();
  }

  private callNotifiers(): number {
    let freed = 0;
    for (const fn of [...this.notifiers]) {
      bump(this.stat, VaStat.NOTIFIER_CALLS);
      const n = fn();
      if (typeof n === 'number' && n > 0) freed += n;
    }
    return freed;
  }

  private warnAllocFailed(size: number, vstart: number, vend: number): void {
    const k = (a: number) => '0x' + (0xffff000000000000n + BigInt(a)).toString(16);
    this.log.warn(
      'alloc_vmap_area',
      this.cfg.modernWarning
        ? `vmalloc_node_range for size ${size} failed: Address range restricted to ${k(vstart)} - ${k(vend)}`
        : `vmap allocation for size ${size} failed: use vmalloc=<size> to increase size`,
    );
  }

  /** The busy area containing `addr`, or 0. Kernel: find_vmap_area(). */
  find(cpu: number, addr: number): number {
    this.locks.busyLock.lock(cpu);
    const va = findVmapArea(this.s, this.ctl[C_BUSY_HEAD]!, addr);
    this.locks.busyLock.unlock();
    return va;
  }

  /**
   * Unlinks and returns the busy area that starts exactly at `addr` (and, with `requireVm`,
   * has a vm_struct). Returns 0 when no busy area contains addr, or -id when area `id`
   * contains it but does not qualify (nothing changed then).
   * Kernel: find_unlink_vmap_area() (which unlinks by containment).
   */
  findUnlink(cpu: number, addr: number, requireVm: boolean): number {
    const s = this.s;
    const h = this.ctl[C_BUSY_HEAD]!;
    this.locks.busyLock.lock(cpu);
    const va = findVmapArea(s, h, addr);
    const ok = va !== 0 && s.start(va) === addr && (!requireVm || s.vm(va) !== 0);
    if (ok) unlinkVmapArea(s, h, va);
    this.locks.busyLock.unlock();
    return ok || va === 0 ? va : -va;
  }

  /**
   * Puts an unlinked area straight back into the free tree (error paths only).
   * Kernel: free_vmap_area().
   */
  freeNow(cpu: number, va: number): void {
    this.locks.freeLock.lock(cpu);
    const ok = mergeOrAddVmapArea(this.s, this.ctl[C_FREE_HEAD]!, va, true);
    this.locks.freeLock.unlock();
    if (ok === 0) invariantFailure(`vmalloc bug: freed area #${va} overlaps a free block`);
  }

  /**
   * Lazy free: the unlinked area's range becomes neither busy nor free until a purge; its pages
   * (guard page included) are added to vmap_lazy_nr, and a drain runs when that exceeds
   * lazy_max_pages(). Kernel: free_vmap_area_noflush().
   */
  freeLazy(cpu: number, va: number): void {
    const s = this.s;
    const nrLazy =
      Atomics.add(this.ctl, C_LAZY_NR, s.size(va) / this.cfg.pageSize) +
      s.size(va) / this.cfg.pageSize;
    this.locks.lazyLock.lock(cpu);
    // Before 6.9 the lazy ("purge") tree merges neighbouring ranges as they arrive.
    const ok = mergeOrAddVmapArea(s, this.ctl[C_LAZY_HEAD]!, va, false);
    this.locks.lazyLock.unlock();
    if (ok === 0) invariantFailure(`vmalloc bug: lazily freed area #${va} overlaps a lazy range`);
    if (nrLazy > this.cfg.lazyMaxPages) this.drain(cpu);
  }

  /**
   * Purges while the backlog exceeds lazy_max_pages(), unless another CPU is purging (it will
   * see the backlog). Kernel: drain_vmap_area_work().
   */
  drain(cpu: number): void {
    if (!this.locks.purgeMutex.tryLock(cpu)) return;
    try {
      bump(this.stat, VaStat.DRAINS);
      do {
        this.purgeLazyLocked(cpu);
      } while (this.lazyPages > this.cfg.lazyMaxPages);
    } finally {
      this.locks.purgeMutex.unlock();
    }
  }

  /** Purges every lazy range now. Kernel: reclaim_and_purge_vmap_areas(). */
  reclaimAndPurge(cpu: number): boolean {
    this.locks.purgeMutex.lock(cpu);
    try {
      return this.purgeLazyLocked(cpu);
    } finally {
      this.locks.purgeMutex.unlock();
    }
  }

  /**
   * Returns every lazy range to the free tree; true when there was something to purge.
   * The caller holds vmap_purge_lock. Kernel: __purge_vmap_area_lazy().
   *
   * The whole lazy list is detached under its lock, then merged into the free tree under the
   * free tree's lock, which is let go briefly every 32 ranges while the backlog is below twice
   * lazy_max_pages() (the kernel's cond_resched_lock() "priority threshold"), so that
   * allocations on other CPUs are not held off by a long purge.
   */
  private purgeLazyLocked(cpu: number): boolean {
    const s = this.s;
    const lh = this.ctl[C_LAZY_HEAD]!;
    this.locks.lazyLock.lock(cpu);
    const first = rbListFirst(s, lh);
    if (first !== 0) rbListInit(s, lh); // the records keep their list links: a detached chain
    this.locks.lazyLock.unlock();
    if (first === 0) return false;
    bump(this.stat, VaStat.PURGES);
    bump(this.stat, VaStat.TLB_FLUSHES); // one flush_tlb_kernel_range() over [first.start, last.end)
    const resched = this.cfg.lazyMaxPages * 2;
    const freeLock = this.locks.freeLock;
    freeLock.lock(cpu);
    let n = 0;
    for (let va = first; va !== lh;) {
      const next = s.next(va);
      const pages = s.size(va) / this.cfg.pageSize;
      if (mergeOrAddVmapArea(s, this.ctl[C_FREE_HEAD]!, va, true) === 0) {
        invariantFailure(`vmalloc bug: purged range #${va} overlaps a free block`);
      }
      Atomics.sub(this.ctl, C_LAZY_NR, pages);
      bump(this.stat, VaStat.PURGED_AREAS);
      if (++n % 32 === 0 && this.lazyPages < resched) {
        freeLock.unlock();
        freeLock.lock(cpu);
      }
      va = next;
    }
    freeLock.unlock();
    return true;
  }

  /** Busy areas in address order (caller holds the busy lock or is alone). */
  busyIds(): number[] {
    return this.listIds(this.ctl[C_BUSY_HEAD]!);
  }

  /** Lazy ranges in address order. */
  lazyIds(): number[] {
    return this.listIds(this.ctl[C_LAZY_HEAD]!);
  }

  get busyCount(): number {
    return rbListCount(this.s, this.ctl[C_BUSY_HEAD]!);
  }

  get freeCount(): number {
    return rbListCount(this.s, this.ctl[C_FREE_HEAD]!);
  }

  get lazyCount(): number {
    return rbListCount(this.s, this.ctl[C_LAZY_HEAD]!);
  }

  private listIds(h: number): number[] {
    const out: number[] = [];
    for (let x = rbListFirst(this.s, h); x !== 0; x = rbListNext(this.s, h, x)) out.push(x);
    return out;
  }

  /**
   * Checks the three trees and returns their records (free, busy, lazy) plus the other records
   * this manager holds (heads, preloads), for the caller's whole-state checks.
   */
  checkTrees(
    start: number,
    end: number,
  ): { free: number[]; busy: number[]; lazy: number[]; own: number[] } {
    const s = this.s;
    const free = checkRbList(s, this.freeHead, true, 'free tree', start, end);
    checkCoalesced(s, free, 'free tree');
    const busy = checkRbList(s, this.busyHead, false, 'busy tree', start, end);
    const lazy = checkRbList(s, this.lazyHead, false, 'lazy tree', start, end);
    checkCoalesced(s, lazy, 'lazy tree');
    let lazyPages = 0;
    for (const x of lazy) lazyPages += s.size(x) / this.cfg.pageSize;
    if (lazyPages !== this.lazyPages)
      invariantFailure(`vmap_lazy_nr is ${this.lazyPages}, the lazy tree holds ${lazyPages} pages`);
    const own = [this.freeHead, this.busyHead, this.lazyHead];
    for (let cpu = 0; cpu < this.cfg.nrCpus; cpu++) {
      const p = this.ctl[C_PRELOAD + cpu]!;
      if (p !== 0) own.push(p);
    }
    return { free, busy, lazy, own };
  }
}
