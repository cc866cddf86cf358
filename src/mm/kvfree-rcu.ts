/**
 * kvfree_rcu() for vmalloc areas: queue an area to be freed after a grace period, in per-cpu
 * batches; wait for every queued free (rcu_barrier) or for a grace period (synchronize_rcu).
 *
 * Holds: kvfreeRcu(), rcuQuiescent() (every state-changing call's exit and the explicit
 * call), rcuBarrier(), synchronizeRcu(), rcuDetach(), checkRcu() (the checked mode's
 * invariants) and rcuStats().
 * Invariant: an area is in exactly one batch slot from kvfreeRcu until it is freed, flagged
 * VM_RCU_PENDING meanwhile (so no other free path takes it); it stays a busy area (check(),
 * vmallocinfo and stats count it) until its batch's grace period has completed and some cpu
 * frees it with vfree's path. A batch is filled only by its cpu, under that cpu's krcp lock;
 * any cpu may close or free it under the same lock.
 * Callers: the façade (src/api/vmalloc.ts, vmalloc-base.ts afterOp), cpu-supervision (detach).
 * Recovery: kvfreeRcu's lookup and queueing and every free of a batch (reclaimCpu) run inside
 * the recovery gate, as the other state-changing calls do; the waits for a grace period
 * (kvfreeRcu with every batch waiting, rcuBarrier, synchronizeRcu) run outside it, since a
 * grace period needs the other workers' calls, which a recovery holds at the gate. A batch a
 * dead cpu left half-freed, or an area it flagged and did not queue, is made consistent by the
 * recovery's part (recovery-rcu.ts).
 *
 * Kernel: kvfree_rcu() / kvfree_rcu_mightsleep(), kfree_rcu_monitor(), rcu_barrier(),
 * synchronize_rcu(). A full set of batches makes kvfreeRcu wait for the oldest grace period
 * and free it inline, as kvfree_rcu_mightsleep() synchronizes when it cannot queue.
 */

import { VmallocError, checkInteger } from '../errors.js';
import { kernelHex } from '../shared/layout.js';
import { ADDRESS_LIMIT, checkAddr } from './args.js';
import { findUnlinkWithVm, releaseArea } from './free-path.js';
import { KVFREE_SLOTS, SLOT_FILLING, SLOT_WAITING } from './rcu.js';
import { VM_RCU_PENDING } from './rcu-guard.js';
import { enterOp, leaveOp, survive } from './recovery.js';
import { Recovered, gated } from './recovery-gate.js';
import type { VmContext } from './shared-state.js';
import { S_RCU_FLAGGED, S_RCU_FREEING, stepHook } from '../shared/step-hook.js';
import { VmFlags } from './vm-struct.js';

/** The vm_struct of the vmalloc area starting at `addr`, checked for kvfreeRcu (no change). */
function pendingCandidate(ctx: VmContext, fn: string, addr: number): number {
  if (typeof addr !== 'number' || !Number.isSafeInteger(addr)) checkInteger(fn, 'addr', addr);
  if (addr < 0 || addr >= ADDRESS_LIMIT) checkAddr(fn, addr);
  if (addr % ctx.pageSize !== 0)
    throw new VmallocError(
      'EINVAL',
      `Cannot ${fn}: addr must be page-aligned (a multiple of ${ctx.pageSize}), got ${kernelHex(addr)}`,
    );
  const va = ctx.areas.find(ctx.cpu, addr);
  if (va === 0 || ctx.s.start(va) !== addr)
    throw new VmallocError(
      'ENOENT',
      `Cannot ${fn}: addr must be the start of a live vmalloc area, got ${kernelHex(addr)}` +
        (va === 0
          ? ''
          : `, which lies inside the area ${kernelHex(ctx.s.start(va))}: pass its start`),
    );
  const vm = ctx.vmOf(va);
  const flags = vm === 0 ? 0 : ctx.vms.flags(vm);
  if ((flags & VM_RCU_PENDING) !== 0)
    throw new VmallocError(
      'EBUSY',
      `Cannot ${fn}: addr must not be queued already (a double free), got ${kernelHex(addr)}, queued by an earlier kvfreeRcu`,
    );
  if ((flags & VmFlags.VM_ALLOC) === 0)
    throw new VmallocError(
      'EINVAL',
      `Cannot ${fn}: addr must start a vmalloc area (vmalloc, vzalloc, vmallocHuge), got ${kernelHex(addr)}, ` +
        (vm === 0 ? 'a vm_map_ram area (use vmUnmapRam)' : 'a mapping of other pages (use vunmap)'),
    );
  return vm;
}

/**
 * Queues the vmalloc area at `addr` to be freed after a grace period. Kernel: kvfree_rcu().
 */
export function kvfreeRcu(ctx: VmContext, fn: string, addr: number): void {
  const rcu = ctx.rcu;
  const cpu = ctx.cpu;
  for (;;) {
    // The lookup and the queueing inside the recovery gate (a recover() never rebuilds the
    // trees under them; a lock a dead cpu holds is recovered from, then all is tried again:
    // a lock is met only before anything changes). The wait for a grace period outside it:
    // a grace period waits for the other workers' calls, which a closed gate holds back.
    let cookie = 0;
    enterOp(ctx);
    try {
      const vm = pendingCandidate(ctx, fn, addr);
      rcu.lockCpu(cpu);
      let at = rcu.filling(cpu);
      if (at < 0) at = rcu.open(cpu);
      if (at >= 0) {
        try {
          ctx.vms.setFlags(vm, ctx.vms.flags(vm) | VM_RCU_PENDING);
          if (stepHook !== null) stepHook(S_RCU_FLAGGED);
          rcu.addPending(1);
          if (rcu.push(cpu, at, addr)) rcu.close(cpu);
        } finally {
          rcu.unlockCpu(cpu);
        }
        return;
      }
      // Every batch waits for its grace period: free the oldest, waiting for it if need be
      // (nothing has changed yet, so a timeout leaves the area allocated).
      rcu.unlockCpu(cpu);
      cookie = rcu.minCookie(cpu);
    } catch (e) {
      survive(ctx, e);
      continue;
    } finally {
      leaveOp(ctx);
    }
    if (cookie > rcu.completed) rcu.waitFor(fn, cookie);
    reclaimCpu(ctx, cpu);
  }
}

/**
 * Frees cpu `c`'s batches whose grace period has completed: inside the recovery gate, as
 * every call that changes the trees (it runs at the exit of every call, outside theirs). A
 * lock a dead cpu holds: recovered, then tried again (what was freed already is skipped).
 */
function reclaimCpu(ctx: VmContext, c: number): void {
  gated(ctx, Recovered.RETRY, reclaimCpuGated, c);
}

function reclaimCpuGated(ctx: VmContext, c: number): void {
  const rcu = ctx.rcu;
  rcu.lockCpu(c);
  try {
    const done = rcu.completed;
    for (let s = 0; s < KVFREE_SLOTS; s++) {
      const at = rcu.slot(c, s);
      if (rcu.state(at) !== SLOT_WAITING || rcu.cookie(at) > done) continue;
      const n = rcu.count(at);
      for (let k = 0; k < n; k++) {
        freePending(ctx, rcu.f[rcu.entry(at, k)]!);
        if (stepHook !== null) stepHook(S_RCU_FREEING);
      }
      rcu.addPending(-n);
      rcu.release(c, at);
    }
  } finally {
    rcu.unlockCpu(c);
  }
}

/** The design's RCU callbacks of this cpu that are due, inside the recovery gate. */
function invokeDesignRcu(ctx: VmContext): void {
  gated(ctx, Recovered.RETRY, designRcu);
}

function designRcu(ctx: VmContext): void {
  ctx.areas.design.invokeRcu!(ctx.cpu);
}

/** vfree() of a queued area whose grace period is over. */
function freePending(ctx: VmContext, addr: number): void {
  const va0 = ctx.areas.find(ctx.cpu, addr);
  const vm0 = va0 === 0 || ctx.s.start(va0) !== addr ? 0 : ctx.vmOf(va0);
  if (vm0 === 0 || (ctx.vms.flags(vm0) & VM_RCU_PENDING) === 0) {
    // Only a free racing with kvfreeRcu from another worker gets here; the area is not ours.
    ctx.log.warn(
      'kvfree_rcu',
      `kvfree_rcu: queued area ${kernelHex(addr)} was freed by another path; skipped`,
    );
    return;
  }
  const va = findUnlinkWithVm(ctx, addr);
  if (va <= 0) return;
  releaseArea(ctx, va, ctx.vmOf(va), true);
}

/**
 * A quiescent state of this cpu (a call's exit, rcuQuiescent()): drives grace periods and
 * frees this cpu's batches whose grace period is over (and the design's records so queued,
 * 'legacy''s); closes a partial batch that has waited KVFREE_DRAIN_QS quiescent states.
 */
export function rcuQuiescent(ctx: VmContext): void {
  const rcu = ctx.rcu;
  const ready = rcu.quiescent();
  // A design's own RCU callbacks ('legacy' frees its records so) run here too.
  const d = ctx.rcuDesign;
  if (d !== null && d.rcuDue!(ctx.cpu)) invokeDesignRcu(ctx);
  if (!ready) return;
  const cpu = ctx.cpu;
  if (rcu.fillSince !== 0) {
    rcu.lockCpu(cpu);
    rcu.close(cpu);
    rcu.fillSince = 0;
    rcu.unlockCpu(cpu);
  }
  reclaimCpu(ctx, cpu);
}

/**
 * Waits until a grace period that starts after this call has completed: every read-side
 * section running now has ended. Kernel: synchronize_rcu().
 */
export function synchronizeRcu(ctx: VmContext, fn: string): void {
  const rcu = ctx.rcu;
  rcu.quiescent();
  rcu.waitFor(fn, rcu.requestGp());
  reclaimCpu(ctx, ctx.cpu);
}

/**
 * Waits until every area queued by kvfreeRcu before this call (by any cpu) is freed: closes
 * every partial batch, waits for the last one's grace period, frees every ready batch.
 * Kernel: rcu_barrier() (with kvfree_rcu_barrier()'s draining of the batches).
 */
export function rcuBarrier(ctx: VmContext, fn: string): void {
  const rcu = ctx.rcu;
  rcu.quiescent();
  let target = 0;
  for (let c = 0; c < rcu.nrCpus; c++) {
    rcu.lockCpu(c);
    try {
      rcu.close(c);
      for (let s = 0; s < KVFREE_SLOTS; s++) {
        const at = rcu.slot(c, s);
        if (rcu.state(at) === SLOT_WAITING && rcu.cookie(at) > target) target = rcu.cookie(at);
      }
    } finally {
      rcu.unlockCpu(c);
    }
  }
  if (target > rcu.completed) rcu.waitFor(fn, target);
  for (let c = 0; c < rcu.nrCpus; c++) reclaimCpu(ctx, c);
}

/**
 * At detach: this cpu's partial batch closes, and what is ready is freed (no waiting), the
 * design's records too (what is not ready waits for the cpu's next holder).
 */
export function rcuDetach(ctx: VmContext): void {
  const rcu = ctx.rcu;
  rcu.quiescent();
  rcu.lockCpu(ctx.cpu);
  rcu.close(ctx.cpu);
  rcu.unlockCpu(ctx.cpu);
  reclaimCpu(ctx, ctx.cpu);
  const d = ctx.rcuDesign;
  while (d !== null && d.rcuDue!(ctx.cpu)) invokeDesignRcu(ctx);
}

export interface RcuStats {
  /** Areas queued by kvfreeRcu and not yet freed. */
  rcuPending: number;
  rcuQueued: number;
  rcuFreed: number;
  /** Batches closed (each waits for one grace period). */
  rcuBatches: number;
  /** Grace periods completed. */
  rcuGracePeriods: number;
}

export function rcuStats(ctx: VmContext): RcuStats {
  const rcu = ctx.rcu;
  const t = rcu.totals();
  return {
    rcuPending: rcu.pending,
    rcuQueued: t.queued,
    rcuFreed: t.freed,
    rcuBatches: t.batches,
    rcuGracePeriods: rcu.completed,
  };
}

/**
 * The checked mode's invariants: every queued address is the start of a busy vmalloc area
 * flagged VM_RCU_PENDING, queued once, and the pending count is their number.
 * @throws VmallocError EINVARIANT naming the first violation.
 */
export function checkRcu(ctx: VmContext): void {
  const rcu = ctx.rcu;
  const seen = new Set<number>();
  const bad = (m: string): never => {
    throw new VmallocError('EINVARIANT', `kvfree_rcu: ${m}`);
  };
  for (let c = 0; c < rcu.nrCpus; c++) {
    for (let s = 0; s < KVFREE_SLOTS; s++) {
      const at = rcu.slot(c, s);
      const st = rcu.state(at);
      if (st !== SLOT_FILLING && st !== SLOT_WAITING) continue;
      for (let k = 0; k < rcu.count(at); k++) {
        const addr = rcu.f[rcu.entry(at, k)]!;
        if (seen.has(addr)) bad(`${kernelHex(addr)} is queued twice`);
        seen.add(addr);
        const va = ctx.areas.find(ctx.cpu, addr);
        const vm = va === 0 || ctx.s.start(va) !== addr ? 0 : ctx.vmOf(va);
        if (vm === 0 || (ctx.vms.flags(vm) & VM_RCU_PENDING) === 0)
          bad(`queued ${kernelHex(addr)} (cpu ${c}) is not a busy area flagged pending`);
      }
    }
  }
  if (seen.size !== rcu.pending) bad(`pending count ${rcu.pending}, queued areas ${seen.size}`);
}
