/**
 * test_vmalloc's module parameters and test_vmalloc.sh's modes and validation.
 *
 * Holds: the parameter table (the kernel's names and defaults, plus this project's design=,
 * nr_cpus=, seed=, lock_stat=, simulate=, record= and the policy knobs nr_vmap_nodes=,
 * vmap_zone_size=, vmap_pool_limit=, vmap_pool_decay=, lazy_max_pages=, vmap_block_hash=,
 * with policyOptions() turning them into createVmalloc options and policyLine() printing
 * them resolved), the three canned modes, and applyParams() with the script's rule (every
 * key a known parameter, every value a number greater than zero; record= takes a file
 * name, vmap_block_hash= global or percpu) and the module's
 * (bools are 1, ints within their type): a refusal names the key, the value and the rule,
 * where the kernel would clamp silently or modprobe fail after the script said nothing.
 * Callers: the CLI (`vmalloc test`), tests.
 *
 * Kernel: lib/test_vmalloc.c (6.x: nr_threads, sequential_test_order, test_repeat_count,
 * test_loop_count, nr_pages, use_huge, run_test_mask; nr_pcpu_objects of the newest) and
 * tools/testing/selftests/mm/test_vmalloc.sh (PERF_PARAM, SMOKE_PARAM, STRESS_PARAM).
 */

import { DESIGNS as REGISTRY, DESIGN_NAMES } from '../designs/registry.js';
import type { VmallocDesign, VmallocOptions } from '../mm/config.js';

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
  /** Policy: how vm_map_ram finds a block (createVmalloc's vmapBlockHash). */
  vmap_block_hash: 'global' | 'percpu';
  /** Policy: vmap nodes (nrVmapNodes); 0: the design's formula. */
  nr_vmap_nodes: number;
  /** Policy: zone size in bytes (vmapZoneSize; 'offload2023': node_size); 0: the design's. */
  vmap_zone_size: number;
  /** Policy: most areas in a size pool of a node (vmapPoolLimit); 0: no limit given. */
  vmap_pool_limit: number;
  /** Policy: percent of each pool a drain decays (vmapPoolDecay x 100); 0: the kernel's 25. */
  vmap_pool_decay: number;
  /** Policy: lazy_max_pages() as a fixed page count (lazyMaxPages); 0: the kernel's formula. */
  lazy_max_pages: number;
}

/** The createVmalloc() options a run's policy parameters set. */
export type PolicyOptions = Pick<
  VmallocOptions,
  'nrVmapNodes' | 'vmapZoneSize' | 'vmapPoolLimit' | 'vmapPoolDecay' | 'lazyMaxPages'
> & { vmapBlockHash: 'global' | 'percpu' };

/** The createVmalloc() options of a run's policy parameters (those given). */
export function policyOptions(p: TestParams): PolicyOptions {
  const o: PolicyOptions = { vmapBlockHash: p.vmap_block_hash };
  if (p.nr_vmap_nodes > 0) o.nrVmapNodes = p.nr_vmap_nodes;
  if (p.vmap_zone_size > 0) o.vmapZoneSize = p.vmap_zone_size;
  if (p.vmap_pool_limit > 0) o.vmapPoolLimit = p.vmap_pool_limit;
  if (p.vmap_pool_decay > 0) o.vmapPoolDecay = p.vmap_pool_decay / 100;
  if (p.lazy_max_pages > 0) o.lazyMaxPages = p.lazy_max_pages;
  return o;
}

/**
 * The policy a run had, as `key=value` words with the resolved values (from the subsystem's
 * configuration), for the run's header: the knobs the seeds argue about.
 */
export function policyLine(c: {
  nrVmapNodes: number;
  vmapZoneSize: number;
  vmapPoolLimit: number;
  vmapPoolDecay: number;
  lazyMaxPages: number;
  vmapBlockHash: string;
}): string {
  return [
    `nr_vmap_nodes=${c.nrVmapNodes}`,
    `vmap_zone_size=${c.vmapZoneSize}`,
    `vmap_pool_limit=${c.vmapPoolLimit >= 2 ** 31 - 1 ? 'none' : c.vmapPoolLimit}`,
    `vmap_pool_decay=${Math.round(c.vmapPoolDecay * 100)}%`,
    `lazy_max_pages=${c.lazyMaxPages}`,
    `vmap_block_hash=${c.vmapBlockHash}`,
  ].join(' ');
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
    vmap_block_hash: 'percpu',
    nr_vmap_nodes: 0,
    vmap_zone_size: 0,
    vmap_pool_limit: 0,
    vmap_pool_decay: 0,
    lazy_max_pages: 0,
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
  vmap_block_hash: 'Policy: vm_map_ram block lookup, percpu (6.4+, default) or global',
  nr_vmap_nodes: 'Policy: vmap nodes (nodes, offload2023; default: the design formula)',
  vmap_zone_size: 'Policy: zone size in bytes (offload2023: node_size; default: the design)',
  vmap_pool_limit: 'Policy: most areas per size pool of a node (nodes; default: no limit)',
  vmap_pool_decay: 'Policy: percent of each pool a drain decays (nodes; default: 25)',
  lazy_max_pages: 'Policy: lazy_max_pages() as a fixed count (default: fls(CPUs) * 32 MiB)',
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
  | { kind: 'path' }
  | { kind: 'hash' };

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
  vmap_block_hash: { kind: 'hash' },
  nr_vmap_nodes: INT,
  vmap_zone_size: INT,
  vmap_pool_limit: INT,
  vmap_pool_decay: { kind: 'int', max: 100, why: 'a percentage: at most 100' },
  lazy_max_pages: INT,
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
    if (rule.kind === 'hash') {
      if (value !== 'global' && value !== 'percpu') fail(`${key} is global or percpu`);
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
