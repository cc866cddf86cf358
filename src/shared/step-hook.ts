/**
 * Fault-injection points: a hook that tests install to stop a thread at a chosen step of an
 * operation (then terminate its worker there), so that every step of alloc, free and purge is
 * covered by a kill deterministically, not only by chance.
 *
 * Holds: STEPS (the named steps, in the order their numbers are given), step numbers as
 * constants (S_*), stepHook and setStepHook().
 * Invariant: with no hook installed (every production thread) a step point costs one load of
 * a module binding and a compare; the hook is per thread (module state), so installing it in
 * a test's worker leaves every other thread alone.
 * Callers: the operations' step points (src/designs/, src/kva/, src/mm/, src/shared/: alloc,
 * free, purge, the caches, the nodes' pools, vmap, vm_map_ram and its vmap blocks,
 * kvfree_rcu, the percpu allocator and pcpu_get_vm_areas); the
 * fault-injection test (test/workers/recovery-fault.test.ts) through setStepHook().
 */

/** The steps, by number (index). "(locked)" steps run with a lock held. */
export const STEPS = [
  '',
  'alloc: record taken from the cpu cache',
  'alloc: range found and busy',
  'alloc: free tree clipped (locked: free_vmap_area_lock)',
  'alloc: busy tree linked (locked: busy lock)',
  'vmalloc: vm_struct taken',
  'vmalloc: area reserved, vm_struct not attached',
  'vmalloc: vm_struct attached',
  'vmalloc: pages array taken',
  'vmalloc: frames allocated, not mapped',
  'vmalloc: pages mapped, still VM_UNINITIALIZED',
  'vmalloc: complete, not returned',
  'free: area unlinked from the busy tree (locked: busy lock)',
  'free: area unlinked',
  'free: pages unmapped',
  'free: frames freed',
  'free: pages array freed',
  'free: vm_struct freed',
  'free: vmap_lazy_nr raised, area not lazy yet',
  'free: lazy list linked (locked: lazy lock)',
  'free: area lazy',
  'purge: lazy list detached',
  'purge: merging into the free tree (locked: free_vmap_area_lock)',
  'purge: merged, vmap_lazy_nr not lowered',
  'record cache: refilling (locked: vmap_area_cachep)',
  'record cache: draining (locked: vmap_area_cachep)',
  'frames: refilling the cpu list (locked: zone->lock)',
  'frames: draining the cpu list (locked: zone->lock)',
  'free tree: merge in progress (locked: free_vmap_area_lock)',
  'nodes: pool taken from (locked: pool_lock)',
  'nodes: purge refilling a pool (locked: pool_lock)',
  'alloc: free block split, left part not linked (locked: free_vmap_area_lock)',
  'vmap: pages mapped, area not returned',
  'free: pages of a nested pages array freed',
  'vm_map_ram: block pages carved, count not set (locked: vb->lock)',
  'vm_map_ram: new block hashed, not on the free list (locked: xa_lock)',
  'vm_map_ram: frames counted, pages not mapped',
  'vm_unmap_ram: mapping cleared (locked: vb->lock)',
  'vm_unmap_ram: pages unmapped, not counted dirty',
  'vm_unmap_ram: pages counted dirty (locked: vb->lock)',
  'vm_unmap_ram: block out of the hash, area not freed',
  'vm_unmap_ram: large area unlinked, pages mapped',
  'purge: fragmented vmap block purged (locked: vbq->lock, vb->lock)',
  'kvfree_rcu: area flagged pending, not queued (locked: krcp->lock)',
  'kvfree_rcu: batch being freed (locked: krcp->lock)',
  'percpu: page mapped in some units, not marked populated (locked: pcpu_alloc_mutex)',
  'percpu: pages populated, allocation not marked (locked: pcpu_alloc_mutex)',
  'percpu: allocation marked, not zeroed (locked: pcpu_alloc_mutex)',
  'percpu: chunk areas busy, chunk not initialised (locked: pcpu_alloc_mutex)',
  'percpu: page unmapped in some units, still marked populated (locked: pcpu_alloc_mutex)',
  'percpu: allocation cleared, chunk not destroyed (locked: pcpu_alloc_mutex)',
  'percpu: chunk depopulated, areas not freed (locked: pcpu_alloc_mutex)',
  'percpu: chunk areas partly freed (locked: pcpu_alloc_mutex)',
  'pcpu_get_vm_areas: some areas busy, others not',
  'percpu: allocation map bits set, bound bit not (locked: pcpu_alloc_mutex)',
  'percpu: allocation map bits cleared, bound bit not (locked: pcpu_alloc_mutex)',
] as const;

export const S_ALLOC_RECORD = 1;
export const S_ALLOC_BUSY = 2;
export const S_FREE_CLIPPED = 3;
export const S_BUSY_LINKED = 4;
export const S_VM_TAKEN = 5;
export const S_VM_RESERVED = 6;
export const S_VM_ATTACHED = 7;
export const S_PAGES_ARRAY = 8;
export const S_FRAMES = 9;
export const S_MAPPED = 10;
export const S_COMPLETE = 11;
export const S_UNLINK_LOCKED = 12;
export const S_UNLINKED = 13;
export const S_UNMAPPED = 14;
export const S_FRAMES_FREED = 15;
export const S_ARRAY_FREED = 16;
export const S_VM_FREED = 17;
export const S_LAZY_COUNTED = 18;
export const S_LAZY_LOCKED = 19;
export const S_LAZY = 20;
export const S_PURGE_DETACHED = 21;
export const S_PURGE_MERGING = 22;
export const S_PURGE_MERGED = 23;
export const S_CACHE_REFILL = 24;
export const S_CACHE_DRAIN = 25;
export const S_PCP_REFILL = 26;
export const S_PCP_DRAIN = 27;
export const S_FREE_MERGE = 28;
export const S_POOL_TAKE = 29;
export const S_POOL_FILL = 30;
export const S_FREE_SPLIT = 31;
export const S_VMAP_MAPPED = 32;
export const S_NESTED_FREED = 33;
export const S_VB_CARVED = 34;
export const S_VB_HASHED = 35;
export const S_RAM_COUNTED = 36;
export const S_VB_CLEARED = 37;
export const S_RAM_UNMAPPED = 38;
export const S_VB_DIRTY = 39;
export const S_VB_UNHASHED = 40;
export const S_RAM_UNLINKED = 41;
export const S_VB_PURGED = 42;
export const S_RCU_FLAGGED = 43;
export const S_RCU_FREEING = 44;
export const S_PCPU_MAPPING = 45;
export const S_PCPU_POPULATED = 46;
export const S_PCPU_MARKED = 47;
export const S_PCPU_CREATING = 48;
export const S_PCPU_UNMAPPING = 49;
export const S_PCPU_CLEARED = 50;
export const S_PCPU_DEPOPULATED = 51;
export const S_PCPU_DESTROYING = 52;
export const S_PCPU_VMS_BUSY = 53;
export const S_PCPU_MARKING = 54;
export const S_PCPU_CLEARING = 55;

/** The installed hook (null: none). Step points test it inline: `if (stepHook !== null)`. */
export let stepHook: ((step: number) => void) | null = null;

/** Installs (or with null removes) this thread's hook. For tests. */
export function setStepHook(fn: ((step: number) => void) | null): void {
  stepHook = fn;
}

let paused: ((step: number) => void) | null = null;

/**
 * Turns this thread's hook off until resumeSteps(): the private range allocators (the
 * page-array pools' VmapSpaces) share the kva code and its step points, but a kill there is
 * not one of the vmalloc steps being tested. Call only while a hook is installed.
 */
export function pauseSteps(): void {
  paused = stepHook;
  stepHook = null;
}

/** Turns a paused hook back on (nothing when none is paused). */
export function resumeSteps(): void {
  if (paused !== null) {
    stepHook = paused;
    paused = null;
  }
}
