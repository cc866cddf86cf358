/**
 * The vmap blocks' purges: purge_fragmented_block(s) and _vm_unmap_aliases().
 *
 * Holds: purgeFragmentedAll() (the reclaim's forced purge of every CPU's blocks with no live
 * mapping, or the threshold-limited one) and unmapAliases() (every hashed block purged or its
 * dirty range flushed, then the lazy areas purged).
 * Invariant: a purged block has no live mapping and is freed once its locks are dropped;
 * lock order as vmap-block.ts says (vmap_purge_lock, hash, vbq, block).
 * Callers: the core's reclaim (VmapAreas.fragmentedPurge, set in shared-state.ts),
 * vm-map-ram.ts (vm_unmap_aliases).
 *
 * Kernel: purge_fragmented_block(), purge_fragmented_blocks_allcpus(), _vm_unmap_aliases().
 */

import { PurgeMode } from '../designs/design.js';
import { S_VB_PURGED, stepHook } from '../shared/step-hook.js';
import type { VmapBlocks } from './vmap-block.js';
import {
  type AliasFlush,
  QUEUE_STRIDE,
  VbCount,
  W_CPU,
  W_DIRTY,
  W_DMAX,
  W_DMIN,
  W_FNEXT,
  W_FREE,
  W_HNEXT,
  W_KEY,
  W_LOCK,
  W_ONLIST,
} from './vmap-block-layout.js';

/**
 * Kernel: purge_fragmented_block(), with the owner's vbq lock and the block lock held: a
 * block with no live mapping left, not yet freed, and (unless `force`) less than a quarter
 * still fresh, becomes fully dirty and leaves its free list; true when it did (the caller
 * frees it once the locks are dropped).
 */
function purgeFragmented(vb: VmapBlocks, id: number, b: number, force: boolean): boolean {
  const i = vb.arena.i;
  const bits = vb.geo.bits;
  const free = i[b + W_FREE]!;
  const dirty = i[b + W_DIRTY]!;
  if (free + dirty !== bits || dirty === bits) return false;
  if (!force && free >= vb.geo.purgeThreshold) return false;
  i[b + W_FREE] = 0;
  i[b + W_DIRTY] = bits;
  i[b + W_DMIN] = 0;
  i[b + W_DMAX] = bits;
  if (stepHook !== null) stepHook(S_VB_PURGED);
  if (i[b + W_ONLIST] === 1) vb.unlist(id, b);
  return true;
}

/**
 * Every CPU's fragmented blocks, purged (`force`: whatever their fresh space) and freed;
 * how many. Kernel: purge_fragmented_blocks_allcpus(), from reclaim_and_purge_vmap_areas().
 */
export function purgeFragmentedAll(vb: VmapBlocks, force: boolean): number {
  const cpu = vb.cpu;
  const purged: number[] = [];
  for (let c = 0; c < vb.cfg.nrCpus; c++) {
    const q = vb.queueLocks[c]!;
    q.lock(cpu);
    let id = vb.ctl[vb.decl.queues + c * QUEUE_STRIDE]!;
    while (id !== 0) {
      const b = vb.at(id);
      const i = vb.arena.i;
      const next = i[b + W_FNEXT]!;
      vb.blockLock.lock(cpu, i, b + W_LOCK);
      if (purgeFragmented(vb, id, b, force)) purged.push(id);
      vb.blockLock.unlock(i, b + W_LOCK);
      id = next;
    }
    q.unlock();
  }
  for (const id of purged) vb.freeBlock(id);
  Atomics.add(vb.ctl, vb.decl.counters + VbCount.PURGED, purged.length);
  return purged.length;
}

/**
 * Kernel: _vm_unmap_aliases(ULONG_MAX, 0, 0): with vmap_purge_lock, every block of every
 * hash either purged (fragmented, below the threshold) or its dirty range added to the
 * flush range and reset; then the purged blocks freed and the lazy areas purged, which
 * flushes; else one flush of the range if any block had one.
 */
export function unmapAliases(vb: VmapBlocks): AliasFlush {
  const cpu = vb.cpu;
  const bits = vb.geo.bits;
  const ps = vb.cfg.pageSize;
  const areas = vb.deps.areas;
  let start = Infinity;
  let end = 0;
  let flush = false;
  const purged: number[] = [];
  areas.purgeMutex.lock(cpu);
  try {
    const d = vb.decl;
    for (let h = 0; h < d.nHash; h++) {
      const hl = vb.hashLocks[h]!;
      hl.lock(cpu);
      for (let k = 0; k < d.buckets; k++) {
        let id = vb.ctl[d.heads + h * d.buckets + k]!;
        while (id !== 0) {
          const b = vb.at(id);
          const i = vb.arena.i;
          const q = vb.queueLocks[i[b + W_CPU]!]!;
          q.lock(cpu);
          vb.blockLock.lock(cpu, i, b + W_LOCK);
          if (purgeFragmented(vb, id, b, false)) {
            purged.push(id);
          } else if (i[b + W_DMAX] !== 0 && i[b + W_DIRTY] !== bits) {
            const va = i[b + W_KEY]! * vb.geo.blockSize;
            start = Math.min(start, va + i[b + W_DMIN]! * ps);
            end = Math.max(end, va + i[b + W_DMAX]! * ps);
            i[b + W_DMIN] = bits;
            i[b + W_DMAX] = 0;
            flush = true;
          }
          vb.blockLock.unlock(i, b + W_LOCK);
          q.unlock();
          id = i[b + W_HNEXT]!;
        }
      }
      hl.unlock();
    }
    for (const id of purged) vb.freeBlock(id);
    Atomics.add(vb.ctl, d.counters + VbCount.PURGED, purged.length);
    const purgedLazy = areas.design.purgeLocked(cpu, PurgeMode.DRAIN);
    if (!purgedLazy && flush) areas.flushTlbAll();
    return { start, end, flushed: purgedLazy || flush };
  } finally {
    areas.purgeMutex.unlock();
  }
}
