/** Helpers for vmalloc tests: a subsystem with captured warnings, and state snapshots. */

import { createVmalloc, type Vmalloc, type VmallocOptions } from '../../src/index.js';

export interface TestVm {
  vm: Vmalloc;
  warnings: string[];
}

/** A 1-CPU subsystem (lazy_max_pages() = 8192) whose warnings are collected. */
export function testVm(options: VmallocOptions = {}): TestVm {
  const warnings: string[] = [];
  const vm = createVmalloc({ nrCpus: 1, logger: { warn: (m) => warnings.push(m) }, ...options });
  return { vm, warnings };
}

/** Everything observable about the state, for "unchanged after a throw" assertions. */
export function snapshot(vm: Vmalloc): string {
  vm.check();
  const { purges, ...rest } = vm.stats();
  return JSON.stringify({ info: vm.vmallocinfo(), stats: rest, purges });
}

export const PAGE = 4096;
