/**
 * The test_vmalloc driver: runs the selected tests on a worker, times them, and formats the
 * kernel's summary lines.
 *
 * Holds: checkMask() (refuses tests not implemented), runWorker() (one worker's run: its own
 * shuffled order, repeats, per-test average time), and summaryLines().
 * Callers: the CLI and tests (in-process, one worker); the worker entry (several workers).
 *
 * Kernel: lib/test_vmalloc.c test_func(), shuffle_array(), do_concurrent_test(), of the
 * version kernel-version.ts names (its xfail counting and its lines).
 */

import type { Vmalloc } from '../api/vmalloc.js';
import type { TestParams } from './params.js';
import {
  COUNT_PASSED,
  COUNT_XFAILED,
  type ClockRate,
  DEFAULT_CLOCK,
  countOf,
  cyclesOf,
  summaryLine,
  totalLine,
} from './kernel-version.js';
import { KernelRandom } from './random.js';
import { TEST_CASES, type TestContext } from './tests.js';

export interface TestResult {
  index: number;
  name: string;
  bit: number;
  passed: number;
  failed: number;
  /** Failures of a test the kernel marks xfail (expected: not a failure of the run). */
  xfailed: number;
  /** Average time of one repetition, in microseconds (the kernel's "avg: N usec"). */
  avgUsec: number;
}

export interface WorkerResult {
  worker: number;
  cpu: number;
  /** Enabled tests, in table order (the order the kernel prints them). */
  tests: TestResult[];
  /** The order the tests ran in (indexes into the table). */
  order: number[];
  totalNs: number;
}

export interface Progress {
  worker: number;
  test: string;
  repeat: number;
  loops: number;
}

/** kvfree_rcu_1_arg_vmalloc_test and kvfree_rcu_2_arg_vmalloc_test. */
const KVFREE_RCU_MASK = 256 | 512;

/** Throws when the mask selects a test that is not implemented; bits past the table are ignored. */
export function checkMask(mask: number): void {
  const missing = TEST_CASES.filter((t) => (mask & t.bit) !== 0 && t.run === null);
  if (missing.length > 0) {
    const names = missing.map((t) => `${t.name} (${t.bit})`).join(', ');
    const implemented = TEST_CASES.filter((t) => t.run !== null).reduce((m, t) => m | t.bit, 0);
    throw new Error(
      `run_test_mask=${mask} selects ${names}, not implemented yet; the implemented tests are mask ${implemented}` +
        ` (${TEST_CASES.filter((t) => t.run !== null)
          .map((t) => `${t.bit} ${t.name}`)
          .join(', ')})`,
    );
  }
}

/** Kernel: shuffle_array(): for i from n-1 down to 1, swap with j in [0, i). */
export function shuffleOrder(n: number, rng: KernelRandom): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

// Nanoseconds from Node's clock; browsers' workers (a later target) fall back to performance.now().
const nowNs: () => number =
  typeof process !== 'undefined' && typeof process.hrtime?.bigint === 'function'
    ? () => Number(process.hrtime.bigint())
    : () => Math.round(performance.now() * 1e6);

/**
 * One worker's run. `progress` is called about every half second while a test runs (and at
 * each test's start).
 */
export function runWorker(
  vm: Vmalloc,
  params: TestParams,
  worker: number,
  progress?: (p: Progress) => void,
): WorkerResult {
  checkMask(params.run_test_mask);
  // Each worker draws from its own stream: the seed and its index.
  const rng = new KernelRandom((params.seed + Math.imul(worker, 0x9e3779b1)) >>> 0);
  const order = params.sequential_test_order
    ? TEST_CASES.map((_, i) => i)
    : shuffleOrder(TEST_CASES.length, rng);
  const data = TEST_CASES.map((t, index): TestResult => ({
    index,
    name: t.name,
    bit: t.bit,
    passed: 0,
    failed: 0,
    xfailed: 0,
    avgUsec: 0,
  }));
  let current: Progress = { worker, test: '', repeat: 0, loops: 0 };
  let lastReport = nowNs();
  let ticks = 0;
  const ctx: TestContext = {
    vm,
    params,
    rng,
    tick: progress
      ? () => {
          if ((++ticks & 0x3fff) !== 0) return;
          const t = nowNs();
          if (t - lastReport < 5e8) return;
          lastReport = t;
          current.loops = ticks;
          progress(current);
        }
      : () => {},
  };
  const start = nowNs();
  for (const index of order) {
    const tc = TEST_CASES[index]!;
    if ((params.run_test_mask & tc.bit) === 0 || tc.run === null) continue;
    const kt = nowNs();
    for (let j = 0; j < params.test_repeat_count; j++) {
      current = { worker, test: tc.name, repeat: j + 1, loops: 0 };
      ticks = 0;
      progress?.(current);
      const d = data[index]!;
      const column = countOf(tc.name, tc.run(ctx));
      if (column === COUNT_PASSED) d.passed++;
      else if (column === COUNT_XFAILED) d.xfailed++;
      else d.failed++;
    }
    data[index]!.avgUsec = Math.floor((nowNs() - kt) / 1000 / params.test_repeat_count);
  }
  const totalNs = nowNs() - start;
  // Untimed, as the kernel's module is unloaded only after its kvfree_rcu callbacks ran: the
  // frees the kvfree_rcu tests queued are done before anyone counts areas for leaks.
  if ((params.run_test_mask & KVFREE_RCU_MASK) !== 0) vm.rcuBarrier();
  return {
    worker,
    cpu: vm.cpu,
    tests: data.filter((d) => (params.run_test_mask & d.bit) !== 0),
    order,
    totalNs,
  };
}

/**
 * The kernel's lines, per worker: the Summary of each enabled test, then the total in cycles
 * of `clock` (the CLI passes the machine's; DEFAULT_CLOCK counts one cycle a nanosecond).
 */
export function summaryLines(
  results: readonly WorkerResult[],
  params: TestParams,
  clock: ClockRate = DEFAULT_CLOCK,
): string[] {
  const lines: string[] = [];
  for (const r of results) {
    for (const t of r.tests) {
      const { test_repeat_count: repeat, test_loop_count: loops } = params;
      lines.push(summaryLine(t.name, t.passed, t.failed, t.xfailed, repeat, loops, t.avgUsec));
    }
    lines.push(totalLine(r.worker, cyclesOf(r.totalNs, clock)));
  }
  return lines;
}

/** Repetitions that failed unexpectedly, over every worker and test (xfailed ones are not). */
export function unexpectedFailures(results: readonly WorkerResult[]): number {
  let n = 0;
  for (const r of results) for (const t of r.tests) n += t.failed;
  return n;
}
