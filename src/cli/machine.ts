/**
 * The machine the CLI runs on: its CPU count (the library's core asks no Node module for it,
 * so the CLI hands Node's value in) and a one-line description for benchmark reports.
 * Callers: src/cli/*.ts.
 */

import os from 'node:os';

export function machineLine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  return `${model}, ${cpus.length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

/** Node's count of the CPUs this process may use: num_online_cpus() for the test driver. */
export function nodeCpuCount(): number {
  return os.availableParallelism();
}
