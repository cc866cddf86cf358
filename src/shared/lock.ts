/**
 * Locks in shared memory: the kernel's spinlocks and mutexes for worker threads, with the
 * kernel's lock statistics (lock_stat) and detection of a holder whose worker died.
 *
 * Holds: the two handles of a lock, which run the algorithm on any 4 Int32 words (LOCK_WORDS)
 * of any Int32Array: Lock, one slot of a LockTable (a global lock: free_vmap_area_lock, ...),
 * and LockClass, the class of locks embedded in records of an arena (a lock per vmap_block,
 * kernel `vb->lock`), which takes the record's words as arguments; their uncontended paths and
 * the release. The table and the layouts of the words and statistics are in lock-table.ts, the
 * contended acquisition (sleeping, hand-off requests, dead holders) in lock-wait.ts; this
 * module re-exports what importers need (LockTable, LockStat, LOCK_WORDS, ...).
 * Invariant: all zeros is an unlocked lock, so a zeroed record needs no initialisation; a
 * lock word that is not 0 names its holder (it is taken, handed over and released by single
 * atomic writes of the whole word); only the holder releases a lock, to all (0) or straight
 * to the waiter in its hand-off word; the statistics as lock-table.ts says.
 * Callers: every module that takes a kernel lock (free_vmap_area_lock, vmap_area_lock, ...)
 * through Lock; record arenas with a lock per record through LockClass.
 *
 * Acquire: compare-and-swap 0 -> (cpu + 1) << 2 | LOCKED, so that the lock word names its
 * holder from the instant it is taken; else spin a bounded number of times retrying; then set
 * the WAITERS state and Atomics.wait on the word until a release wakes us (Drepper, "Futexes
 * are tricky", mutex 2, with the holder in the word). Release: compare-and-swap the word back
 * to 0; if a waiter marked it WAITERS, store 0 and Atomics.notify one waiter. A thread killed
 * anywhere (Worker.terminate()) thus leaves each lock either free or naming it, never held
 * with no holder recorded (which its waiters could not tell from a live holder's, and would
 * wait out the timeout for). Uncontended cost: one compare-and-swap to take, one to release
 * (and a plain store of the owner copy each way).
 * That lets a running thread barge past sleepers; a waiter that has waited STARVE_MS asks for
 * a hand-off, and the next release passes the lock straight to it (the word rewritten to name
 * it), so no waiter starves (the kernel's queued spinlocks are strictly FIFO). A waiter sleeps in
 * slices; after each it checks whether the holder's cpu was marked dead (markCpuDead) and how
 * long it has waited, and gives up with VmallocError EOWNERDEAD or ETIMEDOUT instead of
 * hanging forever. Over memory that is not shared (no SharedArrayBuffer, as in a page without
 * cross-origin isolation) nothing waits: locks work single-threaded, and a lock that is
 * already held spins until the timeout.
 */

import { acquireSlow } from './lock-wait.js';
import * as layout from './lock-table.js';
import { type LockStat, type LockTable, account, endHold } from './lock-table.js';
import { simRecorder } from './sim-hook.js';

export { DEFAULT_LOCK_TIMEOUT_MS, LOCK_SLOT_BYTES, LOCK_WORDS, LockTable } from './lock-table.js';
export type { LockStat } from './lock-table.js';

// The layout constants the fast paths use, bound as this module's own (V8 folds a module's own
// constants but loads imported ones at every use).
const I32_PER_SLOT = layout.I32_PER_SLOT;
const F64_PER_SLOT = layout.F64_PER_SLOT;
const OWNER = layout.OWNER;
const OWNER_SHIFT = layout.OWNER_SHIFT;
const STATE_MASK = layout.STATE_MASK;
const LOCKED = layout.LOCKED;
const WAITERS = layout.WAITERS;
const HANDOFF = layout.HANDOFF;
const H_STATS = layout.H_STATS;

/*
 * The algorithm, on the lock at words `w`[`at`..`at` + 3] with the settings, liveness and
 * statistics of table `t`; statistics go to the Float64 block at `o` (the slot's for a Lock,
 * the class's block of the cpu for a LockClass). Arguments only, so that no call allocates.
 *
 * The uncontended paths (one compare-and-swap, a store, a load of the statistics switch) are
 * written out in Lock and in LockClass rather than shared here: V8 keeps type feedback per
 * function, and record locks live in other buffers (growable ones, whose typed arrays V8
 * handles apart), so a shared fast path would turn polymorphic and cost every Lock ~15%.
 */

/**
 * Releases the lock (its holder calls this, after its statistics). Until the lock word
 * changes it names this holder, so a kill at any point before leaves the lock naming the
 * dead cpu (its waiters give up, the recovery frees it); after, the lock is free or handed.
 */
function release(w: Int32Array, at: number): void {
  const h = w[at + HANDOFF]!;
  if (h > 0 && Atomics.compareExchange(w, at + HANDOFF, h, -h) === h) {
    // A waiter is starving: pass the lock to it without releasing it, so nobody barges in.
    // The word names it at once (one store): killed before it, this holder is still named,
    // and the waiter, seeing the grant, writes its own name (sleepUntilHeld, lock-wait.ts).
    Atomics.store(w, at, (h << OWNER_SHIFT) | WAITERS);
    w[at + OWNER] = h;
    Atomics.notify(w, at); // all sleepers: the one it is for takes it, the others sleep again
    return;
  }
  w[at + OWNER] = 0;
  const v = w[at]!;
  // (A waiter may turn LOCKED into WAITERS at any moment: then the exchange fails.)
  if ((v & STATE_MASK) !== LOCKED || Atomics.compareExchange(w, at, v, 0) !== v) wakeOne(w, at);
}

/** The release of a lock with waiters: free it, and wake one (it takes the lock as WAITERS). */
function wakeOne(w: Int32Array, at: number): void {
  Atomics.store(w, at, 0);
  Atomics.notify(w, at, 1);
}

/** cpu id of the holder named in the lock word, or -1 when the lock is free. */
function ownerOf(w: Int32Array, at: number): number {
  return (Atomics.load(w, at) >> OWNER_SHIFT) - 1;
}

/** Do waiters sleep on the lock (or may they: the state WAITERS)? */
function waitersOn(w: Int32Array, at: number): boolean {
  return (Atomics.load(w, at) & WAITERS) !== 0;
}

/**
 * Frees a lock whoever holds it (recovery): the hand-off request first, the lock word last,
 * so that a recovery killed half-way leaves the lock still naming its dead holder.
 */
function forceReleaseAt(w: Int32Array, at: number): void {
  Atomics.store(w, at + HANDOFF, 0);
  Atomics.store(w, at + OWNER, 0);
  Atomics.store(w, at, 0);
  Atomics.notify(w, at);
}

/** cpu id of a starving waiter the next unlock will hand the lock to, or -1. */
function handoffOf(w: Int32Array, at: number): number {
  const h = Atomics.load(w, at + HANDOFF);
  return h > 0 ? h - 1 : -1;
}

/** One lock of a LockTable (a slot), as seen by one thread. */
export class Lock {
  readonly name: string;
  readonly index: number;
  /** The lock's 4 words: `words`[`at`..`at` + 3] (the table's Int32 view). */
  readonly words: Int32Array;
  readonly at: number;
  private readonly table: LockTable;
  /** Float64 word of this slot's statistics. */
  private readonly fbase: number;

  constructor(table: LockTable, index: number, name: string) {
    if (index < 0 || index >= table.count)
      throw new RangeError(`lock index ${index} outside the table`);
    this.name = name;
    this.index = index;
    this.table = table;
    this.words = table.i32;
    this.at = (index + 1) * I32_PER_SLOT;
    this.fbase = (index + 1) * F64_PER_SLOT;
  }

  /** Takes the lock for `cpu`. Kernel: spin_lock() / mutex_lock(). */
  lock(cpu: number): void {
    // A simulated machine records the event (null in every real run: one load).
    if (simRecorder !== null) simRecorder.acquire(this.words, this.index, false);
    const w = this.words; // (the table's words: its header is w[0..])
    const at = this.at;
    if (Atomics.compareExchange(w, at, 0, ((cpu + 1) << OWNER_SHIFT) | LOCKED) !== 0) {
      acquireSlow(this.table, w, at, cpu, this.fbase, this.name);
      return;
    }
    w[at + OWNER] = cpu + 1;
    if (w[H_STATS] === 1) account(this.table.f64, this.fbase, w, at, cpu, false, 0);
  }

  /** Takes the lock if it is free. Kernel: spin_trylock() / mutex_trylock(). */
  tryLock(cpu: number): boolean {
    const w = this.words;
    const at = this.at;
    if (Atomics.compareExchange(w, at, 0, ((cpu + 1) << OWNER_SHIFT) | LOCKED) !== 0) return false;
    if (simRecorder !== null) simRecorder.acquire(this.words, this.index, true);
    w[at + OWNER] = cpu + 1;
    if (w[H_STATS] === 1) account(this.table.f64, this.fbase, w, at, cpu, false, 0);
    return true;
  }

  /** Releases the lock. Kernel: spin_unlock() / mutex_unlock(). */
  unlock(): void {
    if (simRecorder !== null) simRecorder.release(this.words, this.index);
    const w = this.words;
    if (w[H_STATS] === 1) endHold(this.table.f64, this.fbase);
    release(w, this.at);
  }

  /** Is the lock held (by anyone)? For assertions and the checker. */
  isLocked(): boolean {
    return Atomics.load(this.words, this.at) !== 0;
  }

  /** cpu id of the holder, or -1. */
  owner(): number {
    return ownerOf(this.words, this.at);
  }

  /** Is the lock held with waiters (asleep on it, or about to be, or asking for a hand-off)? */
  hasWaiters(): boolean {
    return waitersOn(this.words, this.at);
  }

  /** cpu id of a starving waiter the next unlock will hand the lock to, or -1. */
  handoffRequested(): number {
    return handoffOf(this.words, this.at);
  }

  /**
   * Makes the lock free whoever holds it, waking any sleeper: for recovery only, when its
   * holder is dead and the state it protects is being rebuilt (pthread_mutex_consistent()
   * then unlock). A timed hold in progress is dropped from the statistics.
   */
  forceRelease(): void {
    forceReleaseAt(this.words, this.at);
  }
}

/**
 * A class of locks that live in records (LOCK_WORDS Int32 words at any index of any Int32Array,
 * shared between the workers when they take it from several), as seen by one thread. Each call
 * names the lock by its words; the class gives the statistics (block `classIndex` of the
 * table's class region, one per cpu), the settings, the liveness of cpus and the name in error
 * messages. Kernel: the lock_class_key of a lock initialised in a loop (spin_lock_init(&vb->lock)).
 */
export class LockClass {
  readonly name: string;
  readonly index: number;
  readonly table: LockTable;
  private readonly header: Int32Array;
  private readonly f64: Float64Array;
  private readonly nrCpus: number;
  /** Float64 word of this class's statistics for cpu 0; cpu c's follow at c * F64_PER_SLOT. */
  private readonly sbase: number;

  constructor(table: LockTable, classIndex: number, name: string) {
    if (!(classIndex >= 0 && classIndex < table.nrClasses))
      throw new RangeError(`lock class ${classIndex} outside the table (${table.nrClasses})`);
    this.name = name;
    this.index = classIndex;
    this.table = table;
    this.header = table.i32;
    this.f64 = table.f64;
    this.nrCpus = table.nrCpus;
    this.sbase = table.classBase + classIndex * table.nrCpus * F64_PER_SLOT;
  }

  /** Takes the lock at `words`[`at`..] for `cpu`. Kernel: spin_lock(&vb->lock). */
  lock(cpu: number, words: Int32Array, at: number): void {
    if (!(cpu >= 0 && cpu < this.nrCpus)) this.badCpu(cpu);
    if (simRecorder !== null) simRecorder.acquireClass(this.header, this.index, words, at, false);
    const o = this.sbase + cpu * F64_PER_SLOT;
    if (Atomics.compareExchange(words, at, 0, ((cpu + 1) << OWNER_SHIFT) | LOCKED) !== 0) {
      acquireSlow(this.table, words, at, cpu, o, this.name);
      return;
    }
    words[at + OWNER] = cpu + 1;
    if (this.header[H_STATS] === 1) account(this.f64, o, words, at, cpu, false, 0);
  }

  /** Takes the lock at `words`[`at`..] if it is free. Kernel: spin_trylock(). */
  tryLock(cpu: number, words: Int32Array, at: number): boolean {
    if (!(cpu >= 0 && cpu < this.nrCpus)) this.badCpu(cpu);
    if (Atomics.compareExchange(words, at, 0, ((cpu + 1) << OWNER_SHIFT) | LOCKED) !== 0)
      return false;
    if (simRecorder !== null) simRecorder.acquireClass(this.header, this.index, words, at, true);
    words[at + OWNER] = cpu + 1;
    if (this.header[H_STATS] === 1)
      account(this.f64, this.sbase + cpu * F64_PER_SLOT, words, at, cpu, false, 0);
    return true;
  }

  /**
   * Releases the lock at `words`[`at`..] (its holder calls this; the hold time goes to the
   * holder's block). Kernel: spin_unlock(&vb->lock).
   */
  unlock(words: Int32Array, at: number): void {
    if (simRecorder !== null) simRecorder.releaseClass(this.header, this.index, words, at);
    if (this.header[H_STATS] === 1) {
      const holder = words[at + OWNER]! - 1;
      if (holder >= 0 && holder < this.nrCpus)
        endHold(this.f64, this.sbase + holder * F64_PER_SLOT);
    }
    release(words, at);
  }

  /** cpu id of the holder of the lock at `words`[`at`..], or -1. */
  owner(words: Int32Array, at: number): number {
    return ownerOf(words, at);
  }

  /** Is the lock at `words`[`at`..] held with waiters? */
  hasWaiters(words: Int32Array, at: number): boolean {
    return waitersOn(words, at);
  }

  /**
   * Makes the lock at `words`[`at`..] free whoever holds it, waking any sleeper: for recovery
   * only (see Lock.forceRelease()).
   */
  forceRelease(words: Int32Array, at: number): void {
    forceReleaseAt(words, at);
  }

  /** Is the lock at `words`[`at`..] held (by anyone)? */
  isLocked(words: Int32Array, at: number): boolean {
    return Atomics.load(words, at) !== 0;
  }

  /** cpu id of a starving waiter the next unlock will hand the lock to, or -1. */
  handoffRequested(words: Int32Array, at: number): number {
    return handoffOf(words, at);
  }

  /** The statistics of this class, summed over the cpus (or of `cpu` alone). */
  stat(cpu?: number): LockStat {
    return this.table.classStat(this.index, this.name, cpu);
  }

  private badCpu(cpu: number): never {
    throw new RangeError(`Cannot take ${this.name}: cpu ${cpu} outside 0..${this.nrCpus - 1}`);
  }
}
