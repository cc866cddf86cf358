/**
 * Vmap-area management: what alloc_vmap_area() and the lazy free/purge machinery do, for the
 * design-independent part (the free tree, the retry loop, the notifiers, vmap_lazy_nr, purge
 * serialization) and for the 'global' design (kernels 5.2 to 6.8).
 *
 * Holds: VmapAreaManager (the base the designs share) and GlobalVmapAreas: one free tree under
 * free_vmap_area_lock, one busy tree under vmap_area_lock, one lazy ("purge") tree under
 * purge_vmap_area_lock, purges serialized by vmap_purge_lock. The 'nodes' design is in
 * src/nodes/vmap-nodes.ts.
 * Invariant (outside a purge): free blocks, busy areas, lazy ranges (and pooled areas, in the
 * nodes design) tile the managed space; vmap_lazy_nr equals the pages in the lazy trees.
 * Callers: the vmalloc layer (src/mm/vmalloc.ts).
 *
 * Kernel: alloc_vmap_area(), find_vmap_area(), find_unlink_vmap_area(), free_vmap_area(),
 * free_vmap_area_noflush(), __purge_vmap_area_lazy(), drain_vmap_area_work(),
 * reclaim_and_purge_vmap_areas() (purge_vmap_area_lazy() before 6.9), lazy_max_pages().
 * Differs from kernel: the drain runs in the freeing thread when vmap_lazy_nr exceeds
 * lazy_max_pages() (the kernel schedules a work item); a worker that finds another purging
 * leaves the drain to it. "Flushing the TLB" bumps a shared generation that empties every
 * worker's translation cache (the cache vm.read/write use), and is counted. The notifier
 * chain is per worker (JavaScript functions cannot be shared).
 *
 * Lock order: vmap_purge_lock, then at most one of the tree spinlocks at a time (the kernel
 * never nests free_vmap_area_lock, vmap_area_lock and purge_vmap_area_lock, nor the per-node
 * locks); under any of them a record cache's lock (vmap_area_cachep) may be taken last, to
 * refill or drain a per-CPU cache.
 */

import { invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import { findVmapArea, insertVmapArea, unlinkVmapArea } from '../kva/busy-tree.js';
import { checkCoalesced, checkRbList } from '../kva/check.js';
import { allocFromFreeTree, mergeOrAddVmapArea } from '../kva/free-tree.js';
import { rbListCount, rbListFirst, rbListInit, rbListNext } from '../kva/rb-list.js';
import type { VaStore } from '../kva/vmap-area.js';
import type { Lock } from '../shared/lock.js';
import { KERNEL_BASE } from './layout.js';
import type { RateLimitedLog } from './logger.js';

/**
 * Words of the control block (Int32) the designs share. Words written often by several CPUs
 * each get a cache line (16 words) of their own, so that no CPU's reads of its own words miss
 * because another CPU wrote a neighbour (false sharing).
 *
 *   line 0: free head, scratch head, TLB generation (read-mostly)
 *   line 1: vmap_lazy_nr (atomic, every vfree)
 *   line 2 + cpu: that cpu's preload slot            then: the design's words
 */
const LINE = 16;
const C_FREE_HEAD = 0;
export const C_SCRATCH_HEAD = 1; // a spare head for temporary lists (the nodes design's decay)
/**
 * Bumped by every purge before its ranges can be reused: the kernel's flush_tlb_kernel_range()
 * reaches every CPU, so each worker drops its cached translations when it sees a new value.
 */
export const C_TLB_GEN = 2;
const C_LAZY_NR = LINE; // vmap_lazy_nr: pages (guard pages included) lazily freed, not yet purged
const C_PRELOAD = 2 * LINE; // + cpu * LINE: the per-CPU spare record for a no-edge split
/** First word a design may use for its own state. */
export const designWords = (nrCpus: number): number => C_PRELOAD + (nrCpus + 1) * LINE;

/** Statistics (Float64 words). */
export const VaStat = {
  PURGES: 0,
  PURGED_AREAS: 1,
  TLB_FLUSHES: 2,
  ALLOC_FAILURES: 3,
  ALLOC_RETRIES: 4,
  NOTIFIER_CALLS: 5,
  DRAINS: 6,
  POOL_HITS: 7,
  POOL_MISSES: 8,
  POOL_REFILLS: 9,
  DECAYED: 10,
  PURGE_HELPERS: 11,
} as const;
export const VA_STAT_WORDS = 16;

export interface VmapAreasConfig {
  pageSize: number;
  nrCpus: number;
  /** lazy_max_pages(): fls(nrCpus) * 32 MiB / pageSize. */
  lazyMaxPages: number;
  /** The vmalloc window (pools serve only requests for exactly this window). */
  vmallocStart: number;
  vmallocEnd: number;
  /** Failure message style: the 6.11+ text or the older one. */
  modernWarning: boolean;
}

/** A purge notifier: releases what it can and returns how many pages (or areas) it freed. */
export type PurgeNotifier = () => number;

export function bump(stat: Float64Array, k: number, by = 1): void {
  stat[k] = stat[k]! + by;
}

/** The result of a tree check: the records of each kind, for the whole-state checks. */
export interface TreeCheck {
  free: number[];
  busy: number[];
  lazy: number[];
  /** Areas held in node pools (nodes design). */
  pooled: number[];
  /** Other records the manager holds: heads, preloads. */
  own: number[];
}

export abstract class VmapAreaManager {
  readonly s: VaStore;
  readonly ctl: Int32Array;
  /** This thread's request window [vstart, vend) for allocFromFreeTree (no boxed doubles). */
  private readonly win = new Float64Array(2);
  readonly stat: Float64Array;
  protected readonly cfg: VmapAreasConfig;
  protected readonly freeLock: Lock; // free_vmap_area_lock
  protected readonly purgeMutex: Lock; // vmap_purge_lock
  protected readonly log: RateLimitedLog;
  private readonly notifiers: PurgeNotifier[] = [];
  /** Scratch of alloc(): the encoded node id a pool lookup tags the area with. */
  protected vnId = 0;

  constructor(
    s: VaStore,
    ctl: Int32Array,
    stat: Float64Array,
    cfg: VmapAreasConfig,
    freeLock: Lock,
    purgeMutex: Lock,
    log: RateLimitedLog,
  ) {
    this.s = s;
    this.ctl = ctl;
    this.stat = stat;
    this.cfg = cfg;
    this.freeLock = freeLock;
    this.purgeMutex = purgeMutex;
    this.log = log;
  }

  /** Sets up an empty state whose free space is [start, end). Kernel: vmap_init_free_space(). */
  init(start: number, end: number): void {
    const s = this.s;
    const free = this.newHead();
    this.ctl[C_FREE_HEAD] = free;
    this.ctl[C_SCRATCH_HEAD] = this.newHead();
    this.initDesign();
    const va = s.alloc();
    s.setRange(va, start, end);
    mergeOrAddVmapArea(s, free, va, true);
  }

  protected newHead(): number {
    const h = this.s.alloc();
    rbListInit(this.s, h);
    return h;
  }

  /** Creates the design's own heads. */
  protected abstract initDesign(): void;

  get freeHead(): number {
    return this.ctl[C_FREE_HEAD]!;
  }

  /** vmap_lazy_nr */
  get lazyPages(): number {
    return Atomics.load(this.ctl, C_LAZY_NR);
  }

  /** Adds to vmap_lazy_nr; returns the new value. */
  protected addLazy(pages: number): number {
    return Atomics.add(this.ctl, C_LAZY_NR, pages) + pages;
  }

  /**
   * Takes a lock that guards records, then brings this thread's record views up to date: other
   * workers may have grown the arena and linked records this thread has not seen yet.
   */
  protected take(lock: Lock, cpu: number): void {
    lock.lock(cpu);
    this.s.refreshViews();
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
    this.vnId = 0;
    let va = this.poolAlloc(cpu, size, align, vstart, vend);
    if (va === 0) {
      va = s.alloc();
      if (va === 0) return 0;
      let purged = false;
      const win = this.win;
      win[0] = vstart;
      win[1] = vend;
      for (;;) {
        this.preload(cpu);
        this.take(this.freeLock, cpu);
        const err = allocFromFreeTree(
          s,
          this.ctl[C_FREE_HEAD]!,
          va,
          size,
          align,
          win,
          this.cfg.pageSize,
          this.ctl,
          C_PRELOAD + cpu * LINE,
        );
        this.freeLock.unlock();
        if (err === 0) break;
        // Overflow: purge once and retry; then let the notifiers free what they hold, and
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
    }
    s.setFlags(va, vaFlags | this.vnId);
    s.setVm(va, 0);
    this.insertBusy(cpu, va);
    return va;
  }

  /** A ready area from a pool (nodes design), or 0; may set this.vnId. Kernel: node_alloc(). */
  protected abstract poolAlloc(
    cpu: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
  ): number;

  /** Puts a fresh area into the busy tree it belongs to. */
  protected abstract insertBusy(cpu: number, va: number): void;

  /**
   * Makes sure this CPU has a spare record for a no-edge split before the free tree's lock is
   * taken. Kernel: preload_this_cpu_lock().
   */
  private preload(cpu: number): void {
    const slot = C_PRELOAD + cpu * LINE;
    if (this.ctl[slot] === 0) this.ctl[slot] = this.s.alloc();
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
    const k = (a: number): string => '0x' + (KERNEL_BASE + BigInt(a)).toString(16);
    this.log.warn(
      'alloc_vmap_area',
      this.cfg.modernWarning
        ? `vmalloc_node_range for size ${size} failed: Address range restricted to ${k(vstart)} - ${k(vend)}`
        : `vmap allocation for size ${size} failed: use vmalloc=<size> to increase size`,
    );
  }

  /** The busy area containing `addr`, or 0. Kernel: find_vmap_area(). */
  abstract find(cpu: number, addr: number): number;

  /**
   * Unlinks and returns the busy area that starts exactly at `addr` (and, with `requireVm`,
   * has a vm_struct). Returns 0 when no busy area contains addr, or -id when area `id`
   * contains it but does not qualify (nothing changed then).
   * Kernel: find_unlink_vmap_area() (which unlinks by containment).
   */
  abstract findUnlink(cpu: number, addr: number, requireVm: boolean): number;

  /**
   * Lazy free: the unlinked area's range becomes neither busy nor free until a purge; its
   * pages (guard page included) count in vmap_lazy_nr, and a drain runs when that exceeds
   * lazy_max_pages(). Kernel: free_vmap_area_noflush().
   */
  abstract freeLazy(cpu: number, va: number): void;

  /** Returns every lazy range to the free tree (or pools); the caller holds vmap_purge_lock. */
  protected abstract purgeLocked(cpu: number, fullPoolDecay: boolean): boolean;

  /** The TLB generation: changes whenever a purge may hand a freed range out again. */
  get tlbGeneration(): number {
    return Atomics.load(this.ctl, C_TLB_GEN);
  }

  /**
   * The purge's flush_tlb_kernel_range(): every CPU forgets its translations before the
   * purged ranges go back for reuse. Callers run it before merging or pooling those ranges.
   */
  protected flushTlbAll(): void {
    Atomics.add(this.ctl, C_TLB_GEN, 1);
    bump(this.stat, VaStat.TLB_FLUSHES);
  }

  /**
   * Puts an unlinked area straight back into the free tree (error paths only).
   * Kernel: free_vmap_area().
   */
  freeNow(cpu: number, va: number): void {
    this.take(this.freeLock, cpu);
    const ok = mergeOrAddVmapArea(this.s, this.ctl[C_FREE_HEAD]!, va, true);
    this.freeLock.unlock();
    if (ok === 0) invariantFailure(`vmalloc bug: freed area #${va} overlaps a free block`);
  }

  /**
   * Merges records into the free tree under its lock, letting it go briefly every 32 records
   * while the backlog is below twice lazy_max_pages() (the kernel's cond_resched_lock()), so
   * that allocations on other CPUs are not held off by a long purge.
   * Kernel: reclaim_list_global() / the merge loop of __purge_vmap_area_lazy().
   */
  protected mergeIntoFreeTree(cpu: number, vas: readonly number[]): void {
    const s = this.s;
    const resched = this.cfg.lazyMaxPages * 2;
    this.take(this.freeLock, cpu);
    for (let k = 0; k < vas.length; k++) {
      const va = vas[k]!;
      if (mergeOrAddVmapArea(s, this.ctl[C_FREE_HEAD]!, va, true) === 0) {
        invariantFailure(
          `vmalloc bug: range [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a free block`,
        );
      }
      if ((k & 31) === 31 && this.lazyPages < resched) {
        this.freeLock.unlock();
        this.take(this.freeLock, cpu);
      }
    }
    this.freeLock.unlock();
  }

  /** Subtracts purged pages from vmap_lazy_nr. */
  protected subLazy(pages: number): void {
    Atomics.sub(this.ctl, C_LAZY_NR, pages);
  }

  /**
   * Purges when vmap_lazy_nr exceeds lazy_max_pages(), unless another CPU is purging (it will
   * see the backlog). Kernel: drain_vmap_area_work().
   */
  drain(cpu: number): void {
    if (!this.purgeMutex.tryLock(cpu)) return;
    try {
      bump(this.stat, VaStat.DRAINS);
      this.drainLocked(cpu);
    } finally {
      this.purgeMutex.unlock();
    }
  }

  /** The drain's purges, with vmap_purge_lock held. */
  protected abstract drainLocked(cpu: number): void;

  /** Purges every lazy range now, pools drained. Kernel: reclaim_and_purge_vmap_areas(). */
  reclaimAndPurge(cpu: number): boolean {
    this.purgeMutex.lock(cpu);
    try {
      return this.purgeLocked(cpu, true);
    } finally {
      this.purgeMutex.unlock();
    }
  }

  /** Busy areas, in the order vmallocinfo walks them. */
  abstract busyIds(): number[];

  /** Lazy ranges, in the order vmallocinfo prints them. */
  abstract lazyIds(): number[];

  abstract get busyCount(): number;
  abstract get lazyCount(): number;

  get freeCount(): number {
    return rbListCount(this.s, this.ctl[C_FREE_HEAD]!);
  }

  /** Every lock of the design with its lock class name (for lock_stat). */
  abstract locks(): readonly Lock[];

  protected listIds(h: number, out: number[] = []): number[] {
    for (let x = rbListFirst(this.s, h); x !== 0; x = rbListNext(this.s, h, x)) out.push(x);
    return out;
  }

  /** Checks every tree; returns the records of each kind for the caller's whole-state checks. */
  checkTrees(start: number, end: number): TreeCheck {
    const s = this.s;
    const free = checkRbList(s, this.freeHead, true, 'free tree', start, end);
    checkCoalesced(s, free, 'free tree');
    const own = [this.freeHead, this.ctl[C_SCRATCH_HEAD]!];
    for (let cpu = 0; cpu < this.cfg.nrCpus; cpu++) {
      const p = this.ctl[C_PRELOAD + cpu * LINE]!;
      if (p !== 0) own.push(p);
    }
    if (rbListCount(s, this.ctl[C_SCRATCH_HEAD]!) !== 0)
      invariantFailure('the scratch list is not empty');
    const rest = this.checkDesign(start, end, own);
    let lazyPages = 0;
    for (const x of rest.lazy) lazyPages += s.size(x) / this.cfg.pageSize;
    if (lazyPages !== this.lazyPages) {
      invariantFailure(`vmap_lazy_nr is ${this.lazyPages}, the lazy trees hold ${lazyPages} pages`);
    }
    return { free, own, ...rest };
  }

  /** The design's trees: checked, and their records returned. `own` collects heads. */
  protected abstract checkDesign(
    start: number,
    end: number,
    own: number[],
  ): { busy: number[]; lazy: number[]; pooled: number[] };
}

/** Design-specific words of the global design. */
const G_BUSY_HEAD = 0;
const G_LAZY_HEAD = 1;

export class GlobalVmapAreas extends VmapAreaManager {
  private readonly busyLock: Lock; // vmap_area_lock
  private readonly lazyLock: Lock; // purge_vmap_area_lock
  private readonly base: number;

  constructor(
    s: VaStore,
    ctl: Int32Array,
    stat: Float64Array,
    cfg: VmapAreasConfig,
    locks: { freeLock: Lock; purgeMutex: Lock; busyLock: Lock; lazyLock: Lock },
    log: RateLimitedLog,
  ) {
    super(s, ctl, stat, cfg, locks.freeLock, locks.purgeMutex, log);
    this.busyLock = locks.busyLock;
    this.lazyLock = locks.lazyLock;
    this.base = designWords(cfg.nrCpus);
  }

  static ctlWords(nrCpus: number): number {
    return designWords(nrCpus) + 2;
  }

  protected initDesign(): void {
    this.ctl[this.base + G_BUSY_HEAD] = this.newHead();
    this.ctl[this.base + G_LAZY_HEAD] = this.newHead();
  }

  private get busyHead(): number {
    return this.ctl[this.base + G_BUSY_HEAD]!;
  }

  private get lazyHead(): number {
    return this.ctl[this.base + G_LAZY_HEAD]!;
  }

  protected poolAlloc(): number {
    return 0;
  }

  protected insertBusy(cpu: number, va: number): void {
    this.take(this.busyLock, cpu);
    const ok = insertVmapArea(this.s, this.busyHead, va);
    this.busyLock.unlock();
    if (!ok)
      invariantFailure(
        `vmalloc bug: allocated [${hex(this.s.start(va))}, ${hex(this.s.end(va))}) overlaps a busy area`,
      );
  }

  find(cpu: number, addr: number): number {
    this.take(this.busyLock, cpu);
    const va = findVmapArea(this.s, this.busyHead, addr);
    this.busyLock.unlock();
    return va;
  }

  findUnlink(cpu: number, addr: number, requireVm: boolean): number {
    const s = this.s;
    const h = this.busyHead;
    this.take(this.busyLock, cpu);
    const va = findVmapArea(s, h, addr);
    const ok = va !== 0 && s.start(va) === addr && (!requireVm || s.vm(va) !== 0);
    if (ok) unlinkVmapArea(s, h, va);
    this.busyLock.unlock();
    return ok || va === 0 ? va : -va;
  }

  freeLazy(cpu: number, va: number): void {
    const s = this.s;
    const nrLazy = this.addLazy(s.size(va) / this.cfg.pageSize);
    this.take(this.lazyLock, cpu);
    // Before 6.9 the lazy ("purge") tree merges neighbouring ranges as they arrive.
    const ok = mergeOrAddVmapArea(s, this.lazyHead, va, false);
    this.lazyLock.unlock();
    if (ok === 0) invariantFailure(`vmalloc bug: lazily freed area #${va} overlaps a lazy range`);
    if (nrLazy > this.cfg.lazyMaxPages) this.drain(cpu);
  }

  /** ≤ 6.8 loops while the backlog still exceeds the limit. */
  protected drainLocked(cpu: number): void {
    do {
      this.purgeLocked(cpu);
    } while (this.lazyPages > this.cfg.lazyMaxPages);
  }

  /**
   * The whole lazy list is detached under its lock, then merged into the free tree.
   * Kernel: __purge_vmap_area_lazy() (6.7).
   */
  protected purgeLocked(cpu: number): boolean {
    const s = this.s;
    const lh = this.lazyHead;
    this.take(this.lazyLock, cpu);
    const first = rbListFirst(s, lh);
    if (first !== 0) rbListInit(s, lh); // the records keep their list links: a detached chain
    this.lazyLock.unlock();
    if (first === 0) return false;
    bump(this.stat, VaStat.PURGES);
    this.flushTlbAll(); // one flush_tlb_kernel_range() over [first, last]
    const chain: number[] = [];
    let pages = 0;
    for (let va = first; va !== lh; va = s.next(va)) {
      chain.push(va);
      pages += s.size(va) / this.cfg.pageSize;
    }
    this.mergeIntoFreeTree(cpu, chain);
    this.subLazy(pages);
    bump(this.stat, VaStat.PURGED_AREAS, chain.length);
    return true;
  }

  busyIds(): number[] {
    return this.listIds(this.busyHead);
  }

  lazyIds(): number[] {
    return this.listIds(this.lazyHead);
  }

  get busyCount(): number {
    return rbListCount(this.s, this.busyHead);
  }

  get lazyCount(): number {
    return rbListCount(this.s, this.lazyHead);
  }

  locks(): readonly Lock[] {
    return [this.freeLock, this.busyLock, this.lazyLock, this.purgeMutex];
  }

  protected checkDesign(
    start: number,
    end: number,
    own: number[],
  ): { busy: number[]; lazy: number[]; pooled: number[] } {
    const s = this.s;
    const busy = checkRbList(s, this.busyHead, false, 'busy tree', start, end);
    const lazy = checkRbList(s, this.lazyHead, false, 'lazy tree', start, end);
    checkCoalesced(s, lazy, 'lazy tree');
    own.push(this.busyHead, this.lazyHead);
    return { busy, lazy, pooled: [] };
  }
}
