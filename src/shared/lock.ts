/**
 * Locks in shared memory: the kernel's spinlocks and mutexes for worker threads, with the
 * kernel's lock statistics (lock_stat) and detection of a holder whose worker died.
 *
 * Holds: a table of lock slots in one SharedArrayBuffer (a header slot, one slot per lock, and
 * one liveness word per cpu), and the Lock handle that acquires and releases one slot.
 * A slot is 128 bytes (two cache lines, so two locks never share one):
 *
 *   Int32   0  state: 0 unlocked, 1 locked, 2 locked with waiters (who may sleep),
 *              3 handed to a starving waiter (locked; see STARVE_MS)
 *           1  owner: cpu id + 1 of the holder, 0 when unlocked
 *           2  last:  cpu id + 1 of the previous holder (for the bounce counts)
 *           3  hand-off: 0 none; cpu id + 1 of a waiter that waited STARVE_MS and asks for
 *              the lock; minus that when an unlock has handed the lock to it
 *   Float64 2.. lock_stat: acquisitions, contentions, con-bounces, acq-bounces, wait and hold
 *              time (min, max, total, in microseconds), the current hold's start
 *
 * Invariant: only the holder writes the statistics of a slot, so they need no atomics.
 * Callers: every module that takes a kernel lock (free_vmap_area_lock, vmap_area_lock, ...).
 *
 * Acquire: compare-and-swap 0 -> 1; else spin a bounded number of times retrying; then mark
 * the word 2 (waiters) and Atomics.wait on it until a release wakes us (Drepper, "Futexes are
 * tricky", mutex 2). Release: if the word was 2, store 0 and Atomics.notify one waiter.
 * That lets a running thread barge past sleepers; a waiter that has waited STARVE_MS asks for
 * a hand-off, and the next release passes the lock straight to it (state 3, then 2), so no
 * waiter starves (the kernel's queued spinlocks are strictly FIFO). A waiter sleeps in
 * slices; after each it checks whether the holder's cpu was marked dead (markCpuDead) and how
 * long it has waited, and gives up with VmallocError EOWNERDEAD or ETIMEDOUT instead of
 * hanging forever.
 */

import { VmallocError } from '../errors.js';

export const LOCK_SLOT_BYTES = 128;
const I32_PER_SLOT = LOCK_SLOT_BYTES / 4;
const F64_PER_SLOT = LOCK_SLOT_BYTES / 8;
const OWNER = 1; // (word 0 of a slot is the state)
const LAST = 2;
/**
 * The hand-off word: 0, or +(cpu + 1) when that waiter asks for the lock, or -(cpu + 1) once
 * an unlock has handed it over. Claim and grant are one compare-and-swap, so a holder that
 * dies halfway through its unlock cannot leave the waiter half-granted.
 */
const HANDOFF = 3;
/** Float64 words of a slot. */
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
  /** Per cpu: 0 alive (or unknown), 1 dead. */
  private readonly alive: Int32Array;

  constructor(buffer: SharedArrayBuffer | ArrayBuffer) {
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.nrCpus = this.i32[H_NR_CPUS]!;
    const aliveBytes = Math.ceil((this.nrCpus * 4) / LOCK_SLOT_BYTES) * LOCK_SLOT_BYTES;
    this.count = (buffer.byteLength - aliveBytes) / LOCK_SLOT_BYTES - 1;
    this.alive = new Int32Array(buffer, (this.count + 1) * LOCK_SLOT_BYTES, this.nrCpus);
  }

  static create(count: number, shared: boolean, nrCpus = 1): LockTable {
    const aliveBytes = Math.ceil((nrCpus * 4) / LOCK_SLOT_BYTES) * LOCK_SLOT_BYTES;
    const bytes = (count + 1) * LOCK_SLOT_BYTES + aliveBytes;
    const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    const h = new Int32Array(buffer);
    h[H_TIMEOUT] = DEFAULT_LOCK_TIMEOUT_MS;
    h[H_NR_CPUS] = nrCpus;
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

  /** Zeroes every lock's statistics. */
  resetStats(): void {
    for (let slot = 1; slot <= this.count; slot++) {
      this.f64.fill(0, slot * F64_PER_SLOT + S_ACQ, slot * F64_PER_SLOT + S_HOLD_START);
    }
  }

  /** The statistics of lock `index`, under `name`. */
  stat(index: number, name: string): LockStat {
    const o = (index + 1) * F64_PER_SLOT;
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

/** One lock of a LockTable, as seen by one thread. */
export class Lock {
  readonly name: string;
  readonly index: number;
  private readonly table: LockTable;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  /** Int32 word of this slot's state; Float64 word of its statistics. */
  private readonly base: number;
  private readonly fbase: number;
  private canWait: boolean;

  constructor(table: LockTable, index: number, name: string) {
    if (index < 0 || index >= table.count)
      throw new RangeError(`lock index ${index} outside the table`);
    this.name = name;
    this.index = index;
    this.table = table;
    this.i32 = table.i32;
    this.f64 = table.f64;
    this.base = (index + 1) * I32_PER_SLOT;
    this.fbase = (index + 1) * F64_PER_SLOT;
    this.canWait = table.buffer instanceof SharedArrayBuffer;
  }

  /** Takes the lock for `cpu`. Kernel: spin_lock() / mutex_lock(). */
  lock(cpu: number): void {
    const w = this.i32;
    const at = this.base;
    if (Atomics.compareExchange(w, at, 0, 1) !== 0) {
      this.lockSlow(cpu);
      return;
    }
    w[at + OWNER] = cpu + 1;
    if (w[H_STATS] === 1) this.account(cpu, false, 0);
  }

  /** Contended: spin, then sleep until woken, checking on the holder between naps. */
  private lockSlow(cpu: number): void {
    const w = this.i32;
    const at = this.base;
    const stats = w[H_STATS] === 1;
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
        this.sleep();
        if (asked && Atomics.load(w, at + HANDOFF) === -(cpu + 1)) break;
        c = Atomics.exchange(w, at, 2);
        if (c !== 0 && !this.checkHolder(t0, cpu, asked)) break; // handed over as we gave up
      }
      if (asked) this.endHandoff(cpu, c === 0);
    }
    w[at + OWNER] = cpu + 1;
    if (stats) this.account(cpu, true, now() - t0);
  }

  /**
   * Settles this waiter's hand-off request once it holds the lock: taken in the ordinary way
   * (`released`), it withdraws the request (nobody can grant it while this waiter holds the
   * lock); handed over, it clears the grant and marks the state 2, held with waiters, whatever
   * the unlock left (3, or the old state if that holder died right after granting), so that
   * its own unlock wakes the next waiter.
   */
  private endHandoff(cpu: number, released: boolean): void {
    const w = this.i32;
    const at = this.base;
    if (released && Atomics.compareExchange(w, at + HANDOFF, cpu + 1, 0) === cpu + 1) return;
    Atomics.store(w, at + HANDOFF, 0);
    Atomics.store(w, at, 2);
  }

  private sleep(): void {
    if (this.canWait) {
      try {
        Atomics.wait(this.i32, this.base, 2, WAIT_SLICE_MS);
        return;
      } catch {
        // A browser's main thread may not wait: spin instead from now on.
        this.canWait = false;
      }
    }
  }

  /**
   * Gives up when the holder's worker is known dead, or after the table's timeout: throws,
   * after withdrawing this waiter's hand-off request. Returns true to keep waiting, false when
   * the lock was handed to this waiter just as it was giving up (it then holds the lock).
   */
  private checkHolder(t0: number, cpu: number, asked: boolean): boolean {
    const owner = Atomics.load(this.i32, this.base + OWNER) - 1;
    const dead = owner >= 0 && owner !== cpu && this.table.isCpuDead(owner);
    const waited = now() - t0;
    if (!dead && waited <= this.table.timeoutMs) return true;
    if (asked && Atomics.compareExchange(this.i32, this.base + HANDOFF, cpu + 1, 0) !== cpu + 1) {
      return false; // an unlocker granted our request: the lock is ours
    }
    if (dead) {
      throw new VmallocError(
        'EOWNERDEAD',
        `Cannot take ${this.name}: it is held by cpu ${owner}, whose worker has died; the state it protects may be inconsistent`,
      );
    }
    throw new VmallocError(
      'ETIMEDOUT',
      `Cannot take ${this.name}: waited ${Math.round(waited)} ms for it, held by cpu ${owner}; its worker may have died or be stuck`,
    );
  }

  /** lock_stat bookkeeping at acquisition (the holder writes the slot alone). */
  private account(cpu: number, contended: boolean, waitMs: number): void {
    const f = this.f64;
    const o = this.fbase;
    const last = this.i32[this.base + LAST]!;
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
    this.i32[this.base + LAST] = cpu + 1;
    f[o + S_HOLD_START] = now();
  }

  /** Takes the lock if it is free. Kernel: spin_trylock() / mutex_trylock(). */
  tryLock(cpu: number): boolean {
    if (Atomics.compareExchange(this.i32, this.base, 0, 1) !== 0) return false;
    this.i32[this.base + OWNER] = cpu + 1;
    if (this.i32[H_STATS] === 1) this.account(cpu, false, 0);
    return true;
  }

  /** Releases the lock. Kernel: spin_unlock() / mutex_unlock(). */
  unlock(): void {
    const w = this.i32;
    const at = this.base;
    if (w[H_STATS] === 1) {
      const f = this.f64;
      const o = this.fbase;
      const start = f[o + S_HOLD_START]!;
      if (start > 0) {
        const us = (now() - start) * 1000;
        if (f[o + S_HOLD_MIN] === 0 || us < f[o + S_HOLD_MIN]!) f[o + S_HOLD_MIN] = us;
        if (us > f[o + S_HOLD_MAX]!) f[o + S_HOLD_MAX] = us;
        f[o + S_HOLD_TOTAL] = f[o + S_HOLD_TOTAL]! + us;
        f[o + S_HOLD_START] = 0;
      }
    }
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

  /** Is the lock held (by anyone)? For assertions and the checker. */
  isLocked(): boolean {
    return Atomics.load(this.i32, this.base) !== 0;
  }

  /** cpu id of the holder, or -1. */
  owner(): number {
    return Atomics.load(this.i32, this.base + OWNER) - 1;
  }

  /** cpu id of a starving waiter the next unlock will hand the lock to, or -1. */
  handoffRequested(): number {
    const h = Atomics.load(this.i32, this.base + HANDOFF);
    return h > 0 ? h - 1 : -1;
  }
}
