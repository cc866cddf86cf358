/**
 * The purges of a pooled VmapSpace (space-pools.ts): lazy ranges to the pools of their sizes,
 * the decay of the pools (a quarter of each at every purge, the kernel's rule), what leaves
 * the caches merged back into the free tree; the purge at the lazy threshold under the
 * cache's lock alone when it can, with its decay waiting on the cache's back list for the
 * worker's next trip under the space's lock.
 *
 * Holds: purgePools() (SpacePools.purge()), purgeOwn(), returnBack(), purgeLocked().
 * Invariant: every move between two places happens with the locks of both held (a chain on
 * its way to the tree is under the space's lock), so check() never sees a range in flight.
 * Callers: SpacePools (the threshold purge in free(), purge()), space-pools-slow.ts (the
 * full purge before a retry, the back list at a trip).
 *
 * Kernel: __purge_vmap_area_lazy() with decay_va_pool_node() and the pools' refill from the
 * purge list (6.9+).
 */

import { invariantFailure } from '../debug.js';
import { mergeOrAddVmapArea } from './free-tree.js';
import {
  K_BACK,
  K_BACK_F,
  K_BACK_N,
  K_HEADS,
  K_LAZY,
  K_LAZY_F,
  K_LAZY_N,
  K_POOLED_F,
  K_POOLED_N,
} from './space-pools-layout.js';
import type { SpacePools } from './space-pools.js';
import { F_END, F_START, I_NEXT } from './vmap-area.js';

/**
 * Runs a purge: of every cache when `full`, else of this worker's cache alone; returns the
 * ranges that went back to the free tree. A purge at the lazy threshold takes only the
 * cache's lock when it can (purgeOwn), else the space's lock.
 */
export function purgePools(sp: SpacePools, full: boolean): number {
  if (!full && purgeOwn(sp)) {
    sp.quickPurges++;
    return 0;
  }
  sp.lockedPurges++;
  sp.spaceLock.lock(sp.cpu);
  try {
    sp.s.refreshViews();
    return purgeLocked(sp, full);
  } finally {
    sp.spaceLock.unlock();
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
export function purgeOwn(sp: SpacePools): boolean {
  const s = sp.s;
  const w = sp.w;
  const wf = sp.wf;
  const cls = sp.classes;
  const page = sp.pageSize;
  const o = sp.mine;
  const fo = o >> 1;
  if (Atomics.load(w, o + K_BACK_N) !== 0) return false;
  sp.myLock.lock(sp.cpu);
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
    sp.myLock.unlock();
  }
}

/** This cache's back list into the free tree (space's lock held): see purgeOwn(). */
export function returnBack(sp: SpacePools): void {
  const w = sp.w;
  const o = sp.mine;
  sp.myLock.lock(sp.cpu);
  let chain: number;
  try {
    chain = w[o + K_BACK]!;
    w[o + K_BACK] = 0;
    w[o + K_BACK_N] = 0;
    sp.wf[(o >> 1) + K_BACK_F] = 0;
  } finally {
    sp.myLock.unlock();
  }
  mergeChain(sp, chain);
}

/** Merges a chain of ranges linked through `next` into the free tree (space's lock held). */
export function mergeChain(sp: SpacePools, chain: number): void {
  const s = sp.s;
  while (chain !== 0) {
    const next = s.i[(chain << 4) + I_NEXT]!;
    s.i[(chain << 4) + I_NEXT] = 0;
    if (mergeOrAddVmapArea(s, sp.freeHead, chain, true) === 0)
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
export function purgeLocked(sp: SpacePools, full: boolean): number {
  const s = sp.s;
  const w = sp.w;
  const wf = sp.wf;
  const cls = sp.classes;
  const page = sp.pageSize;
  let out = 0;
  const mine = sp.cpu & (sp.caches - 1);
  for (let c = full ? 0 : mine; c < (full ? sp.caches : mine + 1); c++) {
    const o = sp.cacheBase(c);
    const fo = o >> 1;
    if (
      Atomics.load(w, o + K_LAZY_N) === 0 &&
      Atomics.load(w, o + K_POOLED_N) === 0 &&
      Atomics.load(w, o + K_BACK_N) === 0
    )
      continue;
    const lock = sp.cacheLocks[c]!;
    lock.lock(sp.cpu);
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
    mergeChain(sp, chain);
  }
  return out;
}
