/**
 * The lock table: one buffer with the lock settings, the slots of the global locks, the
 * liveness of the cpus and the lock_stat blocks; and the layouts the lock algorithm shares
 * (the 4 words of a lock, a lock_stat block) with the bookkeeping that fills a block.
 *
 * Holds: LockTable (making or attaching a table, its settings, markCpuDead() / isCpuDead(),
 * reading and resetting the statistics), LockStat, the word layouts, account() and endHold().
 *
 * The 4 words of a lock (in a table slot, or at any index of a record):
 *
 *   Int32   0  the lock word: 0 unlocked; else (holder's cpu id + 1) << OWNER_SHIFT | state,
 *              state LOCKED (1) or WAITERS (2: locked, and waiters may sleep on the word)
 *           1  owner copy: cpu id + 1 of the holder, 0 when unlocked; written by the holder
 *              just after it takes the lock and just before it releases it, for readers that
 *              want a plain word (the statistics, a thread asking whether it holds a record
 *              lock). The lock word is what counts: a holder killed between the two leaves
 *              this copy behind, never the lock word.
 *           2  last:  cpu id + 1 of the previous holder (for the bounce counts)
 *           3  hand-off: 0 none; cpu id + 1 of a waiter that waited STARVE_MS and asks for
 *              the lock; minus that when an unlock has handed the lock to it
 *
 * All zeros is an unlocked lock, so a zeroed record needs no initialisation. The holder is in
 * the lock word itself, taken and given up by one atomic operation, so that a thread killed at
 * any instant (Worker.terminate()) leaves every lock it holds naming it: there is no moment at
 * which a lock is held but names nobody, which no waiter could tell from a live holder's.
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
 * Callers: src/shared/lock.ts (Lock, LockClass) and src/shared/lock-wait.ts, for the layouts
 * and the bookkeeping; whoever makes or attaches a table, through LockTable (re-exported by
 * lock.ts, which importers name).
 *
 * Kernel: the lock_stat bookkeeping of kernel/locking/lockdep.c (lock_contended(),
 * lock_acquired(), the hold time at release); the /proc view is lock-stat.ts.
 */

import { makeFixedBuffer } from './buffers.js';
import { addStat } from './lock-stat.js';

/** Int32 words a record reserves for a lock (see the layout above). */
export const LOCK_WORDS = 4;
export const LOCK_SLOT_BYTES = 128;
export const I32_PER_SLOT = LOCK_SLOT_BYTES / 4;
export const F64_PER_SLOT = LOCK_SLOT_BYTES / 8;
/** The lock word's holder field: (cpu id + 1) << OWNER_SHIFT (cpu ids below 2^29). */
export const OWNER_SHIFT = 2;
/** The lock word's state field: LOCKED or WAITERS (0 with no holder: unlocked). */
export const STATE_MASK = 3;
export const LOCKED = 1;
export const WAITERS = 2;
/** The owner copy (see the layout above; word 0 of a lock is the lock word). */
export const OWNER = 1;
/** The previous holder (cpu id + 1), for the bounce counts and error messages. */
export const LAST = 2;
/**
 * The hand-off word: 0, or +(cpu + 1) when that waiter asks for the lock, or -(cpu + 1) once
 * an unlock has handed it over. Claim and grant are one compare-and-swap, so a holder that
 * dies halfway through its unlock cannot leave the waiter half-granted.
 */
export const HANDOFF = 3;
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
export const H_STATS = 0; // 1: statistics on
const H_TIMEOUT = 1; // milliseconds a waiter waits before giving up
const H_NR_CPUS = 2;
const H_NR_CLASSES = 3;

export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

const CPU_DEAD = 1; // (0: alive or unknown)

/** The clock of the wait and hold times (milliseconds). */
export const now = (): number => performance.now();

/** Bytes of the liveness words of `nrCpus` cpus, padded to whole blocks. */
const aliveBytesOf = (nrCpus: number): number =>
  Math.ceil((nrCpus * 4) / LOCK_SLOT_BYTES) * LOCK_SLOT_BYTES;

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
  /**
   * Per cpu: 0 alive (or unknown), 1 dead. This table's own words, or another table's after
   * shareLivenessOf() (then `aliveCount` is that table's nrCpus).
   */
  private alive: Int32Array;
  private aliveCount: number;

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
    this.aliveCount = this.nrCpus;
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

  /**
   * From now on (in this thread's instance) reads and writes which cpus are dead in `owner`'s
   * liveness words, not its own: for a table whose locks are taken by the cpus `owner`'s
   * cpus are (the page-array pools' spaces inside a subsystem), so that a cpu marked dead in
   * the subsystem, or alive again, is so for those locks too, with no second copy to keep in
   * step. Every thread that attaches the table must call it, as each has its own instance.
   */
  shareLivenessOf(owner: LockTable): void {
    this.alive = owner.alive;
    this.aliveCount = owner.aliveCount;
  }

  /** Marks `cpu`'s worker as dead: waiters for a lock it holds give up at once. */
  markCpuDead(cpu: number): void {
    if (cpu >= 0 && cpu < this.aliveCount) Atomics.store(this.alive, cpu, CPU_DEAD);
  }

  /** Marks `cpu` alive again (a new worker took its id). */
  markCpuAlive(cpu: number): void {
    if (cpu >= 0 && cpu < this.aliveCount) Atomics.store(this.alive, cpu, 0);
  }

  isCpuDead(cpu: number): boolean {
    return cpu >= 0 && cpu < this.aliveCount && Atomics.load(this.alive, cpu) === CPU_DEAD;
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

/** lock_stat bookkeeping at acquisition, in the block at `o` (written by its holder alone). */
export function account(
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

/** lock_stat bookkeeping at release: the hold time, in the block at `o`. */
export function endHold(f: Float64Array, o: number): void {
  const start = f[o + S_HOLD_START]!;
  if (!(start > 0)) return;
  const us = (now() - start) * 1000;
  if (f[o + S_HOLD_MIN] === 0 || us < f[o + S_HOLD_MIN]!) f[o + S_HOLD_MIN] = us;
  if (us > f[o + S_HOLD_MAX]!) f[o + S_HOLD_MAX] = us;
  f[o + S_HOLD_TOTAL] = f[o + S_HOLD_TOTAL]! + us;
  f[o + S_HOLD_START] = 0;
}
