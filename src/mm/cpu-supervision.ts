/**
 * Supervising the threads that act as cpus: declaring a worker's cpu dead or alive, watching
 * a worker so that its exit frees its id, and giving this thread's id back (detach).
 *
 * Holds: markCpuDead(), markCpuAlive(), watchWorker(), releaseCpu(), each checking its
 * arguments before it changes anything.
 * Invariant: a cpu id is held by at most one live thread (cpu-claims.ts); releaseCpu() hands
 * this cpu's caches back to the shared pools before it gives the claim up, so nothing cached
 * is lost with the id.
 * Callers: the façade's markCpuDead, markCpuAlive, watchWorker and detach.
 *
 * Kernel: CPU hotplug; a dead worker is a CPU gone offline, whose per-CPU caches the kernel
 * drains in its hotplug callbacks.
 */

import { checkCpu, throwEinval } from './args.js';
import { workerToken } from './cpu-claims.js';
import { rcuDetach } from './kvfree-rcu.js';
import type { VmContext } from './shared-state.js';

export function markCpuDead(ctx: VmContext, cpu: number): void {
  checkCpu('markCpuDead', cpu, ctx.config.nrCpus);
  ctx.claims.markDead('markCpuDead', cpu);
}

export function markCpuAlive(ctx: VmContext, cpu: number): void {
  checkCpu('markCpuAlive', cpu, ctx.config.nrCpus);
  ctx.lockTable.markCpuAlive(cpu);
}

/** Anything with on('exit', fn), such as a Node Worker. */
export interface WatchedWorker {
  on(event: 'exit', fn: () => void): unknown;
}

export function watchWorker(ctx: VmContext, worker: WatchedWorker, cpu: number): void {
  if (worker === null || typeof worker !== 'object' || typeof worker.on !== 'function')
    throwEinval('watchWorker', "worker must have an on('exit', fn) method", worker);
  checkCpu('watchWorker', cpu, ctx.config.nrCpus);
  const claims = ctx.claims;
  const token = workerToken(worker);
  worker.on('exit', () => claims.workerExited(cpu, token));
}

/**
 * Closes this cpu's kvfree_rcu batch (freeing what is ready: a later rcuBarrier() from any
 * worker frees the rest), drains this cpu's caches (records, pages) into the shared pools and releases its claim,
 * if this thread still holds it; `afterDrain` runs between (the checked mode's check()).
 * If the claim was taken away meanwhile (markCpuDead), the caches are the new holder's.
 */
export function releaseCpu(ctx: VmContext, afterDrain: () => void): void {
  if (!ctx.claims.heldHere(ctx.cpu)) return;
  rcuDetach(ctx);
  ctx.s.drainCpu();
  ctx.vms.drainCpu();
  ctx.vb.arena.drainCpu();
  ctx.frames.drainCpu();
  afterDrain();
  ctx.claims.release(ctx.cpu);
}
