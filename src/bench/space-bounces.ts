/**
 * The load-independent part of `bench space`: how often an alloc+free pair takes a lock whose
 * previous holder was the other worker (lock_stat's acquisition bounces: that lock's cache
 * line, and as a rule the data it guards, had to come from the other core). Two workers of
 * one space are played by two attached instances (cpu 1 and 2) in this thread, taking turns
 * pair by pair (the finest interleaving real workers can have), on the workload of
 * space-worker.ts; the counts do not depend on timing, so a shared, loaded machine prints the
 * same figures as a quiet one.
 *
 * Holds: measureSpaceBounces() and its result type.
 * Callers: src/bench/space.ts.
 */

import { VmapSpace } from '../kva/vmap-space.js';
import type { PoolTrips } from '../kva/space-pools.js';
import { LockTable } from '../shared/lock.js';

export interface LockBounces {
  /** Acquisitions per alloc+free pair (each worker's pairs counted). */
  acquisitions: number;
  /** Acquisitions whose previous holder was the other worker, per pair. */
  bounces: number;
}

export interface SpaceBounces {
  mode: 'single-lock' | 'pooled';
  /** By lock group: the space's lock, the caches' locks, the busy shards' locks. */
  groups: Record<'space' | 'caches' | 'shards', LockBounces>;
  /**
   * Pooled: why the space's lock was taken, per pair (VmapSpace.poolTrips()): pool misses cut
   * from the free tree (of which refills), purges under it; and the purges at the lazy
   * threshold that needed only the cache's lock. null for the single-lock space.
   */
  trips: PoolTrips | null;
}

const PAGE = 4096;

/** The counts for `mode` ('single-lock' or 'pooled'), over `pairs` pairs per worker. */
export function measureSpaceBounces(
  mode: 'single-lock' | 'pooled',
  pairs: number,
  live: number,
  maxPages: number,
): SpaceBounces {
  const first = new VmapSpace({
    start: 0,
    end: 2 ** 36,
    pageSize: PAGE,
    concurrent: true,
    ...(mode === 'pooled' ? { pools: true } : {}),
  });
  const ws = [1, 2].map((cpu, i) => {
    const sp = VmapSpace.attach(first.handle, { cpu });
    let x = (0x5eed + i * 0x9e3779b1) >>> 0 || 1;
    const rnd = (n: number): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const ring = new Float64Array(live);
    for (let k = 0; k < live; k++) ring[k] = sp.alloc((1 + rnd(maxPages)) * PAGE) ?? -1;
    return { sp, rnd, ring, kept: [] as number[], step: 0 };
  });
  const pair = (w: (typeof ws)[number]): void => {
    const k = w.rnd(live);
    const old = w.ring[k]!;
    if (++w.step % 64 === 0 && w.kept.length < 512) w.kept.push(old);
    else if (old >= 0) w.sp.free(old);
    w.ring[k] = w.sp.alloc((1 + w.rnd(maxPages)) * PAGE) ?? -1;
  };
  const warm = Math.min(pairs, 100_000);
  for (let n = 0; n < warm; n++) for (const w of ws) pair(w);
  const table = new LockTable(first.handle.locks!);
  const trips0 = ws.map((w) => w.sp.poolTrips());
  table.resetStats();
  table.setStats(true);
  for (let n = 0; n < pairs; n++) for (const w of ws) pair(w);
  table.setStats(false);
  let trips: PoolTrips | null = null;
  if (mode === 'pooled') {
    trips = { slowAllocs: 0, refills: 0, lockedPurges: 0, quickPurges: 0 };
    ws.forEach((w, i) => {
      const a = trips0[i]!;
      const b = w.sp.poolTrips()!;
      for (const k of Object.keys(trips!) as (keyof PoolTrips)[])
        trips![k] += (b[k] - a[k]) / (2 * pairs);
    });
  }
  first.check();
  // By slot: the space's lock is in the list twice (the space's and its pools' handle on it).
  const locks = new Map(first.locks().map((l) => [l.index, l]));
  const group = (name: string): LockBounces => {
    let acq = 0;
    let b = 0;
    for (const l of locks.values()) {
      if (l.name !== name) continue;
      const s = table.stat(l.index, name);
      acq += s.acquisitions;
      b += s.acqBounces;
    }
    return { acquisitions: acq / (2 * pairs), bounces: b / (2 * pairs) };
  };
  return {
    mode,
    groups: {
      space: group('vmap_space_lock'),
      caches: group('vmap_space_cache_lock'),
      shards: group('vmap_space_busy_lock'),
    },
    trips,
  };
}
