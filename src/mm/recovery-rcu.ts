/**
 * Recovery's part for kvfree_rcu: the per-cpu batches of areas waiting for a grace period,
 * made to agree with the areas the recovery keeps.
 *
 * Holds: rcuPart (a RecoveryPart; recovery-parts.ts lists it after the areas part, whose
 * run.keptVm it reads).
 * Invariant: afterwards checkRcu() (kvfree-rcu.ts) holds: every queued address is the start of
 * a kept vmalloc area flagged VM_RCU_PENDING, queued once, and the pending count is their
 * number; and every kept area flagged pending is queued.
 * Callers: recover() through recoveryParts() (src/mm/recovery-parts.ts).
 *
 * What a dead cpu can leave: an area flagged pending but not queued (kvfreeRcu stopped between
 * the two): the flag is cleared, and the area is an ordinary one of the dead cpu's, freed by
 * address; entries of a batch it was freeing (their areas are free now, or half-freed and
 * dropped): removed from the batch; a batch emptied so is freed. The batches are touched
 * under each cpu's krcp lock: rcuBarrier() takes them outside the recovery gate, since it
 * waits for grace periods (a dead holder's lock was released before the parts ran).
 */

import type { RecoveryPart } from './recovery.js';
import { VM_RCU_PENDING } from './rcu-guard.js';
import { KVFREE_SLOTS, SLOT_FILLING, SLOT_WAITING } from './rcu.js';

export const rcuPart: RecoveryPart = {
  name: 'kvfree_rcu batches',
  collect() {},
  reset() {},
  restore(run) {
    const ctx = run.ctx;
    const rcu = ctx.rcu;
    const vms = ctx.vms;
    const pendingAt = new Map<number, number>(); // address -> vm_struct
    for (const vm of run.keptVm)
      if ((vms.flags(vm) & VM_RCU_PENDING) !== 0) pendingAt.set(vms.addr(vm), vm);
    const queued = new Set<number>();
    let dropped = 0;
    for (let c = 0; c < rcu.nrCpus; c++) {
      rcu.lockCpu(c);
      try {
        for (let s = 0; s < KVFREE_SLOTS; s++) {
          const at = rcu.slot(c, s);
          const st = rcu.state(at);
          if (st !== SLOT_FILLING && st !== SLOT_WAITING) continue;
          const n = rcu.count(at);
          let m = 0;
          for (let k = 0; k < n; k++) {
            const addr = rcu.f[rcu.entry(at, k)]!;
            if (!pendingAt.has(addr) || queued.has(addr)) continue;
            queued.add(addr);
            rcu.f[rcu.entry(at, m++)] = addr;
          }
          if (m !== n) {
            dropped += n - m;
            rcu.truncate(c, at, m);
          }
        }
      } finally {
        rcu.unlockCpu(c);
      }
    }
    let unflagged = 0;
    for (const [addr, vm] of pendingAt) {
      if (queued.has(addr)) continue;
      vms.setFlags(vm, vms.flags(vm) & ~VM_RCU_PENDING);
      unflagged++;
    }
    rcu.setPending(queued.size);
    if (dropped !== 0) run.counts['kvfree_rcu entries of freed areas'] = dropped;
    if (unflagged !== 0) run.counts['kvfree_rcu flags of unqueued areas'] = unflagged;
  },
};
