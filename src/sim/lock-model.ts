/**
 * The simulated machine's locks: who holds each, who waits for it and in what order, what
 * taking and passing it costs in virtual time, and lock_stat in virtual time. Two models, chosen
 * once per machine: the kernel's queued spinlocks (and mutexes), and the spin-then-sleep lock of
 * this project's workers (`costs.futex`).
 *
 * Holds: VirtualLocks (per lock: owner, last holder, hold start, FIFO of waiters, the releases
 * to ignore per CPU, the lock_stat words, the workers' model's "word is 2" mark, whether the
 * current hold came from another CPU; per CPU: when it began to wait, how many of its held locks
 * came from another CPU, and the workers' model's sleeping and woken flags), the lock and cost
 * descriptions (LockModel, FutexCosts) and VirtualLockStat.
 * Invariant: a lock has at most one owner; its queued waiters are served first come, first
 * served (the arrival time, ties by the order the events were processed, which is
 * deterministic); a CPU is queued for at most one lock; heldBounced[c] counts exactly the locks
 * CPU c holds whose bouncedHold is set.
 * Callers: src/sim/engine.ts (Machine: the clockwork that replays each CPU's lock events here
 * and runs the CPUs these locks let go on, through a WaiterRunner).
 *
 * The kernel's model. Spinlocks are the kernel's queued spinlocks: a waiter spins on its own CPU
 * (its time counts as spinning for that lock), waiters get the lock in arrival order, and
 * passing the lock to the next waiter costs one cache-line transfer (`transferNs`). Taking a
 * free lock costs `acquireNs`, plus a transfer when another CPU held it last (the line is in
 * that CPU's cache). Mutexes queue the same way but their waiters sleep (the time is not
 * spinning). A hold that came from another CPU is marked: the machine charges the data under it
 * (see engine.ts). A trylock that finds the lock held in virtual time does not wait: the
 * operation ran as if it had the lock (its effects are already in the allocator), and the
 * failure is counted (`tryFailures`); its matching release is ignored.
 *
 * The workers' lock model (`costs.futex`; the two-worker validation uses it, because real
 * workers take this project's locks, src/shared/lock.ts and lock-wait.ts, not the kernel's): a
 * waiter spins `spinNs` (SPIN_LIMIT loads of the lock word), then marks it WAITERS and sleeps
 * in Atomics.wait. A release that finds WAITERS marked calls Atomics.notify (`notifyNs` on the
 * releaser's clock, after the lock is free). A spinning first waiter takes the lock a line
 * transfer after the release, as in the kernel model; a sleeping one is woken `wakeNs` later
 * (the futex wake, measured from the release to the waiter running), and meanwhile the lock
 * is free: any CPU that asks for it takes it at once (the real lock lets a running thread
 * barge past sleepers). The woken waiter then takes the lock if it is free, else marks the
 * word and sleeps again at the head of the queue. Left out: the hand-off a waiter asks for
 * after STARVE_MS (10 ms, far above these waits), and the 20 ms sleep slices.
 */

import type { LockStat } from '../shared/lock-table.js';

export interface LockModel {
  /** lock_stat class name. */
  name: string;
  /** A sleeping lock (mutex): waiters do not spin. */
  mutex: boolean;
}

/** The costs of this project's worker locks beyond the kernel model's (ns). */
export interface FutexCosts {
  /** How long a waiter spins before it sleeps. */
  spinNs: number;
  /** From a release that wakes a sleeper to the sleeper running. */
  wakeNs: number;
  /** The releaser's Atomics.notify call. */
  notifyNs: number;
}

/** lock_stat in virtual time (microseconds), one per lock slot: the real one's fields, and: */
export interface VirtualLockStat extends LockStat {
  /** Virtual ns CPUs spent spinning for this lock (0 for a mutex: its waiters sleep). */
  spinNs: number;
  /** Virtual ns waiters slept (mutexes; the workers' lock model: past the spin budget). */
  sleepNs: number;
  tryFailures: number;
  /** Sleeping waiters woken by a release (the workers' lock model; 0 in the kernel's). */
  wakes: number;
}

/** What a release asks of the machine that runs the CPUs. */
export interface WaiterRunner {
  /** Queued waiter `w` holds the lock from `at`: its acquisition event is done, it runs on. */
  resume(w: number, at: number): void;
  /** Sleeping waiter `w` (the workers' model) runs at `at`, to retry its acquisition event. */
  wake(w: number, at: number): void;
}

/** acquire()'s answer when the CPU queues for the lock (times are never negative). */
export const WAITS = -1;

const STAT_WORDS = 14;
const S_ACQ = 0,
  S_CONT = 1,
  S_CONB = 2,
  S_ACQB = 3,
  S_WMIN = 4,
  S_WMAX = 5,
  S_WTOT = 6,
  S_HMIN = 7,
  S_HMAX = 8,
  S_HTOT = 9,
  S_SPIN = 10,
  S_SLEEP = 11,
  S_TRYF = 12,
  S_WAKES = 13;

export class VirtualLocks {
  private readonly nrCpus: number;
  /** Every lock: the constructor's, then those added by addLock(). */
  readonly models: LockModel[];
  private readonly acquireNs: number;
  private readonly transferNs: number;
  /** The workers' lock model's costs, or null (the kernel's locks). */
  private readonly futex: FutexCosts | null;
  private readonly runner: WaiterRunner;
  // Locks: owner (-1 free), last holder (-1 none), hold start, FIFO of waiters (grown by
  // addLock, capacity doubling).
  private owner: Int32Array;
  private last: Int32Array;
  private holdStart: Float64Array;
  private readonly queues: number[][];
  /** Per CPU: when it queued for the lock it waits for. */
  private readonly arrival: Float64Array;
  /** Per (lock, cpu): releases to ignore (trylocks that failed in virtual time). */
  private skipped: Int32Array;
  private stats: Float64Array;
  /** Per CPU: locks held that came from another CPU (the data under them was written there). */
  private readonly heldBounced: Int32Array;
  /** Per lock: its current hold came from another CPU (counted in heldBounced). */
  private bouncedHold: Uint8Array;
  /** Per lock (workers' model): its word is 2, so the next release calls notify. */
  private marked: Uint8Array;
  /** Per CPU (workers' model): asleep in its queue (woken once and found the lock taken). */
  private readonly sleeping: Uint8Array;
  /** Per CPU (workers' model): woken, due to retry the acquisition at its cursor. */
  private readonly retry: Uint8Array;

  constructor(
    nrCpus: number,
    locks: readonly LockModel[],
    costs: { acquireNs: number; transferNs: number; futex?: FutexCosts },
    runner: WaiterRunner,
  ) {
    this.nrCpus = nrCpus;
    this.models = locks.slice();
    this.acquireNs = costs.acquireNs;
    this.transferNs = costs.transferNs;
    this.futex = costs.futex ?? null;
    this.runner = runner;
    const n = Math.max(locks.length, 1);
    this.owner = new Int32Array(n).fill(-1);
    this.last = new Int32Array(n).fill(-1);
    this.holdStart = new Float64Array(n);
    this.queues = Array.from({ length: locks.length }, () => []);
    this.arrival = new Float64Array(nrCpus);
    this.skipped = new Int32Array(nrCpus * n);
    this.stats = new Float64Array(n * STAT_WORDS);
    this.heldBounced = new Int32Array(nrCpus);
    this.marked = new Uint8Array(n);
    this.bouncedHold = new Uint8Array(n);
    this.sleeping = new Uint8Array(nrCpus);
    this.retry = new Uint8Array(nrCpus);
  }

  /** Adds a lock (free, never held) and returns its id. Callable while the machine runs. */
  addLock(model: LockModel): number {
    const id = this.models.length;
    if (id >= this.owner.length) {
      const cap = this.owner.length * 2;
      const grow = <T extends Int32Array | Float64Array | Uint8Array>(
        a: T,
        words: number,
        fill: number,
      ): T => {
        const b = new (a.constructor as new (n: number) => T)(cap * words);
        b.fill(fill);
        b.set(a);
        return b;
      };
      this.owner = grow(this.owner, 1, -1);
      this.last = grow(this.last, 1, -1);
      this.holdStart = grow(this.holdStart, 1, 0);
      this.skipped = grow(this.skipped, this.nrCpus, 0);
      this.stats = grow(this.stats, STAT_WORDS, 0);
      this.marked = grow(this.marked, 1, 0);
      this.bouncedHold = grow(this.bouncedHold, 1, 0);
    }
    this.models.push(model);
    this.queues.push([]);
    return id;
  }

  /** Does CPU `c` hold a lock that came from another CPU (the data under it is remote)? */
  holdsBounced(c: number): boolean {
    return this.heldBounced[c] !== 0;
  }

  /**
   * CPU `c` asks for lock `l` at time `t` (`isTry`: a trylock). Returns the time it runs on
   * from (holding the lock, or past a failed trylock), or WAITS: it is queued, and a release
   * lets it go on through the WaiterRunner.
   */
  acquire(c: number, l: number, t: number, isTry: boolean): number {
    if (this.retry[c] === 1) {
      // A woken sleeper (workers' model): it marks the word WAITERS; taken, it sleeps again.
      this.retry[c] = 0;
      this.marked[l] = 1;
      if (this.owner[l]! >= 0) {
        this.sleeping[c] = 1;
        this.queues[l]!.unshift(c);
        return WAITS;
      }
      this.countWait(c, l, t, true);
      return this.grant(c, l, t, false);
    }
    if (this.owner[l] === c) throw new Error(`cpu ${c} takes ${this.models[l]!.name} twice`);
    if (
      this.owner[l]! >= 0 ||
      (this.futex === null && this.queues[l]!.length > 0) // (the workers' lock: barging)
    ) {
      if (isTry) {
        this.skipped[l * this.nrCpus + c]!++;
        this.stats[l * STAT_WORDS + S_TRYF]!++;
        return t;
      }
      this.arrival[c] = t;
      this.sleeping[c] = 0;
      this.queues[l]!.push(c);
      return WAITS; // waits; the release hands the lock over
    }
    return this.grant(c, l, t, false);
  }

  /** Gives lock `l` to CPU `c` at time `t`; returns the time it holds it from. */
  private grant(c: number, l: number, t: number, handedOver: boolean): number {
    const s = l * STAT_WORDS;
    const st = this.stats;
    const prev = this.last[l]!;
    const bounce = prev >= 0 && prev !== c;
    st[s + S_ACQ]!++;
    if (bounce) st[s + S_ACQB]!++;
    let at = t + this.acquireNs;
    // A free lock last held elsewhere: its line comes over (a hand-over paid it already).
    if (bounce && !handedOver) at += this.transferNs;
    if (bounce) {
      this.bouncedHold[l] = 1;
      this.heldBounced[c]!++;
    }
    this.owner[l] = c;
    this.last[l] = c;
    this.holdStart[l] = at;
    return at;
  }

  /**
   * CPU `c` releases lock `l` at time `t` (ignored when it matches a failed trylock): the first
   * waiter gets it after a line transfer (a sleeping one is woken instead: the workers' model).
   * Returns when `c` runs on.
   */
  release(c: number, l: number, t: number): number {
    const sk = l * this.nrCpus + c;
    if (this.skipped[sk]! > 0) {
      this.skipped[sk]!--;
      return t;
    }
    if (this.owner[l] !== c)
      throw new Error(`cpu ${c} releases ${this.models[l]!.name}, held by cpu ${this.owner[l]}`);
    const s = l * STAT_WORDS;
    const st = this.stats;
    const hold = (t - this.holdStart[l]!) / 1000;
    if (st[s + S_HMIN] === 0 || hold < st[s + S_HMIN]!) st[s + S_HMIN] = hold;
    if (hold > st[s + S_HMAX]!) st[s + S_HMAX] = hold;
    st[s + S_HTOT] = st[s + S_HTOT]! + hold;
    this.owner[l] = -1;
    if (this.bouncedHold[l] === 1) {
      this.bouncedHold[l] = 0;
      this.heldBounced[c]!--;
    }
    const q = this.queues[l]!;
    const f = this.futex;
    if (f === null) {
      if (q.length > 0) this.handOver(q.shift()!, l, t + this.transferNs);
      return t;
    }
    // The word is 2 when a woken waiter marked it or a queued one has spun out its budget.
    let sleepers = false;
    for (let k = 0; k < q.length && !sleepers; k++) sleepers = this.asleep(q[k]!, t);
    const notify = sleepers || this.marked[l] === 1;
    this.marked[l] = 0;
    if (q.length > 0 && !this.asleep(q[0]!, t)) {
      // A spinning first waiter sees the store; a sleeper behind it, woken, marks the word again.
      const w = q.shift()!;
      if (sleepers) this.marked[l] = 1;
      this.handOver(w, l, t + this.transferNs);
    } else if (q.length > 0) {
      // The first waiter sleeps: the notify wakes it; the lock stays free until it runs.
      const w = q.shift()!;
      this.sleeping[w] = 0;
      this.retry[w] = 1;
      st[s + S_WAKES]!++;
      this.runner.wake(w, t + f.wakeNs);
    }
    return notify ? t + f.notifyNs : t;
  }

  /** Has waiting CPU `w` gone to sleep by time `t` (the workers' model)? */
  private asleep(w: number, t: number): boolean {
    return this.sleeping[w] === 1 || this.arrival[w]! + this.futex!.spinNs <= t;
  }

  /** Queued waiter `w` gets lock `l` at `handAt` and runs on. */
  private handOver(w: number, l: number, handAt: number): void {
    this.countWait(w, l, handAt, false);
    this.runner.resume(w, this.grant(w, l, handAt, true));
  }

  /** Counts waiter `w`'s contended acquisition of lock `l`, reached at `handAt` (`woken`: it slept). */
  private countWait(w: number, l: number, handAt: number, woken: boolean): void {
    const s = l * STAT_WORDS;
    const st = this.stats;
    const waitNs = handAt - this.arrival[w]!;
    const us = waitNs / 1000;
    st[s + S_CONT]!++;
    if (this.last[l] !== w) st[s + S_CONB]!++;
    if (st[s + S_CONT] === 1 || us < st[s + S_WMIN]!) st[s + S_WMIN] = us;
    if (us > st[s + S_WMAX]!) st[s + S_WMAX] = us;
    st[s + S_WTOT] = st[s + S_WTOT]! + us;
    // Kernel model: a mutex's waiter sleeps, a spinlock's spins. Workers' model: both spin;
    // a waiter that was woken spun its budget, then slept.
    let spin = this.models[l]!.mutex && this.futex === null ? 0 : waitNs;
    if (woken && spin > this.futex!.spinNs) spin = this.futex!.spinNs;
    st[s + S_SPIN] = st[s + S_SPIN]! + spin;
    st[s + S_SLEEP] = st[s + S_SLEEP]! + waitNs - spin;
  }

  /** Throws when a CPU still waits for a lock (the machine has nothing left to run: a deadlock). */
  checkNoWaiters(): void {
    for (let l = 0; l < this.models.length; l++) {
      const q = this.queues[l]!;
      if (q.length > 0)
        throw new Error(
          `deadlock: cpu ${q.join(', ')} wait${q.length > 1 ? '' : 's'} for ${this.models[l]!.name} (slot ${l}), ` +
            `held by cpu ${this.owner[l]}, and no CPU can run`,
        );
    }
  }

  /** The statistics of lock slot `l`. */
  lockStat(l: number): VirtualLockStat {
    const s = l * STAT_WORDS;
    const st = this.stats;
    return {
      name: this.models[l]!.name,
      acquisitions: st[s + S_ACQ]!,
      contentions: st[s + S_CONT]!,
      conBounces: st[s + S_CONB]!,
      acqBounces: st[s + S_ACQB]!,
      waitMin: st[s + S_WMIN]!,
      waitMax: st[s + S_WMAX]!,
      waitTotal: st[s + S_WTOT]!,
      holdMin: st[s + S_HMIN]!,
      holdMax: st[s + S_HMAX]!,
      holdTotal: st[s + S_HTOT]!,
      spinNs: st[s + S_SPIN]!,
      sleepNs: st[s + S_SLEEP]!,
      tryFailures: st[s + S_TRYF]!,
      wakes: st[s + S_WAKES]!,
    };
  }
}
