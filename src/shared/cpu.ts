/**
 * CPU identity and count.
 *
 * Holds: the default number of simulated CPUs (the machine's), and the rule that a worker is a
 * CPU: every per-CPU structure is indexed by the cpu id a Vmalloc was created or attached with.
 * Callers: createVmalloc, attach, the test driver.
 *
 * The core must run outside Node too (browser workers), so Node's os module is loaded only
 * when running on Node; elsewhere navigator.hardwareConcurrency answers.
 */

interface OsModule {
  availableParallelism?: () => number;
  cpus(): unknown[];
}

const nodeOs: OsModule | undefined =
  typeof globalThis.process === 'object' && globalThis.process?.versions?.node !== undefined
    ? ((await import('node:os')) as unknown as OsModule)
    : undefined;

/** The machine's CPU count, as num_online_cpus() would report. */
export function machineCpuCount(): number {
  if (nodeOs)
    return nodeOs.availableParallelism ? nodeOs.availableParallelism() : nodeOs.cpus().length;
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return Math.max(1, nav?.hardwareConcurrency ?? 1);
}
