/**
 * Misuse of the vmalloc layer, in both designs: page frames (freed twice, freed while mapped,
 * handed to an area), counts and lengths, addresses outside the space, flags only vmalloc may
 * set, caller names. Each refusal is a VmallocError with its code and rule, and leaves the
 * state exactly as it was (snapshot() and check()).
 * createVmalloc() options and the sweep of every method with bad types: misuse-args.test.ts.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DESIGN_NAMES, VmallocError, VmFlags, type Vmalloc } from '../../src/index.js';
import { PAGE, snapshot, testVm } from '../helpers/vm.js';

/** `call` throws VmallocError `code` with a message matching `message`; nothing changed. */
export function refuses(vm: Vmalloc, call: () => unknown, code: string, message: RegExp): void {
  const before = snapshot(vm);
  assert.throws(call, (e: unknown) => {
    assert.ok(e instanceof VmallocError, `a VmallocError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
  assert.equal(snapshot(vm), before);
}

for (const design of DESIGN_NAMES) {
  describe(`${design}: page frames have one owner`, () => {
    test('freePages with a frame listed twice refuses the whole list (EINVAL)', () => {
      const { vm } = testVm({ design });
      const p = vm.allocPages(3);
      refuses(
        vm,
        () => vm.freePages([p[0]!, p[1]!, p[0]!]),
        'EINVAL',
        /^Cannot __free_page: pfns\[2\] must not repeat pfns\[0\] \(a frame is freed once\), got \d+$/,
      );
      assert.equal(vm.stats().pagesUsed, 3, 'no frame was freed');
      vm.freePages(p);
      assert.equal(vm.stats().pagesUsed, 0);
      vm.check();
    });

    test('freePages of a frame freed already, or never allocated, is EINVAL', () => {
      const { vm } = testVm({ design });
      const p = vm.allocPages(2);
      vm.freePages([p[0]!]);
      refuses(
        vm,
        () => vm.freePages([p[1]!, p[0]!]),
        'EINVAL',
        /^Cannot __free_page: pfns\[1\] must be an allocated page frame, got \d+$/,
      );
      for (const bad of [-1, 1.5, NaN, 2 ** 53, 'x', null, 123456])
        refuses(
          vm,
          () => vm.freePages([bad as number]),
          'EINVAL',
          /pfns\[0\] must be an allocated page frame/,
        );
      vm.freePages([p[1]!]);
      vm.check();
    });

    test("freePages of a vmalloc area's page is EBUSY; the next vmalloc gets other pages", () => {
      const { vm } = testVm({ design });
      const a = vm.vmalloc(2 * PAGE)!;
      const pfn = vm.vmallocToPage(a + PAGE)!;
      refuses(
        vm,
        () => vm.freePages([pfn]),
        'EBUSY',
        /^Cannot __free_page: pfns\[0\] \(pfn \d+\) is an area's own page \(vfree\(\) of that area frees it\)$/,
      );
      const b = vm.vmalloc(PAGE)!;
      assert.notEqual(vm.vmallocToPage(b), pfn);
      vm.vfree(a);
      vm.vfree(b);
      assert.equal(vm.stats().pagesUsed, 0);
      vm.check();
    });

    test('freePages of a frame a vmap area maps is EBUSY until every map is gone', () => {
      const { vm } = testVm({ design });
      const p = vm.allocPages(2);
      const m1 = vm.vmap(p)!;
      const m2 = vm.vmap([p[1]!])!;
      refuses(
        vm,
        () => vm.freePages(p),
        'EBUSY',
        /pfns\[0\] \(pfn \d+\) is still mapped by 1 vmap area$/,
      );
      vm.vunmap(m1);
      refuses(
        vm,
        () => vm.freePages(p),
        'EBUSY',
        /pfns\[1\] \(pfn \d+\) is still mapped by 1 vmap area$/,
      );
      vm.vfree(m2); // vfree of a vmap area without VM_MAP_PUT_PAGES drops the map only
      vm.freePages(p);
      assert.equal(vm.stats().pagesUsed, 0);
      vm.check();
    });

    test("vmap of a free frame is EINVAL, of a vmalloc area's page EBUSY", () => {
      const { vm } = testVm({ design });
      const p = vm.allocPages(1);
      vm.freePages(p);
      refuses(
        vm,
        () => vm.vmap(p),
        'EINVAL',
        /^Cannot vmap: pages\[0\] must be an allocated page frame, got \d+$/,
      );
      const a = vm.vmalloc(PAGE)!;
      refuses(
        vm,
        () => vm.vmap([vm.vmallocToPage(a)!]),
        'EBUSY',
        /^Cannot vmap: pages\[0\] \(pfn \d+\) is an area's own page/,
      );
    });

    test('VM_MAP_PUT_PAGES hands each frame to the area once; vfree frees them', () => {
      const { vm } = testVm({ design });
      const p = vm.allocPages(2);
      const put = { flags: VmFlags.VM_MAP_PUT_PAGES };
      refuses(
        vm,
        () => vm.vmap([p[0]!, p[1]!, p[0]!], put),
        'EINVAL',
        /^Cannot vmap: pages\[2\] must not repeat pages\[0\] \(VM_MAP_PUT_PAGES hands a frame over once\)/,
      );
      const m = vm.vmap([p[1]!])!;
      refuses(
        vm,
        () => vm.vmap(p, put),
        'EBUSY',
        /^Cannot vmap: pages\[1\] \(pfn \d+\) is still mapped by 1 vmap area \(VM_MAP_PUT_PAGES hands it to the area\)$/,
      );
      vm.vunmap(m);
      const owned = vm.vmap(p, put)!;
      refuses(vm, () => vm.freePages([p[0]!]), 'EBUSY', /is an area's own page/);
      refuses(vm, () => vm.vmap([p[0]!]), 'EBUSY', /is an area's own page/);
      vm.vfree(owned);
      assert.equal(vm.stats().pagesUsed, 0, 'the area freed the frames it was given');
      vm.check();
    });

    test('remove_vm_area of a vmalloc area hands its pages to the caller, who frees them', () => {
      const { vm } = testVm({ design });
      const a = vm.vmalloc(3 * PAGE)!;
      const removed = vm.removeVmArea(a)!;
      assert.equal(vm.stats().pagesUsed, 3);
      vm.check();
      const m = vm.vmap(removed.pages)!;
      vm.vunmap(m);
      vm.freePages(removed.pages);
      assert.equal(vm.stats().pagesUsed, 0);
      vm.check();
    });
  });

  describe(`${design}: allocPages counts`, () => {
    test('more frames than physical memory has is EINVAL; a shortage is a short count', () => {
      const { vm } = testVm({ design, physicalMemory: 16 * PAGE });
      for (const n of [2 ** 40, 17, 2 ** 53 - 1])
        refuses(
          vm,
          () => vm.allocPages(n),
          'EINVAL',
          /^Cannot alloc_pages_bulk: n must not exceed the frames of physical memory \(16\), got \d+/,
        );
      for (const n of [-1, 1.5, NaN, Infinity, 2 ** 53, '1', 1n, true])
        refuses(
          vm,
          () => vm.allocPages(n as number),
          'EINVAL',
          /^Cannot alloc_pages_bulk: n must be a non-negative integer, got /,
        );
      assert.equal(vm.allocPages(0).length, 0);
      const a = vm.vmalloc(10 * PAGE)!;
      const p = vm.allocPages(16);
      assert.equal(p.length, 6, 'the frames left');
      assert.equal(vm.allocPages(1).length, 0);
      vm.freePages(p);
      vm.vfree(a);
      assert.equal(vm.allocPages(16).length, 16);
      vm.check();
    });
  });
}
