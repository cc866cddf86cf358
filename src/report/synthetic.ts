/**
 * A large live layout for the report's scale check: N areas reserved in a real subsystem.
 *
 * Holds: syntheticLayout() (the Vmalloc with N live areas, some freed among them), and
 * syntheticReport() (its report data: the map alone, no test run).
 * Invariant: deterministic for a seed; the areas are address space only (get_vm_area, no
 * pages), so a million of them fit in memory.
 * Callers: src/cli/report.ts (--synthetic-areas N), tests, scripts/report-screenshot.mjs.
 */

import { createVmalloc, type Vmalloc, VmFlags } from '../api/vmalloc.js';
import type { VmallocDesign } from '../mm/config.js';
import { encodeSnapshot } from './encode.js';
import { REPORT_SCHEMA_VERSION, type ReportData } from './collect.js';

export interface SyntheticOptions {
  areas: number;
  design: VmallocDesign;
  nrCpus: number;
  seed: number;
}

const CALLERS = [
  'alloc_large_system_hash+0x17a/0x2b0',
  'bpf_prog_alloc_no_stats+0x3a/0x160',
  'n_tty_open+0x16/0x90',
  'kvm_arch_vcpu_create+0x5e/0x300',
  'ioremap_driver_probe+0x42/0x120',
  'module_alloc+0x51/0xa0',
];

/** A small deterministic generator (xorshift32): the layout's sizes and which areas go. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * `areas` live areas of 1 to 16 pages (plus the guard page), from several cpus' views, with
 * one area in eight of those made first freed again: holes, lazily freed areas and, in the
 * nodes design, pooled ones.
 */
export function syntheticLayout(o: SyntheticOptions): Vmalloc {
  const vm = createVmalloc({ design: o.design, nrCpus: o.nrCpus, logger: null });
  const page = vm.pageSize;
  const next = rng(o.seed);
  const extra = Math.floor(o.areas / 8);
  const made: number[] = [];
  for (let k = 0; k < o.areas + extra; k++) {
    const pages = 1 + Math.floor(next() * next() * 16);
    const c = Math.floor(next() * CALLERS.length);
    const flags = c === 4 ? VmFlags.VM_IOREMAP : 0;
    const a = vm.getVmArea(pages * page, flags, { caller: CALLERS[c]! });
    if (a === null) throw new Error(`synthetic layout: out of space after ${k} areas`);
    made.push(a.addr);
  }
  // Free `extra` of them, spread over the space (a fixed stride through a shuffled start).
  let freed = 0;
  for (let k = Math.floor(next() * 8); k < made.length && freed < extra; k += 9) {
    vm.removeVmArea(made[k]!);
    freed++;
  }
  for (let k = 0; freed < extra; k++) {
    if (k % 9 === 0) continue;
    vm.removeVmArea(made[k]!);
    freed++;
  }
  return vm;
}

export function syntheticReport(
  o: SyntheticOptions,
  command: string,
  machine: string,
  version: string,
): ReportData {
  const t0 = performance.now();
  const vm = syntheticLayout(o);
  const made = performance.now() - t0;
  const snap = vm.snapshot();
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    title: `vmalloc report: ${o.areas.toLocaleString('en-US')} synthetic areas`,
    generated: new Date().toISOString(),
    command,
    machine,
    version,
    params: {
      'synthetic areas': o.areas,
      design: o.design,
      nr_cpus: o.nrCpus,
      seed: o.seed,
      'busy areas': snap.busy.length,
      'free blocks': snap.free.length,
      'lazy areas': snap.lazy.length,
      'pooled areas': snap.pooled.length,
      'layout built in ms': Math.round(made),
    },
    tests: [],
    lockStat: [],
    scaling: null,
    maps: [encodeSnapshot(snap)],
    notes: [
      `A synthetic layout: ${o.areas.toLocaleString('en-US')} live areas reserved with get_vm_area() (1 to 16 pages each), after freeing one in eight of the areas made; no test ran.`,
    ],
  };
}
