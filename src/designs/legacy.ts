/**
 * The 'legacy' design (kernels up to 5.1, read from 4.19): busy areas only, in one rb-tree +
 * address-sorted list under vmap_area_lock; free space is the gaps between them, found by the
 * gap walk with free_vmap_cache (src/kva/legacy-walk.ts). There is no free tree.
 *
 * Holds: LegacyDesign: the legacy head (busy tree, busy list, search cache), the lazy purge
 * list (the kernel's lockless vmap_purge_list) and the count of lazily freed areas.
 * Invariant (outside a purge): lazily freed areas stay in the busy tree, flagged LAZY_FREE,
 * until a purge erases them: they still occupy their range, so the walk steps over them. The
 * flagged areas are exactly the areas on the purge list; their pages add up to vmap_lazy_nr
 * (checked by the core); the search cache obeys the rules of legacy-walk.ts.
 * Callers: the core (src/designs/vmap-areas.ts), built by the registry.
 *
 * Kernel (4.19): alloc_vmap_area(), __free_vmap_area(), find_vmap_area(), remove_vm_area()
 * (which flags the area VM_LAZY_FREE under vmap_area_lock), free_vmap_area_noflush() (the
 * llist_add to vmap_purge_list), __purge_vmap_area_lazy() (llist_del_all, one flush over the
 * span, then __free_vmap_area() of each area in list order, which is newest first, with
 * cond_resched_lock() after each), try_purge_vmap_area_lazy() (purge once, synchronously,
 * when the backlog passes lazy_max_pages()). __free_vmap_area() ends with kfree_rcu(): an
 * erased area's record goes back to the store only after a grace period, through this cpu's
 * RCU callback list (legacy-rcu.ts); the records waiting there are neither busy, lazy nor free.
 * Differs from kernel: find() and findUnlink() do not see areas flagged LAZY_FREE (the kernel
 * finds them and its callers then refuse them for lacking VM_VM_AREA: the same outcome).
 * vmap_area_pcpu_hole and the old per-cpu allocator's top-down search are not modelled (this
 * project has no per-cpu allocator). cond_resched_lock() lets the lock go when a waiter has
 * marked it (our locks' "contended" state), the nearest thing to spin_needbreak().
 *
 * Record use beyond vmap-area.ts's layout: a lazily freed area's link on the purge list is
 * kept in Int32 word 13 of its record (bytes 52..55, which no other module uses): the area
 * stays in the busy list, so its prev/next links are taken, as the kernel's vmap_area has a
 * separate purge_list node. Once erased, the same word links the record on an RCU callback
 * list (the kernel's rcu_head, a field of its own there: the two uses never overlap).
 */

import { invariant, invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import { findVmapArea } from '../kva/busy-tree.js';
import { checkRbList } from '../kva/check.js';
import {
  checkLegacyCache,
  legacyAllocRange,
  legacyCache,
  legacyErase,
  legacyInit,
} from '../kva/legacy-walk.js';
import { rbListCount, rbListFirst, rbListNext } from '../kva/rb-list.js';
import { type VaStore, VaFlags } from '../kva/vmap-area.js';
import type { ControlLayout } from '../shared/control-layout.js';
import { Lock, type LockTable } from '../shared/lock.js';
import type { DesignCheck, PurgeModeValue, VmapCore, VmapDesign } from './design.js';
import { I_LINK, LegacyRcuCallbacks } from './legacy-rcu.js';
import { VaStat, bump } from './stat.js';

/**
 * va->flags: lazily freed, waiting in the busy tree for a purge (4.19's VM_LAZY_FREE, 0x2
 * there; VaFlags gives it a bit of its own, as vm_map_ram areas carry the later kernels'
 * VMAP_RAM / VMAP_BLOCK bits in this design too).
 */
export const LEGACY_LAZY_FREE = VaFlags.LEGACY_LAZY_FREE;

/** Int32 word of a record holding its next area on the purge list (0: the last one). */
const I_PURGE_NEXT = I_LINK;
export interface LegacyDecl {
  /** the legacy head's record id (read-mostly) */
  head: number;
  /** vmap_purge_list (a record id, 0: empty), then the count of flagged areas */
  lazy: number;
  lock: number;
  /** The per-cpu RCU callback lists (legacy-rcu.ts). */
  rcu: number;
}

const W_PURGE_LIST = 0;
const W_LAZY_COUNT = 1;

export class LegacyDesign implements VmapDesign {
  readonly name = 'legacy';
  readonly modernWarning = false;
  /** 4.19's try_purge_vmap_area_lazy() purges once: it takes the whole list. */
  readonly drainRepeats = false;
  readonly allocTag = 0;
  private readonly core: VmapCore;
  private readonly s: VaStore;
  private readonly ctl: Int32Array;
  private readonly decl: LegacyDecl;
  private readonly lock: Lock; // vmap_area_lock
  /** kfree_rcu() of erased records: per-cpu callback lists. */
  readonly rcu: LegacyRcuCallbacks;

  static declare(layout: ControlLayout, nrCpus: number): LegacyDecl {
    return {
      head: layout.words(1),
      // Written by every free (the list head by a compare-and-swap): a line of their own.
      lazy: layout.lines(2),
      lock: layout.lock('vmap_area_lock'),
      rcu: LegacyRcuCallbacks.declare(layout, nrCpus),
    };
  }

  constructor(core: VmapCore, decl: LegacyDecl, table: LockTable) {
    this.core = core;
    this.s = core.s;
    this.ctl = core.ctl;
    this.decl = decl;
    this.lock = new Lock(table, decl.lock, 'vmap_area_lock');
    this.rcu = new LegacyRcuCallbacks(
      core.s,
      core.ctl,
      decl.rcu,
      core.cfg.nrCpus,
      () => core.gracePeriods,
    );
  }

  init(_start: number, _end: number): void {
    const h = this.s.alloc();
    legacyInit(this.s, h);
    this.ctl[this.decl.head] = h;
    this.ctl[this.decl.lazy + W_PURGE_LIST] = 0;
    this.ctl[this.decl.lazy + W_LAZY_COUNT] = 0;
    this.rcu.init();
  }

  private get head(): number {
    return this.ctl[this.decl.head]!;
  }

  poolAlloc(): number {
    return 0;
  }

  /** The walk runs under vmap_area_lock, which also guards the cache it reads and updates. */
  allocRange(
    cpu: number,
    va: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
  ): boolean {
    this.core.take(this.lock, cpu);
    const ok = legacyAllocRange(this.s, this.head, va, size, align, vstart, vend);
    this.lock.unlock();
    return ok;
  }

  find(cpu: number, addr: number): number {
    const s = this.s;
    this.core.take(this.lock, cpu);
    const va = findVmapArea(s, this.head, addr);
    const busy = va !== 0 && (s.flags(va) & LEGACY_LAZY_FREE) === 0;
    this.lock.unlock();
    return busy ? va : 0;
  }

  /**
   * Flags the area starting at `addr` LAZY_FREE and returns it: it stays in the busy tree, its
   * range occupied, but no lookup finds it any more. Kernel: remove_vm_area().
   */
  findUnlink(cpu: number, addr: number, requireVm: boolean): number {
    const s = this.s;
    this.core.take(this.lock, cpu);
    let va = findVmapArea(s, this.head, addr);
    if (va !== 0 && (s.flags(va) & LEGACY_LAZY_FREE) !== 0) va = 0;
    const ok = va !== 0 && s.start(va) === addr && (!requireVm || s.vm(va) !== 0);
    if (ok) {
      s.setFlags(va, s.flags(va) | LEGACY_LAZY_FREE);
      this.ctl[this.decl.lazy + W_LAZY_COUNT] = this.lazyCount + 1;
    }
    this.lock.unlock();
    return ok || va === 0 ? va : -va;
  }

  /** Pushes the flagged area on the purge list, without a lock. Kernel: llist_add(). */
  insertLazy(_cpu: number, va: number): void {
    const ctl = this.ctl;
    const at = this.decl.lazy + W_PURGE_LIST;
    const i = this.s.i;
    let old = Atomics.load(ctl, at);
    for (;;) {
      i[(va << 4) + I_PURGE_NEXT] = old;
      const seen = Atomics.compareExchange(ctl, at, old, va);
      if (seen === old) return;
      old = seen;
    }
  }

  /**
   * Erases a flagged area from the busy tree at once (error paths); its record goes back after
   * a grace period. Kernel: free_vmap_area() (__free_vmap_area(), kfree_rcu()).
   */
  freeNow(cpu: number, va: number): void {
    this.core.take(this.lock, cpu);
    this.erase(va);
    this.lock.unlock();
    if (this.rcu.enqueue(cpu, va)) this.rcu.accelerate(cpu);
    else this.s.free(va);
  }

  /** With vmap_area_lock held: the cache rule, then out of the tree and the list. */
  private erase(va: number): void {
    const s = this.s;
    const flags = s.flags(va);
    if ((flags & LEGACY_LAZY_FREE) !== 0) {
      this.ctl[this.decl.lazy + W_LAZY_COUNT] = this.lazyCount - 1;
      s.setFlags(va, flags & ~LEGACY_LAZY_FREE);
    }
    legacyErase(s, this.head, va);
  }

  /**
   * Takes the whole purge list, flushes the TLB once over its span, then erases each area
   * under vmap_area_lock (newest first, the list's order), queueing its record for freeing
   * after a grace period, letting the lock go to a waiter between areas; the records get
   * their grace period once all are erased. Kernel: __purge_vmap_area_lazy() (4.19), whose
   * __free_vmap_area() ends with kfree_rcu().
   */
  purgeLocked(cpu: number, _mode: PurgeModeValue): boolean {
    const core = this.core;
    const s = this.s;
    let first = Atomics.exchange(this.ctl, this.decl.lazy + W_PURGE_LIST, 0);
    if (first === 0) return false;
    s.refreshViews(); // the areas may have been made by other threads since our last lock
    bump(core.stat, VaStat.PURGES);
    core.flushTlbAll(); // one flush_tlb_kernel_range() over the span of the list
    const pageSize = core.cfg.pageSize;
    const lock = this.lock;
    const rcu = this.rcu;
    let n = 0;
    core.take(lock, cpu);
    while (first !== 0) {
      const va = first;
      first = s.i[(va << 4) + I_PURGE_NEXT]!;
      const pages = s.size(va) / pageSize;
      this.erase(va);
      if (!rcu.enqueue(cpu, va)) s.free(va);
      core.subLazy(pages);
      n++;
      // cond_resched_lock(): let a waiting allocator in between two areas.
      if (first !== 0 && lock.hasWaiters()) {
        lock.unlock();
        core.take(lock, cpu);
      }
    }
    lock.unlock();
    rcu.accelerate(cpu);
    bump(core.stat, VaStat.PURGED_AREAS, n);
    return true;
  }

  /** Has `cpu` records whose grace period is over (a plain load when it has none)? */
  rcuDue(cpu: number): boolean {
    return this.rcu.due(cpu);
  }

  /** Frees `cpu`'s records whose grace period is over (a batch). Kernel: rcu_do_batch(). */
  invokeRcu(cpu: number): number {
    return this.rcu.invoke(cpu);
  }

  /** Busy areas (lazily freed ones left out), in address order. */
  busyIds(): number[] {
    return this.idsWhere(0);
  }

  /** Lazily freed areas not yet purged, in address order. */
  lazyIds(): number[] {
    return this.idsWhere(LEGACY_LAZY_FREE);
  }

  private idsWhere(lazy: number): number[] {
    const s = this.s;
    const h = this.head;
    const out: number[] = [];
    for (let x = rbListFirst(s, h); x !== 0; x = rbListNext(s, h, x))
      if ((s.flags(x) & LEGACY_LAZY_FREE) === lazy) out.push(x);
    return out;
  }

  get busyCount(): number {
    return rbListCount(this.s, this.head) - this.lazyCount;
  }

  get lazyCount(): number {
    return this.ctl[this.decl.lazy + W_LAZY_COUNT]!;
  }

  get freeCount(): number {
    return 0;
  }

  pooledCount(): number {
    return 0;
  }

  /** free_vmap_cache (as its range, or null) and its parameters: for tests and debugging. */
  cacheState(): {
    area: { start: number; end: number } | null;
    holeSize: number;
    vstart: number;
    align: number;
  } {
    const s = this.s;
    const c = legacyCache(s, this.head);
    const area = c.area === 0 ? null : { start: s.start(c.area), end: s.end(c.area) };
    return { area, holeSize: c.holeSize, vstart: c.vstart, align: c.align };
  }

  locks(): readonly Lock[] {
    return [this.lock];
  }

  /**
   * The busy tree and list (red-black rules, order, no overlap, inside the space), the search
   * cache (legacy-walk.ts's rules), the purge list against the flagged areas (the same set, no
   * cycle), the count of flagged areas, and the RCU callback lists (legacy-rcu.ts: their
   * records in no tree, each queued once, every one with its grace period).
   */
  check(start: number, end: number): DesignCheck {
    const s = this.s;
    const h = this.head;
    const all = checkRbList(s, h, false, 'busy tree', start, end);
    checkLegacyCache(s, h, all, 'free_vmap_cache');
    const busy: number[] = [];
    const lazy: number[] = [];
    for (const x of all) ((s.flags(x) & LEGACY_LAZY_FREE) !== 0 ? lazy : busy).push(x);
    const flagged = new Set(lazy);
    const onList = new Set<number>();
    for (
      let x = this.ctl[this.decl.lazy + W_PURGE_LIST]!;
      x !== 0;
      x = s.i[(x << 4) + I_PURGE_NEXT]!
    ) {
      invariant(!onList.has(x), () => `purge list: area #${x} appears twice (a cycle)`);
      invariant(
        flagged.has(x),
        () =>
          `purge list: #${x} [${hex(s.start(x))}, ${hex(s.end(x))}) is not a LAZY_FREE area of the busy tree`,
      );
      onList.add(x);
    }
    if (onList.size !== flagged.size) {
      const lost = lazy.find((x) => !onList.has(x))!;
      invariantFailure(
        `busy tree: LAZY_FREE area #${lost} [${hex(s.start(lost))}, ${hex(s.end(lost))}) is not on the purge list`,
      );
    }
    invariant(
      this.lazyCount === lazy.length,
      () =>
        `the lazy count is ${this.lazyCount}, the busy tree holds ${lazy.length} LAZY_FREE areas`,
    );
    // Erased records waiting for their grace period: the design's own, not areas.
    const queued = this.rcu.check(new Set(all));
    return { busy, lazy, free: [], other: [], own: [h, ...queued], tiling: null };
  }
}
