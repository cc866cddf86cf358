/**
 * The recovery gate around a public call: enter the gate, run the operation, and when a lock
 * wait found its holder dead, recover (survive) and then retry, rethrow or return, as the
 * operation says; leave the gate however it ends.
 *
 * Holds: gated(), the one copy of that sequence for every state-changing method of Vmalloc
 * (src/api/vmalloc.ts, src/api/vmalloc-maps.ts), and the Recovered policies.
 * Invariant: every enterOp() is matched by one leaveOp() (a throw included), so this thread's
 * "in an operation" word is 0 between calls; an operation is retried only after a recovery
 * and only when the policy says nothing it did survives (RETRY) or the call's own flag says
 * it is not done yet. No allocation: the operation is a module-level function passed with up
 * to three plain arguments, not a closure made per call.
 * Callers: the façade's methods (vmalloc, vfree, vmap, vm_map_ram, percpu, purge, ...).
 *
 * Kernel: none (the kernel's callers never outlive a dead lock holder); the robust mutex's
 * EOWNERDEAD, then pthread_mutex_consistent(), then the caller's own retry.
 */

import { enterOp, leaveOp, survive } from '../mm/recovery.js';
import type { VmContext } from '../mm/shared-state.js';

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
