/**
 * What this machine can run: the bound on test_vmalloc's nr_threads (and the contention
 * benchmark's worker counts) from the memory a run needs, against the memory the machine has.
 *
 * Holds: maxThreadsFor() and threadBoundError(), pure functions of the parameters and of the
 * memory figures, which the caller takes from os.freemem()/os.totalmem() (src/cli/machine.ts),
 * so that tests can hand in any machine. Invariant: a run of nr_threads <= maxThreadsFor()
 * fits in the available memory by runMemoryFor()'s estimate; one worker (in-process) is always
 * allowed.
 * Callers: src/cli/test.ts, src/cli/bench.ts, tests.
 */

import type { TestParams } from '../test-vmalloc/params.js';
import { runMemoryFor } from '../test-vmalloc/run.js';

/** A worker is a CPU, and createVmalloc() simulates at most 4096 CPUs (src/mm/config.ts):
 * below test_vmalloc's own cap on nr_threads (USHRT_MAX). */
export const MAX_THREADS = 4096;

export interface MachineMemory {
  /** Bytes the run may use: os.freemem() (MemAvailable on Linux). */
  availableBytes: number;
  /** Bytes of the machine: os.totalmem(). */
  totalBytes: number;
}

const memoryWith = (params: TestParams, n: number): number =>
  runMemoryFor({ ...params, nr_threads: n });

/**
 * The largest nr_threads, from 1 to 4096, whose run fits in `availableBytes` with the other
 * parameters as given (the physical memory grows with the simulated CPUs, so with nr_threads).
 */
export function maxThreadsFor(params: TestParams, availableBytes: number): number {
  // runMemoryFor() does not decrease as nr_threads grows: bisect for the last n that fits.
  let lo = 1;
  let hi = MAX_THREADS;
  if (memoryWith(params, hi) <= availableBytes) return hi;
  while (lo + 1 < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (memoryWith(params, mid) <= availableBytes) lo = mid;
    else hi = mid;
  }
  return lo;
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/**
 * The refusal for params.nr_threads on this machine, or null when the run fits:
 * "nr_threads=1000 needs about 51.0 GiB; this machine has 22.9 GiB free (23.5 GiB in all);
 * at most 404 here" (or, on a machine that holds it, beyond 4096 workers: the simulated
 * machine's limit). `name` is how the caller spells the parameter.
 */
export function threadBoundError(
  params: TestParams,
  memory: MachineMemory,
  name = 'nr_threads',
): string | null {
  const n = params.nr_threads;
  const max = maxThreadsFor(params, memory.availableBytes);
  if (n <= max) return null;
  if (memoryWith(params, n) <= memory.availableBytes)
    return `${name}=${n}: a worker is a CPU, and the simulated machine has at most ${MAX_THREADS} CPUs`;
  return (
    `${name}=${n} needs about ${gib(memoryWith(params, n))}; this machine has ` +
    `${gib(memory.availableBytes)} free (${gib(memory.totalBytes)} in all); at most ${max} here`
  );
}
