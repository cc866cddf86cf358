/**
 * test_vmalloc's module parameters and test_vmalloc.sh's modes and validation.
 *
 * Holds: the parameter table (the kernel's names and defaults, plus this project's design=,
 * nr_cpus= and seed=), the three canned modes, and parseTestArgs() with the script's rule:
 * every key must be a known parameter and every value a number greater than zero.
 * Callers: the CLI (`vmalloc test`), tests.
 *
 * Kernel: lib/test_vmalloc.c (6.x: nr_threads, sequential_test_order, test_repeat_count,
 * test_loop_count, nr_pages, use_huge, run_test_mask) and
 * tools/testing/selftests/mm/test_vmalloc.sh (PERF_PARAM, SMOKE_PARAM, STRESS_PARAM).
 */

import { DESIGNS, DESIGN_NAMES, isDesignName } from '../designs/registry.js';
import type { VmallocDesign } from '../mm/config.js';

export interface TestParams {
  /** Workers (kthreads vmalloc_test/N), clamped to [1, 65535]. */
  nr_threads: number;
  sequential_test_order: boolean;
  test_repeat_count: number;
  test_loop_count: number;
  /** Pages for fix_size_alloc_test (and vm_map_ram_test); 0 means 1. */
  nr_pages: number;
  use_huge: boolean;
  run_test_mask: number;
  /** This project's: which kernel generation's structures. */
  design: VmallocDesign;
  /** This project's: num_online_cpus(). */
  nr_cpus: number;
  /** This project's: the random seed (get_random_*), for replayable runs. */
  seed: number;
  /** This project's: collect lock statistics and print /proc/lock_stat after the run. */
  lock_stat: boolean;
}

/** Kernel defaults (6.x). run_test_mask defaults to every test implemented here. */
export function defaultParams(implementedMask: number, nrCpus: number): TestParams {
  return {
    nr_threads: 1,
    sequential_test_order: false,
    test_repeat_count: 1,
    test_loop_count: 1_000_000,
    nr_pages: 0,
    use_huge: false,
    run_test_mask: implementedMask,
    design: 'nodes',
    nr_cpus: nrCpus,
    seed: (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 1 || 1,
    lock_stat: false,
  };
}

export const PARAM_HELP: Record<keyof TestParams, string> = {
  nr_threads: 'Number of workers to perform tests (min: 1 max: USHRT_MAX)',
  sequential_test_order: 'Use sequential stress tests order',
  test_repeat_count: 'Set test repeat counter',
  test_loop_count: 'Set test loop counter',
  nr_pages: 'Set number of pages for fix_size_alloc_test (default: 1)',
  use_huge: 'Use vmalloc_huge in fix_size_alloc_test',
  run_test_mask: 'Set tests specified in the mask (default: all implemented)',
  design:
    'Kernel generation: ' +
    DESIGN_NAMES.map((d) => `${d} (${DESIGNS[d].summary.split(':')[0]})`).join(', '),
  nr_cpus: 'Simulated num_online_cpus() (default: this machine)',
  seed: 'Random seed for get_random_*() (default: from the clock, printed)',
  lock_stat: 'Print /proc/lock_stat after the run (lock_stat=1)',
};

/** test_vmalloc.sh's canned modes (6.x script). */
export const MODES = {
  performance: 'sequential_test_order=1 test_repeat_count=3',
  smoke: 'test_loop_count=10000 test_repeat_count=10',
  stress: 'nr_threads=$NUM_CPUS test_repeat_count=20',
} as const;
export type TestMode = keyof typeof MODES;

export class ParamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParamError';
  }
}

/**
 * Applies `key=value` words to `params`, as test_vmalloc.sh checks them: an unknown key, or a
 * value that is not a number greater than zero, is an error with the script's wording.
 */
export function applyParams(params: TestParams, words: readonly string[]): void {
  for (const word of words) {
    const eq = word.indexOf('=');
    const key = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? '' : word.slice(eq + 1);
    const fail = (): never => {
      throw new ParamError(`Error: key or value is not correct: ${key} ${value}`);
    };
    if (!(key in PARAM_HELP)) fail();
    if (key === 'design') {
      if (!isDesignName(value)) fail();
      params.design = value as VmallocDesign;
      continue;
    }
    if (!/^[0-9]+$/.test(value) || Number(value) <= 0) fail();
    const n = Number(value);
    if (!Number.isSafeInteger(n)) fail();
    switch (key as keyof TestParams) {
      case 'sequential_test_order':
        params.sequential_test_order = n !== 0;
        break;
      case 'use_huge':
        params.use_huge = n !== 0;
        break;
      case 'lock_stat':
        params.lock_stat = n !== 0;
        break;
      case 'nr_threads':
        params.nr_threads = Math.min(Math.max(n, 1), 65535);
        break;
      case 'run_test_mask':
        params.run_test_mask = n > 0x7fffffff ? 0x7fffffff : n;
        break;
      case 'nr_cpus':
        if (n > 4096) fail();
        params.nr_cpus = n;
        break;
      case 'seed':
        params.seed = n % 2 ** 32;
        break;
      case 'test_repeat_count':
      case 'test_loop_count':
      case 'nr_pages':
        params[key as 'test_repeat_count'] = Math.min(n, 0x7fffffff);
        break;
      default:
        fail();
    }
  }
}

/** The words of a canned mode, with $NUM_CPUS replaced. */
export function modeWords(mode: TestMode, numCpus: number): string[] {
  return MODES[mode].replace('$NUM_CPUS', String(numCpus)).split(' ');
}
