/**
 * The simulated SMP machine's clockwork: N virtual CPUs, each with a virtual clock, replaying
 * the lock events of their operations against a model of the kernel's locks (lock-model.ts),
 * in virtual-time order. Knows nothing of the allocator: a Program runs a CPU's next operation
 * and records its events here (the allocator's adapter is machine.ts; tests feed hand-made
 * events).
 *
 * Holds: Machine (the event buffers of each CPU, a binary heap of CPUs keyed by the virtual
 * time of their next event with ties broken by cpu id, the locks (VirtualLocks, with their
 * per-lock statistics in lock_stat's terms and the time each CPU spent spinning per lock), the
 * hot cache lines' last writers).
 * Locks are the ones given to the constructor (a lock table's slots) plus any added while
 * running (addLock(): the locks inside records, such as vb->lock, appear as records do).
 * Invariant: a CPU is in the heap exactly when it is not queued for a lock (a woken sleeper
 * of the workers' lock model is in the heap, due when it runs again); clocks never go
 * backwards. The locks' own invariants are lock-model.ts's.
 * Callers: src/sim/machine.ts (the allocator's runs), the lock-model tests.
 *
 * The model. The costs of taking, waiting for and passing a lock are lock-model.ts's (the
 * kernel's queued spinlocks and mutexes, or the workers' spin-then-sleep lock). A write to a
 * hot shared line (vmap_lazy_nr) costs a transfer when another CPU wrote it last. The data
 * under a lock: while a CPU holds a lock that another CPU held last, each tree node it visits
 * (a step, counted by the allocator) costs a transfer too, the kernel's cost of a contended
 * critical section (its tree nodes come from the previous holder's cache). It is a proxy, one
 * line per step: it counts the lines a lookup only reads, which the other CPU may not have
 * written since, and leaves out the shared counters and record lists an operation also
 * writes; at 2 CPUs it is what brings the simulated holds to the real ones (without it the
 * simulated vmap_area_lock holds 0.09 us, 6% contended, where the real one is 20%).
 */

import {
  type FutexCosts,
  type LockModel,
  type VirtualLockStat,
  VirtualLocks,
  WAITS,
} from './lock-model.js';

// The machine's callers and tests name the lock descriptions with the machine.
export type { FutexCosts, LockModel, VirtualLockStat } from './lock-model.js';

export const EV_ACQ = 0;
export const EV_TRY = 1;
export const EV_REL = 2;
export const EV_TOUCH = 3;

export interface MachineCosts {
  /** Taking a free lock whose line is in this CPU's cache (ns). */
  acquireNs: number;
  /** Moving a cache line from another CPU (ns): a hand-over, a bounce, a hot counter. */
  transferNs: number;
  /** Present: the workers' locks (spin, then sleep; see lock-model.ts), else the kernel's. */
  futex?: FutexCosts;
}

/** Runs a CPU's next operation at virtual time `now`, recording through machine.record(); false: the CPU is done. */
export type Program = (cpu: number, now: number) => boolean;

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
  private readonly evCount: Int32Array;
  private readonly cursor: Int32Array;
  private readonly tail: Float64Array;
  // The heap of runnable CPUs by next event time.
  private readonly heap: Int32Array;
  private readonly key: Float64Array;
  private heapSize = 0;
  /** Every lock's state and statistics (the constructor's, then those added by addLock()). */
  private readonly lockState: VirtualLocks;
  /** Per hot line: the CPU that wrote it last (-1 none). */
  private readonly lineOwner: Int32Array;
  lineTransfers = 0;
  /** Data lines pulled from another CPU's cache under a lock (see segment()). */
  dataTransfers = 0;
  /** The CPU whose operation is being recorded (-1: none). */
  private recording = -1;

  constructor(nrCpus: number, locks: readonly LockModel[], costs: MachineCosts, nrLines = 2) {
    this.nrCpus = nrCpus;
    this.costs = costs;
    this.clock = new Float64Array(nrCpus);
    this.finished = new Float64Array(nrCpus).fill(NaN);
    this.evKind = Array.from({ length: nrCpus }, () => new Int32Array(16));
    this.evId = Array.from({ length: nrCpus }, () => new Int32Array(16));
    this.evWork = Array.from({ length: nrCpus }, () => new Float64Array(16));
    this.evLines = Array.from({ length: nrCpus }, () => new Float64Array(16));
    this.tailLines = new Float64Array(nrCpus);
    this.evCount = new Int32Array(nrCpus);
    this.cursor = new Int32Array(nrCpus);
    this.tail = new Float64Array(nrCpus);
    this.heap = new Int32Array(nrCpus);
    this.key = new Float64Array(nrCpus);
    this.lockState = new VirtualLocks(nrCpus, locks, costs, {
      resume: (w, at) => this.resume(w, at),
      wake: (w, at) => this.push(w, at),
    });
    this.locks = this.lockState.models;
    this.lineOwner = new Int32Array(nrLines).fill(-1);
  }

  /**
   * Adds a lock (free, never held) and returns its id for record(): a lock that lives in a
   * record comes into being with the record. Callable while the machine runs.
   */
  addLock(model: LockModel): number {
    return this.lockState.addLock(model);
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
    if (!this.lockState.holdsBounced(c)) return work;
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
    this.lockState.checkNoWaiters();
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
        const at = this.lockState.acquire(c, id, t, kind === EV_TRY);
        if (at === WAITS) return; // queued: a release runs it on
        t = at;
      } else if (kind === EV_REL) {
        t = this.lockState.release(c, id, t);
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

  /** Queued waiter `w` holds its lock from `at` (lock-model.ts's hand-over) and runs on. */
  private resume(w: number, at: number): void {
    this.clock[w] = at;
    const i = this.cursor[w]! + 1;
    this.cursor[w] = i;
    this.push(w, at + this.segment(w, i));
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
    return this.lockState.lockStat(l);
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
