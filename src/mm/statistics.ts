/**
 * stats(): the subsystem's counters and sizes in one plain object.
 *
 * Holds: VmallocStats and its assembly from the per-cpu counter blocks, the design's counts,
 * the page allocator and the record stores.
 * Callers: the façade (src/api/vmalloc.ts), the CLI and benchmarks.
 */

import { VaStat, sumStats } from '../designs/stat.js';
import { type RcuStats, rcuStats } from './kvfree-rcu.js';
import type { VmContext } from './shared-state.js';
import { VbCount } from './vmap-block.js';

/** kvfree_rcu's counters (rcuPending: queued areas not yet freed, still busy) are included. */
export interface VmallocStats extends RcuStats {
  design: string;
  nrCpus: number;
  pageSize: number;
  busyAreas: number;
  freeBlocks: number;
  lazyAreas: number;
  /** vmap_lazy_nr */
  lazyPages: number;
  /** lazy_max_pages() */
  lazyMaxPages: number;
  purges: number;
  purgedAreas: number;
  /** Purges started by a drain (vmap_lazy_nr above lazy_max_pages()). */
  drains: number;
  /**
   * Helper workers the kernel's purge would have used, summed over purges
   * (clamp(vmap_lazy_nr / lazy_max_pages(), 1, nodes to purge) - 1); here the purging thread
   * does their nodes itself.
   */
  purgeHelpers: number;
  tlbFlushes: number;
  allocFailures: number;
  allocRetries: number;
  /** Calls of purge notifiers (after an allocation failed even after a purge). */
  notifierCalls: number;
  /** nodes design: allocations served from a node pool, and those that missed. */
  poolHits: number;
  poolMisses: number;
  /** nodes design: purged areas put into pools, areas in pools now, areas decayed out. */
  poolRefills: number;
  pooledAreas: number;
  decayed: number;
  pagesTotal: number;
  pagesUsed: number;
  /** Page-table pages (all levels) allocated so far; they are never freed, as in the kernel. */
  pageTablePages: number;
  vmStructs: number;
  vmapAreaRecords: number;
  /** vm_map_ram: live vmap blocks, and those made, freed (fully dirty) and purged (fragmented). */
  vmapBlocks: number;
  vmapBlocksCreated: number;
  vmapBlocksFreed: number;
  vmapBlocksPurged: number;
}

export function collectStats(ctx: VmContext): VmallocStats {
  const st = sumStats(new Float64Array(ctx.handle.stat));
  const d = ctx.areas.design;
  return {
    design: ctx.config.design,
    nrCpus: ctx.config.nrCpus,
    pageSize: ctx.pageSize,
    busyAreas: d.busyCount,
    freeBlocks: d.freeCount,
    lazyAreas: d.lazyCount,
    lazyPages: ctx.areas.lazyPages,
    lazyMaxPages: ctx.config.lazyMaxPages,
    purges: st[VaStat.PURGES]!,
    purgedAreas: st[VaStat.PURGED_AREAS]!,
    drains: st[VaStat.DRAINS]!,
    purgeHelpers: st[VaStat.PURGE_HELPERS]!,
    tlbFlushes: st[VaStat.TLB_FLUSHES]!,
    allocFailures: st[VaStat.ALLOC_FAILURES]!,
    allocRetries: st[VaStat.ALLOC_RETRIES]!,
    notifierCalls: st[VaStat.NOTIFIER_CALLS]!,
    poolHits: st[VaStat.POOL_HITS]!,
    poolMisses: st[VaStat.POOL_MISSES]!,
    poolRefills: st[VaStat.POOL_REFILLS]!,
    pooledAreas: d.pooledCount(),
    decayed: st[VaStat.DECAYED]!,
    pagesTotal: ctx.frames.nrFrames,
    pagesUsed: ctx.frames.used,
    pageTablePages: ctx.pageTable.tables,
    vmStructs: ctx.vms.live,
    vmapAreaRecords: ctx.s.live,
    vmapBlocks: ctx.vb.count(VbCount.BLOCKS),
    vmapBlocksCreated: ctx.vb.count(VbCount.CREATED),
    vmapBlocksFreed: ctx.vb.count(VbCount.FREED),
    vmapBlocksPurged: ctx.vb.count(VbCount.PURGED),
    ...rcuStats(ctx),
  };
}
