/**
 * The kernel version whose test_vmalloc output this project prints, and that output.
 *
 * Holds: TEST_VMALLOC_VERSION (named in `vmalloc test --help` and the README), the tests that
 * version marks as expected to fail (xfail), how a repetition's result is counted, the Summary
 * and total lines, and the conversion of a worker's time into the cycles the kernel prints.
 * Invariant: the lines are the version's pr_info formats character for character; a test
 * marked xfail that returns nonzero counts as xfailed, one that returns 0 counts as failed
 * (an unexpected pass), as that version counts them.
 * Callers: the driver (driver.ts: counting, summaryLines), the CLI (the version, the exit
 * status).
 *
 * Why v6.17: it is the version with exactly the eleven tests of the issue (fix_size_alloc_test
 * to vm_map_ram_test) and the xfail column (added July 2025, "lib/test_vmalloc.c: introduce
 * xfail for failing tests", merged for 6.17). Later versions add no_block_alloc_test (2048) and
 * vrealloc_test (4096), and nr_pcpu_objects; earlier ones print no xfailed count.
 * Differs from that version: run_test_mask defaults to every implemented test (the kernel's
 * default is 7 since 6.16, so that a built-in run stays short and warning-free); the cycles of
 * "All test took" are the worker's elapsed time times a clock rate (get_cycles() is the TSC on
 * x86), which the CLI reads from /proc/cpuinfo (see clockFromCpuinfo in src/cli/machine.ts).
 */

/** The kernel source whose output `vmalloc test` follows. */
export const TEST_VMALLOC_VERSION = 'Linux v6.17 lib/test_vmalloc.c';

/** Tests that version marks `xfail` (align_shift_alloc_test asks for alignments up to 2^63). */
export const XFAIL_TESTS: ReadonlySet<string> = new Set(['align_shift_alloc_test']);

/** A clock rate in MHz and where it came from. */
export interface ClockRate {
  mhz: number;
  source: string;
}

/** When no rate is known: 1 GHz, one cycle a nanosecond. */
export const DEFAULT_CLOCK: ClockRate = { mhz: 1000, source: 'default 1000 MHz' };

export const COUNT_PASSED = 0;
export const COUNT_FAILED = 1;
export const COUNT_XFAILED = 2;

/** Which column a repetition that returned `ret` goes to (the kernel's test_func()). */
export function countOf(name: string, ret: number): number {
  const xfail = XFAIL_TESTS.has(name);
  if (ret === 0 && !xfail) return COUNT_PASSED;
  if (ret !== 0 && xfail) return COUNT_XFAILED;
  return COUNT_FAILED;
}

export function summaryLine(
  name: string,
  passed: number,
  failed: number,
  xfailed: number,
  repeat: number,
  loops: number,
  avgUsec: number,
): string {
  return `Summary: ${name} passed: ${passed} failed: ${failed} xfailed: ${xfailed} repeat: ${repeat} loops: ${loops} avg: ${avgUsec} usec`;
}

/** Cycles of `ns` nanoseconds at `clock`, as an unsigned long (whole cycles). */
export function cyclesOf(ns: number, clock: ClockRate): number {
  return Math.round((ns * clock.mhz) / 1000);
}

export function totalLine(worker: number, cycles: number): string {
  return `All test took worker${worker}=${cycles} cycles`;
}
