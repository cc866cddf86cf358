/**
 * The slow path of a pooled VmapSpace's allocations (space-pools.ts): a range cut from the
 * free tree under the space's lock, when this worker's pool of the size is empty or the
 * request is not a pooled one: in the worker's home first, a pool miss cutting `refill`
 * ranges at once, a full purge and a retry when the space has no room.
 *
 * Holds: allocSlow() and its steps (the home-first cut, the refill, the link into a busy
 * shard). Invariant: each step either completes or leaves the space as it was (a lock that
 * cannot be had throws after the cut range went back to the tree); the trips are counted
 * in the instance (SpacePools.slowAllocs, refills).
 * Callers: SpacePools.alloc() (space-pools.ts) when its fast path cannot serve the request.
 *
 * Kernel: the part of alloc_vmap_area() after node_alloc() misses: __alloc_vmap_area() under
 * free_vmap_area_lock, then purge_vmap_area_lazy() and a retry on failure.
 */

import { invariantFailure } from '../debug.js';
import { insertVmapArea } from './busy-tree.js';
import { cutFromFreeTree, mergeOrAddVmapArea } from './free-tree.js';
import {
  K_BACK_N,
  K_HEADS,
  K_LAZY_N,
  K_POOLED_F,
  K_POOLED_N,
  SHARD_BASE,
} from './space-pools-layout.js';
import { purgeLocked, returnBack } from './space-pools-purge.js';
import type { SpacePools } from './space-pools.js';
import { F_END, F_START, I_NEXT } from './vmap-area.js';

// The control and statistics words of vmap-space-handle.ts, as this module's own constants
// (checked by test/kva/layout.test.ts).
const C_PRELOAD = 2;
const S_BUSY_BYTES = 0;

/** alloc() from the free tree, under the space's lock; purges all and retries when full. */
export function allocSlow(sp: SpacePools, size: number, align: number): number {
  sp.slowAllocs++;
  sp.spaceLock.lock(sp.cpu);
  try {
    sp.s.refreshViews();
    // The last purge's decay (purgeOwn), while the lock is ours anyway.
    if (Atomics.load(sp.w, sp.mine + K_BACK_N) !== 0) returnBack(sp);
    const cls = size / sp.pageSize - 1;
    if (
      sp.refill > 1 &&
      sp.homeInv !== 0 &&
      cls < sp.classes &&
      align === 1 &&
      sp.win[0] === sp.start &&
      sp.win[1] === sp.end
    ) {
      const va = refillPool(sp, size, cls);
      if (va !== 0) {
        sp.stat[S_BUSY_BYTES] = sp.stat[S_BUSY_BYTES]! + size;
        return va;
      }
    }
    let va = homeFirst(sp, size, align);
    if (va === 0 && held(sp) > 0) {
      purgeLocked(sp, true);
      va = homeFirst(sp, size, align);
    }
    if (va === 0) return 0;
    shardInsert(sp, va);
    sp.stat[S_BUSY_BYTES] = sp.stat[S_BUSY_BYTES]! + size;
    return va;
  } finally {
    sp.spaceLock.unlock();
  }
}

/** Lazy plus pooled ranges of all caches (a racy read: only a hint). */
export function held(sp: SpacePools): number {
  let n = 0;
  for (let c = 0; c < sp.caches; c++) {
    const o = sp.cacheBase(c);
    n +=
      Atomics.load(sp.w, o + K_LAZY_N) +
      Atomics.load(sp.w, o + K_POOLED_N) +
      Atomics.load(sp.w, o + K_BACK_N);
  }
  return n;
}

/**
 * treeAlloc() in the request's window cut down to this cache's home first, then in the whole
 * window (space's lock held). Homes keep two workers' areas, and so their busy shards, apart.
 */
export function homeFirst(sp: SpacePools, size: number, align: number): number {
  const win = sp.win;
  if (win[0]! < sp.homeLo || win[1]! > sp.homeHi) {
    const va = homeOnly(sp, size, align);
    if (va !== 0) return va;
  }
  return treeAlloc(sp, size, align);
}

/** treeAlloc() in the request's window cut down to this cache's home (space's lock held). */
export function homeOnly(sp: SpacePools, size: number, align: number): number {
  const win = sp.win;
  const lo = win[0]!;
  const hi = win[1]!;
  const hlo = lo > sp.homeLo ? lo : sp.homeLo;
  const hhi = hi < sp.homeHi ? hi : sp.homeHi;
  if (hhi - hlo < size) return 0;
  win[0] = hlo;
  win[1] = hhi;
  try {
    return treeAlloc(sp, size, align);
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
export function refillPool(sp: SpacePools, size: number, cls: number): number {
  const s = sp.s;
  const n = sp.refill;
  const ids = sp.spare;
  let got = 0;
  while (got < n - 1) {
    const r = s.alloc();
    if (r === 0) break;
    ids[got++] = r;
  }
  const va = got === n - 1 ? homeOnly(sp, n * size, 1) : 0;
  if (va === 0) {
    for (let j = 0; j < got; j++) s.free(ids[j]!);
    return 0;
  }
  const at = s.f[(va << 3) + F_START]!;
  const shard = sp.shardLocks[sp.shardOf(at)]!;
  let held = 0;
  try {
    sp.myLock.lock(sp.cpu);
    held = 1;
    shard.lock(sp.cpu);
  } catch (e) {
    if (held === 1) sp.myLock.unlock();
    for (let j = 0; j < got; j++) s.free(ids[j]!);
    if (mergeOrAddVmapArea(s, sp.freeHead, va, true) === 0) busyOverlap(va);
    if (sp.ctl[C_PRELOAD] === 0) sp.ctl[C_PRELOAD] = s.alloc();
    throw e;
  }
  const f = s.f;
  const i = s.i;
  f[(va << 3) + F_END] = at + size;
  if (!insertVmapArea(s, sp.w[SHARD_BASE + sp.shardOf(at)]!, va)) busyOverlap(va);
  shard.unlock();
  const w = sp.w;
  const o = sp.mine;
  let head = w[o + K_HEADS + cls]!;
  for (let j = n - 1; j >= 1; j--) {
    const r = ids[j - 1]!;
    f[(r << 3) + F_START] = at + j * size;
    f[(r << 3) + F_END] = at + (j + 1) * size;
    i[(r << 4) + I_NEXT] = head;
    head = r;
  }
  w[o + K_HEADS + cls] = head;
  w[o + K_HEADS + sp.classes + cls] = w[o + K_HEADS + sp.classes + cls]! + n - 1;
  w[o + K_POOLED_N] = w[o + K_POOLED_N]! + n - 1;
  const fo = o >> 1;
  sp.wf[fo + K_POOLED_F] = sp.wf[fo + K_POOLED_F]! + (n - 1) * size;
  sp.myLock.unlock();
  sp.refills++;
  return va;
}

/** A new area cut from the free tree (space's lock held), or 0. */
export function treeAlloc(sp: SpacePools, size: number, align: number): number {
  return cutFromFreeTree(
    sp.s,
    sp.ctl,
    C_PRELOAD,
    sp.freeHead,
    size,
    align,
    sp.win,
    sp.pageSize,
    sp.exact,
  );
}

/**
 * Links the new area `va` into its busy shard (space's lock held). When the shard's lock
 * cannot be had (its holder died), the range goes back into the free tree, a spare record
 * is made again if the cut took it, and the error is thrown: the space is as before.
 */
export function shardInsert(sp: SpacePools, va: number): void {
  const s = sp.s;
  const k = sp.shardOf(s.f[(va << 3) + F_START]!);
  const lock = sp.shardLocks[k]!;
  try {
    lock.lock(sp.cpu);
  } catch (e) {
    if (mergeOrAddVmapArea(s, sp.freeHead, va, true) === 0) busyOverlap(va);
    if (sp.ctl[C_PRELOAD] === 0) sp.ctl[C_PRELOAD] = s.alloc();
    throw e;
  }
  if (!insertVmapArea(s, sp.w[SHARD_BASE + k]!, va)) busyOverlap(va);
  lock.unlock();
}

function busyOverlap(va: number): never {
  invariantFailure(`area #${va} overlaps a busy area or a free block`);
}
