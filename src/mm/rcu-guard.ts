/**
 * The free paths' guard against areas queued by kvfreeRcu, and the flag that marks them.
 *
 * Holds: VM_RCU_PENDING and refuseRcuPending().
 * Invariant: an area flagged VM_RCU_PENDING belongs to its kvfree_rcu batch until its grace
 * period ends: vfree, vunmap and remove_vm_area refuse it before changing anything.
 * Callers: free-path.ts (vfree, vunmap), vmap.ts (remove_vm_area), kvfree-rcu.ts (the flag).
 */

import { VmallocError } from '../errors.js';
import { kernelHex } from '../shared/layout.js';
import type { VmContext } from './shared-state.js';

/** vm_struct flag of an area queued by kvfreeRcu (this library's; no kernel flag). */
export const VM_RCU_PENDING = 0x100000;

/**
 * The free path's guard: an area queued by kvfreeRcu belongs to its batch until its grace
 * period ends, so vfree, vunmap and remove_vm_area refuse it (nothing changes). Called only
 * while some area is pending (one load otherwise).
 */
export function refuseRcuPending(ctx: VmContext, fn: string, addr: number): void {
  const va = ctx.areas.find(ctx.cpu, addr);
  if (va === 0 || ctx.s.start(va) !== addr) return;
  const vm = ctx.vmOf(va);
  if (vm !== 0 && (ctx.vms.flags(vm) & VM_RCU_PENDING) !== 0)
    throw new VmallocError(
      'EBUSY',
      `Cannot ${fn}: addr must not be queued by kvfreeRcu (it is freed after a grace period; wait with rcuBarrier()), got ${kernelHex(addr)}`,
    );
}
