/**
 * RCU for workers: quiescent-state counters per cpu in the shared control block, grace
 * periods any worker can start and complete, and the per-cpu batches of kvfree_rcu() (the
 * storage; kvfree-rcu.ts fills and frees them).
 *
 * Holds: declareRcu() (the words and locks), Rcu (one thread's view: quiescent(), advance(),
 * requestGp(), waitFor(), the batch slots). The free path's guard is in rcu-guard.ts.
 * Invariant: STARTED - DONE is 0 or 1; grace period g (counted from 1) completes (DONE = g)
 * only when every cpu that was attached and alive when it started has passed a quiescent state
 * since, or has detached, died or waited in an extended quiescent state. A batch closed with
 * cookie c is freed only once DONE >= c, and c is larger than every grace period that had
 * started when it closed: so no area is freed while a section that could see it still runs.
 * Callers: shared-state.ts declares and builds it; kvfree-rcu.ts (the façade's kvfreeRcu,
 * rcuBarrier, synchronizeRcu, rcuQuiescent and every call's exit); free-path.ts.
 *
 * The model (QSBR): a worker is inside a read-side critical section while it runs a Vmalloc
 * call or its own code between calls; it passes a quiescent state when a call that changes
 * state returns (afterOp), and when it calls rcuQuiescent(). A worker that stops calling holds
 * grace periods until it detaches (or dies). A worker waiting in synchronizeRcu/rcuBarrier is
 * in an extended quiescent state, so two waiters never wait for each other.
 *
 * Kernel: kernel/rcu (rcu_qs, rcu_gp_init, get_state_synchronize_rcu /
 * poll_state_synchronize_rcu), mm/slab_common.c kvfree_rcu (struct kfree_rcu_cpu, its bulk
 * pages of pointers, each stamped with a polled grace-period cookie).
 * Differs from kernel: no grace-period kthread (the workers drive grace periods at their
 * quiescent states); no 5-second drain timer (a partial batch closes when it fills, after
 * KVFREE_DRAIN_QS quiescent states of its cpu, at rcuBarrier/synchronizeRcu, or at detach).
 */

import { VmallocError } from '../errors.js';
import { type ControlLayout, LINE_WORDS } from '../shared/control-layout.js';
import { Lock, type LockTable } from '../shared/lock.js';
import type { CpuClaims } from './cpu-claims.js';

/** Pointers per batch (the kernel's bulk page holds about 510; a smaller one here). */
export const KVFREE_BATCH = 128;
/** Batches per cpu: one filling, the others waiting for their grace period. */
export const KVFREE_SLOTS = 4;
/** A partial batch closes after this many quiescent states of its cpu. */
export const KVFREE_DRAIN_QS = 4096;

// The global line: grace-period sequence.
const STARTED = 0;
const DONE = 1;
const NEEDED = 2;
/** First cpu not yet seen quiescent in the current grace period (a scan resumes there). */
const CURSOR = 3;
// The pending line (written on every kvfreeRcu and free, apart from the sequence).
const PENDING = 0;
// Each cpu's line.
const QS = 0;
const EQS = 1;
/** The filling slot + 1 (0: none). */
const FILL = 2;
/** The smallest cookie of this cpu's waiting batches (0: none). */
const MIN = 3;
/** Float64 counters at words 8..13: queued, freed, batches closed. */
const F_QUEUED = 4;
const F_FREED = 5;
const F_BATCHES = 6;
// A slot: a header line, then KVFREE_BATCH Float64 addresses.
const STATE = 0;
const COUNT = 1;
const COOKIE = 2;
export const SLOT_FREE = 0;
export const SLOT_FILLING = 1;
export const SLOT_WAITING = 2;
const SLOT_WORDS = LINE_WORDS + 2 * KVFREE_BATCH;
/** How long a waiter sleeps before it looks at the other cpus again. */
const SLICE_MS = 20;

export interface RcuDecl {
  global: number;
  pending: number;
  cpus: number;
  snap: number;
  slots: number;
  gpLock: number;
  krcLock: number;
}

export function declareRcu(layout: ControlLayout, nrCpus: number): RcuDecl {
  return {
    global: layout.lines(LINE_WORDS),
    pending: layout.lines(LINE_WORDS),
    cpus: layout.lines(nrCpus * LINE_WORDS),
    snap: layout.lines(nrCpus),
    slots: layout.lines(nrCpus * KVFREE_SLOTS * SLOT_WORDS),
    gpLock: layout.lock('rcu_state.lock'),
    krcLock: layout.lockArray('krcp->lock', nrCpus),
  };
}

export class Rcu {
  readonly w: Int32Array;
  readonly f: Float64Array;
  readonly cpu: number;
  readonly nrCpus: number;
  private readonly d: RcuDecl;
  private readonly gpLock: Lock;
  private readonly krc: Lock[];
  private readonly claims: CpuClaims;
  private readonly table: LockTable;
  private readonly shared: boolean;
  private readonly qsAt: number;
  private readonly minAt: number;
  private readonly doneAt: number;
  private readonly neededAt: number;
  private readonly pendingAt: number;
  /** This cpu's quiescent-state count (only its holder writes the shared word). */
  private qs: number;
  /** The count when this thread opened its filling batch (0: none open here). */
  fillSince = 0;
  /** The cpu that held the last incomplete grace period (for messages). */
  holdout = -1;

  constructor(
    ctl: ArrayBufferLike,
    d: RcuDecl,
    cpu: number,
    nrCpus: number,
    claims: CpuClaims,
    table: LockTable,
  ) {
    this.w = new Int32Array(ctl);
    this.f = new Float64Array(ctl);
    this.d = d;
    this.cpu = cpu;
    this.nrCpus = nrCpus;
    this.claims = claims;
    this.table = table;
    this.shared = typeof SharedArrayBuffer !== 'undefined' && ctl instanceof SharedArrayBuffer;
    this.gpLock = new Lock(table, d.gpLock, 'rcu_state.lock');
    this.krc = [];
    for (let c = 0; c < nrCpus; c++) this.krc.push(new Lock(table, d.krcLock + c, 'krcp->lock'));
    this.qsAt = d.cpus + cpu * LINE_WORDS + QS;
    this.minAt = d.cpus + cpu * LINE_WORDS + MIN;
    this.doneAt = d.global + DONE;
    this.neededAt = d.global + NEEDED;
    this.pendingAt = d.pending + PENDING;
    this.qs = Atomics.load(this.w, this.qsAt);
  }

  /** The grace-period lock and every cpu's krcp lock (for lock_stat and dead holders). */
  locks(): Lock[] {
    return [this.gpLock, ...this.krc];
  }

  // ------------------------------------------------------------ grace periods

  /**
   * This cpu passes a quiescent state: counts it, drives the grace period if one is wanted,
   * and says whether this cpu has batches whose grace period is over (to free now).
   */
  quiescent(): boolean {
    const w = this.w;
    this.qs = (this.qs + 1) | 0;
    // The count is published only while a grace period is wanted or running (a plain load of
    // two words as the hint, the cheapest on the hot path; advance() and the frees re-read
    // every word under their locks). A grace period snapshots the published counts when it
    // starts and waits for each to change: a cpu that missed the start in the hint publishes
    // at its next quiescent state, whose section began before it, so no section is cut
    // short. The store is sequentially consistent: what this cpu read before it is done
    // before a grace period can see the new count. (Publishing on every call cost a full
    // fence per call: about 3% of a vmalloc + vfree pair.)
    if (w[this.neededAt] !== w[this.doneAt]) {
      Atomics.store(w, this.qsAt, this.qs);
      this.advance(false);
    }
    const min = w[this.minAt]!;
    return (
      (min !== 0 && min <= w[this.doneAt]!) ||
      (this.fillSince !== 0 && ((this.qs - this.fillSince) | 0) >= KVFREE_DRAIN_QS)
    );
  }

  /**
   * Puts this cpu in an extended quiescent state (`on`) or takes it out: while in it, the cpu
   * holds no grace period (it promises to hold no reference to areas queued by others).
   */
  setOffline(on: boolean): void {
    Atomics.store(this.w, this.d.cpus + this.cpu * LINE_WORDS + EQS, on ? 1 : 0);
  }

  /** Is this cpu in an extended quiescent state (setOffline)? */
  get offline(): boolean {
    return Atomics.load(this.w, this.d.cpus + this.cpu * LINE_WORDS + EQS) !== 0;
  }

  /** Grace periods completed. */
  get completed(): number {
    return Atomics.load(this.w, this.doneAt);
  }

  /** Areas queued by kvfreeRcu and not yet freed, over every cpu. */
  get pending(): number {
    return Atomics.load(this.w, this.pendingAt);
  }

  /**
   * Is any area queued (a plain load: the free path's hint; an area queued by another cpu at
   * this very moment can only be a free racing with kvfreeRcu, a misuse no lock arbitrates).
   */
  anyPending(): boolean {
    return this.w[this.pendingAt] !== 0;
  }

  addPending(n: number): void {
    Atomics.add(this.w, this.pendingAt, n);
  }

  /** A cookie: the number of a grace period that starts after now (asked for). */
  requestGp(): number {
    const w = this.w;
    const cookie = Atomics.load(w, this.d.global + STARTED) + 1;
    for (;;) {
      const need = Atomics.load(w, this.neededAt);
      if (need >= cookie || Atomics.compareExchange(w, this.neededAt, need, cookie) === need)
        return cookie;
    }
  }

  /**
   * Completes the current grace period if every cpu has passed a quiescent state, and starts
   * the next one if it is wanted; the caller is at a quiescent state. `wait`: take the lock
   * even if another cpu is advancing (else give up at once).
   */
  advance(wait: boolean): void {
    const lock = this.gpLock;
    if (wait) lock.lock(this.cpu);
    else if (!lock.tryLock(this.cpu)) return;
    try {
      const w = this.w;
      const g = this.d.global;
      if (w[g + STARTED] !== w[g + DONE] && this.allQuiescent()) this.complete();
      if (w[g + STARTED] === w[g + DONE] && Atomics.load(w, this.neededAt) > w[g + DONE]!) {
        const snap = this.d.snap;
        for (let c = 0; c < this.nrCpus; c++)
          Atomics.store(w, snap + c, Atomics.load(w, this.d.cpus + c * LINE_WORDS + QS));
        Atomics.store(w, g + CURSOR, 0);
        Atomics.store(w, g + STARTED, w[g + DONE]! + 1);
        if (this.allQuiescent()) this.complete();
      }
    } finally {
      lock.unlock();
    }
  }

  private complete(): void {
    const w = this.w;
    Atomics.store(w, this.doneAt, w[this.d.global + STARTED]!);
    if (this.shared) Atomics.notify(w, this.doneAt);
  }

  /** Has every cpu but this one passed a quiescent state since the snapshot (gp lock held)? */
  private allQuiescent(): boolean {
    const w = this.w;
    const cursor = this.d.global + CURSOR;
    for (let c = w[cursor]!; c < this.nrCpus; c++) {
      if (c === this.cpu || this.claims.holder(c) === 0 || this.table.isCpuDead(c)) continue;
      const line = this.d.cpus + c * LINE_WORDS;
      if (Atomics.load(w, line + EQS) !== 0) continue;
      if (Atomics.load(w, line + QS) !== w[this.d.snap + c]) continue;
      w[cursor] = c;
      this.holdout = c;
      return false;
    }
    return true;
  }

  /**
   * Waits, in an extended quiescent state, until grace period `cookie` has completed,
   * driving grace periods meanwhile.
   * @throws VmallocError ETIMEDOUT after the lock timeout, naming the cpu that holds it (a
   * worker that stopped making calls without detaching).
   */
  waitFor(fn: string, cookie: number): void {
    const w = this.w;
    const eqs = this.d.cpus + this.cpu * LINE_WORDS + EQS;
    const limit = this.table.timeoutMs;
    const start = Date.now();
    const was = Atomics.load(w, eqs);
    Atomics.store(w, eqs, 1);
    try {
      for (;;) {
        this.advance(true);
        const done = Atomics.load(w, this.doneAt);
        if (done >= cookie) return;
        if (Date.now() - start >= limit) {
          throw new VmallocError(
            'ETIMEDOUT',
            `Cannot ${fn}: every attached cpu must pass a quiescent state for the grace period to end, but cpu ${this.holdout} made no call for ${limit} ms; ` +
              `a worker that stops calling must detach (vm.detach()) or call rcuQuiescent()`,
          );
        }
        if (this.shared) Atomics.wait(w, this.doneAt, done, SLICE_MS);
      }
    } finally {
      Atomics.store(w, eqs, was);
    }
  }

  // ------------------------------------------------------------ batches

  lockCpu(c: number): void {
    this.krc[c]!.lock(this.cpu);
  }

  unlockCpu(c: number): void {
    this.krc[c]!.unlock();
  }

  /** First word of slot `s` of cpu `c`. */
  slot(c: number, s: number): number {
    return this.d.slots + (c * KVFREE_SLOTS + s) * SLOT_WORDS;
  }

  state(at: number): number {
    return this.w[at + STATE]!;
  }

  count(at: number): number {
    return this.w[at + COUNT]!;
  }

  cookie(at: number): number {
    return this.w[at + COOKIE]!;
  }

  /** Float64 index of entry k of the slot at `at`. */
  entry(at: number, k: number): number {
    return (at + LINE_WORDS) / 2 + k;
  }

  /** The filling slot of cpu `c` (krcp lock held): its first word, or -1. */
  filling(c: number): number {
    const s = this.w[this.d.cpus + c * LINE_WORDS + FILL]!;
    return s === 0 ? -1 : this.slot(c, s - 1);
  }

  /** Opens a free slot of cpu `c` for filling (krcp lock held): its first word, or -1. */
  open(c: number): number {
    for (let s = 0; s < KVFREE_SLOTS; s++) {
      const at = this.slot(c, s);
      if (this.w[at + STATE] !== SLOT_FREE) continue;
      this.w[at + STATE] = SLOT_FILLING;
      this.w[at + COUNT] = 0;
      this.w[this.d.cpus + c * LINE_WORDS + FILL] = s + 1;
      if (c === this.cpu) this.fillSince = this.qs | 1;
      return at;
    }
    return -1;
  }

  /**
   * Recovery only (cpu `c`'s krcp lock held): the slot at `at` keeps its first `n` entries (the
   * caller compacted them); a waiting slot left empty is freed.
   */
  truncate(c: number, at: number, n: number): void {
    this.w[at + COUNT] = n;
    if (n === 0 && this.w[at + STATE] === SLOT_WAITING) this.release(c, at);
  }

  /** Recovery only: the pending count is `n` (the areas still queued). */
  setPending(n: number): void {
    Atomics.store(this.w, this.pendingAt, n);
  }

  /** Appends `addr` to the filling slot at `at` (krcp lock held); true when it is now full. */
  push(c: number, at: number, addr: number): boolean {
    const k = this.w[at + COUNT]!;
    this.f[this.entry(at, k)] = addr;
    this.w[at + COUNT] = k + 1;
    this.f[(this.d.cpus + c * LINE_WORDS) / 2 + F_QUEUED]! += 1;
    return k + 1 === KVFREE_BATCH;
  }

  /** Closes cpu `c`'s filling slot, if any and not empty: it waits for a new grace period. */
  close(c: number): void {
    const at = this.filling(c);
    if (at < 0) return;
    const w = this.w;
    const line = this.d.cpus + c * LINE_WORDS;
    w[line + FILL] = 0;
    if (c === this.cpu) this.fillSince = 0;
    if (w[at + COUNT] === 0) {
      w[at + STATE] = SLOT_FREE;
      return;
    }
    const cookie = this.requestGp();
    w[at + COOKIE] = cookie;
    w[at + STATE] = SLOT_WAITING;
    const min = w[line + MIN]!;
    if (min === 0 || cookie < min) Atomics.store(w, line + MIN, cookie);
    this.f[line / 2 + F_BATCHES]! += 1;
  }

  /** Marks the slot at `at` of cpu `c` free after its entries were freed (krcp lock held). */
  release(c: number, at: number): void {
    const w = this.w;
    const line = this.d.cpus + c * LINE_WORDS;
    this.f[line / 2 + F_FREED]! += w[at + COUNT]!;
    w[at + COUNT] = 0;
    w[at + STATE] = SLOT_FREE;
    let min = 0;
    for (let s = 0; s < KVFREE_SLOTS; s++) {
      const o = this.slot(c, s);
      if (w[o + STATE] === SLOT_WAITING && (min === 0 || w[o + COOKIE]! < min))
        min = w[o + COOKIE]!;
    }
    Atomics.store(w, line + MIN, min);
  }

  /** The smallest cookie of cpu `c`'s waiting batches (0: none). */
  minCookie(c: number): number {
    return Atomics.load(this.w, this.d.cpus + c * LINE_WORDS + MIN);
  }

  /** Totals over every cpu: queued, freed, batches closed. */
  totals(): { queued: number; freed: number; batches: number } {
    let queued = 0;
    let freed = 0;
    let batches = 0;
    for (let c = 0; c < this.nrCpus; c++) {
      const f = (this.d.cpus + c * LINE_WORDS) / 2;
      queued += this.f[f + F_QUEUED]!;
      freed += this.f[f + F_FREED]!;
      batches += this.f[f + F_BATCHES]!;
    }
    return { queued, freed, batches };
  }
}
