/**
 * Misuse of the vmalloc layer, in both designs: page frames (freed twice, freed while mapped,
 * handed to an area), counts and lengths, addresses outside the space, flags only vmalloc may
 * set, caller names. Each refusal is a VmallocError with its code and rule, and leaves the
 * state exactly as it was (snapshot() and check()).
 * Addresses and memory access: misuse-access.test.ts; createVmalloc() options: misuse-options.test.ts.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DESIGN_NAMES, VmallocError, VmFlags } from '../../src/index.js';
import { refuses } from '../helpers/misuse.js';
import { PAGE, testVm } from '../helpers/vm.js';

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
        /^Cannot __free_page: pfns\[0\] must be a page frame no area holds, got pfn \d+, which is an area's own page \(vfree\(\) of that area frees it\)$/,
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
        /pfns\[0\] must be a page frame no area holds, got pfn \d+, which is still mapped by 1 vmap area$/,
      );
      vm.vunmap(m1);
      refuses(
        vm,
        () => vm.freePages(p),
        'EBUSY',
        /pfns\[1\] must be a page frame no area holds, got pfn \d+, which is still mapped by 1 vmap area$/,
      );
      vm.vfree(m2); // vfree of a vmap area without VM_MAP_PUT_PAGES drops the map only
      const m3 = vm.vmap(p)!;
      refuses(vm, () => vm.freePages(p), 'EBUSY', /is still mapped by 1 vmap area$/);
      assert.deepEqual(vm.removeVmArea(m3)!.pages, [...p]); // so does remove_vm_area
      vm.check();
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
        /^Cannot vmap: pages\[0\] must be a page frame no area holds, got pfn \d+, which is an area's own page/,
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
        /^Cannot vmap: pages\[1\] must be a page frame no area holds, got pfn \d+, which is still mapped by 1 vmap area \(VM_MAP_PUT_PAGES hands it to the area\)$/,
      );
      vm.vunmap(m);
      const owned = vm.vmap(p, put)!;
      refuses(vm, () => vm.freePages([p[0]!]), 'EBUSY', /is an area's own page/);
      refuses(vm, () => vm.vmap([p[0]!]), 'EBUSY', /is an area's own page/);
      vm.vfree(owned);
      assert.equal(vm.stats().pagesUsed, 0, 'the area freed the frames it was given');
      // remove_vm_area gives frames handed over with VM_MAP_PUT_PAGES back to the caller.
      const q = vm.allocPages(2);
      const removed = vm.removeVmArea(vm.vmap(q, put)!)!;
      vm.check();
      vm.freePages(removed.pages);
      assert.equal(vm.stats().pagesUsed, 0);
      vm.check();
    });

    test('vunmap of a vmalloc area is refused (its pages would belong to no one)', () => {
      const { vm } = testVm({ design });
      const a = vm.vmalloc(2 * PAGE)!;
      refuses(
        vm,
        () => vm.vunmap(a),
        'EINVAL',
        /^Cannot vunmap: addr must not be a vmalloc area \(free it with vfree\(\)\), got 0xffffc90000000000$/,
      );
      const area = vm.getVmArea(PAGE)!;
      vm.vunmap(area.addr); // an area without pages of its own is vunmap's to remove
      vm.vfree(a);
      assert.equal(vm.stats().pagesUsed, 0);
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

  describe(`${design}: vmap and get_vm_area check everything before reserving`, () => {
    test('pages with a bad length: nothing reserved, the tree intact', () => {
      const { vm } = testVm({ design });
      const p = vm.allocPages(1);
      const lengths: [unknown, RegExp][] = [
        [-1, /pages\.length must be a non-negative integer, got -1$/],
        [-Infinity, /pages\.length must be a non-negative integer, got -Infinity$/],
        [0.5, /pages\.length must be a non-negative integer, got 0\.5$/],
        [2 ** 53, /pages\.length must be a non-negative integer, got 9007199254740992$/],
        [NaN, /pages\.length must be a non-negative integer, got NaN$/],
        ['1', /pages must be an array of page frame numbers, got an object$/],
      ];
      for (const [length, message] of lengths) {
        const pages = { length, 0: p[0] } as unknown as ArrayLike<number>;
        refuses(vm, () => vm.vmap(pages), 'EINVAL', message);
      }
      refuses(vm, () => vm.vmap(null as unknown as number[]), 'EINVAL', /pages must be an array/);
      refuses(vm, () => vm.vmap([]), 'EINVAL', /pages must not be empty/);
      refuses(vm, () => vm.vmap(p, 5 as unknown as object), 'EINVAL', /options must be an object/);
      vm.freePages(p);
      vm.check();
    });

    test('a bad physAddr or caller: no area and no vm_struct leak', () => {
      const { vm } = testVm({ design });
      const opts: [object, RegExp][] = [
        [{ physAddr: 'x' }, /^Cannot get_vm_area: physAddr must be a number, got "x"$/],
        [{ physAddr: -1 }, /physAddr must not be negative, got -1$/],
        [{ physAddr: 1.5 }, /physAddr must be an integer, got 1\.5$/],
        [{ physAddr: 2 ** 53 }, /physAddr must not exceed 2\^53 - 1 in magnitude/],
        [{ caller: 7 }, /caller must be a string, got 7$/],
      ];
      for (const [o, message] of opts)
        refuses(vm, () => vm.getVmArea(PAGE, 0, o), 'EINVAL', message);
      refuses(
        vm,
        () => vm.getVmArea(PAGE, 0, null as unknown as object),
        'EINVAL',
        /options must be an object/,
      );
      for (const size of [0, -PAGE, 0.5, NaN, 2 ** 49, '4096'])
        refuses(vm, () => vm.getVmArea(size as number), 'EINVAL', /^Cannot get_vm_area: size must/);
    });

    test('flags only the vmalloc path sets, unknown bits and non-integers are refused', () => {
      const { vm } = testVm({ design });
      const p = vm.allocPages(1);
      const internal: [number, RegExp][] = [
        [
          VmFlags.VM_ALLOC,
          /flags must not include VM_ALLOC or VM_UNINITIALIZED \(vmalloc sets them\), got 2$/,
        ],
        [VmFlags.VM_UNINITIALIZED, /flags must not include VM_ALLOC or VM_UNINITIALIZED/],
        [VmFlags.VM_ALLOC | VmFlags.VM_MAP, /flags must not include VM_ALLOC/],
      ];
      refuses(
        vm,
        () => vm.vmap(p, { flags: null as unknown as number }),
        'EINVAL',
        /^Cannot vmap: flags must be VM_\* bits, got null$/,
      );
      const bad: unknown[] = [
        2 ** 53,
        2 ** 31,
        -1,
        0.5,
        NaN,
        Infinity,
        0x800,
        0x2000,
        '4',
        4n,
        true,
      ];
      for (const [flags, message] of internal) {
        refuses(vm, () => vm.getVmArea(PAGE, flags), 'EINVAL', message);
        refuses(vm, () => vm.vmap(p, { flags }), 'EINVAL', message);
      }
      for (const flags of bad) {
        refuses(
          vm,
          () => vm.getVmArea(PAGE, flags as number),
          'EINVAL',
          /^Cannot get_vm_area: flags must be VM_\* bits, got /,
        );
        refuses(
          vm,
          () => vm.vmap(p, { flags: flags as number }),
          'EINVAL',
          /^Cannot vmap: flags must be VM_\* bits, got /,
        );
      }
      // Every other bit is accepted, and the state stays sound through the area's life.
      for (const [name, bit] of Object.entries(VmFlags)) {
        if (bit === VmFlags.VM_ALLOC || bit === VmFlags.VM_UNINITIALIZED) continue;
        const area = vm.getVmArea(PAGE, bit);
        assert.notEqual(area, null, name);
        vm.check();
        vm.vfree(area!.addr);
      }
      vm.purge();
      vm.freePages(p);
      vm.check();
    });

    test('a caller name with a line break or any control character is refused', () => {
      const { vm } = testVm({ design });
      const p = vm.allocPages(1);
      const names = [
        'a\nb',
        'a\rb',
        'a\tb',
        'a\u0000',
        'a\u007f',
        'a\u0085',
        'a\u2028b',
        'a\u2029',
      ];
      const rule = /caller must not contain a line break or another control character, got "/;
      for (const caller of names) {
        refuses(vm, () => vm.vmalloc(PAGE, { caller }), 'EINVAL', rule);
        refuses(vm, () => vm.vzalloc(PAGE, { caller }), 'EINVAL', rule);
        refuses(vm, () => vm.vmallocHuge(PAGE, { caller }), 'EINVAL', rule);
        refuses(vm, () => vm.vmap(p, { caller }), 'EINVAL', rule);
        refuses(vm, () => vm.getVmArea(PAGE, 0, { caller }), 'EINVAL', rule);
      }
      const long = 'f'.repeat(1025);
      for (const call of [
        () => vm.vmalloc(PAGE, { caller: long }),
        () => vm.vmap(p, { caller: long }),
        () => vm.getVmArea(PAGE, 0, { caller: long }),
      ])
        refuses(vm, call, 'EINVAL', /caller must be at most 1024 characters long, got 1025$/);
      vm.vfree(vm.vmalloc(PAGE, { caller: long.slice(1) }));
      const a = vm.vmalloc(PAGE, { caller: 'drm_gem_shmem_vmap+0x6c/0x120 [drm] ünïcode' })!;
      assert.match(vm.vmallocinfo(), /drm_gem_shmem_vmap\+0x6c\/0x120 \[drm\] ünïcode pages=1/);
      vm.vfree(a);
      vm.freePages(p);
    });
  });
}

describe('caller names', () => {
  test('a full table of caller names is ENOMEM, not a RangeError; known names still work', () => {
    // The table is shared by the designs alike: one design is enough. vmap() of more frames
    // than memory has interns its caller and returns null without reserving anything, so the
    // table fills without 65536 areas (64 MiB of names: 65536 of 1024 characters).
    const { vm } = testVm({ physicalMemory: 16 * PAGE });
    const p = vm.allocPages(1);
    const pages = new Array<number>(17).fill(p[0]!);
    const base = 'x'.repeat(1018);
    let k = 0;
    for (; k < 70_000; k++) {
      const caller = base + String(k).padStart(6, '0');
      try {
        assert.equal(vm.vmap(pages, { caller }), null);
      } catch (e) {
        assert.ok(e instanceof VmallocError, String(e));
        assert.equal(e.code, 'ENOMEM');
        assert.match(
          e.message,
          /^Cannot vmap: the table of caller names is full .*; reuse caller names/,
        );
        break;
      }
    }
    assert.equal(k, 65536);
    const again = vm.vmap(p, { caller: base + '000001' })!;
    assert.match(vm.vmallocinfo(), /x{1018}000001 pages=1 vmap/);
    vm.vunmap(again);
    vm.freePages(p);
    vm.check();
  });
});
