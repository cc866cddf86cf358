/** /proc/vmallocinfo, compared line for line with the kernel's format. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmFlags } from '../../src/index.js';
import { PAGE, testVm } from '../helpers/vm.js';

test('vmallocinfo golden lines', () => {
  const { vm } = testVm();
  const a = vm.vmalloc(3 * PAGE, { caller: 'fix_size_alloc_test+0x3c/0x90 [test_vmalloc]' })!;
  vm.vzalloc(PAGE);
  vm.getVmArea(5 * PAGE, VmFlags.VM_IOREMAP, {
    caller: 'acpi_os_map_iomem+0x1a6/0x1e0',
    physAddr: 0xfed00000,
  });
  const pages = vm.allocPages(2);
  vm.vmap(pages, { caller: 'drm_gem_vmap+0x20/0x40', flags: VmFlags.VM_USERMAP });
  vm.vmalloc(600 * PAGE, { caller: 'bpf_prog_alloc+0x2a/0x80' });
  vm.vfree(a);
  assert.equal(
    vm.vmallocinfo(),
    [
      '0xffffc90000004000-0xffffc90000006000    8192 vzalloc+0x0/0x0 pages=1 vmalloc N0=1',
      '0xffffc90000008000-0xffffc9000000e000   24576 acpi_os_map_iomem+0x1a6/0x1e0 phys=0x00000000fed00000 ioremap',
      '0xffffc9000000e000-0xffffc90000011000   12288 drm_gem_vmap+0x20/0x40 pages=2 vmap user N0=2',
      '0xffffc90000011000-0xffffc9000026a000 2461696 bpf_prog_alloc+0x2a/0x80 pages=600 vmalloc vpages N0=600',
      '0xffffc9000026a000-0xffffc9000026d000   12288 bpf_prog_alloc+0x2a/0x80 pages=2 vmalloc N0=2',
      '0xffffc90000000000-0xffffc90000004000   16384 unpurged vm_area',
      '',
    ].join('\n'),
  );
});

test('every line has the kernel shape', () => {
  const { vm } = testVm();
  for (let i = 1; i <= 20; i++) vm.vmalloc(i * PAGE, { caller: `caller_${i}+0x1/0x2` });
  const shape =
    /^0x[0-9a-f]{16}-0x[0-9a-f]{16} {1,7}\d{1,} (\S+ )?(pages=\d+ )?(vmalloc|vmap)( N0=\d+)?$/;
  for (const line of vm.vmallocinfo().trimEnd().split('\n')) assert.match(line, shape);
});

test('without the NUMA column; the default caller names the API function', () => {
  const { vm } = testVm({ numaInfo: false, design: 'global' });
  const a = vm.vmalloc(PAGE)!;
  assert.equal(
    vm.vmallocinfo(),
    '0xffffc90000000000-0xffffc90000002000    8192 vmalloc+0x0/0x0 pages=1 vmalloc\n',
  );
  vm.vfree(a);
  const pages = vm.allocPages(1);
  vm.vmap(pages);
  vm.vmallocHuge(PAGE);
  vm.getVmArea(PAGE);
  assert.deepEqual(
    vm
      .vmallocinfo()
      .trimEnd()
      .split('\n')
      .map((l) => l.split(/ +/)[2]),
    ['vmap+0x0/0x0', 'vmalloc_huge+0x0/0x0', 'get_vm_area_caller+0x0/0x0', 'unpurged'],
  );
});

for (const design of ['global', 'nodes'] as const) {
  test(`${design}: lazily freed areas show as unpurged vm_area lines, even with nothing busy`, () => {
    const { vm } = testVm({ numaInfo: false, design });
    const a = vm.vmalloc(PAGE)!;
    vm.vfree(a);
    assert.equal(vm.lazyPages, 2);
    assert.equal(
      vm.vmallocinfo(),
      '0xffffc90000000000-0xffffc90000002000    8192 unpurged vm_area\n',
    );
    vm.purge();
    assert.equal(vm.vmallocinfo(), '');
  });
}

test('6.9+: unpurged areas are shown even with nothing busy, one line each', () => {
  const { vm } = testVm({ numaInfo: false, design: 'nodes' });
  const a = vm.vmalloc(PAGE)!;
  const b = vm.vmalloc(PAGE)!;
  vm.vfree(a);
  vm.vfree(b);
  assert.equal(
    vm.vmallocinfo(),
    [
      '0xffffc90000000000-0xffffc90000002000    8192 unpurged vm_area',
      '0xffffc90000002000-0xffffc90000004000    8192 unpurged vm_area',
      '',
    ].join('\n'),
  );
});
