/**
 * The cold side of a pooled VmapSpace: its counters summed over the caches and shards, its
 * busy areas in address order, and check(): product code, never on hot paths.
 *
 * Invariant checked: the free tree (augmented, coalesced), every busy shard (a valid tree
 * whose areas start in that shard's zones), the lazy lists, back lists and pools (acyclic stacks, pools
 * holding only their size, every counter equal to what the lists hold) and the space's own
 * busy tree (empty: a pooled space keeps its areas in the shards) together tile [start, end),
 * the busy bytes add up, and every record is accounted for.
 * Callers: VmapSpace (src/kva/vmap-space.ts) when the space has pools.
 */

import { invariant } from '../debug.js';
import { checkCoalesced, checkRbList, checkStore, checkTiling } from './check.js';
import { rbListCount, rbListFirst, rbListNext } from './rb-list.js';
import {
  K_BACK,
  K_BACK_F,
  K_BACK_N,
  K_BUSY_F,
  K_HEADS,
  K_LAZY,
  K_LAZY_F,
  K_LAZY_N,
  K_POOLED_F,
  K_POOLED_N,
  SHARDS,
} from './space-pools-layout.js';
import type { SpacePools } from './space-pools.js';

const S_BUSY_BYTES = 0;

export interface PoolCounts {
  busyCount: number;
  busyBytes: number;
  lazyCount: number;
  lazyBytes: number;
  pooledCount: number;
  pooledBytes: number;
}

/** The counters, summed without locks (as the plain space's getters read them). */
export function poolCounts(p: SpacePools): PoolCounts {
  const c: PoolCounts = {
    busyCount: 0,
    busyBytes: p.stat[S_BUSY_BYTES]!,
    lazyCount: 0,
    lazyBytes: 0,
    pooledCount: 0,
    pooledBytes: 0,
  };
  for (let k = 0; k < SHARDS; k++) c.busyCount += rbListCount(p.s, p.shardHead(k));
  for (let n = 0; n < p.caches; n++) {
    const o = p.cacheBase(n);
    const fo = o >> 1;
    c.busyBytes += p.wf[fo + K_BUSY_F]!;
    // A cache's back list (decayed, waiting for the tree) counts as lazy: freed, not reusable.
    c.lazyCount += Atomics.load(p.w, o + K_LAZY_N) + Atomics.load(p.w, o + K_BACK_N);
    c.lazyBytes += p.wf[fo + K_LAZY_F]! + p.wf[fo + K_BACK_F]!;
    c.pooledCount += Atomics.load(p.w, o + K_POOLED_N);
    c.pooledBytes += p.wf[fo + K_POOLED_F]!;
  }
  return c;
}

/** Runs `fn` holding every lock of the space, in the lock order. */
export function withAllLocks<T>(p: SpacePools, fn: () => T): T {
  const taken = [];
  try {
    for (const l of [p.spaceLock, ...p.cacheLocks, ...p.shardLocks]) {
      l.lock(p.cpu);
      taken.push(l);
    }
    p.s.refreshViews();
    return fn();
  } finally {
    for (let j = taken.length - 1; j >= 0; j--) taken[j]!.unlock();
  }
}

/** Record ids of the busy areas in address order (caller holds the shard locks). */
export function busyIds(p: SpacePools): number[] {
  const s = p.s;
  const out: number[] = [];
  for (let k = 0; k < SHARDS; k++) {
    const h = p.shardHead(k);
    for (let x = rbListFirst(s, h); x !== 0; x = rbListNext(s, h, x)) out.push(x);
  }
  return out.sort((a, b) => s.start(a) - s.start(b));
}

/** A stack linked through `next` from `head`: its ids (stops at a cycle). */
function stack(p: SpacePools, head: number, name: string): number[] {
  const out: number[] = [];
  for (let x = head; x !== 0; x = p.s.next(x)) {
    invariant(x > 0 && x < p.s.highWater, () => `${name}: link to record #${x} out of range`);
    invariant(out.length < p.s.highWater, () => `${name}: cycle`);
    out.push(x);
  }
  return out;
}

function bytesOf(p: SpacePools, ids: readonly number[]): number {
  let n = 0;
  for (const x of ids) n += p.s.size(x);
  return n;
}

/** check() of a pooled space (caller holds every lock: withAllLocks). */
export function checkPooledSpace(
  p: SpacePools,
  busyHead: number,
  start: number,
  end: number,
  preload: number,
): void {
  const s = p.s;
  const free = checkRbList(s, p.freeHead, true, 'free tree', start, end);
  checkCoalesced(s, free, 'free tree');
  const own = checkRbList(s, busyHead, false, 'busy tree', start, end);
  invariant(
    own.length === 0,
    () => `busy tree: a pooled space keeps it empty, it has ${own.length}`,
  );
  const lists: number[][] = [free];
  const heads = [p.freeHead, busyHead];
  let busyBytes = 0;
  for (let k = 0; k < SHARDS; k++) {
    const ids = checkRbList(s, p.shardHead(k), false, `busy shard ${k}`, start, end);
    for (const x of ids)
      invariant(p.shardOf(s.start(x)) === k, () => `busy shard ${k} holds area #${x} of another`);
    busyBytes += bytesOf(p, ids);
    lists.push(ids);
    heads.push(p.shardHead(k));
  }
  let cacheBusy = p.stat[S_BUSY_BYTES]!;
  for (let c = 0; c < p.caches; c++) {
    const o = p.cacheBase(c);
    const fo = o >> 1;
    const name = `cache ${c}`;
    cacheBusy += p.wf[fo + K_BUSY_F]!;
    const lazy = stack(p, p.w[o + K_LAZY]!, `${name} lazy list`);
    invariant(lazy.length === p.w[o + K_LAZY_N], () => `${name}: lazy count is wrong`);
    invariant(bytesOf(p, lazy) === p.wf[fo + K_LAZY_F], () => `${name}: lazy bytes are wrong`);
    lists.push(lazy);
    const back = stack(p, p.w[o + K_BACK]!, `${name} back list`);
    invariant(back.length === p.w[o + K_BACK_N], () => `${name}: back-list count is wrong`);
    invariant(bytesOf(p, back) === p.wf[fo + K_BACK_F], () => `${name}: back-list bytes are wrong`);
    lists.push(back);
    let pooled = 0;
    let pooledBytes = 0;
    for (let k = 0; k < p.classes; k++) {
      const ids = stack(p, p.w[o + K_HEADS + k]!, `${name} pool ${k}`);
      for (const x of ids)
        invariant(
          s.size(x) === (k + 1) * p.pageSize,
          () => `${name} pool ${k}: #${x} has another size`,
        );
      invariant(
        ids.length === p.w[o + K_HEADS + p.classes + k],
        () => `${name} pool ${k}: length is wrong`,
      );
      pooled += ids.length;
      pooledBytes += bytesOf(p, ids);
      lists.push(ids);
    }
    invariant(pooled === p.w[o + K_POOLED_N], () => `${name}: pooled count is wrong`);
    invariant(pooledBytes === p.wf[fo + K_POOLED_F], () => `${name}: pooled bytes are wrong`);
  }
  invariant(
    cacheBusy === busyBytes,
    () => `busy bytes counted ${cacheBusy}, areas hold ${busyBytes}`,
  );
  checkTiling(s, lists, start, end, 'space');
  const inUse = [...heads, ...lists.flat()];
  if (preload !== 0) inUse.push(preload);
  checkStore(s, inUse, 'records');
}
