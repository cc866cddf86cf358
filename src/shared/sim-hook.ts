/**
 * The simulator's hook into the allocator: a recorder of lock events and a few work counters.
 *
 * Holds: SimRecorder (what the lock code and the vmalloc layer report while a simulated
 * machine runs: lock acquire / release, of a table's slots (Lock) and of the locks inside
 * records (LockClass, such as vb->lock), writes of hot shared cache lines), the module-level
 * recorder (null except inside a simulated run) and WORK, the work counters (tree steps,
 * pages, bytes zeroed, records merged) the cost model turns into virtual time.
 * Invariant: with no recorder set (every real run) the lock code pays one load of a module
 * variable per lock operation and nothing else; the work counters only ever grow (a reader
 * takes differences), and nothing in the allocator reads them.
 * Callers: src/shared/lock.ts (acquire, release; Lock and LockClass), src/kva (tree steps,
 * merges), src/mm (pages, bytes; vm_map_ram's pages), src/designs/vmap-areas.ts (vmap_lazy_nr's line); src/sim sets the recorder
 * and reads the counters.
 */

/** What a simulated machine records while one virtual CPU's operation runs. */
export interface SimRecorder {
  /**
   * Lock slot `index` of the lock table whose words are `words` was taken (trylock:
   * `tryLock`). Other tables than the subsystem's (a VmapSpace's own lock) report too: the
   * recorder tells them apart by `words.buffer`.
   */
  acquire(words: Int32Array, index: number, tryLock: boolean): void;
  /** Lock slot `index` of that table was released. */
  release(words: Int32Array, index: number): void;
  /**
   * A lock of class `classIndex` of the table whose words are `table`, living at
   * `words`[`at`..] (a record's lock: vb->lock), was taken (trylock: `tryLock`). The lock is
   * named by its class and `at`: one arena per class, so `at` tells its records apart (a
   * recycled record's lock is the same lock, as the same memory is in the kernel).
   */
  acquireClass(
    table: Int32Array,
    classIndex: number,
    words: Int32Array,
    at: number,
    tryLock: boolean,
  ): void;
  /** That lock was released. */
  releaseClass(table: Int32Array, classIndex: number, words: Int32Array, at: number): void;
  /** A hot shared cache line (LINE_*) was written. */
  touch(line: number): void;
}

/** Hot shared lines the recorder is told about. */
export const LINE_LAZY_NR = 0;
export const LINE_TLB_GEN = 1;

/** WORK indices. */
export const W_STEPS = 0; // tree nodes visited by a search or lookup
export const W_PAGES = 1; // pages allocated+mapped or unmapped+freed
export const W_BYTES = 2; // bytes zeroed
export const W_RECORDS = 3; // areas merged back into a free tree (a purge's work)

/** The work counters: grow only; the simulator takes differences between events. */
export const WORK = new Float64Array(4);

/** The recorder of the simulated run in progress, or null (every real run). */
export let simRecorder: SimRecorder | null = null;

/** Sets (a simulated run starts) or clears (it ends) the recorder. */
export function setSimRecorder(r: SimRecorder | null): void {
  simRecorder = r;
}
