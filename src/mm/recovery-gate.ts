/**
 * The recovery gate: how recover() stops the world between operations, so that it rebuilds
 * the shared structures while no live thread is half-way through changing them; and gated(),
 * an operation run inside it.
 *
 * Holds: RecoveryGate: one "in an operation" word per cpu (on a cache line of its own, written
 * by that cpu alone at the entry and exit of every operation that changes shared structures)
 * and the gate word (read-mostly: 0 open, else the recovering cpu + 1); enter(), leave(),
 * close() (wait for quiescence), open(). gated() and the Recovered policies: the one copy of
 * the sequence enter the gate, run the operation, and when a lock wait found its holder dead,
 * recover (survive) and then retry, rethrow or return, as the operation says; leave the gate
 * however it ends.
 * Invariant: while the gate is closed by cpu r and close() has returned, every cpu other than
 * r and the dead ones is outside every operation: its word is 0, and it will not enter until
 * open(). Only the dead cpus (marked in the lock table) may be in the middle of one. Every
 * enterOp() of gated() is matched by one leaveOp() (a throw included), so this thread's "in
 * an operation" word is 0 between calls; an operation is retried only after a recovery and
 * only when the policy says nothing it did survives (RETRY) or the call's own flag says it
 * is not done yet. gated() allocates nothing: the operation is a module-level function
 * passed with up to three plain arguments, not a closure made per call.
 * Callers: the façade's state-changing methods through gated() (src/api/vmalloc.ts,
 * src/api/vmalloc-maps.ts), and in src/mm the frees of kvfree_rcu batches and the design's
 * RCU callbacks (kvfree-rcu.ts) and the vmap-node shrinker's scan (vmap-nodes.ts);
 * src/mm/recovery.ts closes and opens the gate.
 *
 * Cost on the hot path: one sequentially consistent store (the "I am in" word must be visible
 * before the gate is read: Dekker's handshake, as rcu_read_lock() does with a full barrier in
 * SRCU) and one load at entry, one plain store at exit: within the noise of a vmalloc + vfree
 * pair (scripts/bench-recovery.mjs).
 *
 * Kernel: none (the kernel's callers never outlive a dead lock holder); the robust mutex's
 * EOWNERDEAD, then pthread_mutex_consistent(), then the caller's own retry.
 */

import { VmallocError } from '../errors.js';
import type { ControlLayout } from '../shared/control-layout.js';
import type { LockTable } from '../shared/lock.js';
import { enterOp, leaveOp, survive } from './recovery.js';
import type { VmContext } from './shared-state.js';

/** Int32 words per cache line: each cpu's word gets a line. */
const LINE = 16;
/** How long a waiting thread sleeps between looks (ms). */
const SLICE_MS = 5;

export interface GateDecl {
  gate: number;
  active: number;
}

export class RecoveryGate {
  private readonly w: Int32Array;
  private readonly gate: number;
  private readonly active: number;
  private readonly nrCpus: number;
  private readonly locks: LockTable;

  static declare(layout: ControlLayout, nrCpus: number): GateDecl {
    return { gate: layout.lines(1), active: layout.lines(nrCpus * LINE) };
  }

  constructor(ctl: Int32Array, decl: GateDecl, nrCpus: number, locks: LockTable) {
    this.w = ctl;
    this.gate = decl.gate;
    this.active = decl.active;
    this.nrCpus = nrCpus;
    this.locks = locks;
  }

  /** `cpu` starts an operation; waits while a recovery runs. */
  enter(cpu: number): void {
    const w = this.w;
    const at = this.active + cpu * LINE;
    Atomics.store(w, at, 1);
    if (Atomics.load(w, this.gate) !== 0) this.waitOpen(cpu, at);
  }

  /** `cpu` finished its operation (or left it by a throw). */
  leave(cpu: number): void {
    this.w[this.active + cpu * LINE] = 0;
  }

  /** Is a recovery running (the gate closed)? */
  get closed(): boolean {
    return Atomics.load(this.w, this.gate) !== 0;
  }

  private waitOpen(cpu: number, at: number): void {
    const w = this.w;
    for (;;) {
      const g = Atomics.load(w, this.gate);
      if (g === 0 || g === cpu + 1) break;
      Atomics.store(w, at, 0);
      sleepOn(w, this.gate, g);
      Atomics.store(w, at, 1);
    }
  }

  /**
   * Closes the gate for cpu `cpu` and waits until every other live cpu is outside its
   * operations. False when another cpu is recovering (the caller waits for it with
   * waitRecovered() instead). Throws ETIMEDOUT, gate reopened, when a live cpu stays inside an
   * operation past the lock timeout (a worker that died without being marked dead).
   */
  close(fn: string, cpu: number): boolean {
    const w = this.w;
    if (Atomics.compareExchange(w, this.gate, 0, cpu + 1) !== 0) return false;
    const t0 = performance.now();
    for (let c = 0; c < this.nrCpus; c++) {
      if (c === cpu) continue;
      const at = this.active + c * LINE;
      while (Atomics.load(w, at) !== 0 && !this.locks.isCpuDead(c)) {
        if (performance.now() - t0 > this.locks.timeoutMs) {
          this.open();
          throw new VmallocError(
            'ETIMEDOUT',
            `Cannot ${fn}: cpu ${c} stayed inside an operation for ${this.locks.timeoutMs} ms; if its worker died, mark it dead first (markCpuDead(${c}) or watchWorker)`,
          );
        }
        sleepOn(w, at, 1);
      }
    }
    return true;
  }

  /** Clears the words of dead cpus (they died inside an operation) and opens the gate. */
  open(): void {
    const w = this.w;
    for (let c = 0; c < this.nrCpus; c++)
      if (this.locks.isCpuDead(c)) Atomics.store(w, this.active + c * LINE, 0);
    Atomics.store(w, this.gate, 0);
    Atomics.notify(w, this.gate);
  }

  /** Waits until the running recovery (another cpu's) is over. */
  waitRecovered(): void {
    for (;;) {
      const g = Atomics.load(this.w, this.gate);
      if (g === 0) return;
      sleepOn(this.w, this.gate, g);
    }
  }
}

/** Sleeps a slice while w[at] is v (spins where this thread cannot wait). */
function sleepOn(w: Int32Array, at: number, v: number): void {
  try {
    Atomics.wait(w, at, v, SLICE_MS);
  } catch {
    // A browser's main thread cannot wait, and a plain ArrayBuffer has no other thread.
  }
}

/** What a call does after the recovery survive() ran for it (EOWNERDEAD met inside it). */
export const Recovered = {
  /** Nothing it did survives a recovery: run it again. */
  RETRY: 0,
  /** What it did cannot be told apart after a recovery: rethrow EOWNERDEAD. */
  THROW: 1,
  /** The recovery did what it was for (purge): return. */
  RETURN: 2,
} as const;

/**
 * A policy: one of Recovered, or a flag of the call, read when the operation threw (before
 * the recovery): true when it had passed its point of no return, so that the recovery
 * finished it and the call returns; false, it is retried. RETURN and a flag are for
 * operations that return nothing (the call then returns undefined).
 */
export type RecoveredPolicy = (typeof Recovered)[keyof typeof Recovered] | (() => boolean);

/** Runs `op(ctx, a, b, c)` inside the recovery gate; see the module header. */
export function gated<R>(ctx: VmContext, policy: RecoveredPolicy, op: (ctx: VmContext) => R): R;
export function gated<A, R>(
  ctx: VmContext,
  policy: RecoveredPolicy,
  op: (ctx: VmContext, a: A) => R,
  a: A,
): R;
export function gated<A, B, R>(
  ctx: VmContext,
  policy: RecoveredPolicy,
  op: (ctx: VmContext, a: A, b: B) => R,
  a: A,
  b: B,
): R;
export function gated<A, B, C, R>(
  ctx: VmContext,
  policy: RecoveredPolicy,
  op: (ctx: VmContext, a: A, b: B, c: C) => R,
  a: A,
  b: B,
  c: C,
): R;
export function gated(
  ctx: VmContext,
  policy: RecoveredPolicy,
  op: (ctx: VmContext, a: unknown, b: unknown, c: unknown) => unknown,
  a?: unknown,
  b?: unknown,
  c?: unknown,
): unknown {
  for (;;) {
    enterOp(ctx);
    try {
      return op(ctx, a, b, c);
    } catch (e) {
      // As the operation left it, before the recovery.
      const done = typeof policy === 'function' ? policy() : false;
      survive(ctx, e); // rethrows anything but a dead lock holder met at depth 1
      if (policy === Recovered.THROW) throw e;
      if (policy === Recovered.RETURN || done) return undefined;
    } finally {
      leaveOp(ctx);
    }
  }
}
