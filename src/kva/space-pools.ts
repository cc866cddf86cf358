/**
 * The pools of a VmapSpace made with `pools: true`: per-worker caches of ready ranges by size,
 * lazy free with a threshold and a batched purge, decay, and the busy areas split into shards
 * by address, so that most alloc/free pairs take only locks no other worker is using.
 *
 * Holds: SpacePools (one per VmapSpace instance, i.e. per worker): the fast paths (a range of
 * a pooled size taken from this worker's cache; a free pushed onto its lazy list) and the
 * busy shards' lookups. The slow path (the free tree under the space's lock, in this cache's
 * home first, `refill` ranges at a pool miss) is in space-pools-slow.ts, the purges and the
 * decay in space-pools-purge.ts, the pools buffer's layout and its creation in
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
import { allocSlow } from './space-pools-slow.js';
import { purgePools } from './space-pools-purge.js';

// The record layout of vmap-area.ts, as this module's own constants (checked by a test).
const F_START = 0,
  F_END = 1;
const I_NEXT = 10;

// The layout of the pools buffer (space-pools-layout.ts), as this module's own constants
// (V8 folds a module's own constants but loads imported ones at every use; test/kva/layout.test.ts
// checks the copies).
const SHARD_BASE = 32;
const SHARDS = 512;
const ZONE_SHIFT = 6;
const K_LAZY = 0;
const K_LAZY_N = 1;
const K_POOLED_N = 2;
const K_BUSY_F = 2;
const K_LAZY_F = 3;
const K_POOLED_F = 4;
const K_HEADS = 16;

/**
 * SpacePools' trip counters (VmapSpace.poolTrips(), `bench space`), this instance's since it
 * was made: allocations cut from the free tree (and of those, refills), purges under the
 * space's lock, purges that needed only the cache's lock.
 */
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
  readonly myLock: Lock;
  /** 1 / (page size * 2^ZONE_SHIFT): a multiply, exact (powers of two). */
  readonly zoneInv: number;
  /** 1 / (bytes of a home): likewise. */
  readonly homeInv: number;
  /** log2(SHARDS / caches): a home's shards are [home << perShift, (home + 1) << perShift). */
  readonly perShift: number;
  /** This cache's home [homeLo, homeHi) (homeHi may lie beyond the space's end). */
  readonly homeLo: number;
  readonly homeHi: number;
  /** The records of a refill's extra ranges, taken before the cut (refillPool). */
  readonly spare: Int32Array;
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
    return allocSlow(this, size, align);
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
   * ranges that went back to the free tree (space-pools-purge.ts).
   */
  purge(full: boolean): number {
    return purgePools(this, full);
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
