/**
 * The test cases of lib/test_vmalloc.c, in the kernel's order, with their mask bits.
 *
 * Holds: the table of the eleven 6.x test cases (run_test_mask bit = 1 << index) and the
 * implementations of those this project runs; the others are listed so that masks, the
 * shuffle and the output line up with a kernel log, and a mask naming them is refused.
 * Callers: the driver (driver.ts).
 *
 * Each test returns 0 (passed) or -1 (failed), like the kernel's. Sizes, alignments, writes
 * and loop structure follow the kernel's code; the pointer arrays are vmalloc'd and the
 * pointers stored in them, as there.
 */

import type { Vmalloc, VmallocAllocOptions } from '../api/vmalloc.js';
import { fls } from '../shared/layout.js';
import type { TestParams } from './params.js';
import { kvfreeRcu1ArgVmallocTest, kvfreeRcu2ArgVmallocTest } from './kvfree-rcu-tests.js';
import { pcpuAllocTest } from './pcpu-alloc-test.js';
import type { KernelRandom } from './random.js';
import { vmMapRamTest } from './vm-map-ram-test.js';

export interface TestContext {
  vm: Vmalloc;
  params: TestParams;
  rng: KernelRandom;
  /** Called once per loop iteration: lets the driver report progress on long runs. */
  tick(): void;
}

export interface TestCase {
  name: string;
  /** run_test_mask bit */
  bit: number;
  run: ((c: TestContext) => number) | null;
}

/** x86_64: THREAD_SIZE 16 KiB, so THREAD_ALIGN << 1 is 32 KiB. */
const THREAD_ALIGN = 16384;
const PTR = 8;

const callerOf = (name: string): VmallocAllocOptions => ({ caller: `${name} [test_vmalloc]` });

function fixSizeAllocTest(c: TestContext): number {
  const { vm, params } = c;
  const size = (params.nr_pages > 0 ? params.nr_pages : 1) * vm.pageSize;
  const opts = callerOf('fix_size_alloc_test');
  for (let i = 0; i < params.test_loop_count; i++) {
    const ptr = params.use_huge ? vm.vmallocHuge(size, opts) : vm.vmalloc(size, opts);
    if (ptr === null) return -1;
    vm.writeU8(ptr, 0);
    vm.vfree(ptr);
    c.tick();
  }
  return 0;
}

function fullFitAllocTest(c: TestContext): number {
  const { vm, params } = c;
  const page = vm.pageSize;
  const opts = callerOf('full_fit_alloc_test');
  const junkLength = fls(vm.config.nrCpus) * ((32 * 1024 * 1024) / page);
  const ptr = vm.vmalloc(PTR * junkLength, opts);
  if (ptr === null) return -1;
  const junkPtr = vm.vmalloc(PTR * junkLength, opts);
  if (junkPtr === null) {
    vm.vfree(ptr);
    return -1;
  }
  for (let i = 0; i < junkLength; i++) {
    vm.writePtr(ptr + PTR * i, vm.vmalloc(page, opts) ?? 0);
    vm.writePtr(junkPtr + PTR * i, vm.vmalloc(page, opts) ?? 0);
  }
  for (let i = 0; i < junkLength; i++) vm.vfree(vm.readPtr(junkPtr + PTR * i));
  let rv = 0;
  for (let i = 0; i < params.test_loop_count; i++) {
    const tmp = vm.vmalloc(page, opts);
    if (tmp === null) {
      rv = -1;
      break;
    }
    vm.writeU8(tmp, 1);
    vm.vfree(tmp);
    c.tick();
  }
  for (let i = 0; i < junkLength; i++) vm.vfree(vm.readPtr(ptr + PTR * i));
  vm.vfree(ptr);
  vm.vfree(junkPtr);
  return rv;
}

function longBusyListAllocTest(c: TestContext): number {
  const { vm, params } = c;
  const page = vm.pageSize;
  const opts = callerOf('long_busy_list_alloc_test');
  const ptr = vm.vmalloc(PTR * 15000, opts);
  if (ptr === null) return -1;
  for (let i = 0; i < 15000; i++) vm.writePtr(ptr + PTR * i, vm.vmalloc(page, opts) ?? 0);
  let rv = 0;
  for (let i = 0; i < params.test_loop_count; i++) {
    const ptr1 = vm.vmalloc(100 * page, opts);
    if (ptr1 === null) {
      rv = -1;
      break;
    }
    const ptr2 = vm.vmalloc(page, opts);
    if (ptr2 === null) {
      vm.vfree(ptr1);
      rv = -1;
      break;
    }
    vm.writeU8(ptr1, 0);
    vm.writeU8(ptr2, 1);
    vm.vfree(ptr1);
    vm.vfree(ptr2);
    c.tick();
  }
  for (let i = 0; i < 15000; i++) vm.vfree(vm.readPtr(ptr + PTR * i));
  vm.vfree(ptr);
  return rv;
}

function randomSizeAllocTest(c: TestContext): number {
  const { vm, params, rng } = c;
  const opts = callerOf('random_size_alloc_test');
  for (let i = 0; i < params.test_loop_count; i++) {
    const n = rng.inclusive(1, 100);
    const p = vm.vmalloc(n * vm.pageSize, opts);
    if (p === null) return -1;
    vm.writeU8(p, 1);
    vm.vfree(p);
    c.tick();
  }
  return 0;
}

function fixAlignAllocTest(c: TestContext): number {
  const { vm, params } = c;
  const opts = { ...callerOf('fix_align_alloc_test'), align: THREAD_ALIGN << 1, zero: true };
  for (let i = 0; i < params.test_loop_count; i++) {
    const ptr = vm.vmalloc(5 * vm.pageSize, opts);
    if (ptr === null) return -1;
    vm.vfree(ptr);
    c.tick();
  }
  return 0;
}

function randomSizeAlignAllocTest(c: TestContext): number {
  const { vm, params, rng } = c;
  const caller = callerOf('random_size_align_alloc_test').caller;
  // One options object per alignment, made up front: nothing is allocated in the loop.
  const opts: VmallocAllocOptions[] = [];
  for (let k = 0; k < 23; k++) opts.push({ caller, align: 2 ** k, zero: true });
  for (let i = 0; i < params.test_loop_count; i++) {
    const rnd = rng.u8();
    const size = ((rnd % 10) + 1) * vm.pageSize;
    const ptr = vm.vmalloc(size, opts[rnd % 23]);
    if (ptr === null) return -1;
    vm.vfree(ptr);
    c.tick();
  }
  return 0;
}

/** Expected to fail: alignments up to 2^63 cannot all be satisfied in the vmalloc window. */
function alignShiftAllocTest(c: TestContext): number {
  const { vm } = c;
  const caller = callerOf('align_shift_alloc_test').caller;
  for (let i = 0; i < 64; i++) {
    const ptr = vm.vmalloc(vm.pageSize, { caller, align: 2 ** i, zero: true });
    if (ptr === null) return -1;
    vm.vfree(ptr);
  }
  return 0;
}

/** The 6.x test_case_array. */
export const TEST_CASES: readonly TestCase[] = [
  { name: 'fix_size_alloc_test', bit: 1, run: fixSizeAllocTest },
  { name: 'full_fit_alloc_test', bit: 2, run: fullFitAllocTest },
  { name: 'long_busy_list_alloc_test', bit: 4, run: longBusyListAllocTest },
  { name: 'random_size_alloc_test', bit: 8, run: randomSizeAllocTest },
  { name: 'fix_align_alloc_test', bit: 16, run: fixAlignAllocTest },
  { name: 'random_size_align_alloc_test', bit: 32, run: randomSizeAlignAllocTest },
  { name: 'align_shift_alloc_test', bit: 64, run: alignShiftAllocTest },
  { name: 'pcpu_alloc_test', bit: 128, run: pcpuAllocTest },
  { name: 'kvfree_rcu_1_arg_vmalloc_test', bit: 256, run: kvfreeRcu1ArgVmallocTest },
  { name: 'kvfree_rcu_2_arg_vmalloc_test', bit: 512, run: kvfreeRcu2ArgVmallocTest },
  { name: 'vm_map_ram_test', bit: 1024, run: vmMapRamTest },
];

/** The mask of every implemented test. */
export const IMPLEMENTED_MASK = TEST_CASES.reduce((m, t) => (t.run ? m | t.bit : m), 0);
