/**
 * test_vmalloc's pcpu_alloc_test: nr_pcpu_objects percpu objects of random size and alignment,
 * then all freed, which makes and releases percpu chunks through pcpu_get_vm_areas().
 *
 * Holds: the test body (the table entry is in tests.ts).
 * Callers: the test table.
 *
 * Kernel: lib/test_vmalloc.c pcpu_alloc_test() (newest: size uniform in [1, PAGE_SIZE / 4],
 * align 1 << u with u uniform in [1, PAGE_SHIFT - 1]; a NULL makes the test fail but it goes
 * on; the pointers live in a vmalloc'd array). As with CONFIG_NEED_PER_CPU_KM, a design
 * without pcpu_get_vm_areas() ('legacy', 'rfc2018' here) runs nothing and passes.
 */

import type { TestContext } from './tests.js';

const PTR = 8;

export function pcpuAllocTest(c: TestContext): number {
  const { vm, params, rng } = c;
  if (!vm.percpuInfo().supported) return 0;
  const n = params.nr_pcpu_objects;
  const pcpu = vm.vmalloc(PTR * n, { caller: 'pcpu_alloc_test [test_vmalloc]' });
  if (pcpu === null) return -1;
  const pageShift = Math.log2(vm.pageSize);
  let rv = 0;
  for (let i = 0; i < n; i++) {
    const size = rng.inclusive(1, vm.pageSize / 4);
    const align = 1 << rng.inclusive(1, pageShift - 1);
    const p = vm.allocPercpu(size, align);
    if (p === null) rv = -1;
    vm.writePtr(pcpu + PTR * i, p ?? 0);
    c.tick();
  }
  for (let i = 0; i < n; i++) vm.freePercpu(vm.readPtr(pcpu + PTR * i));
  vm.vfree(pcpu);
  return rv;
}
