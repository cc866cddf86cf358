/**
 * The machine the CLI runs on: its CPU count and memory (the library's core asks no Node
 * module for them, so the CLI hands Node's values in) and a one-line description for
 * benchmark reports.
 * Callers: src/cli/*.ts.
 */

import os from 'node:os';
import type { MachineMemory } from './limits.js';

export function machineLine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  return `${model}, ${cpus.length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

/** Node's count of the CPUs this process may use: num_online_cpus() for the test driver. */
export function nodeCpuCount(): number {
  return os.availableParallelism();
}

/** The memory a run may take now (os.freemem() is MemAvailable on Linux) and the total. */
export function machineMemory(): MachineMemory {
  const totalBytes = os.totalmem();
  return { availableBytes: Math.min(os.freemem(), totalBytes), totalBytes };
}
