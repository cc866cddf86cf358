/**
 * Runs test_vmalloc as the kernel module does: nr_threads workers, each a CPU with its own
 * test order, released together; the results in worker order.
 *
 * Holds: runTestVmalloc() (in this thread for one worker, in worker threads otherwise) and
 * the sizing of the simulated machine for a run (CPUs, physical memory).
 * Callers: the CLI (`vmalloc test`), the contention benchmark, tests.
 *
 * Kernel: lib/test_vmalloc.c do_concurrent_test(). A worker is a CPU: with more workers than
 * nr_cpus, the simulated machine has as many CPUs as workers.
 */

import { Worker } from 'node:worker_threads';
import { attachVmalloc, createVmalloc, type Vmalloc } from '../api/vmalloc.js';
import { type VmallocinfoImport, vmallocinfoPages } from '../mm/vmallocinfo-import.js';
import type { VmallocLogger } from '../shared/logger.js';
import { fls } from '../shared/layout.js';
import { allArrived, makeBarrier, openBarrier } from './barrier.js';
import { runWorker, type Progress, type WorkerResult } from './driver.js';
import { policyOptions, type TestParams } from './params.js';
import type { TraceChunk } from './trace-record.js';
import { type TraceSession, openTraceSession } from './trace-session.js';

export interface RunOptions {
  params: TestParams;
  /**
   * Check every invariant after every operation (true), or after every n-th (a number; 0 is
   * off). In-process runs only: one worker.
   */
  checkEveryOp?: boolean | number;
  logger?: VmallocLogger | null;
  progress?: (p: Progress) => void;
  /** Collect lock statistics during the run. */
  lockStatFromStart?: boolean;
  /**
   * Run every selected test once with a few loops before the barrier opens (untimed), so that
   * the JIT has compiled the code in every worker: for benchmarks. @defaultValue false
   */
  warmup?: boolean;
  /** How vm_map_ram finds its blocks (the vmapBlockHash option). @defaultValue 'percpu' */
  vmapBlockHash?: 'global' | 'percpu';
  /**
   * A /proc/vmallocinfo text whose layout is loaded before the run (Vmalloc.loadVmallocinfo);
   * physical memory grows by its pages.
   */
  vmallocinfo?: string;
}

export interface RunResult {
  vm: Vmalloc;
  workers: WorkerResult[];
  elapsedNs: number;
  /**
   * The run's CPU time in ns (user + system), when it ran on this thread alone (nr_threads=1):
   * unlike elapsedNs it leaves out the time a loaded machine kept the thread off a core.
   */
  cpuNs?: number;
  /** CPUs of the simulated machine (max(nr_cpus, nr_threads)). */
  nrCpus: number;
  /** What loading RunOptions.vmallocinfo did. */
  imported?: VmallocinfoImport;
  /** Calls written to params.record (record= only). */
  traced?: number;
}

/** Simulated CPUs: one per worker at least. */
export function machineCpus(params: TestParams): number {
  return Math.max(params.nr_cpus, params.nr_threads);
}

/**
 * Physical memory for a run: what the selected tests keep allocated at once on every worker
 * (full_fit_alloc_test's two arrays of fls(nr_cpus) * 32 MiB of pages; long_busy_list's 15000
 * pages), with room to spare; at least 1 GiB, at most 4 GiB.
 */
export function physicalMemoryFor(params: TestParams, nrCpus: number, pageSize = 4096): number {
  let pages = 1024 + params.nr_pages * 2;
  if ((params.run_test_mask & 2) !== 0)
    pages += 2 * fls(nrCpus) * ((32 * 2 ** 20) / pageSize) + 1024;
  if ((params.run_test_mask & 4) !== 0) pages += 15000 + 200;
  // pcpu_alloc_test: about 700 bytes an object with its alignment padding, in every CPU's unit.
  if ((params.run_test_mask & 128) !== 0)
    pages += (Math.ceil((params.nr_pcpu_objects * 768) / pageSize) + 64) * nrCpus;
  const bytes = Math.ceil(pages * params.nr_threads * 1.25) * pageSize;
  return Math.min(4 * 2 ** 30, Math.max(2 ** 30, Math.ceil(bytes / pageSize) * pageSize));
}

/** What a worker thread costs besides the frames: its Node isolate, heap and code (measured
 * about 35 MiB on Node 20, x86_64; rounded up). */
export const WORKER_THREAD_BYTES = 48 * 2 ** 20;
/** The main thread's share: Node and the subsystem's tables (measured about 65 MiB, with one
 * in-process worker; rounded up). */
const MAIN_THREAD_BYTES = 96 * 2 ** 20;

/** Memory a run may need: the main thread, an isolate per worker thread (one worker runs in
 * the main thread), and the physical memory physicalMemoryFor() sizes. The CLI bounds
 * nr_threads with it against the machine's memory. */
export function runMemoryFor(params: TestParams): number {
  const threads = params.nr_threads > 1 ? params.nr_threads : 0;
  return (
    MAIN_THREAD_BYTES +
    threads * WORKER_THREAD_BYTES +
    physicalMemoryFor(params, machineCpus(params))
  );
}

export async function runTestVmalloc(o: RunOptions): Promise<RunResult> {
  const { params } = o;
  const nrCpus = machineCpus(params);
  // An imported layout's pages come on top of the tests' (within the 4 GiB the option allows).
  const extra = o.vmallocinfo === undefined ? 0 : vmallocinfoPages(o.vmallocinfo) * 4096;
  const vm = createVmalloc({
    design: params.design,
    nrCpus,
    physicalMemory: Math.min(2 ** 32, physicalMemoryFor(params, nrCpus) + extra),
    checkEveryOp: params.nr_threads === 1 ? (o.checkEveryOp ?? false) : false,
    logger: o.logger === undefined ? null : o.logger,
    lockStat: o.lockStatFromStart === true,
    // The run's policy parameters (nr_vmap_nodes=, lazy_max_pages=, ...); vmapBlockHash given
    // here wins over vmap_block_hash=.
    ...policyOptions(params),
    ...(o.vmapBlockHash === undefined ? {} : { vmapBlockHash: o.vmapBlockHash }),
  });
  const imported = o.vmallocinfo === undefined ? undefined : vm.loadVmallocinfo(o.vmallocinfo);
  // record=: every worker's calls, serialized and in order, to the file (trace-record.ts).
  const trace: TraceSession | null =
    params.record === ''
      ? null
      : openTraceSession(
          params,
          vm,
          o.vmallocinfo === undefined ? {} : { vmallocinfo: o.vmallocinfo },
        );
  if (params.nr_threads === 1) {
    if (o.warmup === true) {
      warmUp(vm, params, 0);
      vm.resetLockStat();
    }
    const recorder = trace?.recorder(0);
    const cpu0 = process.cpuUsage();
    const start = Number(process.hrtime.bigint());
    let r: WorkerResult;
    try {
      r = runWorker(recorder === undefined ? vm : recorder.wrap(vm), params, 0, o.progress);
    } catch (e) {
      if (trace !== null) ignoreErrors(() => trace.writer.close());
      throw e;
    }
    const elapsedNs = Number(process.hrtime.bigint()) - start;
    const cpu = process.cpuUsage(cpu0);
    const cpuNs = (cpu.user + cpu.system) * 1000;
    recorder?.flush();
    vm.rcuBarrier(); // the kvfree_rcu tests' last frees: the run leaves nothing pending
    const traced = trace?.close();
    return { vm, workers: [r], elapsedNs, cpuNs, nrCpus, imported, traced };
  }
  // Worker i runs as cpu i, and this thread idles meanwhile: it lends its cpu 0 to worker 0
  // (a cpu id is one thread's at a time), supervises as a detached instance, and takes cpu 0
  // back once the workers have exited.
  vm.detach();
  const barrier = makeBarrier();
  const workers: Worker[] = [];
  const results: Promise<WorkerResult>[] = [];
  for (let i = 0; i < params.nr_threads; i++) {
    const w = new Worker(new URL('./worker-entry.js', import.meta.url), {
      workerData: {
        handle: vm.handle,
        cpu: i,
        worker: i,
        params,
        barrier,
        warmup: o.warmup === true,
        trace: trace === null ? null : trace.shared,
      },
    });
    vm.watchWorker(w, i);
    workers.push(w);
    results.push(
      new Promise((resolve, reject) => {
        w.on(
          'message',
          (m: {
            type: string;
            message?: string;
            result?: WorkerResult;
            progress?: Progress;
            chunk?: TraceChunk;
          }) => {
            if (m.type === 'trace') trace?.add(m.chunk!);
            else if (m.type === 'warn') o.logger?.warn(m.message!);
            else if (m.type === 'progress') o.progress?.(m.progress!);
            else if (m.type === 'result') resolve(m.result!);
            else if (m.type === 'error') reject(new Error(`vmalloc_test/${i}: ${m.message}`));
          },
        );
        w.on('error', reject);
        w.on('exit', (code) => {
          if (code !== 0) reject(new Error(`vmalloc_test/${i} exited with code ${code}`));
        });
      }),
    );
  }
  let out: WorkerResult[];
  let elapsedNs: number;
  let finished = false;
  try {
    await allArrived(barrier, params.nr_threads);
    vm.resetLockStat(); // the warm-up's locking is not the run's
    const t0 = Number(process.hrtime.bigint());
    openBarrier(barrier);
    out = await Promise.all(results);
    elapsedNs = Number(process.hrtime.bigint()) - t0;
    finished = true;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    // A failed run's trace keeps what arrived in order; the run's error is the one reported.
    if (!finished && trace !== null) ignoreErrors(() => trace.writer.close());
  }
  // Every worker detached before its result (a failed one was freed by its exit), and every
  // exit has run (terminate() waits for it): cpu 0 is free. Its exit marked it dead; the
  // attach marks it alive again (and would refuse it if worker 0 had died holding a lock).
  const after = attachVmalloc(vm.handle, {
    cpu: 0,
    logger: o.logger === undefined ? null : o.logger,
  });
  // Every worker has detached, so no cpu holds a grace period: the kvfree_rcu tests' last
  // batches are freed now, and the run leaves nothing pending (the callers check for leaks).
  after.rcuBarrier();
  const traced = trace?.close();
  return { vm: after, workers: out, elapsedNs, nrCpus, imported, traced };
}

/** Runs the selected tests with few loops, to get the JIT's optimized code before timing. */
export function warmUp(vm: Vmalloc, params: TestParams, worker: number): void {
  const small: TestParams = {
    ...params,
    test_loop_count: Math.min(params.test_loop_count, 20_000),
    test_repeat_count: 1,
    lock_stat: false,
  };
  runWorker(vm, small, worker);
}

function ignoreErrors(f: () => unknown): void {
  try {
    f();
  } catch {
    // reported by the caller's own error
  }
}
