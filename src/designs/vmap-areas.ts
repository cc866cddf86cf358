/**
 * Vmap-area management, the part every design shares: what alloc_vmap_area() and the lazy
 * free/purge machinery do around the design's own structures.
 *
 * Holds: VmapAreas: the purge-and-retry loop of an allocation, the purge notifiers,
 * vmap_lazy_nr and lazy_max_pages(), the drain, purge serialization by vmap_purge_lock, the
 * TLB generation, the record check. The design (src/designs/registry.ts) keeps the areas.
 * Invariant (outside a purge): vmap_lazy_nr equals the pages of the design's lazy areas; the
 * TLB generation changes before any purged range can be handed out again.
 * Callers: the vmalloc layer (src/mm/); the designs, through the VmapCore interface.
 *
 * Kernel: alloc_vmap_area(), free_vmap_area_noflush() (its accounting and drain trigger),
 * drain_vmap_area_work(), reclaim_and_purge_vmap_areas() (purge_vmap_area_lazy() before
 * 6.9), register_vmap_purge_notifier(), lazy_max_pages().
 * Differs from kernel: the drain runs in the freeing thread when vmap_lazy_nr exceeds
 * lazy_max_pages() (the kernel schedules a work item); a worker that finds another purging
 * leaves the drain to it. "Flushing the TLB" bumps a shared generation that empties every
 * worker's translation cache, and is counted. The notifier chain is per worker (JavaScript
 * functions cannot be shared).
 *
 * Lock order: vmap_purge_lock, then at most one of a design's tree locks at a time (the kernel
 * never nests them); under any of them a record cache's lock (vmap_area_cachep) may be taken
 * last, to refill or drain a per-CPU cache.
 */

import { checkStore, checkTiling } from '../kva/check.js';
import type { VaStore } from '../kva/vmap-area.js';
import type { ControlLayout } from '../shared/control-layout.js';
import { toKernelAddress } from '../shared/layout.js';
import { Lock, type LockTable } from '../shared/lock.js';
import type { RateLimitedLog } from '../shared/logger.js';
import { LINE_LAZY_NR, simRecorder } from '../shared/sim-hook.js';
import { invariantFailure } from '../debug.js';
import {
  PurgeMode,
  type DesignCheck,
  type GracePeriods,
  type VmapAreasConfig,
  type VmapCore,
  type VmapDesign,
} from './design.js';
import { VaStat, bump } from './stat.js';
import {
  S_ALLOC_BUSY,
  S_ALLOC_RECORD,
  S_LAZY,
  S_LAZY_COUNTED,
  stepHook,
} from '../shared/step-hook.js';

/** A purge notifier: releases what it can and returns how many pages (or areas) it freed. */
export type PurgeNotifier = () => number;

/** Offsets of the core's words and lock. */
export interface CoreDecl {
  /** Bumped by every purge before its ranges can be reused (a read-mostly line). */
  tlbGen: number;
  /** vmap_lazy_nr: pages (guard pages included) lazily freed, not yet purged (atomic, every vfree). */
  lazyNr: number;
  purgeMutex: number;
}

export class VmapAreas implements VmapCore {
  readonly s: VaStore;
  readonly ctl: Int32Array;
  readonly stat: Float64Array;
  readonly cfg: VmapAreasConfig;
  readonly log: RateLimitedLog;
  /** vmap_purge_lock (a mutex in the kernel) */
  readonly purgeMutex: Lock;
  readonly design: VmapDesign;
  private readonly decl: CoreDecl;
  private readonly notifiers: PurgeNotifier[] = [];
  /**
   * purge_fragmented_blocks_allcpus() of the vm_map_ram blocks (src/mm/vmap-block.ts, a layer
   * above), run by a reclaim under vmap_purge_lock; null until the vmalloc layer sets it.
   */
  fragmentedPurge: (() => void) | null = null;
  /** The vmalloc layer's grace periods (src/mm/rcu.ts), set by that layer; null until then. */
  gracePeriods: GracePeriods | null = null;

  static declare(layout: ControlLayout): CoreDecl {
    return {
      tlbGen: layout.lines(1),
      lazyNr: layout.lines(1),
      purgeMutex: layout.lock('vmap_purge_lock'),
    };
  }

  constructor(
    s: VaStore,
    ctl: Int32Array,
    stat: Float64Array,
    cfg: VmapAreasConfig,
    log: RateLimitedLog,
    decl: CoreDecl,
    table: LockTable,
    makeDesign: (core: VmapCore) => VmapDesign,
  ) {
    this.s = s;
    this.ctl = ctl;
    this.stat = stat;
    this.cfg = cfg;
    this.log = log;
    this.decl = decl;
    this.purgeMutex = new Lock(table, decl.purgeMutex, 'vmap_purge_lock');
    this.design = makeDesign(this);
  }

  /** Sets up an empty state whose free space is [start, end). */
  init(start: number, end: number): void {
    this.design.init(start, end);
  }

  take(lock: Lock, cpu: number): void {
    lock.lock(cpu);
    this.s.refreshViews();
  }

  /** vmap_lazy_nr */
  get lazyPages(): number {
    return Atomics.load(this.ctl, this.decl.lazyNr);
  }

  subLazy(pages: number): void {
    Atomics.sub(this.ctl, this.decl.lazyNr, pages);
  }

  /** The TLB generation: changes whenever a purge may hand a freed range out again. */
  get tlbGeneration(): number {
    return Atomics.load(this.ctl, this.decl.tlbGen);
  }

  flushTlbAll(): void {
    Atomics.add(this.ctl, this.decl.tlbGen, 1);
    bump(this.stat, VaStat.TLB_FLUSHES);
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
   * Reserves `size` bytes in the window [vstart, vend) and makes them busy: the new area's
   * record id, or 0 when no space can be found even after purging and asking the notifiers
   * (a warning has then been logged). Kernel: alloc_vmap_area().
   */
  alloc(
    cpu: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
    vaFlags: number,
  ): number {
    const d = this.design;
    const hit = d.poolAlloc(cpu, size, align, vstart, vend, vaFlags);
    if (hit !== 0) return hit;
    const s = this.s;
    const va = s.alloc();
    if (va === 0) return 0;
    if (stepHook !== null) stepHook(S_ALLOC_RECORD);
    s.setFlags(va, vaFlags | d.allocTag);
    s.setVm(va, 0);
    let purged = false;
    while (!d.allocRange(cpu, va, size, align, vstart, vend)) {
      // No space: purge once and retry; then let the notifiers free what they hold, and
      // retry for as long as they report progress; then give up.
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
    if (stepHook !== null) stepHook(S_ALLOC_BUSY);
    return va;
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
    const k = (a: number): string => '0x' + toKernelAddress(a).toString(16);
    this.log.warn(
      'alloc_vmap_area',
      this.design.modernWarning
        ? `vmalloc_node_range for size ${size} failed: Address range restricted to ${k(vstart)} - ${k(vend)}`
        : `vmap allocation for size ${size} failed: use vmalloc=<size> to increase size`,
    );
  }

  /** The busy area containing `addr`, or 0. Kernel: find_vmap_area(). */
  find(cpu: number, addr: number): number {
    return this.design.find(cpu, addr);
  }

  /** See VmapDesign.findUnlink. */
  findUnlink(cpu: number, addr: number, requireVm: boolean): number {
    return this.design.findUnlink(cpu, addr, requireVm);
  }

  /**
   * Lazy free: the unlinked area's range becomes neither busy nor free until a purge; its
   * pages (guard page included) count in vmap_lazy_nr, and a drain runs when that exceeds
   * lazy_max_pages(). Kernel: free_vmap_area_noflush().
   */
  freeLazy(cpu: number, va: number): void {
    const pages = this.s.size(va) / this.cfg.pageSize;
    const nrLazy = Atomics.add(this.ctl, this.decl.lazyNr, pages) + pages;
    if (stepHook !== null) stepHook(S_LAZY_COUNTED);
    if (simRecorder !== null) simRecorder.touch(LINE_LAZY_NR); // a line every CPU writes
    this.design.insertLazy(cpu, va);
    if (stepHook !== null) stepHook(S_LAZY);
    if (nrLazy > this.cfg.lazyMaxPages) this.drain(cpu);
  }

  /** Puts an unlinked area straight back (error paths only). Kernel: free_vmap_area(). */
  freeNow(cpu: number, va: number): void {
    this.design.freeNow(cpu, va);
  }

  /**
   * Purges when vmap_lazy_nr exceeds lazy_max_pages(), unless another CPU is purging (it will
   * see the backlog). Kernel: drain_vmap_area_work().
   */
  drain(cpu: number): void {
    if (!this.purgeMutex.tryLock(cpu)) return;
    try {
      bump(this.stat, VaStat.DRAINS);
      do {
        this.design.purgeLocked(cpu, PurgeMode.DRAIN);
      } while (this.design.drainRepeats && this.lazyPages > this.cfg.lazyMaxPages);
    } finally {
      this.purgeMutex.unlock();
    }
  }

  /** Purges every lazy range now, pools drained. Kernel: reclaim_and_purge_vmap_areas(). */
  reclaimAndPurge(cpu: number): boolean {
    this.purgeMutex.lock(cpu);
    try {
      // The vmap blocks with no live mapping go first, so their areas are purged now too.
      this.fragmentedPurge?.();
      return this.design.purgeLocked(cpu, PurgeMode.RECLAIM);
    } finally {
      this.purgeMutex.unlock();
    }
  }

  /**
   * Checks the design's structures, vmap_lazy_nr against its lazy areas, the tiling of the
   * managed space when the design records free space, and that every record is accounted for.
   */
  check(start: number, end: number): DesignCheck {
    const s = this.s;
    const c = this.design.check(start, end);
    let lazyPages = 0;
    for (const x of c.lazy) lazyPages += s.size(x) / this.cfg.pageSize;
    if (lazyPages !== this.lazyPages)
      invariantFailure(`vmap_lazy_nr is ${this.lazyPages}, the lazy areas hold ${lazyPages} pages`);
    if (c.tiling !== null) checkTiling(s, c.tiling, start, end, 'address space');
    const all = [...c.own, ...c.free, ...c.busy, ...c.lazy];
    for (const o of c.other) all.push(...o.ids);
    // A design may list an area under two kinds (lazy areas that stay in the busy tree).
    checkStore(s, [...new Set(all)], 'vmap_area records');
    return c;
  }
}
