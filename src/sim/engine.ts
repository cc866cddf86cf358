/**
 * The simulated SMP machine's clockwork: N virtual CPUs, each with a virtual clock, replaying
 * the lock events of their operations against a model of the kernel's locks, in virtual-time
 * order. Knows nothing of the allocator: a Program runs a CPU's next operation and records
 * its events here (the allocator's adapter is machine.ts; tests feed hand-made events).
 *
 * Holds: Machine (the event buffers of each CPU, a binary heap of CPUs keyed by the virtual
 * time of their next event with ties broken by cpu id, the lock and cache-line models, the
 * per-lock statistics in lock_stat's terms and the time each CPU spent spinning per lock).
 * Locks are the ones given to the constructor (a lock table's slots) plus any added while
 * running (addLock(): the locks inside records, such as vb->lock, appear as records do).
 * Invariant: a CPU is in the heap exactly when it is not queued for a lock (a woken sleeper
 * of the workers' lock model is in the heap, due when it runs again); a lock has at most one
 * owner; its queued waiters are served first come, first served (the arrival time, ties by the
 * order the events were processed, which is deterministic); clocks never go backwards.
 * Callers: src/sim/machine.ts (the allocator's runs), the lock-model tests.
 *
 * The model. Spinlocks are the kernel's queued spinlocks: a waiter spins on its own CPU (its
 * time counts as spinning for that lock), waiters get the lock in arrival order, and passing
 * the lock to the next waiter costs one cache-line transfer (`transferNs`). Taking a free lock
 * costs `acquireNs`, plus a transfer when another CPU held it last (the line is in that CPU's
 * cache). Mutexes queue the same way but their waiters sleep (the time is not spinning).
 * A write to a hot shared line (vmap_lazy_nr) costs a transfer when another CPU wrote it
 * last. The data under a lock: while a CPU holds a lock that another CPU held last, each tree
 * node it visits (a step, counted by the allocator) costs a transfer too, the kernel's cost of
 * a contended critical section (its tree nodes come from the previous holder's cache). It is a
 * proxy, one line per step: it counts the lines a lookup only reads, which the other CPU may
 * not have written since, and leaves out the shared counters and record lists an operation
 * also writes; at 2 CPUs it is what brings the simulated holds to the real ones (without it
 * the simulated vmap_area_lock holds 0.09 us, 6% contended, where the real one is 20%). A trylock that finds the lock held in virtual time does not wait: the operation ran
 * as if it had the lock (its effects are already in the allocator), and the failure is
 * counted (`tryFailures`); its matching release is ignored.
 *
 * The workers' lock model (`costs.futex`; the two-worker validation uses it, because real
 * workers take this project's locks, src/shared/lock.ts and lock-wait.ts, not the kernel's): a
 * waiter spins `spinNs` (SPIN_LIMIT loads of the lock word), then marks the word 2 and sleeps
 * in Atomics.wait. A release that finds the word 2 calls Atomics.notify (`notifyNs` on the
 * releaser's clock, after the lock is free). A spinning first waiter takes the lock a line
 * transfer after the release, as in the kernel model; a sleeping one is woken `wakeNs` later
 * (the futex wake, measured from the release to the waiter running), and meanwhile the lock
 * is free: any CPU that asks for it takes it at once (the real lock lets a running thread
 * barge past sleepers). The woken waiter then takes the lock if it is free, else marks the
 * word and sleeps again at the head of the queue. Left out: the hand-off a waiter asks for
 * after STARVE_MS (10 ms, far above these waits), and the 20 ms sleep slices.
 */

export const EV_ACQ = 0;
export const EV_TRY = 1;
export const EV_REL = 2;
export const EV_TOUCH = 3;

export interface LockModel {
  /** lock_stat class name. */
  name: string;
  /** A sleeping lock (mutex): waiters do not spin. */
  mutex: boolean;
}

export interface MachineCosts {
  /** Taking a free lock whose line is in this CPU's cache (ns). */
  acquireNs: number;
  /** Moving a cache line from another CPU (ns): a hand-over, a bounce, a hot counter. */
  transferNs: number;
  /** Present: the workers' locks (spin, then sleep; see the header), else the kernel's. */
  futex?: FutexCosts;
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

/** Runs a CPU's next operation at virtual time `now`, recording through machine.record(); false: the CPU is done. */
export type Program = (cpu: number, now: number) => boolean;

/** lock_stat in virtual time (microseconds), one per lock slot. */
export interface VirtualLockStat {
  name: string;
  acquisitions: number;
  contentions: number;
  conBounces: number;
  acqBounces: number;
  waitMin: number;
  waitMax: number;
  waitTotal: number;
  holdMin: number;
  holdMax: number;
  holdTotal: number;
  /** Virtual ns CPUs spent spinning for this lock (0 for a mutex: its waiters sleep). */
  spinNs: number;
  /** Virtual ns waiters slept (mutexes; the workers' lock model: past the spin budget). */
  sleepNs: number;
  tryFailures: number;
  /** Sleeping waiters woken by a release (the workers' lock model; 0 in the kernel's). */
  wakes: number;
}

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

export class Machine {
  readonly nrCpus: number;
  readonly locks: readonly LockModel[];
  readonly costs: MachineCosts;
  /** Virtual clock of each CPU (ns): the time of its last processed event. */
  readonly clock: Float64Array;
  /** When each CPU finished its program (ns), NaN while it runs. */
  readonly finished: Float64Array;
  // Per CPU: the events of its current operation (kind, id, work before it in ns), the cursor.
  private readonly evKind: Int32Array[];
  private readonly evId: Int32Array[];
  private readonly evWork: Float64Array[];
  /** Per CPU, per event: the data lines (tree nodes) its work before the event touched. */
  private readonly evLines: Float64Array[];
  private readonly tailLines: Float64Array;
  /** Per CPU: locks held that came from another CPU (the data under them was written there). */
  private readonly heldBounced: Int32Array;
  /** Per lock: its current hold came from another CPU (counted in heldBounced). */
  private bouncedHold: Uint8Array;
  private readonly evCount: Int32Array;
  private readonly cursor: Int32Array;
  private readonly tail: Float64Array;
  // The heap of runnable CPUs by next event time.
  private readonly heap: Int32Array;
  private readonly key: Float64Array;
  private heapSize = 0;
  /** Every lock: the constructor's, then those added by addLock(). */
  private readonly models: LockModel[];
  // Locks: owner (-1 free), last holder (-1 none), hold start, FIFO of waiters (grown by
  // addLock, capacity doubling).
  private owner: Int32Array;
  private last: Int32Array;
  private holdStart: Float64Array;
  private readonly queues: number[][];
  private readonly arrival: Float64Array;
  /** Per (lock, cpu): releases to ignore (trylocks that failed in virtual time). */
  private skipped: Int32Array;
  private stats: Float64Array;
  /** The workers' lock model's costs, or null (the kernel's locks). */
  private readonly futex: FutexCosts | null;
  /** Per lock (workers' model): its word is 2, so the next release calls notify. */
  private marked: Uint8Array;
  /** Per CPU (workers' model): asleep in its queue (woken once and found the lock taken). */
  private readonly sleeping: Uint8Array;
  /** Per CPU (workers' model): woken, due to retry the acquisition at its cursor. */
  private readonly retry: Uint8Array;
  /** Per hot line: the CPU that wrote it last (-1 none). */
  private readonly lineOwner: Int32Array;
  lineTransfers = 0;
  /** Data lines pulled from another CPU's cache under a lock (see segment()). */
  dataTransfers = 0;
  /** The CPU whose operation is being recorded (-1: none). */
  private recording = -1;

  constructor(nrCpus: number, locks: readonly LockModel[], costs: MachineCosts, nrLines = 2) {
    this.nrCpus = nrCpus;
    this.models = locks.slice();
    this.locks = this.models;
    this.costs = costs;
    this.clock = new Float64Array(nrCpus);
    this.finished = new Float64Array(nrCpus).fill(NaN);
    this.evKind = Array.from({ length: nrCpus }, () => new Int32Array(16));
    this.evId = Array.from({ length: nrCpus }, () => new Int32Array(16));
    this.evWork = Array.from({ length: nrCpus }, () => new Float64Array(16));
    this.evLines = Array.from({ length: nrCpus }, () => new Float64Array(16));
    this.tailLines = new Float64Array(nrCpus);
    this.heldBounced = new Int32Array(nrCpus);
    this.evCount = new Int32Array(nrCpus);
    this.cursor = new Int32Array(nrCpus);
    this.tail = new Float64Array(nrCpus);
    this.heap = new Int32Array(nrCpus);
    this.key = new Float64Array(nrCpus);
    const n = Math.max(locks.length, 1);
    this.owner = new Int32Array(n).fill(-1);
    this.last = new Int32Array(n).fill(-1);
    this.holdStart = new Float64Array(n);
    this.queues = Array.from({ length: locks.length }, () => []);
    this.arrival = new Float64Array(nrCpus);
    this.skipped = new Int32Array(nrCpus * n);
    this.stats = new Float64Array(n * STAT_WORDS);
    this.lineOwner = new Int32Array(nrLines).fill(-1);
    this.futex = costs.futex ?? null;
    this.marked = new Uint8Array(n);
    this.bouncedHold = new Uint8Array(n);
    this.sleeping = new Uint8Array(nrCpus);
    this.retry = new Uint8Array(nrCpus);
  }

  /**
   * Adds a lock (free, never held) and returns its id for record(): a lock that lives in a
   * record comes into being with the record. Callable while the machine runs.
   */
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

  /**
   * Records an event of the operation being run: `work` ns of computing touching `lines`
   * data lines (tree nodes), then the event.
   */
  record(kind: number, id: number, work: number, lines = 0): void {
    const c = this.recording;
    if (c < 0) throw new Error('Machine.record: no operation is being recorded');
    let k = this.evKind[c]!;
    const n = this.evCount[c]!;
    if (n === k.length) {
      const kk = new Int32Array(n * 2);
      kk.set(k);
      this.evKind[c] = k = kk;
      const ii = new Int32Array(n * 2);
      ii.set(this.evId[c]!);
      this.evId[c] = ii;
      const ww = new Float64Array(n * 2);
      ww.set(this.evWork[c]!);
      this.evWork[c] = ww;
      const ll = new Float64Array(n * 2);
      ll.set(this.evLines[c]!);
      this.evLines[c] = ll;
    }
    k[n] = kind;
    this.evId[c]![n] = id;
    this.evWork[c]![n] = work;
    this.evLines[c]![n] = lines;
    this.evCount[c] = n + 1;
  }

  /** Adds `work` ns at the start of the operation being recorded (before its first event). */
  lead(work: number): void {
    const c = this.recording;
    if (this.evCount[c]! > 0) this.evWork[c]![0] = this.evWork[c]![0]! + work;
    else this.tail[c] = this.tail[c]! + work;
  }

  /** Records the computing after the operation's last event (ns), touching `lines` data lines. */
  finish(work: number, lines = 0): void {
    this.tail[this.recording] = this.tail[this.recording]! + work;
    this.tailLines[this.recording] = this.tailLines[this.recording]! + lines;
  }

  /**
   * The virtual ns of CPU `c`'s work before its event `i` (the tail when `i` is past the last):
   * its computing, plus a transfer per tree step while it holds a lock that came from another
   * CPU: the data under the lock was written there, and a node visited is taken as one line
   * pulled over (see the header).
   */
  private segment(c: number, i: number): number {
    const last = i >= this.evCount[c]!;
    const work = last ? this.tail[c]! : this.evWork[c]![i]!;
    if (this.heldBounced[c] === 0) return work;
    const lines = last ? this.tailLines[c]! : this.evLines[c]![i]!;
    this.dataTransfers += lines;
    return work + lines * this.costs.transferNs;
  }

  /** Runs every CPU's program to its end. Throws on a deadlock (waiters but nothing runnable). */
  run(program: Program): void {
    for (let c = 0; c < this.nrCpus; c++) {
      this.evCount[c] = 0;
      this.cursor[c] = 0;
      this.push(c, this.clock[c]!);
    }
    while (this.heapSize > 0) {
      const c = this.heap[0]!;
      const t = this.key[c]!;
      this.pop();
      this.clock[c] = t;
      this.advance(c, t, program);
    }
    for (let l = 0; l < this.locks.length; l++) {
      const q = this.queues[l]!;
      if (q.length > 0)
        throw new Error(
          `deadlock: cpu ${q.join(', ')} wait${q.length > 1 ? '' : 's'} for ${this.locks[l]!.name} (slot ${l}), ` +
            `held by cpu ${this.owner[l]}, and no CPU can run`,
        );
    }
  }

  /** Processes CPU `c`'s events from time `t` until it blocks, ends, or another CPU is due first. */
  private advance(c: number, t: number, program: Program): void {
    for (;;) {
      const i = this.cursor[c]!;
      const n = this.evCount[c]!;
      if (i >= n) {
        // The operation is over: run the next one now (its effects appear at its start).
        this.evCount[c] = 0;
        this.cursor[c] = 0;
        this.tail[c] = 0;
        this.tailLines[c] = 0;
        this.recording = c;
        let more: boolean;
        try {
          more = program(c, t);
        } finally {
          this.recording = -1;
        }
        if (!more) {
          this.finished[c] = t;
          return;
        }
        // (An operation without events: its whole work is the tail; the loop then starts the
        // next one when the CPU is due again.)
        const due = t + this.segment(c, 0);
        if (!this.runsFirst(c, due)) return this.push(c, due);
        t = due;
        this.clock[c] = t;
        continue;
      }
      // Event i is due now.
      const kind = this.evKind[c]![i]!;
      const id = this.evId[c]![i]!;
      if (kind === EV_ACQ || kind === EV_TRY) {
        if (this.retry[c] === 1) {
          // A woken sleeper (workers' model): its exchange marks the word 2; taken, it sleeps again.
          this.retry[c] = 0;
          this.marked[id] = 1;
          if (this.owner[id]! >= 0) {
            this.sleeping[c] = 1;
            this.queues[id]!.unshift(c);
            return;
          }
          this.countWait(c, id, t, true);
          t = this.grant(c, id, t, false);
        } else if (this.owner[id] === c) {
          throw new Error(`cpu ${c} takes ${this.locks[id]!.name} twice`);
        } else if (
          this.owner[id]! >= 0 ||
          (this.futex === null && this.queues[id]!.length > 0) // (the workers' lock: barging)
        ) {
          if (kind === EV_TRY) {
            this.skipped[id * this.nrCpus + c]!++;
            this.stats[id * STAT_WORDS + S_TRYF]!++;
          } else {
            this.arrival[c] = t;
            this.sleeping[c] = 0;
            this.queues[id]!.push(c);
            return; // waits; the release hands the lock over
          }
        } else {
          t = this.grant(c, id, t, false);
        }
      } else if (kind === EV_REL) {
        const sk = id * this.nrCpus + c;
        if (this.skipped[sk]! > 0) this.skipped[sk]!--;
        else t = this.release(c, id, t);
      } else {
        const prev = this.lineOwner[id]!;
        if (prev !== c) {
          if (prev >= 0) {
            t += this.costs.transferNs;
            this.lineTransfers++;
          }
          this.lineOwner[id] = c;
        }
      }
      this.cursor[c] = i + 1;
      const due = t + this.segment(c, i + 1);
      if (!this.runsFirst(c, due)) return this.push(c, due);
      t = due;
      this.clock[c] = t;
    }
  }

  /** Gives lock `l` to CPU `c` at time `t`; returns the time it holds it from. */
  private grant(c: number, l: number, t: number, handedOver: boolean): number {
    const s = l * STAT_WORDS;
    const st = this.stats;
    const prev = this.last[l]!;
    const bounce = prev >= 0 && prev !== c;
    st[s + S_ACQ]!++;
    if (bounce) st[s + S_ACQB]!++;
    let at = t + this.costs.acquireNs;
    // A free lock last held elsewhere: its line comes over (a hand-over paid it already).
    if (bounce && !handedOver) at += this.costs.transferNs;
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
   * CPU `c` releases lock `l` at time `t`: the first waiter gets it after a line transfer (a
   * sleeping one is woken instead: the workers' model). Returns when `c` runs on.
   */
  private release(c: number, l: number, t: number): number {
    if (this.owner[l] !== c)
      throw new Error(`cpu ${c} releases ${this.locks[l]!.name}, held by cpu ${this.owner[l]}`);
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
      if (q.length > 0) this.handOver(q.shift()!, l, t + this.costs.transferNs);
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
      this.handOver(w, l, t + this.costs.transferNs);
    } else if (q.length > 0) {
      // The first waiter sleeps: the notify wakes it; the lock stays free until it runs.
      const w = q.shift()!;
      this.sleeping[w] = 0;
      this.retry[w] = 1;
      st[s + S_WAKES]!++;
      this.push(w, t + f.wakeNs);
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
    const at = this.grant(w, l, handAt, true);
    this.clock[w] = at;
    const i = this.cursor[w]! + 1;
    this.cursor[w] = i;
    this.push(w, at + this.segment(w, i));
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
    let spin = this.locks[l]!.mutex && this.futex === null ? 0 : waitNs;
    if (woken && spin > this.futex!.spinNs) spin = this.futex!.spinNs;
    st[s + S_SPIN] = st[s + S_SPIN]! + spin;
    st[s + S_SLEEP] = st[s + S_SLEEP]! + waitNs - spin;
  }

  /** Would CPU `c`, due at `due`, run before every CPU in the heap? */
  private runsFirst(c: number, due: number): boolean {
    if (this.heapSize === 0) return true;
    const top = this.heap[0]!;
    const k = this.key[top]!;
    return due < k || (due === k && c < top);
  }

  private less(a: number, b: number): boolean {
    const ka = this.key[a]!;
    const kb = this.key[b]!;
    return ka < kb || (ka === kb && a < b);
  }

  private push(c: number, due: number): void {
    this.key[c] = due;
    const h = this.heap;
    let i = this.heapSize++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(c, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = c;
  }

  private pop(): void {
    const h = this.heap;
    const n = --this.heapSize;
    if (n === 0) return;
    const x = h[n]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && this.less(h[r]!, h[l]!) ? r : l;
      if (!this.less(h[m]!, x)) break;
      h[i] = h[m]!;
      i = m;
    }
    h[i] = x;
  }

  /** The statistics of lock slot `l`. */
  lockStat(l: number): VirtualLockStat {
    const s = l * STAT_WORDS;
    const st = this.stats;
    return {
      name: this.locks[l]!.name,
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

  /** Every lock slot's statistics. */
  lockStats(): VirtualLockStat[] {
    return this.locks.map((_, l) => this.lockStat(l));
  }

  /** The latest finish time (ns): the run's virtual duration. */
  get makespan(): number {
    let m = 0;
    for (let c = 0; c < this.nrCpus; c++) m = Math.max(m, this.finished[c]!);
    return m;
  }
}
