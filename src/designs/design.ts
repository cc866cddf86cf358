/**
 * The seam between the vmalloc layer and the historical designs of vmap-area management.
 *
 * Holds: VmapDesign, what a design implements (where busy, lazy and free areas live and which
 * locks guard them), and VmapCore, what the designs share and get from the core
 * (src/designs/vmap-areas.ts): vmap_lazy_nr, the TLB generation, purge serialization,
 * counters. A design may keep free space in a tree (5.2+) or only as the gaps between busy
 * areas (<= 5.1): nothing here assumes either.
 * Invariant: a design changes its structures only under the locks it declares; every record
 * it holds is reported by check(), so the core can account for every record.
 * Callers: the core calls the design; src/designs/registry.ts builds designs by name.
 *
 * The life of an area, through the seam:
 *
 *   poolAlloc? --hit--> busy            (a ready area of the exact size: 6.9+ pools)
 *      |miss
 *   allocRange --ok--> busy             (the core retries after a purge, then notifiers)
 *   busy --findUnlink--> unlinked --(core: vmap_lazy_nr += pages)--> insertLazy --> lazy
 *   lazy --purgeLocked (vmap_purge_lock held, TLB flushed once)--> free space or pools
 *   unlinked --freeNow--> free space    (error paths only)
 */

import type { VaStore } from '../kva/vmap-area.js';
import type { Lock } from '../shared/lock.js';
import type { RateLimitedLog } from '../shared/logger.js';

export interface VmapAreasConfig {
  pageSize: number;
  nrCpus: number;
  /** lazy_max_pages(): fls(nrCpus) * 32 MiB / pageSize, or the policy's fixed count. */
  lazyMaxPages: number;
  /** Policies of the designs with vmap nodes (src/mm/config.ts resolves them). */
  nrVmapNodes: number;
  /** Zone size in bytes ('offload2023': node_size); 1 with one node. */
  vmapZoneSize: number;
  /** Most ready areas in one size pool of a node ('nodes'). */
  vmapPoolLimit: number;
  /** Share of each pool a drain decays ('nodes'; the kernel's 1/4). */
  vmapPoolDecay: number;
  /** The vmalloc window (pools serve only requests for exactly this window). */
  vmallocStart: number;
  vmallocEnd: number;
}

/** Why a purge runs: a drain (backlog above lazy_max_pages()) or a reclaim (everything now). */
export const PurgeMode = {
  /** drain_vmap_area_work(): pools decay partially and are refilled. */
  DRAIN: 0,
  /** reclaim_and_purge_vmap_areas(): every pool is emptied, nothing is pooled. */
  RECLAIM: 1,
} as const;
export type PurgeModeValue = (typeof PurgeMode)[keyof typeof PurgeMode];

/** What a design's check() found: the records of each kind, for the whole-state checks. */
export interface DesignCheck {
  busy: number[];
  /** Lazily freed areas not yet purged: their pages must add up to vmap_lazy_nr. */
  lazy: number[];
  /** Free blocks (designs that keep free space as records), else empty. */
  free: number[];
  /** Other areas the design holds (ready areas in pools, ...), by kind. */
  other: { kind: string; ids: number[] }[];
  /** Records that are not areas: list heads, per-CPU spares. */
  own: number[];
  /**
   * Groups of records that together must tile the managed space exactly (free, busy, lazy,
   * pooled), or null when the design keeps no record of free space.
   */
  tiling: number[][] | null;
}

/**
 * Grace periods, for a design that defers the free of its records the way call_rcu() does
 * ('legacy': 4.19's kfree_rcu() of every freed vmap_area). The vmalloc layer's RCU
 * (src/mm/rcu.ts) provides them.
 */
export interface GracePeriods {
  /** The number of a grace period that starts after now (asked for). */
  requestGp(): number;
  /** Grace periods completed. */
  readonly completed: number;
}

/** What the core provides to a design. */
export interface VmapCore {
  readonly s: VaStore;
  readonly ctl: Int32Array;
  /** This cpu's counters (see stat.ts). */
  readonly stat: Float64Array;
  readonly cfg: VmapAreasConfig;
  readonly log: RateLimitedLog;
  /** Takes a lock guarding records, then refreshes this thread's record views. */
  take(lock: Lock, cpu: number): void;
  /** vmap_lazy_nr */
  readonly lazyPages: number;
  /** Subtracts purged pages from vmap_lazy_nr. */
  subLazy(pages: number): void;
  /** The purge's one flush_tlb_kernel_range(): every CPU drops its cached translations. */
  flushTlbAll(): void;
  /** vmap_purge_lock, for design operations that must not run beside a purge (shrinker). */
  readonly purgeMutex: Lock;
  /** The grace periods of the vmalloc layer's RCU; null until that layer sets them. */
  readonly gracePeriods: GracePeriods | null;
}

/**
 * What pcpu_get_vm_areas() needs of a design that keeps free space in a tree (5.2+): the free
 * tree under its lock, the clip and merge-back of a range, and the busy insertion of a carved
 * area. A design without a free tree (<= 5.1) has none, and the vmalloc layer refuses the call.
 */
export interface PcpuSeam {
  /** free_vmap_area_lock */
  readonly lock: Lock;
  /** The free tree + list head (read it only with the lock held). */
  readonly head: number;
  /** Before the lock: makes sure `cpu`'s spare record for a no-edge split is there. */
  preload(cpu: number): void;
  /**
   * With the lock held: clips the range of record `nva` out of free block `fva`; 0, or a
   * negative FIT_ value (src/kva/free-tree.ts) with nothing changed. Kernel: va_clip().
   */
  clipLocked(cpu: number, fva: number, nva: number): number;
  /**
   * With the lock held: merges record `va`'s range back into free space (the record may be
   * consumed); false when it overlaps a free block. Kernel: merge_or_add_vmap_area_augment().
   */
  mergeLocked(va: number): boolean;
  /** Inserts a carved area (range and flags set) into the busy structure, under its own lock. */
  insertBusy(cpu: number, va: number): void;
}

export interface VmapDesign {
  /** The registry name ('global', 'nodes', ...). */
  readonly name: string;
  /** The allocation-failure warning: the 6.11+ text (true) or the older one. */
  readonly modernWarning: boolean;
  /** The drain purges until the backlog is under lazy_max_pages() (<= 6.8), or once (6.9+). */
  readonly drainRepeats: boolean;

  /** Sets up an empty state whose free space is [start, end). Kernel: vmap_init_free_space(). */
  init(start: number, end: number): void;

  /**
   * A ready area from a fast path (the 6.9+ pools), made busy with flags `vaFlags` plus the
   * tag, or 0. Always sets `allocTag`: the va->flags bits the area must carry however it is
   * allocated (the slow path adds them itself).
   */
  poolAlloc(
    cpu: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
    vaFlags: number,
  ): number;
  readonly allocTag: number;

  /**
   * Finds [addr, addr + size) in the window for record `va` (flags already set), sets the
   * record's range and makes it busy. False when no range fits (no area changed; a design's
   * search cache may have, as 'legacy''s free_vmap_cache does on a failed search); the core
   * then purges and retries. Kernel: __alloc_vmap_area() + insert_vmap_area().
   */
  allocRange(
    cpu: number,
    va: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
  ): boolean;

  /** The busy area containing `addr`, or 0. Kernel: find_vmap_area(). */
  find(cpu: number, addr: number): number;

  /**
   * Unlinks and returns the busy area that starts exactly at `addr` (and, with `requireVm`,
   * has a vm_struct). Returns 0 when no busy area contains addr, or -id when area `id`
   * contains it but does not qualify (nothing changed then).
   * Kernel: find_unlink_vmap_area() (which unlinks by containment).
   */
  findUnlink(cpu: number, addr: number, requireVm: boolean): number;

  /** Puts an unlinked area where lazily freed areas wait (the core has counted its pages). */
  insertLazy(cpu: number, va: number): void;

  /** Puts an unlinked area straight back into free space (error paths). Kernel: free_vmap_area(). */
  freeNow(cpu: number, va: number): void;

  /**
   * With vmap_purge_lock held: returns every lazy area to free space (or pools), subtracting
   * their pages from vmap_lazy_nr and flushing once. True when anything was purged.
   */
  purgeLocked(cpu: number, mode: PurgeModeValue): boolean;

  /** Busy areas, in the order vmallocinfo walks them. */
  busyIds(): number[];
  /** Lazy areas, in the order vmallocinfo prints them. */
  lazyIds(): number[];
  readonly busyCount: number;
  readonly lazyCount: number;
  /** Free blocks (0 for a design that keeps none). */
  readonly freeCount: number;
  /** Areas held ready in pools. */
  pooledCount(): number;

  /** Checks every structure; returns the records of each kind. */
  check(start: number, end: number): DesignCheck;

  /** Every lock of the design with its lock class name (for lock_stat). */
  locks(): readonly Lock[];

  /** The free-tree access of pcpu_get_vm_areas(); absent in designs without a free tree. */
  readonly pcpu?: PcpuSeam;

  /**
   * Designs that free their records after a grace period ('legacy', as 4.19's kfree_rcu()):
   * has `cpu` records whose grace period is over (cheap: every call's exit asks)?
   */
  rcuDue?(cpu: number): boolean;
  /** Frees a batch of `cpu`'s records whose grace period is over. Kernel: rcu_do_batch(). */
  invokeRcu?(cpu: number): number;
}
