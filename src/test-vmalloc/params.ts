/**
 * test_vmalloc's module parameters and test_vmalloc.sh's modes and validation.
 *
 * Holds: the parameter table (the kernel's names and defaults, plus this project's design=,
 * nr_cpus=, seed=, lock_stat=, simulate= and record=), the three canned modes, and
 * applyParams() with the script's rule (every key a known parameter, every value a number
 * greater than zero; record= takes a file name) and the module's
 * (bools are 1, ints within their type): a refusal names the key, the value and the rule,
 * where the kernel would clamp silently or modprobe fail after the script said nothing.
 * Callers: the CLI (`vmalloc test`), tests.
 *
 * Kernel: lib/test_vmalloc.c (6.x: nr_threads, sequential_test_order, test_repeat_count,
 * test_loop_count, nr_pages, use_huge, run_test_mask; nr_pcpu_objects of the newest) and
 * tools/testing/selftests/mm/test_vmalloc.sh (PERF_PARAM, SMOKE_PARAM, STRESS_PARAM).
 */

import { DESIGNS as REGISTRY, DESIGN_NAMES } from '../designs/registry.js';
import type { VmallocDesign } from '../mm/config.js';

export interface TestParams {
  /** Workers (kthreads vmalloc_test/N), 1 to 65535 (the kernel clamps; here a larger value is refused). */
  nr_threads: number;
  sequential_test_order: boolean;
  test_repeat_count: number;
  test_loop_count: number;
  /** Pages for fix_size_alloc_test (and vm_map_ram_test); 0 means 1. */
  nr_pages: number;
  use_huge: boolean;
  run_test_mask: number;
  /** Percpu objects pcpu_alloc_test allocates (TEST-NEW). */
  nr_pcpu_objects: number;
  /** This project's: which kernel generation's structures. */
  design: VmallocDesign;
  /** This project's: num_online_cpus(). */
  nr_cpus: number;
  /** This project's: the random seed (get_random_*), for replayable runs. */
  seed: number;
  /** This project's: collect lock statistics and print /proc/lock_stat after the run. */
  lock_stat: boolean;
  /** This project's: run on a simulated machine of nr_threads CPUs in virtual time (src/sim). */
  simulate: boolean;
  /** This project's: write every allocator call to this file ('' is off; trace-record.ts). */
  record: string;
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
    nr_pcpu_objects: 35000,
    design: 'nodes',
    nr_cpus: nrCpus,
    seed: (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 1 || 1,
    lock_stat: false,
    simulate: false,
    record: '',
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
  nr_pcpu_objects: 'Number of pcpu objects to allocate for pcpu_alloc_test (default: 35000)',
  design:
    'Kernel generation: ' +
    DESIGN_NAMES.map((d) => `${d} (${REGISTRY[d].summary.split(':')[0]})`).join(', '),
  nr_cpus: 'Simulated num_online_cpus() (default: this machine)',
  seed: 'Random seed for get_random_*() (default: from the clock, printed)',
  lock_stat: 'Print /proc/lock_stat after the run (lock_stat=1)',
  simulate:
    'Run on a simulated machine of nr_threads CPUs, in virtual time (simulate=1; see vmalloc sim)',
  record:
    'Write every allocator call, with its cpu and order, to this file (record=trace.jsonl; see vmalloc replay)',
};

/** test_vmalloc.sh's canned modes (6.x script). */
export const MODES = {
  performance: 'sequential_test_order=1 test_repeat_count=3',
  smoke: 'test_loop_count=10000 test_repeat_count=10',
  stress: 'nr_threads=$NUM_CPUS test_repeat_count=20',
} as const;
export type TestMode = keyof typeof MODES;

/** The rule a parameter's value must follow, per parameter (after the script's "above 0"). */
type Rule =
  | { kind: 'bool' }
  | { kind: 'int'; max: number; why: string }
  | { kind: 'design' }
  | { kind: 'path' };

const INT_MAX = 0x7fffffff;
const INT: Rule = { kind: 'int', max: INT_MAX, why: 'an int: at most 2147483647' };

/** Kernel types: bool params parse 0/1, int params refuse values beyond INT_MAX (-ERANGE). */
const RULES: Record<keyof TestParams, Rule> = {
  nr_threads: { kind: 'int', max: 65535, why: 'at most 65535, USHRT_MAX' },
  sequential_test_order: { kind: 'bool' },
  test_repeat_count: INT,
  test_loop_count: INT,
  nr_pages: INT,
  use_huge: { kind: 'bool' },
  run_test_mask: INT,
  nr_pcpu_objects: INT,
  design: { kind: 'design' },
  nr_cpus: { kind: 'int', max: 4096, why: 'at most 4096' },
  seed: { kind: 'int', max: 0xffffffff, why: 'a u32: at most 4294967295' },
  lock_stat: { kind: 'bool' },
  simulate: { kind: 'bool' },
  record: { kind: 'path' },
};

/** Every registered design (src/designs/registry.ts). */
export const DESIGNS: readonly VmallocDesign[] = DESIGN_NAMES;

/** A refused `key=value`: the script's line, with the rule that was broken. */
export class ParamError extends Error {
  readonly key: string;
  readonly value: string;
  readonly rule: string;
  constructor(key: string, value: string, rule: string) {
    super(`Error: key or value is not correct: ${key}${value === '' ? '' : ` ${value}`} (${rule})`);
    this.name = 'ParamError';
    this.key = key;
    this.value = value;
    this.rule = rule;
  }
}

/**
 * Applies `key=value` words to `params`, refusing what test_vmalloc.sh and the module refuse:
 * an unknown key, a value that is not a decimal number above 0 (the script), a bool other
 * than 1, an int beyond its type (modprobe's -EINVAL / -ERANGE), and, unlike modprobe, a key
 * given twice in `words`. Everything is checked before `params` changes.
 */
export function applyParams(params: TestParams, words: readonly string[]): void {
  const next: Partial<Record<keyof TestParams, number | boolean | string>> = {};
  const seen = new Map<string, string>();
  for (const word of words) {
    const eq = word.indexOf('=');
    const key = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? '' : word.slice(eq + 1);
    const fail = (rule: string): never => {
      throw new ParamError(key, value, rule);
    };
    if (!Object.prototype.hasOwnProperty.call(RULES, key)) {
      const modeHint = Object.prototype.hasOwnProperty.call(MODES, key)
        ? '; a mode comes first, once'
        : '';
      fail(`unknown parameter${modeHint}; the parameters are ${Object.keys(RULES).join(', ')}`);
    }
    if (eq < 0) fail(`a parameter is given as ${key}=value`);
    const k = key as keyof TestParams;
    const earlier = seen.get(key);
    if (earlier !== undefined) fail(`${key} is given twice: ${key}=${earlier} and ${key}=${value}`);
    seen.set(key, value);
    const rule = RULES[k];
    if (rule.kind === 'design') {
      if (!(DESIGNS as readonly string[]).includes(value))
        fail(`design is one of ${DESIGNS.join(', ')}`);
      next[k] = value as VmallocDesign;
      continue;
    }
    if (rule.kind === 'path') {
      if (value === '') fail(`${key} takes a file name: ${key}=trace.jsonl`);
      next[k] = value;
      continue;
    }
    if (!/^[0-9]+$/.test(value) || !(Number(value) > 0))
      fail('the value must be a decimal number above 0');
    const n = Number(value);
    if (rule.kind === 'bool') {
      if (n !== 1) fail(`${key} is a bool: 1 turns it on, leaving it out keeps it off`);
      next[k] = true;
    } else {
      if (!Number.isSafeInteger(n) || n > rule.max) fail(`${key} is ${rule.why}`);
      next[k] = n;
    }
  }
  Object.assign(params, next);
}

/** The words of a canned mode, with $NUM_CPUS replaced. */
export function modeWords(mode: TestMode, numCpus: number): string[] {
  return MODES[mode].replace('$NUM_CPUS', String(numCpus)).split(' ');
}
