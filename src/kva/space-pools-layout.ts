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
 *   [0, 32)       header: magic, caches, classes, lazyMax, shards, zone shift (written once)
 *   [32, 32+64)   busy shard heads (record ids, written once)
 *   then per cache c, at CACHE_BASE + c * stride (stride a multiple of 32 words: 128 bytes,
 *   so that two workers' caches never share a cache line or its prefetch pair):
 *     0 lazy head   1 lazy count   2 pooled count   4-5 busy delta (f64)
 *     6-7 lazy bytes (f64)   8-9 pooled bytes (f64)
 *     [16, 16+classes) pool heads (pool k: ranges of k + 1 pages)   then the pool lengths
 */
export const P_MAGIC = 0;
export const P_CACHES = 1;
export const P_CLASSES = 2;
export const P_LAZY_MAX = 3;
export const P_SHARDS = 4;
export const P_ZONE_SHIFT = 5;
export const POOLS_MAGIC = 0x566d506c; // "VmPl"
export const SHARD_BASE = 32;
/** Busy shards: enough that two workers rarely meet in one. */
export const SHARDS = 64;
/** A shard holds the areas starting in every SHARDS-th zone of 2^ZONE_SHIFT pages. */
export const ZONE_SHIFT = 6;
export const CACHE_BASE = SHARD_BASE + SHARDS;
export const K_LAZY = 0;
export const K_LAZY_N = 1;
export const K_POOLED_N = 2;
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

/** The pools buffer of a new space, with SHARDS empty busy trees made in store `s`. */
export function createPools(s: VaStore, cfg: PoolConfig): AnyBuffer {
  const buf = makeFixedBuffer(poolsWords(cfg.caches, cfg.classes) * 4, true);
  const w = new Int32Array(buf);
  w[P_CACHES] = cfg.caches;
  w[P_CLASSES] = cfg.classes;
  w[P_LAZY_MAX] = cfg.lazyMax;
  w[P_SHARDS] = SHARDS;
  w[P_ZONE_SHIFT] = ZONE_SHIFT;
  for (let k = 0; k < SHARDS; k++) {
    const h = s.alloc();
    rbListInit(s, h);
    w[SHARD_BASE + k] = h;
  }
  Atomics.store(w, P_MAGIC, POOLS_MAGIC);
  return buf;
}
