/**
 * Lazy free and purge: vmap_lazy_nr accounting (guard page included), the purge threshold
 * (strictly above lazy_max_pages()), retry after purge, purge notifiers, the failure warning.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PAGE, testVm } from '../helpers/vm.js';

describe('lazy free', () => {
  test('a freed range is neither busy nor free until a purge; its pages count, guard included', () => {
    const { vm } = testVm();
    const a = vm.vmalloc(3 * PAGE)!;
    vm.vmalloc(PAGE);
    vm.vfree(a);
    assert.equal(vm.lazyPages, 4);
    assert.match(
      vm.vmallocinfo(),
      /^0xffffc90000000000-0xffffc90000004000 {3}16384 unpurged vm_area$/m,
    );
    const b = vm.vmalloc(3 * PAGE)!;
    assert.notEqual(b, a, 'the lazy range is not reused before a purge');
    vm.purge();
    assert.equal(vm.lazyPages, 0);
    assert.equal(vm.vmalloc(3 * PAGE), a, 'after the purge the lowest range is free again');
    vm.check();
  });

  test('neighbouring lazy ranges merge (the pre-6.9 purge tree)', () => {
    const { vm } = testVm({ design: 'global' });
    const a = vm.vmalloc(PAGE)!;
    const b = vm.vmalloc(PAGE)!;
    vm.vmalloc(PAGE);
    vm.vfree(a);
    vm.vfree(b);
    assert.equal(vm.stats().lazyAreas, 1);
    assert.match(
      vm.vmallocinfo(),
      /0xffffc90000000000-0xffffc90000004000 {3}16384 unpurged vm_area/,
    );
    vm.check();
  });

  test('lazy_max_pages() = fls(nr_cpus) * 32 MiB / PAGE_SIZE', () => {
    const cases: [number, number][] = [
      [1, 8192],
      [2, 16384],
      [3, 16384],
      [4, 24576],
      [7, 24576],
      [8, 32768],
      [64, 57344],
      [128, 65536],
    ];
    for (const [cpus, max] of cases)
      assert.equal(
        testVm({ nrCpus: cpus, physicalMemory: 64 * PAGE }).vm.lazyMaxPages,
        max,
        `nr_cpus=${cpus}`,
      );
  });

  test('the purge runs when vmap_lazy_nr is strictly greater than lazy_max_pages()', () => {
    const { vm } = testVm(); // 1 CPU: lazy_max_pages() = 8192
    const areas = Array.from({ length: 65 }, () => vm.vmalloc(127 * PAGE)!); // 128 pages each with the guard
    const one = vm.vmalloc(PAGE)!;
    for (const a of areas.slice(0, 64)) vm.vfree(a);
    assert.equal(vm.lazyPages, 8192, 'exactly lazy_max_pages(): no purge yet');
    assert.equal(vm.stats().purges, 0);
    vm.vfree(one);
    assert.equal(vm.stats().purges, 1, '8194 > 8192: purged');
    assert.equal(vm.lazyPages, 0);
    vm.vfree(areas[64]!);
    assert.equal(vm.lazyPages, 128);
    vm.check();
  });
});

describe('allocation failure: purge, retry, notifiers, warning', () => {
  // A 64-page window; VMALLOC_END is start + size - 1, so 63 whole pages are usable.
  const small = { vmallocSize: 64 * PAGE };

  test('an allocation that fails purges once and retries', () => {
    const { vm, warnings } = testVm(small);
    const a = vm.vmalloc(31 * PAGE)!;
    assert.ok(vm.vmalloc(30 * PAGE));
    vm.vfree(a);
    assert.equal(vm.vmalloc(31 * PAGE), a, 'made room by purging the lazy range');
    const st = vm.stats();
    assert.equal(st.purges, 1);
    assert.ok(st.allocRetries >= 1);
    assert.deepEqual(warnings, []);
    vm.check();
  });

  test('the top page of the window cannot be used whole (VMALLOC_END = start + size - 1)', () => {
    const { vm } = testVm(small);
    assert.equal(
      vm.vmalloc(63 * PAGE),
      null,
      '63 pages + guard = 64 pages would end at start + size',
    );
    assert.ok(vm.vmalloc(62 * PAGE));
  });

  test('notifiers are called after the purge; progress makes the allocation retry', () => {
    const { vm, warnings } = testVm(small);
    const held = [vm.vmalloc(31 * PAGE)!, vm.vmalloc(30 * PAGE)!];
    let calls = 0;
    const notifier = (): number => {
      calls++;
      const a = held.pop();
      if (a === undefined) return 0;
      vm.vfree(a);
      return 31;
    };
    vm.registerPurgeNotifier(notifier);
    const got = vm.vmalloc(20 * PAGE);
    assert.notEqual(got, null);
    assert.equal(calls, 1);
    assert.deepEqual(warnings, []);
    assert.equal(vm.unregisterPurgeNotifier(notifier), true);
    vm.check();
  });

  test('6.9+: lazy areas stay separate, one per freed area, in the allocating node', () => {
    const { vm } = testVm({ design: 'nodes' });
    const a = vm.vmalloc(PAGE)!;
    const b = vm.vmalloc(PAGE)!;
    vm.vmalloc(PAGE);
    vm.vfree(a);
    vm.vfree(b);
    assert.equal(vm.stats().lazyAreas, 2);
    vm.check();
  });

  test('with nothing to free, null and the kernel warnings (rate-limited)', () => {
    const { vm, warnings } = testVm({ ...small, design: 'global' });
    vm.vmalloc(62 * PAGE);
    let calls = 0;
    vm.registerPurgeNotifier(() => {
      calls++;
      return 0;
    });
    assert.equal(vm.vmalloc(PAGE), null);
    assert.equal(calls, 1);
    assert.deepEqual(warnings, [
      `vmap allocation for size ${2 * PAGE} failed: use vmalloc=<size> to increase size`,
      `vmalloc error: size ${PAGE}, vm_struct allocation failed`,
    ]);
    for (let i = 0; i < 30; i++) assert.equal(vm.vmalloc(PAGE), null);
    assert.equal(warnings.length, 10, 'printk_ratelimit(): 10 messages per 5 seconds');
    vm.check();
  });

  test('6.11+ warning text in the nodes design', () => {
    const { vm, warnings } = testVm({ ...small, design: 'nodes' });
    vm.vmalloc(62 * PAGE);
    assert.equal(vm.vmalloc(PAGE), null);
    assert.equal(
      warnings[0],
      `vmalloc_node_range for size ${2 * PAGE} failed: Address range restricted to 0xffffc90000000000 - 0xffffc9000003ffff`,
    );
  });

  test('a null logger silences the warnings', () => {
    const { vm } = testVm({ ...small, logger: null });
    vm.vmalloc(62 * PAGE);
    assert.equal(vm.vmalloc(PAGE), null);
  });
});
