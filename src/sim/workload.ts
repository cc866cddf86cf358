/**
 * test_vmalloc's workload for a simulated CPU: the tests of tests.ts written as generators
 * that yield after every call into the allocator, so the machine can interleave CPUs one
 * operation at a time.
 *
 * Holds: cpuWorkload() (one CPU's run: its own shuffled order from the driver's seed stream,
 * repeats, per-test virtual times, filled into a WorkerResult as the driver's runWorker()
 * fills it) and the tests it runs as generators: the seven vmalloc tests (run_test_mask bits
 * 1-64) and vm_map_ram_test (1024).
 * Invariant: each test draws the same random numbers and makes the same calls, in the same
 * order, as its twin in src/test-vmalloc/tests.ts (a one-CPU simulation makes exactly the calls
 * a one-worker run makes; test/sim checks that the end states agree). A change to a test there
 * must be made here too.
 * Callers: src/sim/machine.ts.
 *
 * Each yield says what the call was: OP (vmalloc, vfree) or ACCESS (a read or write of a
 * few bytes through the page table), for the cost model's fixed cost per call.
 */

import type { Vmalloc, VmallocAllocOptions } from '../api/vmalloc.js';
import { fls } from '../shared/layout.js';
import {
  checkMask,
  shuffleOrder,
  type TestResult,
  type WorkerResult,
} from '../test-vmalloc/driver.js';
import type { TestParams } from '../test-vmalloc/params.js';
import { KernelRandom } from '../test-vmalloc/random.js';
import { TEST_CASES } from '../test-vmalloc/tests.js';
import { COUNT_PASSED, COUNT_XFAILED, countOf } from '../test-vmalloc/kernel-version.js';

export const OP = 0;
export const ACCESS = 1;

type Gen = Generator<number, number, void>;

interface Ctx {
  vm: Vmalloc;
  params: TestParams;
  rng: KernelRandom;
}

const THREAD_ALIGN = 16384;
const PTR = 8;
const callerOf = (name: string): VmallocAllocOptions => ({ caller: `${name} [test_vmalloc]` });

function* fixSize(c: Ctx): Gen {
  const { vm, params } = c;
  const size = (params.nr_pages > 0 ? params.nr_pages : 1) * vm.pageSize;
  const opts = callerOf('fix_size_alloc_test');
  for (let i = 0; i < params.test_loop_count; i++) {
    const ptr = params.use_huge ? vm.vmallocHuge(size, opts) : vm.vmalloc(size, opts);
    yield OP;
    if (ptr === null) return -1;
    vm.writeU8(ptr, 0);
    yield ACCESS;
    vm.vfree(ptr);
    yield OP;
  }
  return 0;
}

function* fullFit(c: Ctx): Gen {
  const { vm, params } = c;
  const page = vm.pageSize;
  const opts = callerOf('full_fit_alloc_test');
  const junkLength = fls(vm.config.nrCpus) * ((32 * 1024 * 1024) / page);
  const ptr = vm.vmalloc(PTR * junkLength, opts);
  yield OP;
  if (ptr === null) return -1;
  const junkPtr = vm.vmalloc(PTR * junkLength, opts);
  yield OP;
  if (junkPtr === null) {
    vm.vfree(ptr);
    yield OP;
    return -1;
  }
  for (let i = 0; i < junkLength; i++) {
    const a = vm.vmalloc(page, opts);
    yield OP;
    vm.writePtr(ptr + PTR * i, a ?? 0);
    yield ACCESS;
    const b = vm.vmalloc(page, opts);
    yield OP;
    vm.writePtr(junkPtr + PTR * i, b ?? 0);
    yield ACCESS;
  }
  for (let i = 0; i < junkLength; i++) {
    const p = vm.readPtr(junkPtr + PTR * i);
    yield ACCESS;
    vm.vfree(p);
    yield OP;
  }
  let rv = 0;
  for (let i = 0; i < params.test_loop_count; i++) {
    const tmp = vm.vmalloc(page, opts);
    yield OP;
    if (tmp === null) {
      rv = -1;
      break;
    }
    vm.writeU8(tmp, 1);
    yield ACCESS;
    vm.vfree(tmp);
    yield OP;
  }
  for (let i = 0; i < junkLength; i++) {
    const p = vm.readPtr(ptr + PTR * i);
    yield ACCESS;
    vm.vfree(p);
    yield OP;
  }
  vm.vfree(ptr);
  yield OP;
  vm.vfree(junkPtr);
  yield OP;
  return rv;
}

function* longBusyList(c: Ctx): Gen {
  const { vm, params } = c;
  const page = vm.pageSize;
  const opts = callerOf('long_busy_list_alloc_test');
  const ptr = vm.vmalloc(PTR * 15000, opts);
  yield OP;
  if (ptr === null) return -1;
  for (let i = 0; i < 15000; i++) {
    const a = vm.vmalloc(page, opts);
    yield OP;
    vm.writePtr(ptr + PTR * i, a ?? 0);
    yield ACCESS;
  }
  let rv = 0;
  for (let i = 0; i < params.test_loop_count; i++) {
    const ptr1 = vm.vmalloc(100 * page, opts);
    yield OP;
    if (ptr1 === null) {
      rv = -1;
      break;
    }
    const ptr2 = vm.vmalloc(page, opts);
    yield OP;
    if (ptr2 === null) {
      vm.vfree(ptr1);
      yield OP;
      rv = -1;
      break;
    }
    vm.writeU8(ptr1, 0);
    yield ACCESS;
    vm.writeU8(ptr2, 1);
    yield ACCESS;
    vm.vfree(ptr1);
    yield OP;
    vm.vfree(ptr2);
    yield OP;
  }
  for (let i = 0; i < 15000; i++) {
    const p = vm.readPtr(ptr + PTR * i);
    yield ACCESS;
    vm.vfree(p);
    yield OP;
  }
  vm.vfree(ptr);
  yield OP;
  return rv;
}

function* randomSize(c: Ctx): Gen {
  const { vm, params, rng } = c;
  const opts = callerOf('random_size_alloc_test');
  for (let i = 0; i < params.test_loop_count; i++) {
    const n = rng.inclusive(1, 100);
    const p = vm.vmalloc(n * vm.pageSize, opts);
    yield OP;
    if (p === null) return -1;
    vm.writeU8(p, 1);
    yield ACCESS;
    vm.vfree(p);
    yield OP;
  }
  return 0;
}

function* fixAlign(c: Ctx): Gen {
  const { vm, params } = c;
  const opts = { ...callerOf('fix_align_alloc_test'), align: THREAD_ALIGN << 1, zero: true };
  for (let i = 0; i < params.test_loop_count; i++) {
    const ptr = vm.vmalloc(5 * vm.pageSize, opts);
    yield OP;
    if (ptr === null) return -1;
    vm.vfree(ptr);
    yield OP;
  }
  return 0;
}

function* randomSizeAlign(c: Ctx): Gen {
  const { vm, params, rng } = c;
  const caller = callerOf('random_size_align_alloc_test').caller;
  const opts: VmallocAllocOptions[] = [];
  for (let k = 0; k < 23; k++) opts.push({ caller, align: 2 ** k, zero: true });
  for (let i = 0; i < params.test_loop_count; i++) {
    const rnd = rng.u8();
    const size = ((rnd % 10) + 1) * vm.pageSize;
    const ptr = vm.vmalloc(size, opts[rnd % 23]);
    yield OP;
    if (ptr === null) return -1;
    vm.vfree(ptr);
    yield OP;
  }
  return 0;
}

function* alignShift(c: Ctx): Gen {
  const { vm } = c;
  const caller = callerOf('align_shift_alloc_test').caller;
  for (let i = 0; i < 64; i++) {
    const ptr = vm.vmalloc(vm.pageSize, { caller, align: 2 ** i, zero: true });
    yield OP;
    if (ptr === null) return -1;
    vm.vfree(ptr);
    yield OP;
  }
  return 0;
}

/** Kernel: vm_map_ram_test(): map, store one byte, unmap, test_loop_count times. */
function* vmMapRam(c: Ctx): Gen {
  const { vm, params } = c;
  const n = params.nr_pages > 0 ? params.nr_pages : 1;
  const pages = vm.allocPages(n);
  yield OP;
  let rv = pages.length === n ? 0 : -1;
  if (rv === 0) {
    for (let i = 0; i < params.test_loop_count; i++) {
      const v = vm.vmMapRam(pages, n);
      yield OP;
      if (v === null) {
        rv = -1;
        break;
      }
      vm.writeU8(v, 0x61); // 'a'
      yield ACCESS;
      vm.vmUnmapRam(v, n);
      yield OP;
    }
  }
  vm.freePages(pages);
  yield OP;
  return rv;
}

/**
 * The generators, by the table index of tests.ts (null: not simulated: pcpu_alloc_test and
 * the kvfree_rcu tests, whose grace periods the machine does not model).
 */
const GENERATORS: readonly (((c: Ctx) => Gen) | null)[] = [
  fixSize,
  fullFit,
  longBusyList,
  randomSize,
  fixAlign,
  randomSizeAlign,
  alignShift,
  null,
  null,
  null,
  vmMapRam,
];

/** The mask of the tests the simulator runs (the default run_test_mask with simulate=1). */
export function simulatedMask(): number {
  return TEST_CASES.reduce((m, t, i) => (GENERATORS[i] ? m | t.bit : m), 0);
}

const FULL_FIT = 2;

/**
 * `mask` narrowed to what a simulated machine of `cpus` CPUs holds: full_fit_alloc_test keeps
 * 2 x fls(N) x 32 MiB of one-page areas per CPU (28 GiB at 64 CPUs), beyond the 4 GiB of page
 * frames a simulated machine has once N x fls(N) > 64; `dropped` says why, or is null.
 */
export function simMaskFor(mask: number, cpus: number): { mask: number; dropped: string | null } {
  if ((mask & FULL_FIT) === 0 || cpus * fls(cpus) <= 64) return { mask, dropped: null };
  return {
    mask: mask & ~FULL_FIT,
    dropped: `full_fit_alloc_test left out at ${cpus} CPUs: its ${2 * fls(cpus)} x 8192 pages per CPU exceed the 4 GiB of a simulated machine`,
  };
}

/** Refuses a mask the simulator cannot run (tests it has no generator for). */
export function checkSimMask(mask: number): void {
  checkMask(mask);
  const missing = TEST_CASES.filter((t, i) => (mask & t.bit) !== 0 && !GENERATORS[i]);
  if (missing.length > 0)
    throw new Error(
      `run_test_mask=${mask}: the simulator does not run ${missing.map((t) => t.name).join(', ')} yet`,
    );
}

/**
 * One CPU's test_vmalloc run, as runWorker() does it; `now()` is the CPU's virtual clock (ns).
 * `onTest` is told which test starts (its table index) and -1 at the end.
 */
export function* cpuWorkload(
  vm: Vmalloc,
  params: TestParams,
  worker: number,
  now: () => number,
  out: WorkerResult,
  onTest?: (index: number) => void,
): Generator<number, void, void> {
  checkSimMask(params.run_test_mask);
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
  const ctx: Ctx = { vm, params, rng };
  const start = now();
  for (const index of order) {
    const tc = TEST_CASES[index]!;
    const gen = GENERATORS[index];
    if ((params.run_test_mask & tc.bit) === 0 || !gen) continue;
    onTest?.(index);
    const kt = now();
    for (let j = 0; j < params.test_repeat_count; j++) {
      // Counted as the driver counts (kernel-version.ts: an expected failure is xfailed).
      const column = countOf(tc.name, yield* gen(ctx));
      if (column === COUNT_PASSED) data[index]!.passed++;
      else if (column === COUNT_XFAILED) data[index]!.xfailed++;
      else data[index]!.failed++;
    }
    data[index]!.avgUsec = Math.floor((now() - kt) / 1000 / params.test_repeat_count);
  }
  onTest?.(-1);
  out.worker = worker;
  out.cpu = vm.cpu;
  out.tests = data.filter((d) => (params.run_test_mask & d.bit) !== 0);
  out.order = order;
  out.totalNs = Math.round(now() - start);
}
