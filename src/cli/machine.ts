/**
 * The machine the CLI runs on: its CPU count, memory and cycle-counter rate (the library's
 * core asks no Node module for them, so the CLI hands Node's values in) and a one-line
 * description for benchmark reports.
 * Callers: src/cli/*.ts.
 */

import fs from 'node:fs';
import os from 'node:os';
import { type ClockRate, DEFAULT_CLOCK } from '../test-vmalloc/kernel-version.js';
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

/**
 * The rate of the cycle counter the kernel's test_vmalloc reads (get_cycles(): the TSC on
 * x86), in MHz, from /proc/cpuinfo: the nominal frequency in the model name ("@ 2.40GHz",
 * Intel's TSC rate), else the first "cpu MHz" line (under a hypervisor, usually the TSC rate;
 * on bare metal with frequency scaling, the current frequency: approximate); else Node's
 * speed of CPU 0; else DEFAULT_CLOCK (1000 MHz: one cycle a nanosecond).
 */
export function clockFromCpuinfo(text: string | null = readCpuinfo()): ClockRate {
  if (text !== null) {
    const model = /^model name\s*:.*@\s*([0-9.]+)\s*GHz/m.exec(text);
    if (model && Number(model[1]) > 0)
      return { mhz: Number(model[1]) * 1000, source: `${model[1]} GHz, /proc/cpuinfo model name` };
    const mhz = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(text);
    if (mhz && Number(mhz[1]) > 0)
      return { mhz: Number(mhz[1]), source: `${mhz[1]} MHz, /proc/cpuinfo cpu MHz` };
  }
  const speed = os.cpus()[0]?.speed ?? 0;
  if (speed > 0) return { mhz: speed, source: `${speed} MHz, os.cpus()` };
  return DEFAULT_CLOCK;
}

function readCpuinfo(): string | null {
  try {
    return fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
}
