/**
 * The pools of a VmapSpace made with `pools: true`: per-worker caches of ready ranges by size,
 * lazy free with a threshold and a batched purge, decay, and the busy areas split into shards
 * by address, so that most alloc/free pairs take only locks no other worker is using.
 *
 * Holds: SpacePools (one per VmapSpace instance, i.e. per worker): the fast paths (a range of
 * a pooled size taken from this worker's cache; a free pushed onto its lazy list), the slow
 * path (the free tree under the space's lock, in this cache's home first), the purge and the
 * decay, the busy shards' lookups. The pools buffer's layout and its creation are in
 * space-pools-layout.ts.
 *
 * Why homes: two workers whose areas interleave at fine grain (as lowest-fit placement makes
 * them) write the same shard locks, shard trees and shard head records on most operations,
 * so those cache lines move between the cores at every step and the second worker adds
 * little (measured: 1.10x at 2 workers). With each cache's slow path placing its areas in its
 * own region of the space, and that region's zones mapped to shards of its own, a worker
 * that frees what it allocated touches no line another worker writes on its fast paths.
 * Invariant (between calls, all locks free): every range of the space is in exactly one of
 * the free tree, a busy shard (the one of its start address), a cache's lazy list or a
 * cache's pool of its size; the counters of each cache equal what its lists hold, and
 * stat[S_BUSY_BYTES] plus the caches' busy deltas equals the bytes of the busy areas.
 * Lock order: the space's lock, then caches (one at a time, or all in index order by
 * check()), then shards (likewise). Every move between two places happens with the locks of
 * both held, so check(), which takes them all, never sees a range in flight.
 * Callers: VmapSpace (src/kva/vmap-space.ts); check and views in space-pools-check.ts.
 *
 * Why here, in kva, and not on the 'nodes' design: the design keeps its pools in the vmalloc
 * layer's shared state (nodes, vmap_area_lock, page frames) that a range user does not want,
 * and kva may not import designs. The technique is the same (the kernel 6.9+ node pools:
 * lazy areas go to the pool of their size at the purge, each purge decays a pool by
 * floor(len / 4), an allocation failure purges everything and retries); the code is small
 * and written for VmapSpace's own records: pools and lazy lists are stacks linked through the
 * records' `next` word, with their heads in the pools buffer.
 *
 * Kernel: node_alloc() / node_pool_del_va(), free_vmap_area_noflush(),
 * __purge_vmap_area_lazy() with decay_va_pool_node(); busy trees by addr_to_node().
 */

import { invariantFailure } from '../debug.js';
import { VmallocError } from '../errors.js';
import { findVmapArea, insertVmapArea, unlinkVmapArea } from './busy-tree.js';
import { allocFromFreeTree, mergeOrAddVmapArea } from './free-tree.js';
import type { VaStore } from './vmap-area.js';
import {
  CACHE_BASE,
  P_CACHES,
  P_CLASSES,
  P_HOME_SHIFT,
  P_LAZY_MAX,
  P_REFILL,
  cacheStride,
} from './space-pools-layout.js';
import type { Lock } from '../shared/lock.js';
import type { AnyBuffer } from '../shared/buffers.js';
import type { SpaceParts } from './vmap-space-views.js';

// The record layout of vmap-area.ts, as this module's own constants (checked by a test).
const F_START = 0,
  F_END = 1;
const I_NEXT = 10;
// The control and statistics words of vmap-space-handle.ts (checked by a test).
const C_PRELOAD = 2;
const S_BUSY_BYTES = 0;

// The layout of the pools buffer (space-pools-layout.ts), as this module's own constants
// (V8 folds a module's own constants but loads imported ones at every use; test/kva/layout.test.ts
// checks the copies).
const SHARD_BASE = 32;
const SHARDS = 512;
const ZONE_SHIFT = 6;
const K_LAZY = 0;
const K_LAZY_N = 1;
const K_POOLED_N = 2;
const K_BACK = 3;
const K_BACK_N = 12;
const K_BACK_F = 7;
const K_BUSY_F = 2;
const K_LAZY_F = 3;
const K_POOLED_F = 4;
const K_HEADS = 16;

/** SpacePools' trip counters (VmapSpace.poolTrips()). */
export interface PoolTrips {
  slowAllocs: number;
  refills: number;
  lockedPurges: number;
  quickPurges: number;
}

/** One worker's view of the pools of a space. */
export class SpacePools {
  readonly w: Int32Array;
  readonly wf: Float64Array;
  readonly caches: number;
  readonly classes: number;
  readonly lazyMax: number;
  /** Ranges cut at a pool miss (the `refill` option). */
  readonly refill: number;
  readonly stride: number;
  /** First word of this worker's cache. */
  readonly mine: number;
  readonly spaceLock: Lock;
  readonly cacheLocks: Lock[];
  readonly shardLocks: Lock[];
  private readonly myLock: Lock;
  /** 1 / (page size * 2^ZONE_SHIFT): a multiply, exact (powers of two). */
  private readonly zoneInv: number;
  /** 1 / (bytes of a home): likewise. */
  private readonly homeInv: number;
  /** log2(SHARDS / caches): a home's shards are [home << perShift, (home + 1) << perShift). */
  private readonly perShift: number;
  /** This cache's home [homeLo, homeHi) (homeHi may lie beyond the space's end). */
  private readonly homeLo: number;
  private readonly homeHi: number;
  /** The records of a refill's extra ranges, taken before the cut (refillPool). */
  private readonly spare: Int32Array;
  /**
   * This instance's trips, for `bench space` (space-bounces.ts): allocations that went to the
   * free tree (and of those, the refills), purges under the space's lock, purges at the
   * threshold that needed no more than the cache's lock. Plain counters (this thread's), off
   * the fast paths.
   */
  slowAllocs = 0;
  refills = 0;
  lockedPurges = 0;
  quickPurges = 0;

  readonly s: VaStore;
  readonly start: number;
  readonly end: number;
  readonly freeHead: number;
  readonly ctl: Int32Array;
  readonly stat: Float64Array;

  constructor(
    parts: SpaceParts,
    buf: AnyBuffer,
    readonly cpu: number,
    readonly pageSize: number,
    readonly win: Float64Array,
    readonly exact: boolean,
    locks: (i: number, name: string) => Lock,
  ) {
    this.s = parts.s;
    this.start = parts.start;
    this.end = parts.end;
    this.freeHead = parts.freeHead;
    this.ctl = parts.ctl;
    this.stat = parts.stat;
    this.w = new Int32Array(buf);
    this.wf = new Float64Array(buf);
    this.caches = this.w[P_CACHES]!;
    this.classes = this.w[P_CLASSES]!;
    this.lazyMax = this.w[P_LAZY_MAX]!;
    this.refill = this.w[P_REFILL]!;
    this.spare = new Int32Array(this.refill);
    this.stride = cacheStride(this.classes);
    this.mine = this.cacheBase(cpu & (this.caches - 1));
    this.spaceLock = locks(0, 'vmap_space_lock');
    this.cacheLocks = Array.from({ length: this.caches }, (_, c) =>
      locks(1 + c, 'vmap_space_cache_lock'),
    );
    this.shardLocks = Array.from({ length: SHARDS }, (_, k) =>
      locks(1 + this.caches + k, 'vmap_space_busy_lock'),
    );
    this.myLock = this.cacheLocks[cpu & (this.caches - 1)]!;
    this.zoneInv = 1 / (pageSize * 2 ** ZONE_SHIFT);
    const shift = this.w[P_HOME_SHIFT]!;
    if (shift < 0) {
      // No homes: one home holding the whole space and every shard.
      this.homeInv = 0;
      this.perShift = Math.log2(SHARDS);
      this.homeLo = -Infinity;
      this.homeHi = Infinity;
    } else {
      const homeBytes = pageSize * 2 ** shift;
      this.homeInv = 1 / homeBytes;
      this.perShift = Math.log2(SHARDS / this.caches);
      this.homeLo = this.start + (cpu & (this.caches - 1)) * homeBytes;
      this.homeHi = this.homeLo + homeBytes;
    }
  }

  cacheBase(c: number): number {
    return CACHE_BASE + c * this.stride;
  }

  /** The trip counters (VmapSpace.poolTrips()). */
  trips(): PoolTrips {
    return {
      slowAllocs: this.slowAllocs,
      refills: this.refills,
      lockedPurges: this.lockedPurges,
      quickPurges: this.quickPurges,
    };
  }

  /** The shard of the area starting at `addr`: its home's, by zone (space-pools-layout.ts). */
  shardOf(addr: number): number {
    // ToInt32 keeps the low bits of the zone number exactly (it is below 2^53); a home
    // number is below `caches`.
    const rel = addr - this.start;
    const per = this.perShift;
    return (
      ((Math.floor(rel * this.homeInv) & (this.caches - 1)) << per) |
      (Math.floor(rel * this.zoneInv) & ((1 << per) - 1))
    );
  }

  shardHead(k: number): number {
    return this.w[SHARD_BASE + k]!;
  }

  /**
   * A range of `size` bytes for the request in `win` (aligned to `align`): from this worker's
   * pool of that size when its most recent entry suits, else from the free tree. The record, or 0.
   */
  alloc(size: number, align: number): number {
    const cls = size / this.pageSize - 1;
    if (cls < this.classes) {
      const w = this.w;
      const o = this.mine;
      if (Atomics.load(w, o + K_HEADS + cls) !== 0) {
        this.myLock.lock(this.cpu);
        try {
          const s = this.s;
          s.refreshViews();
          const va = w[o + K_HEADS + cls]!;
          if (va !== 0) {
            const f = s.f;
            const st = f[(va << 3) + F_START]!;
            const win = this.win;
            if (
              (align === 1 || st % align === 0) &&
              st >= win[0]! &&
              f[(va << 3) + F_END]! <= win[1]!
            ) {
              // The shard's lock first: if it cannot be had, nothing has changed.
              const k = this.shardOf(st);
              const lock = this.shardLocks[k]!;
              lock.lock(this.cpu);
              // The shard's tree may hold records another worker made since the cache lock.
              s.refreshViews();
              w[o + K_HEADS + cls] = s.i[(va << 4) + I_NEXT]!;
              w[o + K_HEADS + this.classes + cls] = w[o + K_HEADS + this.classes + cls]! - 1;
              w[o + K_POOLED_N] = w[o + K_POOLED_N]! - 1;
              const wf = this.wf;
              const fo = o >> 1;
              wf[fo + K_POOLED_F] = wf[fo + K_POOLED_F]! - size;
              wf[fo + K_BUSY_F] = wf[fo + K_BUSY_F]! + size;
              if (!insertVmapArea(s, w[SHARD_BASE + k]!, va)) busyOverlap(va);
              lock.unlock();
              return va;
            }
          }
        } finally {
          this.myLock.unlock();
        }
      }
    }
    return this.allocSlow(size, align);
  }

  /** alloc() from the free tree, under the space's lock; purges all and retries when full. */
  private allocSlow(size: number, align: number): number {
    this.slowAllocs++;
    this.spaceLock.lock(this.cpu);
    try {
      this.s.refreshViews();
      // The last purge's decay (purgeOwn), while the lock is ours anyway.
      if (Atomics.load(this.w, this.mine + K_BACK_N) !== 0) this.returnBack();
      const cls = size / this.pageSize - 1;
      if (
        this.refill > 1 &&
        this.homeInv !== 0 &&
        cls < this.classes &&
        align === 1 &&
        this.win[0] === this.start &&
        this.win[1] === this.end
      ) {
        const va = this.refillPool(size, cls);
        if (va !== 0) {
          this.stat[S_BUSY_BYTES] = this.stat[S_BUSY_BYTES]! + size;
          return va;
        }
      }
      let va = this.homeFirst(size, align);
      if (va === 0 && this.held() > 0) {
        this.purgeLocked(true);
        va = this.homeFirst(size, align);
      }
      if (va === 0) return 0;
      this.shardInsert(va);
      this.stat[S_BUSY_BYTES] = this.stat[S_BUSY_BYTES]! + size;
      return va;
    } finally {
      this.spaceLock.unlock();
    }
  }

  /** Lazy plus pooled ranges of all caches (a racy read: only a hint). */
  private held(): number {
    let n = 0;
    for (let c = 0; c < this.caches; c++) {
      const o = this.cacheBase(c);
      n +=
        Atomics.load(this.w, o + K_LAZY_N) +
        Atomics.load(this.w, o + K_POOLED_N) +
        Atomics.load(this.w, o + K_BACK_N);
    }
    return n;
  }

  /**
   * treeAlloc() in the request's window cut down to this cache's home first, then in the whole
   * window (space's lock held). Homes keep two workers' areas, and so their busy shards, apart.
   */
  private homeFirst(size: number, align: number): number {
    const win = this.win;
    if (win[0]! < this.homeLo || win[1]! > this.homeHi) {
      const va = this.homeOnly(size, align);
      if (va !== 0) return va;
    }
    return this.treeAlloc(size, align);
  }

  /** treeAlloc() in the request's window cut down to this cache's home (space's lock held). */
  private homeOnly(size: number, align: number): number {
    const win = this.win;
    const lo = win[0]!;
    const hi = win[1]!;
    const hlo = lo > this.homeLo ? lo : this.homeLo;
    const hhi = hi < this.homeHi ? hi : this.homeHi;
    if (hhi - hlo < size) return 0;
    win[0] = hlo;
    win[1] = hhi;
    try {
      return this.treeAlloc(size, align);
    } finally {
      win[0] = lo;
      win[1] = hi;
    }
  }

  /**
   * A pool miss's refill (space's lock held): `refill` ranges of `size` bytes (pool `cls`) cut
   * as one block from this cache's home; the first is linked into its busy shard and returned,
   * the others go to the pool, so that the next pops take them in address order. 0 (nothing
   * changed) when the home has no room for them all or the records run out: the caller then
   * cuts one range as usual. When the cache's or the shard's lock cannot be had (a dead
   * holder), the block goes back and the error is thrown: the space is as before.
   * Why one cut: one tree search and one record taken from the tree's block, instead of
   * `refill` of each, all under the lock every worker shares.
   */
  private refillPool(size: number, cls: number): number {
    const s = this.s;
    const n = this.refill;
    const ids = this.spare;
    let got = 0;
    while (got < n - 1) {
      const r = s.alloc();
      if (r === 0) break;
      ids[got++] = r;
    }
    const va = got === n - 1 ? this.homeOnly(n * size, 1) : 0;
    if (va === 0) {
      for (let j = 0; j < got; j++) s.free(ids[j]!);
      return 0;
    }
    const at = s.f[(va << 3) + F_START]!;
    const shard = this.shardLocks[this.shardOf(at)]!;
    let held = 0;
    try {
      this.myLock.lock(this.cpu);
      held = 1;
      shard.lock(this.cpu);
    } catch (e) {
      if (held === 1) this.myLock.unlock();
      for (let j = 0; j < got; j++) s.free(ids[j]!);
      if (mergeOrAddVmapArea(s, this.freeHead, va, true) === 0) busyOverlap(va);
      if (this.ctl[C_PRELOAD] === 0) this.ctl[C_PRELOAD] = s.alloc();
      throw e;
    }
    const f = s.f;
    const i = s.i;
    f[(va << 3) + F_END] = at + size;
    if (!insertVmapArea(s, this.w[SHARD_BASE + this.shardOf(at)]!, va)) busyOverlap(va);
    shard.unlock();
    const w = this.w;
    const o = this.mine;
    let head = w[o + K_HEADS + cls]!;
    for (let j = n - 1; j >= 1; j--) {
      const r = ids[j - 1]!;
      f[(r << 3) + F_START] = at + j * size;
      f[(r << 3) + F_END] = at + (j + 1) * size;
      i[(r << 4) + I_NEXT] = head;
      head = r;
    }
    w[o + K_HEADS + cls] = head;
    w[o + K_HEADS + this.classes + cls] = w[o + K_HEADS + this.classes + cls]! + n - 1;
    w[o + K_POOLED_N] = w[o + K_POOLED_N]! + n - 1;
    const fo = o >> 1;
    this.wf[fo + K_POOLED_F] = this.wf[fo + K_POOLED_F]! + (n - 1) * size;
    this.myLock.unlock();
    this.refills++;
    return va;
  }

  /** A new area cut from the free tree (space's lock held), or 0. */
  private treeAlloc(size: number, align: number): number {
    const s = this.s;
    const ctl = this.ctl;
    if (ctl[C_PRELOAD] === 0) {
      const spare = s.alloc();
      if (spare === 0) return 0;
      ctl[C_PRELOAD] = spare;
    }
    const va = s.alloc();
    if (va === 0) return 0;
    const r = allocFromFreeTree(
      s,
      this.freeHead,
      va,
      size,
      align,
      this.win,
      this.pageSize,
      ctl,
      C_PRELOAD,
      this.exact,
    );
    if (r < 0) {
      s.free(va);
      return 0;
    }
    return va;
  }

  /**
   * Links the new area `va` into its busy shard (space's lock held). When the shard's lock
   * cannot be had (its holder died), the range goes back into the free tree, a spare record
   * is made again if the cut took it, and the error is thrown: the space is as before.
   */
  private shardInsert(va: number): void {
    const s = this.s;
    const k = this.shardOf(s.f[(va << 3) + F_START]!);
    const lock = this.shardLocks[k]!;
    try {
      lock.lock(this.cpu);
    } catch (e) {
      if (mergeOrAddVmapArea(s, this.freeHead, va, true) === 0) busyOverlap(va);
      if (this.ctl[C_PRELOAD] === 0) this.ctl[C_PRELOAD] = s.alloc();
      throw e;
    }
    if (!insertVmapArea(s, this.w[SHARD_BASE + k]!, va)) busyOverlap(va);
    lock.unlock();
  }

  /**
   * Frees the area starting at `addr` onto this worker's lazy list: true, or false (nothing
   * changed) when no live area starts there. Purges when the list is full.
   */
  free(addr: number): boolean {
    const w = this.w;
    const o = this.mine;
    let purge = false;
    this.myLock.lock(this.cpu);
    try {
      const s = this.s;
      s.refreshViews();
      const k = this.shardOf(addr);
      const h = w[SHARD_BASE + k]!;
      const lock = this.shardLocks[k]!;
      lock.lock(this.cpu);
      let va: number;
      try {
        s.refreshViews(); // (as in alloc: the shard may hold newer records)
        va = findVmapArea(s, h, addr);
        if (va === 0 || s.f[(va << 3) + F_START] !== addr) return false;
        unlinkVmapArea(s, h, va);
      } finally {
        lock.unlock();
      }
      const size = s.f[(va << 3) + F_END]! - addr;
      s.i[(va << 4) + I_NEXT] = w[o + K_LAZY]!;
      w[o + K_LAZY] = va;
      const n = w[o + K_LAZY_N]! + 1;
      w[o + K_LAZY_N] = n;
      const wf = this.wf;
      const fo = o >> 1;
      wf[fo + K_LAZY_F] = wf[fo + K_LAZY_F]! + size;
      wf[fo + K_BUSY_F] = wf[fo + K_BUSY_F]! - size;
      purge = n >= this.lazyMax;
    } finally {
      this.myLock.unlock();
    }
    if (purge) {
      try {
        this.purge(false);
      } catch (e) {
        // The free is done; a purge that cannot take a lock (a dead holder) is left to the
        // next free or allocation, which meets the same lock and reports it.
        if (!(e instanceof VmallocError)) throw e;
      }
    }
    return true;
  }

  /**
   * Runs a purge: of every cache when `full`, else of this worker's cache alone; returns the
   * ranges that went back to the free tree. A purge at the lazy threshold takes only the
   * cache's lock when it can (purgeOwn), else the space's lock.
   */
  purge(full: boolean): number {
    if (!full && this.purgeOwn()) {
      this.quickPurges++;
      return 0;
    }
    this.lockedPurges++;
    this.spaceLock.lock(this.cpu);
    try {
      this.s.refreshViews();
      return this.purgeLocked(full);
    } finally {
      this.spaceLock.unlock();
    }
  }

  /**
   * The purge at the lazy threshold under the cache's lock alone: the decay (a quarter of each
   * pool, rounded down, the most recent first) moves to the cache's back list, and the lazy
   * list moves to the pools; true. The back list goes to the free tree at this worker's next
   * trip under the space's lock (a pool miss: returnBack()). False, with nothing changed, when
   * the previous purge's back list is still there (no trip came in between) or a lazy range is
   * too big for a pool: the purge under the space's lock then does it all, so a decayed range
   * waits one purge at most. Every move is within the cache, under its lock, so check() never
   * sees a range in flight.
   * Why: the decay returns ranges to the free tree, under the one lock every worker shares;
   * joined to a trip this worker takes anyway, it costs no trip of its own.
   */
  private purgeOwn(): boolean {
    const s = this.s;
    const w = this.w;
    const wf = this.wf;
    const cls = this.classes;
    const page = this.pageSize;
    const o = this.mine;
    const fo = o >> 1;
    if (Atomics.load(w, o + K_BACK_N) !== 0) return false;
    this.myLock.lock(this.cpu);
    try {
      s.refreshViews();
      const i = s.i;
      const f = s.f;
      if (w[o + K_BACK_N] !== 0) return false;
      for (let va = w[o + K_LAZY]!; va !== 0; va = i[(va << 4) + I_NEXT]!)
        if (f[(va << 3) + F_END]! - f[(va << 3) + F_START]! > cls * page) return false;
      let back = 0;
      let backN = 0;
      let backBytes = 0;
      for (let p = 0; p < cls; p++) {
        const len = w[o + K_HEADS + cls + p]!;
        const n = len >> 2;
        if (n === 0) continue;
        let va = w[o + K_HEADS + p]!;
        for (let j = 0; j < n; j++) {
          const next = i[(va << 4) + I_NEXT]!;
          i[(va << 4) + I_NEXT] = back;
          back = va;
          va = next;
        }
        w[o + K_HEADS + p] = va;
        w[o + K_HEADS + cls + p] = len - n;
        backN += n;
        backBytes += n * (p + 1) * page;
      }
      let n = 0;
      let va = w[o + K_LAZY]!;
      while (va !== 0) {
        const next = i[(va << 4) + I_NEXT]!;
        const p = (f[(va << 3) + F_END]! - f[(va << 3) + F_START]!) / page - 1;
        i[(va << 4) + I_NEXT] = w[o + K_HEADS + p]!;
        w[o + K_HEADS + p] = va;
        w[o + K_HEADS + cls + p] = w[o + K_HEADS + cls + p]! + 1;
        n++;
        va = next;
      }
      w[o + K_LAZY] = 0;
      w[o + K_LAZY_N] = 0;
      w[o + K_POOLED_N] = w[o + K_POOLED_N]! + n - backN;
      wf[fo + K_POOLED_F] = wf[fo + K_POOLED_F]! + wf[fo + K_LAZY_F]! - backBytes;
      wf[fo + K_LAZY_F] = 0;
      w[o + K_BACK] = back;
      w[o + K_BACK_N] = backN;
      wf[fo + K_BACK_F] = backBytes;
      return true;
    } finally {
      this.myLock.unlock();
    }
  }

  /** This cache's back list into the free tree (space's lock held): see purgeOwn(). */
  private returnBack(): void {
    const w = this.w;
    const o = this.mine;
    this.myLock.lock(this.cpu);
    let chain: number;
    try {
      chain = w[o + K_BACK]!;
      w[o + K_BACK] = 0;
      w[o + K_BACK_N] = 0;
      this.wf[(o >> 1) + K_BACK_F] = 0;
    } finally {
      this.myLock.unlock();
    }
    this.mergeChain(chain);
  }

  /** Merges a chain of ranges linked through `next` into the free tree (space's lock held). */
  private mergeChain(chain: number): void {
    const s = this.s;
    while (chain !== 0) {
      const next = s.i[(chain << 4) + I_NEXT]!;
      s.i[(chain << 4) + I_NEXT] = 0;
      if (mergeOrAddVmapArea(s, this.freeHead, chain, true) === 0)
        invariantFailure(`purged range #${chain} overlaps a free block`);
      chain = next;
    }
  }

  /**
   * The purge (space's lock held): in every cache when `full`, else in this worker's alone,
   * first its back list, then the decay (a quarter of each pool, rounded down, the most
   * recent first; all of it when `full`), then the lazy list moves to the pools of its sizes
   * (to the free tree when too big, or when `full`). What leaves the caches is merged into
   * the free tree after each cache's lock is released.
   *
   * Differs from kernel: a purge at the lazy threshold covers the purging worker's cache only
   * (the kernel's purges every node, as its TLB flush is global): rewriting another worker's
   * lists and records would move their cache lines to this core on every purge. Another
   * cache's ranges go back to the tree at a full purge (an allocation that finds no room,
   * or purge()), so no allocation fails for them. And its decayed ranges may wait on the back
   * list for this worker's next trip to the tree (purgeOwn).
   */
  private purgeLocked(full: boolean): number {
    const s = this.s;
    const w = this.w;
    const wf = this.wf;
    const cls = this.classes;
    const page = this.pageSize;
    let out = 0;
    const mine = this.cpu & (this.caches - 1);
    for (let c = full ? 0 : mine; c < (full ? this.caches : mine + 1); c++) {
      const o = this.cacheBase(c);
      const fo = o >> 1;
      if (
        Atomics.load(w, o + K_LAZY_N) === 0 &&
        Atomics.load(w, o + K_POOLED_N) === 0 &&
        Atomics.load(w, o + K_BACK_N) === 0
      )
        continue;
      const lock = this.cacheLocks[c]!;
      lock.lock(this.cpu);
      // Ranges leaving this cache, linked through `next`: the back list first.
      let chain = w[o + K_BACK]!;
      try {
        const i = s.i;
        const f = s.f;
        out += w[o + K_BACK_N]!;
        w[o + K_BACK] = 0;
        w[o + K_BACK_N] = 0;
        wf[fo + K_BACK_F] = 0;
        for (let p = 0; p < cls; p++) {
          const len = w[o + K_HEADS + cls + p]!;
          const n = full ? len : len >> 2;
          if (n === 0) continue;
          let va = w[o + K_HEADS + p]!;
          for (let j = 0; j < n; j++) {
            const next = i[(va << 4) + I_NEXT]!;
            i[(va << 4) + I_NEXT] = chain;
            chain = va;
            va = next;
          }
          w[o + K_HEADS + p] = va;
          w[o + K_HEADS + cls + p] = len - n;
          w[o + K_POOLED_N] = w[o + K_POOLED_N]! - n;
          wf[fo + K_POOLED_F] = wf[fo + K_POOLED_F]! - n * (p + 1) * page;
          out += n;
        }
        let va = w[o + K_LAZY]!;
        while (va !== 0) {
          const next = i[(va << 4) + I_NEXT]!;
          const size = f[(va << 3) + F_END]! - f[(va << 3) + F_START]!;
          const p = size / page - 1;
          if (!full && p < cls) {
            i[(va << 4) + I_NEXT] = w[o + K_HEADS + p]!;
            w[o + K_HEADS + p] = va;
            w[o + K_HEADS + cls + p] = w[o + K_HEADS + cls + p]! + 1;
            w[o + K_POOLED_N] = w[o + K_POOLED_N]! + 1;
            wf[fo + K_POOLED_F] = wf[fo + K_POOLED_F]! + size;
          } else {
            i[(va << 4) + I_NEXT] = chain;
            chain = va;
            out++;
          }
          va = next;
        }
        w[o + K_LAZY] = 0;
        w[o + K_LAZY_N] = 0;
        wf[fo + K_LAZY_F] = 0;
      } finally {
        lock.unlock();
      }
      this.mergeChain(chain);
    }
    return out;
  }

  /** The live area containing `addr`, or 0: every shard, each under its lock. */
  findContaining(addr: number): number {
    for (let k = 0; k < SHARDS; k++) {
      const lock = this.shardLocks[k]!;
      lock.lock(this.cpu);
      try {
        this.s.refreshViews();
        const va = findVmapArea(this.s, this.w[SHARD_BASE + k]!, addr);
        if (va !== 0) return va;
      } finally {
        lock.unlock();
      }
    }
    return 0;
  }
}

function busyOverlap(va: number): never {
  invariantFailure(`area #${va} overlaps a busy area or a free block`);
}
