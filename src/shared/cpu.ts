/**
 * CPU identity and count.
 *
 * Holds: the default number of simulated CPUs (the machine's), and the rule that a worker is a
 * CPU: every per-CPU structure is indexed by the cpu id a Vmalloc was created or attached with.
 * Callers: createVmalloc, attach, the test driver.
 *
 * The core must run outside Node too (browser workers, bundles, require() from CommonJS), so
 * this module imports nothing and awaits nothing at its top level: navigator.hardwareConcurrency
 * answers where it exists (browsers, Node 21+); on Node 20 the os module is fetched with
 * process.getBuiltinModule (Node 20.16+), a plain call that bundlers do not follow.
 */

interface OsModule {
  availableParallelism?: () => number;
  cpus?: () => unknown[];
}

interface Platform {
  navigator?: { hardwareConcurrency?: unknown };
  process?: { getBuiltinModule?: (id: string) => unknown };
}

/** The machine's CPU count, as num_online_cpus() would report; 1 when nothing says. */
export function machineCpuCount(): number {
  const g = globalThis as Platform;
  const n = g.navigator?.hardwareConcurrency;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 1) return n;
  const os = g.process?.getBuiltinModule?.('os') as OsModule | undefined;
  const m = os?.availableParallelism?.() ?? os?.cpus?.().length;
  return typeof m === 'number' && Number.isInteger(m) && m >= 1 ? m : 1;
}
