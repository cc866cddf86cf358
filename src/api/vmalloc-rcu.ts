/**
 * The façade's RCU calls: kvfree_rcu() and the grace periods a worker takes part in.
 *
 * Holds: VmallocRcu, the class between VmallocMaps and Vmalloc (src/api/vmalloc.ts): thin
 * methods that delegate to src/mm/kvfree-rcu.ts (which brackets its own steps with the
 * recovery gate: the wait for a grace period must stay outside it) and end with afterOp().
 * Invariant: as Vmalloc's: a method completes or throws before changing anything (misuse);
 * a call that changes state is a quiescent state of this worker on return.
 * Callers: library users through Vmalloc.
 *
 * Kernel: kvfree_rcu(), rcu_barrier(), synchronize_rcu(), and userspace RCU's QSBR flavour
 * (rcu_quiescent_state, rcu_thread_offline / rcu_thread_online) for the workers.
 */

import { kvfreeRcu, rcuBarrier, rcuQuiescent, synchronizeRcu } from '../mm/kvfree-rcu.js';
import { VmallocMaps } from './vmalloc-maps.js';

/** The RCU calls of one thread's view of a vmalloc subsystem (see the module header). */
export class VmallocRcu extends VmallocMaps {
  /**
   * Frees the vmalloc area starting at `addr` after a grace period: once every attached
   * worker has passed a quiescent state (returned from a call that changes state, or called
   * rcuQuiescent()), so a worker that may still read the area when this is called finishes
   * first. Until then the area stays busy (stats().rcuPending counts it) and no other free
   * accepts it. Frees go in per-cpu batches; with every batch waiting, the call waits for the
   * oldest grace period, as kvfree_rcu_mightsleep() does. 0, null and undefined are ignored.
   * @throws VmallocError ENOENT when `addr` is not the start of a live area; EINVAL for an
   * unaligned address or an area that is not a vmalloc one; EBUSY when the area is queued
   * already (a double free); ETIMEDOUT when every batch waits on a worker that makes no call
   * for the lock timeout. Nothing changes on a throw.
   * Kernel: kvfree_rcu() / kvfree_rcu_mightsleep().
   */
  kvfreeRcu(addr: number | null | undefined): void {
    if (addr === 0 || addr === null || addr === undefined) return;
    kvfreeRcu(this.ctx, 'kvfree_rcu', addr);
    this.afterOp();
  }

  /**
   * Waits until every area queued by kvfreeRcu before this call, by any worker, is freed:
   * drives grace periods itself (this worker waits in an extended quiescent state, so two
   * waiters never wait for each other; detached and dead workers never hold one up).
   * @throws VmallocError ETIMEDOUT when an attached worker makes no call for the lock timeout.
   * Kernel: rcu_barrier() after kvfree_rcu().
   */
  rcuBarrier(): void {
    rcuBarrier(this.ctx, 'rcu_barrier');
    this.afterOp();
  }

  /**
   * Waits for a full grace period: every read-side section (a worker's stretch between two
   * quiescent states) running now has ended. Same waiting and errors as rcuBarrier().
   * Kernel: synchronize_rcu().
   */
  synchronizeRcu(): void {
    synchronizeRcu(this.ctx, 'synchronize_rcu');
    this.afterOp();
  }

  /**
   * A quiescent state of this worker: it holds no reference obtained before this call to an
   * area another worker queued with kvfreeRcu. Calls that change state do this on return; a
   * worker that only reads memory for a long time calls this. Kernel: rcu_qs() (QSBR).
   */
  rcuQuiescent(): void {
    rcuQuiescent(this.ctx);
  }

  /**
   * Takes this worker offline for RCU (an extended quiescent state) before it blocks on
   * something else (a barrier, a message): it holds up no grace period until rcuOnline(),
   * and must hold no reference to an area another worker may queue meanwhile. Both are
   * idempotent. Kernel: rcu_thread_offline() of userspace QSBR RCU.
   */
  rcuOffline(): void {
    this.ctx.rcu.setOffline(true);
  }

  /** Back online after rcuOffline(): read-side sections hold up grace periods again. */
  rcuOnline(): void {
    this.ctx.rcu.setOffline(false);
  }
}
