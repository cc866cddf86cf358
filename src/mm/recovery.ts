/**
 * Recovery after a worker died (Worker.terminate() at any instant, holding locks or not): the
 * survivors' areas stay live with their contents, and every shared structure is rebuilt from
 * them, as a robust mutex's next owner makes its state consistent (EOWNERDEAD, then
 * pthread_mutex_consistent()).
 *
 * Holds: recover() (stop the world at the recovery gate, release every lock of the lock table
 * (the locks in records, vb->lock, are released by their part's reset), then run each part's
 * collect, reset and restore), survive() (what an operation does when a lock wait
 * finds the holder dead: recover, then the caller retries), and the RecoveryPart interface
 * each structure implements to take part (the list is in recovery-parts.ts).
 * Invariant: after recover() returns, check() passes; every busy area that was complete when
 * the world stopped (a vm_struct attached, not VM_UNINITIALIZED, its pages array intact, or
 * a vm_map_ram area) is busy at the same address with the same vm_struct, pages and mapping;
 * everything else a dead or aborted operation held (half-made areas, records and frames in
 * flight, per-CPU caches, lazy and pooled areas) is free again.
 * Callers: the façade's recover(); the façade's state-changing calls through survive().
 *
 * Why rebuild rather than an intent log (scripts/bench-recovery.mjs, one run, rounds
 * interleaved): an alloc + free writes ~14 vmap-area records; an undo log's pre-images of them
 * and its intent words cost that pair 22-54% (a lower bound), the gate 0-14% (noise on a
 * loaded machine); the rebuild runs only after a death: ~0.4 s per 1e5 areas, ~5 s at 1e6.
 */

import { VmallocError } from '../errors.js';
import type { VmContext } from './shared-state.js';
import { recoveryParts } from './recovery-parts.js';
import { holdsBlockLock } from './recovery-vmap-block.js';

/** One recovery run: what the parts share between their phases. */
export interface RecoveryRun {
  readonly ctx: VmContext;
  /** cpus marked dead (or aborted) when the run started. */
  readonly dead: readonly number[];
  /** Busy areas kept, sorted by start: va ids (their vm_structs are in keptVm). */
  keptVa: number[];
  /** vm_struct ids kept (attached to kept areas). */
  keptVm: number[];
  /** What was dropped or freed, by kind, for the report. */
  readonly counts: Record<string, number>;
}

/**
 * A structure that takes part in recovery. The phases run part by part, in the order of
 * recoveryParts(), with every other live thread stopped outside its operations and every lock
 * released: all parts collect, then all reset, then all restore.
 */
export interface RecoveryPart {
  readonly name: string;
  /** Reads what survives (nothing is changed yet). May drop areas from run.keptVa/keptVm. */
  collect(run: RecoveryRun): void;
  /** Empties the part's shared structures and per-CPU caches. */
  reset(run: RecoveryRun): void;
  /** Puts back what the run keeps. */
  restore(run: RecoveryRun): void;
}

/** What recover() did. */
export interface RecoveryReport {
  /** cpus found dead (or aborted) */
  dead: number[];
  /** Busy areas kept live. */
  areas: number;
  /** Counts of what was freed or dropped, by kind. */
  dropped: Record<string, number>;
  ms: number;
}

/**
 * Stops the world, releases every lock and rebuilds every part from the complete busy areas.
 * Returns null when another thread was recovering (this one waited for it to finish).
 * @throws VmallocError ETIMEDOUT when a live cpu stays inside an operation (a worker that
 * died without being marked dead): nothing changed.
 */
export function recover(ctx: VmContext, fn = 'recover'): RecoveryReport | null {
  const t0 = performance.now();
  const gate = ctx.gate;
  if (!gate.close(fn, ctx.cpu)) {
    gate.waitRecovered();
    return null;
  }
  try {
    const table = ctx.lockTable;
    const dead: number[] = [];
    for (let c = 0; c < ctx.config.nrCpus; c++) if (table.isCpuDead(c)) dead.push(c);
    // The locks dead cpus hold (a held lock's word names its holder from the very
    // compare-and-swap that took it, lock-table.ts: a cpu killed at any instant is named in
    // each lock it holds). Every live cpu is outside the gated operations, so none holds a lock
    // taken only inside them; a live holder can only be in an ungated kvfree_rcu path
    // (rcuBarrier, a grace period's advance), which releases it itself.
    for (const lock of ctx.allLocks) {
      if (!lock.isLocked()) continue;
      const owner = lock.owner();
      if (owner < 0 || table.isCpuDead(owner)) lock.forceRelease();
    }
    ctx.pool.releaseLocks();
    ctx.refreshAll();
    const run: RecoveryRun = { ctx, dead, keptVa: [], keptVm: [], counts: {} };
    const parts = recoveryParts(ctx);
    for (const p of parts) p.collect(run);
    for (const p of parts) p.reset(run);
    for (const p of parts) p.restore(run);
    // This thread may have been marked dead to make its own lock's waiters give up.
    if (ctx.claims.heldHere(ctx.cpu)) table.markCpuAlive(ctx.cpu);
    return { dead, areas: run.keptVa.length, dropped: run.counts, ms: performance.now() - t0 };
  } finally {
    gate.open();
  }
}

/** Is `e` a lock wait that found its holder dead? */
function ownerDead(e: unknown): boolean {
  return e instanceof VmallocError && e.code === 'EOWNERDEAD';
}

/**
 * Called by an operation that threw `e` (after it left the gate): rethrows unless a lock
 * wait found its holder dead; then recovers (or waits for the recovery another thread runs)
 * and returns, and the caller retries its operation. Locks this thread still holds (it gave
 * up half-way) are released by the recovery; until then their waiters must give up too, so
 * this cpu is marked dead meanwhile.
 */
export function survive(ctx: VmContext, e: unknown): void {
  // Inside a nested call (a purge notifier's vfree), the outer operation recovers.
  if (!ownerDead(e) || ctx.opDepth !== 1) throw e;
  let holds = false;
  for (const lock of ctx.allLocks) {
    if (lock.owner() === ctx.cpu) {
      holds = true;
      break;
    }
  }
  // (A lock in a record too: a vmap block's, which the recovery releases with the blocks.)
  if (holds || holdsBlockLock(ctx, ctx.cpu)) ctx.lockTable.markCpuDead(ctx.cpu);
  // Out of the operation it gave up (its half-done changes are the recovery's to undo), so
  // that a recovery another thread runs does not wait for it.
  ctx.gate.leave(ctx.cpu);
  try {
    recover(ctx, 'recover');
  } finally {
    ctx.lockTable.markCpuAlive(ctx.cpu);
    ctx.gate.enter(ctx.cpu);
  }
}

/** Enters an operation that changes shared structures (nested calls count once). */
export function enterOp(ctx: VmContext): void {
  if (ctx.opDepth++ === 0) ctx.gate.enter(ctx.cpu);
}

/** Leaves it. */
export function leaveOp(ctx: VmContext): void {
  if (--ctx.opDepth === 0) ctx.gate.leave(ctx.cpu);
}
