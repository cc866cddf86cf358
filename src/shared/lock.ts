/**
 * Locks in shared memory: the kernel's spinlocks and mutexes for worker threads, with the
 * kernel's lock statistics (lock_stat) and detection of a holder whose worker died.
 *
 * Holds: the lock algorithm, which runs on any 4 Int32 words (LOCK_WORDS) of any Int32Array;
 * the LockTable, one buffer with the lock settings, lock slots and statistics; and two handles:
 * Lock, one slot of the table (a global lock: free_vmap_area_lock, ...), and LockClass, the
 * class of locks embedded in records of an arena (a lock per vmap_block, kernel `vb->lock`),
 * which takes the record's words as arguments.
 *
 * The 4 words of a lock (in a table slot, or at any index of a record):
 *
 *   Int32   0  state: 0 unlocked, 1 locked, 2 locked with waiters (who may sleep),
 *              3 handed to a starving waiter (locked; see STARVE_MS)
 *           1  owner: cpu id + 1 of the holder, 0 when unlocked
 *           2  last:  cpu id + 1 of the previous holder (for the bounce counts)
 *           3  hand-off: 0 none; cpu id + 1 of a waiter that waited STARVE_MS and asks for
 *              the lock; minus that when an unlock has handed the lock to it
 *
 * All zeros is an unlocked lock, so a zeroed record needs no initialisation.
 *
 * The table buffer, in 128-byte blocks (two cache lines, so two locks, or two cpus'
 * statistics, never share one):
 *
 *   header      Int32 0 statistics on (1) or off, 1 waiter timeout (ms), 2 nrCpus, 3 nrClasses
 *   slots       `count` lock slots: Int32 0..3 the lock's words; Float64 2..12 its lock_stat
 *   liveness    one Int32 per cpu (0 alive or unknown, 1 dead), padded to a whole block
 *   class stats nrClasses x nrCpus blocks (class-major): Float64 2..12 the lock_stat of that
 *               class's record locks taken by that cpu
 *
 * lock_stat (Float64 words 2..12 of a slot or class block): acquisitions, contentions,
 * con-bounces, acq-bounces, wait and hold time (min, max, total, in microseconds), the current
 * hold's start.
 *
 * Invariant: only the holder writes the statistics of a slot, and a cpu only writes its own
 * block of a class, so they need no atomics (several cpus may hold different locks of one
 * class at once). A cpu holding two locks of one class at once (nested) overwrites the hold
 * start of the first: the hold of the outer one is then not counted.
 * Callers: every module that takes a kernel lock (free_vmap_area_lock, vmap_area_lock, ...)
 * through Lock; record arenas with a lock per record through LockClass.
 *
 * Acquire: compare-and-swap 0 -> 1; else spin a bounded number of times retrying; then mark
 * the word 2 (waiters) and Atomics.wait on it until a release wakes us (Drepper, "Futexes are
 * tricky", mutex 2). Release: if the word was 2, store 0 and Atomics.notify one waiter.
 * That lets a running thread barge past sleepers; a waiter that has waited STARVE_MS asks for
 * a hand-off, and the next release passes the lock straight to it (state 3, then 2), so no
 * waiter starves (the kernel's queued spinlocks are strictly FIFO). A waiter sleeps in
 * slices; after each it checks whether the holder's cpu was marked dead (markCpuDead) and how
 * long it has waited, and gives up with VmallocError EOWNERDEAD or ETIMEDOUT instead of
 * hanging forever. Over memory that is not shared (no SharedArrayBuffer, as in a page without
 * cross-origin isolation) nothing waits: locks work single-threaded, and a lock that is
 * already held spins until the timeout.
 */

import { VmallocError } from '../errors.js';
import { isSharedBuffer, makeFixedBuffer } from './buffers.js';
import { addStat } from './lock-stat.js';

/** Int32 words a record reserves for a lock (see the layout above). */
export const LOCK_WORDS = 4;
export const LOCK_SLOT_BYTES = 128;
const I32_PER_SLOT = LOCK_SLOT_BYTES / 4;
const F64_PER_SLOT = LOCK_SLOT_BYTES / 8;
const OWNER = 1; // (word 0 of a lock is the state)
const LAST = 2;
/**
 * The hand-off word: 0, or +(cpu + 1) when that waiter asks for the lock, or -(cpu + 1) once
 * an unlock has handed it over. Claim and grant are one compare-and-swap, so a holder that
 * dies halfway through its unlock cannot leave the waiter half-granted.
 */
const HANDOFF = 3;
/** Float64 words of a slot or class block. */
const S_ACQ = 2;
const S_CONT = 3;
const S_CON_BOUNCE = 4;
const S_ACQ_BOUNCE = 5;
const S_WAIT_MIN = 6;
const S_WAIT_MAX = 7;
const S_WAIT_TOTAL = 8;
const S_HOLD_MIN = 9;
const S_HOLD_MAX = 10;
const S_HOLD_TOTAL = 11;
const S_HOLD_START = 12;
/** Header slot words (Int32). */
const H_STATS = 0; // 1: statistics on
const H_TIMEOUT = 1; // milliseconds a waiter waits before giving up
const H_NR_CPUS = 2;
const H_NR_CLASSES = 3;

/** Spins before sleeping: long enough to ride out a short critical section on another core. */
const SPIN_LIMIT = 200;
/** A sleeping waiter wakes at least this often to check on the holder. */
const WAIT_SLICE_MS = 20;
/**
 * A waiter that has waited this long asks for a hand-off: the next unlock passes the lock to
 * it directly instead of releasing it to whoever grabs it first. Without it a worker that
 * releases and re-takes a lock in a loop keeps a sleeping waiter out (26-42 ms measured, see
 * BENCHMARKS.md). Go's sync.Mutex switches to hand-offs after 1 ms, but Go also gives the
 * waiter the releasing thread's processor; here the waiter may not be running, and the lock
 * idles until the OS schedules it: with 1 ms, 8 workers on 2 CPUs ran the global design 1.5x
 * slower. 10 ms keeps waits near 10-15 ms at no measurable cost.
 */
const STARVE_MS = 10;
export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

const CPU_DEAD = 1; // (0: alive or unknown)

const now = (): number => performance.now();

/** Bytes of the liveness words of `nrCpus` cpus, padded to whole blocks. */
const aliveBytesOf = (nrCpus: number): number =>
  Math.ceil((nrCpus * 4) / LOCK_SLOT_BYTES) * LOCK_SLOT_BYTES;

/**
 * May this thread block in Atomics.wait? A browser's main thread may not: the first wait that
 * throws turns sleeping into spinning for the rest of the thread's life (module state is per
 * thread).
 */
let canBlock = true;

export interface LockStat {
  name: string;
  acquisitions: number;
  contentions: number;
  conBounces: number;
  acqBounces: number;
  /** Microseconds. */
  waitMin: number;
  waitMax: number;
  waitTotal: number;
  holdMin: number;
  holdMax: number;
  holdTotal: number;
}

export class LockTable {
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** Lock slots (the header not counted). */
  readonly count: number;
  readonly nrCpus: number;
  /** Classes of record locks with statistics here (LockClass). */
  readonly nrClasses: number;
  /** Float64 index of the class stats region (block of class 0, cpu 0). */
  readonly classBase: number;
  /** Per cpu: 0 alive (or unknown), 1 dead. */
  private readonly alive: Int32Array;

  constructor(buffer: SharedArrayBuffer | ArrayBuffer) {
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.nrCpus = this.i32[H_NR_CPUS]!;
    this.nrClasses = this.i32[H_NR_CLASSES]!;
    const aliveBytes = aliveBytesOf(this.nrCpus);
    const classBytes = this.nrClasses * this.nrCpus * LOCK_SLOT_BYTES;
    this.count = (buffer.byteLength - aliveBytes - classBytes) / LOCK_SLOT_BYTES - 1;
    const aliveAt = (this.count + 1) * LOCK_SLOT_BYTES;
    this.alive = new Int32Array(buffer, aliveAt, this.nrCpus);
    this.classBase = (aliveAt + aliveBytes) / 8;
  }

  /**
   * A table of `count` lock slots for `nrCpus` cpus, with statistics for `nrClasses` classes
   * of record locks; in a SharedArrayBuffer when `shared` (which must then exist), else in an
   * ArrayBuffer for one thread.
   */
  static create(count: number, shared: boolean, nrCpus = 1, nrClasses = 0): LockTable {
    const bytes =
      (count + 1) * LOCK_SLOT_BYTES + aliveBytesOf(nrCpus) + nrClasses * nrCpus * LOCK_SLOT_BYTES;
    const buffer = makeFixedBuffer(bytes, shared);
    const h = new Int32Array(buffer);
    h[H_TIMEOUT] = DEFAULT_LOCK_TIMEOUT_MS;
    h[H_NR_CPUS] = nrCpus;
    h[H_NR_CLASSES] = nrClasses;
    return new LockTable(buffer);
  }

  /** Turns lock_stat on or off for every lock of the table, in every worker. */
  setStats(on: boolean): void {
    Atomics.store(this.i32, H_STATS, on ? 1 : 0);
  }

  get statsEnabled(): boolean {
    return Atomics.load(this.i32, H_STATS) === 1;
  }

  /** How long a waiter waits for a lock before giving up (milliseconds). */
  setTimeout(ms: number): void {
    Atomics.store(this.i32, H_TIMEOUT, ms);
  }

  get timeoutMs(): number {
    return Atomics.load(this.i32, H_TIMEOUT);
  }

  /** Marks `cpu`'s worker as dead: waiters for a lock it holds give up at once. */
  markCpuDead(cpu: number): void {
    if (cpu >= 0 && cpu < this.nrCpus) Atomics.store(this.alive, cpu, CPU_DEAD);
  }

  /** Marks `cpu` alive again (a new worker took its id). */
  markCpuAlive(cpu: number): void {
    if (cpu >= 0 && cpu < this.nrCpus) Atomics.store(this.alive, cpu, 0);
  }

  isCpuDead(cpu: number): boolean {
    return cpu >= 0 && cpu < this.nrCpus && Atomics.load(this.alive, cpu) === CPU_DEAD;
  }

  /** Zeroes every lock's and every class's statistics (a hold in progress is still timed). */
  resetStats(): void {
    for (let slot = 1; slot <= this.count; slot++) {
      this.f64.fill(0, slot * F64_PER_SLOT + S_ACQ, slot * F64_PER_SLOT + S_HOLD_START);
    }
    for (let b = 0; b < this.nrClasses * this.nrCpus; b++) {
      const o = this.classBase + b * F64_PER_SLOT;
      this.f64.fill(0, o + S_ACQ, o + S_HOLD_START);
    }
  }

  /** The statistics of lock `index`, under `name`. */
  stat(index: number, name: string): LockStat {
    return this.statAt((index + 1) * F64_PER_SLOT, name);
  }

  /**
   * The statistics of the record locks of class `classIndex`, under `name`: summed over the
   * cpus, or those taken by `cpu` alone.
   */
  classStat(classIndex: number, name: string, cpu?: number): LockStat {
    if (!(classIndex >= 0 && classIndex < this.nrClasses))
      throw new RangeError(`lock class ${classIndex} outside the table (${this.nrClasses})`);
    if (cpu !== undefined && !(cpu >= 0 && cpu < this.nrCpus))
      throw new RangeError(`cpu ${cpu} outside the table (${this.nrCpus})`);
    const o = this.classBase + classIndex * this.nrCpus * F64_PER_SLOT;
    if (cpu !== undefined) return this.statAt(o + cpu * F64_PER_SLOT, name);
    const sum = this.statAt(o, name);
    for (let c = 1; c < this.nrCpus; c++) addStat(sum, this.statAt(o + c * F64_PER_SLOT, name));
    return sum;
  }

  private statAt(o: number, name: string): LockStat {
    const f = this.f64;
    return {
      name,
      acquisitions: f[o + S_ACQ]!,
      contentions: f[o + S_CONT]!,
      conBounces: f[o + S_CON_BOUNCE]!,
      acqBounces: f[o + S_ACQ_BOUNCE]!,
      waitMin: f[o + S_WAIT_MIN]!,
      waitMax: f[o + S_WAIT_MAX]!,
      waitTotal: f[o + S_WAIT_TOTAL]!,
      holdMin: f[o + S_HOLD_MIN]!,
      holdMax: f[o + S_HOLD_MAX]!,
      holdTotal: f[o + S_HOLD_TOTAL]!,
    };
  }
}

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

/** Contended: spin, then sleep until woken, checking on the holder between naps. */
function acquireSlow(
  t: LockTable,
  w: Int32Array,
  at: number,
  cpu: number,
  o: number,
  name: string,
): void {
  const stats = t.i32[H_STATS] === 1;
  const t0 = now();
  let c = 1;
  // Test and test-and-set: spin on a plain load (the line stays shared in our cache while the
  // holder runs) and try the compare-and-swap only when the lock looks free.
  for (let spin = 0; spin < SPIN_LIMIT; spin++) {
    if (Atomics.load(w, at) !== 0) continue;
    c = Atomics.compareExchange(w, at, 0, 1);
    if (c === 0) break;
  }
  if (c !== 0) {
    if (c !== 2) c = Atomics.exchange(w, at, 2);
    let asked = false; // this waiter's cpu is in HANDOFF
    while (c !== 0) {
      if (asked && Atomics.load(w, at + HANDOFF) === -(cpu + 1)) break; // handed to us
      if (!asked && now() - t0 >= STARVE_MS)
        asked = Atomics.compareExchange(w, at + HANDOFF, 0, cpu + 1) === 0;
      sleep(w, at);
      if (asked && Atomics.load(w, at + HANDOFF) === -(cpu + 1)) break;
      c = Atomics.exchange(w, at, 2);
      // (false: handed over to us just as we gave up)
      if (c !== 0 && !checkHolder(t, w, at, t0, cpu, asked, name)) break;
    }
    if (asked) endHandoff(w, at, cpu, c === 0);
  }
  w[at + OWNER] = cpu + 1;
  if (stats) account(t.f64, o, w, at, cpu, true, now() - t0);
}

/**
 * Settles a waiter's hand-off request once it holds the lock: taken in the ordinary way
 * (`released`), it withdraws the request (nobody can grant it while this waiter holds the
 * lock); handed over, it clears the grant and marks the state 2, held with waiters, whatever
 * the unlock left (3, or the old state if that holder died right after granting), so that
 * its own unlock wakes the next waiter.
 */
function endHandoff(w: Int32Array, at: number, cpu: number, released: boolean): void {
  if (released && Atomics.compareExchange(w, at + HANDOFF, cpu + 1, 0) === cpu + 1) return;
  Atomics.store(w, at + HANDOFF, 0);
  Atomics.store(w, at, 2);
}

/** One slice of sleep on the state word; nothing (a spin) where this thread cannot wait. */
function sleep(w: Int32Array, at: number): void {
  if (!canBlock || !isSharedBuffer(w.buffer)) return;
  try {
    Atomics.wait(w, at, 2, WAIT_SLICE_MS);
  } catch {
    canBlock = false; // a browser's main thread may not wait: spin from now on
  }
}

/**
 * Gives up when the holder's worker is known dead, or after the table's timeout: throws,
 * after withdrawing this waiter's hand-off request. Returns true to keep waiting, false when
 * the lock was handed to this waiter just as it was giving up (it then holds the lock).
 */
function checkHolder(
  t: LockTable,
  w: Int32Array,
  at: number,
  t0: number,
  cpu: number,
  asked: boolean,
  name: string,
): boolean {
  const owner = Atomics.load(w, at + OWNER) - 1;
  const dead = owner >= 0 && owner !== cpu && t.isCpuDead(owner);
  const waited = now() - t0;
  if (!dead && waited <= t.timeoutMs) return true;
  if (asked && Atomics.compareExchange(w, at + HANDOFF, cpu + 1, 0) !== cpu + 1) {
    return false; // an unlocker granted our request: the lock is ours
  }
  if (dead) {
    throw new VmallocError(
      'EOWNERDEAD',
      `Cannot take ${name}: it is held by cpu ${owner}, whose worker has died; the state it protects may be inconsistent`,
    );
  }
  throw new VmallocError(
    'ETIMEDOUT',
    `Cannot take ${name}: waited ${Math.round(waited)} ms for it, held by cpu ${owner}; its worker may have died or be stuck`,
  );
}

/** lock_stat bookkeeping at acquisition, in the block at `o` (written by its holder alone). */
function account(
  f: Float64Array,
  o: number,
  w: Int32Array,
  at: number,
  cpu: number,
  contended: boolean,
  waitMs: number,
): void {
  const last = w[at + LAST]!;
  const bounce = last !== 0 && last !== cpu + 1;
  f[o + S_ACQ] = f[o + S_ACQ]! + 1;
  if (bounce) f[o + S_ACQ_BOUNCE] = f[o + S_ACQ_BOUNCE]! + 1;
  if (contended) {
    const us = waitMs * 1000;
    f[o + S_CONT] = f[o + S_CONT]! + 1;
    if (bounce) f[o + S_CON_BOUNCE] = f[o + S_CON_BOUNCE]! + 1;
    if (f[o + S_CONT] === 1 || us < f[o + S_WAIT_MIN]!) f[o + S_WAIT_MIN] = us;
    if (us > f[o + S_WAIT_MAX]!) f[o + S_WAIT_MAX] = us;
    f[o + S_WAIT_TOTAL] = f[o + S_WAIT_TOTAL]! + us;
  }
  w[at + LAST] = cpu + 1;
  f[o + S_HOLD_START] = now();
}

/** Releases the lock (its holder calls this, after its statistics). */
function release(w: Int32Array, at: number): void {
  const h = w[at + HANDOFF]!;
  if (h > 0 && Atomics.compareExchange(w, at + HANDOFF, h, -h) === h) {
    // A waiter is starving: pass the lock to it without releasing it, so nobody barges in.
    // State 3 (held, handed over): sleepers waiting on 2 return at once instead of missing
    // the wake-up; whoever sees it sets it back to 2.
    Atomics.store(w, at + OWNER, h);
    Atomics.store(w, at, 3);
    Atomics.notify(w, at); // all sleepers: the one it is for takes it, the others sleep again
    return;
  }
  w[at + OWNER] = 0;
  if (Atomics.sub(w, at, 1) !== 1) {
    Atomics.store(w, at, 0);
    Atomics.notify(w, at, 1);
  }
}

/** lock_stat bookkeeping at release: the hold time, in the block at `o`. */
function endHold(f: Float64Array, o: number): void {
  const start = f[o + S_HOLD_START]!;
  if (!(start > 0)) return;
  const us = (now() - start) * 1000;
  if (f[o + S_HOLD_MIN] === 0 || us < f[o + S_HOLD_MIN]!) f[o + S_HOLD_MIN] = us;
  if (us > f[o + S_HOLD_MAX]!) f[o + S_HOLD_MAX] = us;
  f[o + S_HOLD_TOTAL] = f[o + S_HOLD_TOTAL]! + us;
  f[o + S_HOLD_START] = 0;
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
    const w = this.words; // (the table's words: its header is w[0..])
    const at = this.at;
    if (Atomics.compareExchange(w, at, 0, 1) !== 0) {
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
    if (Atomics.compareExchange(w, at, 0, 1) !== 0) return false;
    w[at + OWNER] = cpu + 1;
    if (w[H_STATS] === 1) account(this.table.f64, this.fbase, w, at, cpu, false, 0);
    return true;
  }

  /** Releases the lock. Kernel: spin_unlock() / mutex_unlock(). */
  unlock(): void {
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
    return Atomics.load(this.words, this.at + OWNER) - 1;
  }

  /** cpu id of a starving waiter the next unlock will hand the lock to, or -1. */
  handoffRequested(): number {
    return handoffOf(this.words, this.at);
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
    const o = this.sbase + cpu * F64_PER_SLOT;
    if (Atomics.compareExchange(words, at, 0, 1) !== 0) {
      acquireSlow(this.table, words, at, cpu, o, this.name);
      return;
    }
    words[at + OWNER] = cpu + 1;
    if (this.header[H_STATS] === 1) account(this.f64, o, words, at, cpu, false, 0);
  }

  /** Takes the lock at `words`[`at`..] if it is free. Kernel: spin_trylock(). */
  tryLock(cpu: number, words: Int32Array, at: number): boolean {
    if (!(cpu >= 0 && cpu < this.nrCpus)) this.badCpu(cpu);
    if (Atomics.compareExchange(words, at, 0, 1) !== 0) return false;
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
    if (this.header[H_STATS] === 1) {
      const holder = words[at + OWNER]! - 1;
      if (holder >= 0 && holder < this.nrCpus)
        endHold(this.f64, this.sbase + holder * F64_PER_SLOT);
    }
    release(words, at);
  }

  /** cpu id of the holder of the lock at `words`[`at`..], or -1. */
  owner(words: Int32Array, at: number): number {
    return Atomics.load(words, at + OWNER) - 1;
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
