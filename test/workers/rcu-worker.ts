/**
 * Worker of rcu.test.ts, attached as `cpu` in one of two roles.
 *
 *   reader  reports 'ready', then parks (Atomics.wait on flags[WAKE]) making no call: a
 *           read-side section that holds every grace period; woken, it passes a quiescent
 *           state (rcuQuiescent), reports 'quiesced' and parks again for good (the test
 *           terminates it: a worker that dies inside a section).
 *   writer  reports 'ready' and obeys: queue {n, calls} (n one-page areas written and queued
 *           with kvfreeRcu, then `calls` vmalloc/vfree pairs, each a quiescent state), drain
 *           (vmalloc/vfree pairs until nothing is pending), barrier (rcuBarrier), detach.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { attachVmalloc, type VmallocHandle } from '../../src/index.js';

/** flags words: the reader's wake-up (set by the test), and one nobody sets. */
const WAKE = 0;
const FOREVER = 1;

export interface RcuReport {
  type: string;
  pending: number;
  batches: number;
  gracePeriods: number;
  /** Every queued area still mapped with what was written (nothing freed under us). */
  intact: boolean;
  iterations: number;
}

const data = workerData as {
  handle: VmallocHandle;
  cpu: number;
  role: 'reader' | 'writer';
  flags: SharedArrayBuffer;
};
const port = parentPort!;
const flags = new Int32Array(data.flags);
const vm = attachVmalloc(data.handle, { cpu: data.cpu, logger: null });
const page = vm.pageSize;

function report(type: string, intact = true, iterations = 0): void {
  const st = vm.stats();
  const r: RcuReport = {
    type,
    pending: st.rcuPending,
    batches: st.rcuBatches,
    gracePeriods: st.rcuGracePeriods,
    intact,
    iterations,
  };
  port.postMessage(r);
}

if (data.role === 'reader') {
  report('ready');
  Atomics.wait(flags, WAKE, 0);
  vm.rcuQuiescent();
  report('quiesced');
  Atomics.wait(flags, FOREVER, 0);
} else {
  port.on('message', (m: { cmd: string; n?: number; calls?: number }) => {
    try {
      if (m.cmd === 'queue') {
        const queued: number[] = [];
        for (let i = 0; i < m.n!; i++) {
          const p = vm.vmalloc(page)!;
          vm.writeU8(p + 16, 0x61);
          vm.kvfreeRcu(p);
          queued.push(p);
        }
        for (let i = 0; i < m.calls!; i++) vm.vfree(vm.vmalloc(page));
        // Read while still pending: the areas are ours until the grace period ends.
        const intact = queued.every((p) => vm.findVmArea(p) !== null && vm.readU8(p + 16) === 0x61);
        report('queued', intact);
      } else if (m.cmd === 'drain') {
        let k = 0;
        while (vm.stats().rcuPending !== 0 && k < 1_000_000) {
          vm.vfree(vm.vmalloc(page));
          k++;
        }
        report('drained', true, k);
      } else if (m.cmd === 'barrier') {
        vm.rcuBarrier();
        report('barrier');
      } else if (m.cmd === 'detach') {
        vm.detach();
        port.postMessage({ type: 'detached' });
        port.close();
      }
    } catch (e) {
      port.postMessage({ type: 'error', message: (e as Error).message });
    }
  });
  report('ready');
}
