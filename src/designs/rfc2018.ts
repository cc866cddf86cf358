/**
 * The 'rfc2018' design: the allocator of the October 2018 RFC "improve vmalloc allocation"
 * (Uladzislau Rezki; patch 1/2 free blocks + first fit, patch 2/2 the purge's priority
 * threshold) on top of the rest of the 4.19 subsystem. It was never merged as such: the 2019
 * series replaced its list walk by the augmented tree ('global').
 *
 * Holds: Rfc2018Design: one vmap_area_lock over the busy tree + list, the free tree + list
 * (rfc2018-free.ts) and the spare-record cache; lazily freed areas stay in the busy tree,
 * marked, and wait on a lock-free purge list (4.19's vmap_purge_list), until a purge returns
 * them to free space.
 * Invariant (outside a purge): free blocks and the carved ranges of busy and lazy areas tile the
 * vmalloc window; the marked areas of the busy tree are exactly those on the purge list.
 * Callers: the core (src/designs/vmap-areas.ts), built by the registry.
 *
 * The purge (4.19 __purge_vmap_area_lazy() with patch 2/2): take the whole purge list, flush
 * once, then under vmap_area_lock free each area and subtract its pages from vmap_lazy_nr;
 * while vmap_lazy_nr is below resched_threshold = lazy_max_pages() << 1 it yields the lock
 * between areas to waiting allocators (cond_resched_lock()), above it freeing wins and keeps
 * the lock. Nothing is preempted here, so the yield is an unlock and relock done only when the
 * lock has waiters: each shows in lock_stat as one more acquisition of vmap_area_lock (and
 * usually a contention, as the purge queues behind the allocator), and is counted
 * (purgeYields).
 *
 * Differs from kernel (4.19 + RFC): the free space is the vmalloc window only, as the RFC's
 * vmalloc_init_free_space() makes it (nothing here allocates outside it, so the 4.19 busy-list
 * walk the RFC kept for other ranges is left out); the core hands in the busy area's record
 * before the search, so a full fit spares the free block's record instead of reusing it;
 * vmallocinfo prints the unpurged areas after the busy ones (4.19 interleaves them by address).
 */

import { invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import { findVmapArea, insertVmapArea } from '../kva/busy-tree.js';
import { checkCoalesced, checkRbList } from '../kva/check.js';
import { rbListCount, rbListFirst, rbListNext, unlinkVa } from '../kva/rb-list.js';
import { LINE_WORDS, type ControlLayout } from '../shared/control-layout.js';
import { Lock, type LockTable } from '../shared/lock.js';
import type { DesignCheck, PurgeModeValue, VmapCore, VmapDesign } from './design.js';
import { newHead } from './free-space.js';
import {
  CACHE_WORDS,
  F_RESV,
  I_LINK,
  firstFitAlloc,
  mergeFree,
  paddedSize,
  spareIds,
} from './rfc2018-free.js';
import { checkRfcTiling } from './rfc2018-check.js';
import { VaStat, bump } from './stat.js';

/** VMALLOC_MAX_PADDING = THREAD_ALIGN (x86_64: 16 KiB). */
export const VMALLOC_MAX_PADDING = 16384;

/** A spare word of the record: 1 while the area is unlinked (lazily freed), 0 while busy. */
const I_UNLINKED = 15;

/** Words under vmap_area_lock. */
const W_BUSY_HEAD = 0;
const W_FREE_HEAD = 1;
const W_UNLINKED = 2; // areas marked unlinked in the busy tree
const W_YIELDS = 3; // purge yields (cond_resched_lock that let a waiter in)
const W_CACHE = 4; // free_va_cache: CACHE_WORDS words
const WORDS = W_CACHE + CACHE_WORDS;

export interface Rfc2018Decl {
  words: number;
  /** vmap_purge_list's head, on a line of its own (every vfree pushes onto it). */
  purgeList: number;
  lock: number;
}

export class Rfc2018Design implements VmapDesign {
  readonly name = 'rfc2018';
  readonly modernWarning = false;
  /** 4.19: a free over the limit purges once, synchronously (try_purge_vmap_area_lazy()). */
  readonly drainRepeats = false;
  readonly allocTag = 0;
  private readonly core: VmapCore;
  private readonly ctl: Int32Array;
  private readonly w: number;
  private readonly purgeList: number;
  /** vmap_area_lock: busy tree, free tree, spare records. */
  readonly lock: Lock;
  /** free_va_cache holds at most lazy_max_pages() / 2 records. */
  private readonly spareCap: number;
  /** The window free space covers: [VMALLOC_START, VMALLOC_END). */
  private readonly lo: number;
  private readonly hi: number;

  static declare(layout: ControlLayout, _nrCpus: number): Rfc2018Decl {
    return {
      words: layout.words(WORDS),
      purgeList: layout.lines(LINE_WORDS),
      lock: layout.lock('vmap_area_lock'),
    };
  }

  constructor(core: VmapCore, decl: Rfc2018Decl, table: LockTable) {
    this.core = core;
    this.ctl = core.ctl;
    this.w = decl.words;
    this.purgeList = decl.purgeList;
    this.lock = new Lock(table, decl.lock, 'vmap_area_lock');
    this.spareCap = core.cfg.lazyMaxPages >> 1;
    this.lo = core.cfg.vmallocStart;
    this.hi = core.cfg.vmallocEnd;
  }

  /** The free space is the vmalloc window (vmalloc_init_free_space()), not [start, end). */
  init(_start: number, _end: number): void {
    const s = this.core.s;
    const ctl = this.ctl;
    ctl[this.w + W_BUSY_HEAD] = newHead(s);
    ctl[this.w + W_FREE_HEAD] = newHead(s);
    const va = s.alloc();
    s.setRange(va, this.lo, this.hi);
    s.f[(va << 3) + F_RESV] = this.hi;
    if (mergeFree(s, this.freeHead, va, ctl, this.w + W_CACHE, this.spareCap) === 0)
      invariantFailure('the first free block overlaps');
  }

  private get busyHead(): number {
    return this.ctl[this.w + W_BUSY_HEAD]!;
  }

  private get freeHead(): number {
    return this.ctl[this.w + W_FREE_HEAD]!;
  }

  poolAlloc(): number {
    return 0;
  }

  allocRange(
    cpu: number,
    va: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
  ): boolean {
    const core = this.core;
    const psize = paddedSize(size, align, VMALLOC_MAX_PADDING);
    core.take(this.lock, cpu);
    const s = core.s;
    const h = this.freeHead;
    const err = firstFitAlloc(s, h, va, size, psize, align, vstart, vend, this.ctl, this.w + W_CACHE, this.spareCap); // prettier-ignore
    if (err !== 0) {
      this.lock.unlock();
      return false;
    }
    s.i[(va << 4) + I_UNLINKED] = 0;
    const ok = insertVmapArea(s, this.busyHead, va);
    this.lock.unlock();
    if (!ok) {
      invariantFailure(
        `vmalloc bug: allocated [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a busy area`,
      );
    }
    return true;
  }

  /** Lazily freed areas are still in the busy tree, but no longer live: they are not found. */
  find(cpu: number, addr: number): number {
    this.core.take(this.lock, cpu);
    const s = this.core.s;
    const va = findVmapArea(s, this.busyHead, addr);
    const live = va !== 0 && s.i[(va << 4) + I_UNLINKED] === 0;
    this.lock.unlock();
    return live ? va : 0;
  }

  /**
   * Marks the area unlinked (4.19's remove_vm_area(): VM_LAZY_FREE) and leaves it in the busy
   * tree: its range is not free until a purge.
   */
  findUnlink(cpu: number, addr: number, requireVm: boolean): number {
    this.core.take(this.lock, cpu);
    const s = this.core.s;
    let va = findVmapArea(s, this.busyHead, addr);
    if (va !== 0 && s.i[(va << 4) + I_UNLINKED] !== 0) va = 0;
    const ok = va !== 0 && s.start(va) === addr && (!requireVm || s.vm(va) !== 0);
    if (ok) {
      s.i[(va << 4) + I_UNLINKED] = 1;
      this.ctl[this.w + W_UNLINKED]!++;
    }
    this.lock.unlock();
    return ok || va === 0 ? va : -va;
  }

  /** Pushes the area onto vmap_purge_list without a lock (llist_add()). */
  insertLazy(_cpu: number, va: number): void {
    const ctl = this.ctl;
    const i = this.core.s.i;
    const at = this.purgeList;
    let head = Atomics.load(ctl, at);
    for (;;) {
      i[(va << 4) + I_LINK] = head;
      const seen = Atomics.compareExchange(ctl, at, head, va);
      if (seen === head) return;
      head = seen;
    }
  }

  /** Error paths: the area leaves the busy tree and its range goes back at once. */
  freeNow(cpu: number, va: number): void {
    this.core.take(this.lock, cpu);
    const merged = this.release(va);
    this.lock.unlock();
    if (merged === 0) invariantFailure(`vmalloc bug: freed area #${va} overlaps a free block`);
  }

  /** Under the lock: busy tree -> free space (4.19 __free_vmap_area()). 0: overlap (a bug). */
  private release(va: number): number {
    const s = this.core.s;
    if (s.i[(va << 4) + I_UNLINKED] !== 1)
      invariantFailure(`vmalloc bug: area #${va} is freed without being unlinked`);
    unlinkVa(s, this.busyHead, va, false);
    this.ctl[this.w + W_UNLINKED]!--;
    return mergeFree(s, this.freeHead, va, this.ctl, this.w + W_CACHE, this.spareCap);
  }

  /**
   * 4.19 __purge_vmap_area_lazy() with the RFC's priority threshold: the whole purge list is
   * taken, the TLB flushed once, then each area freed under vmap_area_lock in list order
   * (newest first), its pages subtracted one area at a time.
   */
  purgeLocked(cpu: number, _mode: PurgeModeValue): boolean {
    const core = this.core;
    const s = core.s;
    let va = Atomics.exchange(this.ctl, this.purgeList, 0);
    if (va === 0) return false;
    bump(core.stat, VaStat.PURGES);
    core.flushTlbAll();
    const threshold = core.cfg.lazyMaxPages * 2;
    const pageSize = core.cfg.pageSize;
    let n = 0;
    core.take(this.lock, cpu);
    while (va !== 0) {
      const next = s.i[(va << 4) + I_LINK]!; // before the record can be spared
      const pages = s.size(va) / pageSize;
      if (this.release(va) === 0) {
        this.lock.unlock();
        invariantFailure(`vmalloc bug: lazy area #${va} overlaps a free block`);
      }
      core.subLazy(pages);
      n++;
      va = next;
      if (va !== 0 && core.lazyPages < threshold && this.contended()) {
        // cond_resched_lock(): let the waiting allocator in, then queue behind it.
        this.ctl[this.w + W_YIELDS]!++;
        this.lock.unlock();
        core.take(this.lock, cpu);
      }
    }
    this.lock.unlock();
    bump(core.stat, VaStat.PURGED_AREAS, n);
    return true;
  }

  /** Does a thread wait for vmap_area_lock (asleep on it, or asking for a hand-off)? */
  private contended(): boolean {
    return this.lock.hasWaiters();
  }

  /** Times a purge let waiting allocators take vmap_area_lock between two areas. */
  get purgeYields(): number {
    return this.ctl[this.w + W_YIELDS]!;
  }

  /** Records on the spare-record cache (free_va_cache). */
  get spareCount(): number {
    return this.ctl[this.w + W_CACHE + 1]!;
  }

  private marked(want: number): number[] {
    const s = this.core.s;
    const h = this.busyHead;
    const out: number[] = [];
    for (let x = rbListFirst(s, h); x !== 0; x = rbListNext(s, h, x))
      if (s.i[(x << 4) + I_UNLINKED] === want) out.push(x);
    return out;
  }

  busyIds(): number[] {
    return this.marked(0);
  }

  /** In address order: the marked areas of the busy list. */
  lazyIds(): number[] {
    return this.marked(1);
  }

  /** The free blocks in address order (for tests and reports; read without the lock). */
  freeRanges(): { start: number; end: number }[] {
    const s = this.core.s;
    const h = this.freeHead;
    const out: { start: number; end: number }[] = [];
    for (let x = rbListFirst(s, h); x !== 0; x = rbListNext(s, h, x))
      out.push({ start: s.start(x), end: s.end(x) });
    return out;
  }

  get busyCount(): number {
    return rbListCount(this.core.s, this.busyHead) - this.ctl[this.w + W_UNLINKED]!;
  }

  get lazyCount(): number {
    return this.ctl[this.w + W_UNLINKED]!;
  }

  get freeCount(): number {
    return rbListCount(this.core.s, this.freeHead);
  }

  pooledCount(): number {
    return 0;
  }

  locks(): readonly Lock[] {
    return [this.lock];
  }

  check(start: number, end: number): DesignCheck {
    const s = this.core.s;
    const ctl = this.ctl;
    const all = checkRbList(s, this.busyHead, false, 'busy tree', start, end);
    const free = checkRbList(s, this.freeHead, false, 'free list', this.lo, this.hi);
    checkCoalesced(s, free, 'free list');
    const busy = this.marked(0);
    const lazy = this.marked(1);
    if (busy.length + lazy.length !== all.length)
      invariantFailure('busy tree: an area is neither busy nor unlinked');
    if (lazy.length !== ctl[this.w + W_UNLINKED])
      invariantFailure(`${lazy.length} areas are unlinked, the counter says ${ctl[this.w + W_UNLINKED]}`); // prettier-ignore
    const spares = spareIds(s, ctl, this.w + W_CACHE);
    if (spares.length !== ctl[this.w + W_CACHE + 1] || spares.length > this.spareCap)
      invariantFailure(`free_va_cache holds ${spares.length} records, counts ${ctl[this.w + W_CACHE + 1]}, cap ${this.spareCap}`); // prettier-ignore
    checkRfcTiling(s, free, busy, lazy, this.purgeChain(), this.lo, this.hi);
    const own = [this.busyHead, this.freeHead, ...spares];
    return { busy, lazy, free, other: [], own, tiling: null };
  }

  /** The records on vmap_purge_list, newest first. */
  private purgeChain(): number[] {
    const s = this.core.s;
    const out: number[] = [];
    for (let x = Atomics.load(this.ctl, this.purgeList); x !== 0; x = s.i[(x << 4) + I_LINK]!) {
      if (out.length > s.highWater) invariantFailure('vmap_purge_list has a cycle');
      out.push(x);
    }
    return out;
  }
}
