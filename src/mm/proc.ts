/**
 * What the kernel shows under /proc: vmallocinfo's data, and lock_stat.
 *
 * Holds: infoSource() (the plain data vmallocinfo.ts formats: busy areas with their
 * vm_structs, lazily freed areas), lockStats() and lockStatText(), and the switch of lock
 * statistics (setLockStat).
 * Callers: the façade (vmallocinfo(), lockStats(), lockStat(), setLockStat()), the report.
 */

import { formatLockStat } from '../shared/lock-stat.js';
import type { LockStat } from '../shared/lock.js';
import { throwEinval } from './args.js';
import type { VmContext } from './shared-state.js';
import type { VmallocinfoSource } from './vmallocinfo.js';

export function infoSource(ctx: VmContext): VmallocinfoSource {
  ctx.refreshAll();
  const s = ctx.s;
  const vms = ctx.vms;
  const d = ctx.areas.design;
  return {
    design: ctx.config.design,
    pageSize: ctx.pageSize,
    numaInfo: ctx.config.numaInfo,
    busy: d.busyIds().map((va) => {
      const vm = s.vm(va);
      return {
        start: s.start(va),
        end: s.end(va),
        vaFlags: s.flags(va),
        vm:
          vm === 0
            ? null
            : {
                addr: vms.addr(vm),
                size: vms.size(vm),
                flags: vms.flags(vm),
                nrPages: vms.nrPages(vm),
                caller: ctx.strings.text(vms.caller(vm)),
                physAddr: vms.physAddr(vm),
                pagesInVmalloc: vms.pagesVm(vm) !== 0,
              },
      };
    }),
    lazy: d.lazyIds().map((va) => ({ start: s.start(va), end: s.end(va) })),
  };
}

/** Per-lock statistics (lock_stat), each under its lock class name. */
export function lockStats(ctx: VmContext): LockStat[] {
  const stats = ctx.allLocks.map((l) => ctx.lockTable.stat(l.index, l.name));
  // Locks inside records (vb->lock) are one class each, summed over the cpus.
  stats.push(ctx.vb.blockLock.stat());
  return stats;
}

/** /proc/lock_stat in the kernel's layout. */
export function lockStatText(ctx: VmContext): string {
  return formatLockStat(lockStats(ctx));
}

/** Turns lock statistics on or off for every worker (the flag lives in shared memory). */
export function setLockStat(ctx: VmContext, on: unknown): void {
  if (typeof on !== 'boolean') throwEinval('setLockStat', 'on must be a boolean', on);
  ctx.lockTable.setStats(on);
}
