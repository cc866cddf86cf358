/**
 * A test_vmalloc worker thread (the kernel's kthread "vmalloc_test/<i>"): attaches to the
 * shared vmalloc, waits at the start barrier, runs its tests, detaches, reports back.
 *
 * Callers: run.ts, which starts one per nr_threads with workerData {handle, cpu, params,
 * barrier}. Messages to the parent: {type: 'warn' | 'progress' | 'result' | 'error'}.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { attachVmalloc, type VmallocHandle } from '../api/vmalloc.js';
import { runWorker } from './driver.js';
import type { TestParams } from './params.js';
import { waitAtBarrier } from './barrier.js';
import { TraceRecorder } from './trace-record.js';
import { warmUp } from './run.js';

interface Data {
  handle: VmallocHandle;
  cpu: number;
  worker: number;
  params: TestParams;
  barrier: SharedArrayBuffer;
  warmup: boolean;
  /** record=: the run's shared trace words (trace-record.ts), else null. */
  trace: SharedArrayBuffer | null;
}

const data = workerData as Data;
const port = parentPort!;
try {
  const vm = attachVmalloc(data.handle, {
    cpu: data.cpu,
    logger: { warn: (m) => port.postMessage({ type: 'warn', message: m }) },
  });
  if (data.warmup) warmUp(vm, data.params, data.worker);
  // Offline while waiting: a worker still warming up (kvfree_rcu tests) may wait for a grace
  // period, which an idle worker at the barrier would otherwise hold up.
  vm.rcuOffline();
  waitAtBarrier(data.barrier);
  vm.rcuOnline();
  // Chunks go to the parent as they fill (their buffers moved, not copied), all before the result.
  const recorder =
    data.trace === null
      ? null
      : new TraceRecorder(data.trace, data.worker, (chunk) =>
          port.postMessage({ type: 'trace', chunk }, [chunk.records.buffer as ArrayBuffer]),
        );
  const result = runWorker(
    recorder === null ? vm : recorder.wrap(vm),
    data.params,
    data.worker,
    (p) => port.postMessage({ type: 'progress', progress: p }),
  );
  recorder?.flush();
  // Give the cpu id back (and this cpu's cached records and pages) before reporting: the
  // parent takes cpu 0 again once every worker has exited, and may terminate us any time
  // after the result.
  vm.detach();
  port.postMessage({ type: 'result', result });
} catch (e) {
  port.postMessage({
    type: 'error',
    message: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    code: (e as { code?: string }).code,
  });
}
