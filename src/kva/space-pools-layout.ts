/**
 * The layout of the pools buffer of a VmapSpace made with `pools`, and its creation.
 *
 * Invariant: the header and the shard heads are written once, before the magic word, and never
 * change; everything after CACHE_BASE belongs to the caches (space-pools.ts says who writes it).
 * Callers: space-pools.ts (the engine), space-pools-check.ts, vmap-space-handle.ts (creation
 * and the checks at attach).
 */

import { rbListInit } from './rb-list.js';
import type { VaStore } from './vmap-area.js';
import type { PoolConfig } from './vmap-space-options.js';
import { makeFixedBuffer, type AnyBuffer } from '../shared/buffers.js';

/**
 * The pools buffer, Int32 words:
 *
 *   [0, 32)       header: magic, caches, classes, lazyMax, shards, zone shift, home shift,
 *                 refill (written once)
 *   [32, 32+512)  busy shard heads (record ids, written once)
 *   then per cache c, at CACHE_BASE + c * stride (stride a multiple of 32 words: 128 bytes,
 *   so that two workers' caches never share a cache line or its prefetch pair):
 *     0 lazy head   1 lazy count   2 pooled count   3 back-list head   4-5 busy delta (f64)
 *     6-7 lazy bytes (f64)   8-9 pooled bytes (f64)   12 back-list count
 *     14-15 back-list bytes (f64)
 *     [16, 16+classes) pool heads (pool k: ranges of k + 1 pages)   then the pool lengths
 */
export const P_MAGIC = 0;
export const P_CACHES = 1;
export const P_CLASSES = 2;
export const P_LAZY_MAX = 3;
export const P_SHARDS = 4;
export const P_ZONE_SHIFT = 5;
/** log2 of the pages of a cache's home, or -1: no homes (see homeShiftOf). */
export const P_HOME_SHIFT = 6;
/** Ranges cut from the free tree at a pool miss (the `refill` option). */
export const P_REFILL = 7;
export const POOLS_MAGIC = 0x566d506c; // "VmPl"
export const SHARD_BASE = 32;
/**
 * Busy shards. The space is cut into `caches` homes (home c: the slow path's first choice for
 * cache c's allocations), and home h owns shards [h * SHARDS / caches, (h + 1) * SHARDS /
 * caches): an area starting in home h, zone z (of 2^ZONE_SHIFT pages) is in shard
 * h * (SHARDS / caches) + z mod (SHARDS / caches). So a worker that frees what it allocated
 * touches only its home's shards, and two workers never write one shard's lock or tree.
 * 512: a home of the default 8 caches keeps 64 shards, so that one worker's areas spread over
 * as many small trees as all workers' did over the 64 shards without homes (a home of 8
 * shards made each tree 8 times larger: 3 more levels per lookup, insert and erase).
 */
export const SHARDS = 512;
export const ZONE_SHIFT = 6;
export const CACHE_BASE = SHARD_BASE + SHARDS;
export const K_LAZY = 0;
export const K_LAZY_N = 1;
export const K_POOLED_N = 2;
/**
 * The back list: ranges a purge under the cache's lock alone decayed from the pools, waiting
 * for this cache's next trip under the space's lock to go to the free tree (space-pools.ts,
 * purgeOwn): its head, count and bytes (f64).
 */
export const K_BACK = 3;
export const K_BACK_N = 12;
export const K_BACK_F = 7;
/** Float64 words (Int32 word / 2) of a cache. */
export const K_BUSY_F = 2;
export const K_LAZY_F = 3;
export const K_POOLED_F = 4;
export const K_HEADS = 16;

export function cacheStride(classes: number): number {
  return Math.ceil((K_HEADS + 2 * classes) / 32) * 32;
}

export function poolsWords(caches: number, classes: number): number {
  return CACHE_BASE + caches * cacheStride(classes);
}

/** Locks of a pooled space: the space's, one per cache, one per shard. */
export function poolLockCount(caches: number): number {
  return 1 + caches + SHARDS;
}

/**
 * log2 of a home's pages for a space of `pages` pages and `caches` caches: the least power of
 * two that makes `caches` homes cover the space (the last homes may be short or beyond the
 * end: their caches then allocate anywhere in the window). -1 (no homes: every cache takes
 * the lowest fit in the window, and a shard is its zone mod SHARDS) when a home would hold
 * less than MIN_HOME_PAGES: in a space that small, homes would cut the free space into
 * pieces too small to be worth it (a 4-page space of 8 caches would cut a 2-page request's
 * room in two).
 */
/** The least home: 8 zones. */
export const MIN_HOME_PAGES = 8 * 2 ** ZONE_SHIFT;

export function homeShiftOf(pages: number, caches: number): number {
  let shift = 0;
  while (2 ** shift * caches < pages) shift++;
  return 2 ** shift >= MIN_HOME_PAGES ? shift : -1;
}

/** The pools buffer of a new space of `pages` pages, with SHARDS empty busy trees made in `s`. */
export function createPools(s: VaStore, cfg: PoolConfig, pages: number): AnyBuffer {
  const buf = makeFixedBuffer(poolsWords(cfg.caches, cfg.classes) * 4, true);
  const w = new Int32Array(buf);
  w[P_CACHES] = cfg.caches;
  w[P_CLASSES] = cfg.classes;
  w[P_LAZY_MAX] = cfg.lazyMax;
  w[P_SHARDS] = SHARDS;
  w[P_ZONE_SHIFT] = ZONE_SHIFT;
  w[P_HOME_SHIFT] = homeShiftOf(pages, cfg.caches);
  w[P_REFILL] = cfg.refill;
  for (let k = 0; k < SHARDS; k++) {
    const h = s.alloc();
    rbListInit(s, h);
    w[SHARD_BASE + k] = h;
  }
  Atomics.store(w, P_MAGIC, POOLS_MAGIC);
  return buf;
}
