/**
 * The cold side of VmapSpace: its statistics, its lists as arrays of ranges, check(), and the
 * recovery's rebuild, for the plain space and the pooled one. Product code, never on a hot
 * path: these allocate, and a pooled space's views take every lock of the space.
 *
 * Holds: functions over the parts of a space (SpaceParts: its record store, tree heads,
 * control and statistics words, pools), so that vmap-space.ts keeps the operations alone.
 * Invariant: everything here but rebuildSpace() only reads; the plain space's views take its
 * lock (SpaceLock.locked), the pooled one's all the locks (withAllLocks), so no view sees a
 * range between two places.
 * Callers: VmapSpace (src/kva/vmap-space.ts).
 */

import { checkSpace } from './check.js';
import { findVmapArea, insertVmapArea } from './busy-tree.js';
import { mergeOrAddVmapArea } from './free-tree.js';
import { rbListCount, rbListFirst, rbListInit, rbListNext, rbRootOf } from './rb-list.js';
import type { SpacePools } from './space-pools.js';
import { busyIds, checkPooledSpace, poolCounts, withAllLocks } from './space-pools-check.js';
import type { VaStore } from './vmap-area.js';
import type { SpaceLock } from './vmap-space-lock.js';
import { C_PRELOAD, S_BUSY_BYTES } from './vmap-space-handle.js';
import type { Range, VmapSpaceStats } from './vmap-space-options.js';

/** What the views read of a space (its fields, named as VmapSpace names them). */
export interface SpaceParts {
  readonly s: VaStore;
  readonly start: number;
  readonly end: number;
  readonly freeHead: number;
  readonly busyHead: number;
  readonly ctl: Int32Array;
  readonly stat: Float64Array;
}

/** stats(): the plain space's under its lock, the pooled one's under all its locks. */
export function spaceStats(p: SpaceParts, pools: SpacePools | null, lk: SpaceLock): VmapSpaceStats {
  return pools !== null ? pooledStats(p, pools) : lk.locked(() => plainStats(p));
}

/** The plain space's statistics (its lock held). */
function plainStats(p: SpaceParts): VmapSpaceStats {
  const s = p.s;
  const busyBytes = p.stat[S_BUSY_BYTES]!;
  return {
    size: p.end - p.start,
    busyCount: rbListCount(s, p.busyHead),
    busyBytes,
    freeCount: rbListCount(s, p.freeHead),
    freeBytes: p.end - p.start - busyBytes,
    largestFree: s.smax(rbRootOf(s, p.freeHead)),
    records: s.live,
    capacity: s.capacity,
    lazyCount: 0,
    lazyBytes: 0,
    pooledCount: 0,
    pooledBytes: 0,
  };
}

/** The pooled space's statistics, under all its locks. */
function pooledStats(p: SpaceParts, pools: SpacePools): VmapSpaceStats {
  return withAllLocks(pools, () => {
    const s = p.s;
    const counts = poolCounts(pools);
    return {
      size: p.end - p.start,
      ...counts,
      freeCount: rbListCount(s, p.freeHead),
      freeBytes: p.end - p.start - counts.busyBytes,
      largestFree: s.smax(rbRootOf(s, p.freeHead)),
      records: s.live,
      capacity: s.capacity,
    };
  });
}

/** The free blocks as ranges, in address order, read under the lock. */
export function freeRanges(p: SpaceParts, lk: SpaceLock): Range[] {
  return lk.locked(() => listRanges(p.s, p.freeHead));
}

/** The live areas as ranges, in address order, read under the lock (all the locks: pools). */
export function busyRanges(p: SpaceParts, pools: SpacePools | null, lk: SpaceLock): Range[] {
  return pools !== null ? pooledBusyRanges(pools) : lk.locked(() => listRanges(p.s, p.busyHead));
}

/** The list under head `h` as ranges, in address order (the caller holds the lock). */
function listRanges(s: VaStore, h: number): Range[] {
  const out: Range[] = [];
  for (let x = rbListFirst(s, h); x !== 0; x = rbListNext(s, h, x))
    out.push({ start: s.start(x), end: s.end(x) });
  return out;
}

/** The pooled space's live areas in address order, under all its locks. */
function pooledBusyRanges(pools: SpacePools): Range[] {
  const s = pools.s;
  return withAllLocks(pools, () =>
    busyIds(pools).map((x) => ({ start: s.start(x), end: s.end(x) })),
  );
}

/** find(): the live area that contains `addr`, or null (read under the lock). */
export function findRange(
  p: SpaceParts,
  pools: SpacePools | null,
  lk: SpaceLock,
  addr: number,
): Range | null {
  if (pools !== null) {
    const va = pools.findContaining(addr);
    return va === 0 ? null : { start: pools.s.start(va), end: pools.s.end(va) };
  }
  return lk.locked(() => {
    const s = p.s;
    const va = findVmapArea(s, p.busyHead, addr);
    return va === 0 ? null : { start: s.start(va), end: s.end(va) };
  });
}

/** check(): the plain space's under its lock; the pooled one's under all its locks. */
export function checkParts(p: SpaceParts, pools: SpacePools | null, lk: SpaceLock): void {
  if (pools !== null) {
    withAllLocks(pools, () =>
      checkPooledSpace(pools, p.busyHead, p.start, p.end, p.ctl[C_PRELOAD]!),
    );
    return;
  }
  lk.locked(() =>
    checkSpace(
      p.s,
      p.freeHead,
      p.busyHead,
      p.start,
      p.end,
      p.stat[S_BUSY_BYTES]!,
      p.ctl[C_PRELOAD]!,
    ),
  );
}

/**
 * Recovery's rebuild (every other thread outside the space): the plain space made again with
 * exactly the live areas `keep` (sorted, disjoint, inside), every other record free.
 */
export function rebuildSpace(p: SpaceParts, keep: readonly { start: number; end: number }[]): void {
  const s = p.s;
  s.refreshViews();
  const used = new Uint8Array(s.highWater);
  used[p.freeHead] = 1;
  used[p.busyHead] = 1;
  s.rebuildFree(used);
  p.ctl[C_PRELOAD] = 0;
  rbListInit(s, p.freeHead);
  rbListInit(s, p.busyHead);
  const addFree = (start: number, end: number): void => {
    const va = s.alloc();
    s.setRange(va, start, end);
    mergeOrAddVmapArea(s, p.freeHead, va, true);
  };
  let at = p.start;
  let busy = 0;
  for (const r of keep) {
    if (r.start > at) addFree(at, r.start);
    const va = s.alloc();
    s.setRange(va, r.start, r.end);
    insertVmapArea(s, p.busyHead, va);
    busy += r.end - r.start;
    at = r.end;
  }
  if (at < p.end) addFree(at, p.end);
  p.stat[S_BUSY_BYTES] = busy;
}
