/**
 * The vmalloc subsystem: vmalloc/vfree/vzalloc, guard pages, memory through the pages,
 * vmap/vunmap, get/find/remove_vm_area, vmalloc_to_page, page exhaustion, bad input.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DESIGN_NAMES } from '../../src/designs/registry.js';
import { VmallocError, VmFlags, kernelHex } from '../../src/index.js';
import { PAGE, snapshot, testVm } from '../helpers/vm.js';

describe('vmalloc and vfree', () => {
  test('areas come from the vmalloc window, lowest first, each followed by a guard page', () => {
    const { vm } = testVm();
    const a = vm.vmalloc(3 * PAGE)!;
    const b = vm.vmalloc(PAGE)!;
    assert.equal(a, vm.vmallocStart);
    assert.equal(kernelHex(a), '0xffffc90000000000');
    assert.equal(b, a + 4 * PAGE, 'three pages + one guard page');
    const area = vm.findVmArea(a + 5)!;
    assert.equal(area.addr, a);
    assert.equal(area.size, 4 * PAGE, 'vm_struct size includes the guard page');
    assert.equal(area.nrPages, 3);
    assert.equal(area.flags & VmFlags.VM_ALLOC, VmFlags.VM_ALLOC);
    vm.check();
  });

  test('sizes round up to whole pages; the request is remembered', () => {
    const { vm } = testVm();
    const a = vm.vmalloc(5000)!;
    assert.equal(vm.findVmArea(a)!.nrPages, 2);
    assert.equal(vm.vmalloc(1), a + 3 * PAGE);
  });

  test('alignment', () => {
    const { vm } = testVm();
    vm.vmalloc(PAGE);
    const a = vm.vmalloc(PAGE, { align: 1 << 20 })!;
    assert.equal(a % 2 ** 20, 0);
    assert.equal(a, vm.vmallocStart + 2 ** 20);
  });

  test('vfree(0), vfree(null) and vfree(undefined) do nothing', () => {
    const { vm } = testVm();
    vm.vmalloc(PAGE);
    const before = snapshot(vm);
    vm.vfree(0);
    vm.vfree(null);
    vm.vfree(undefined);
    assert.equal(snapshot(vm), before);
  });

  test('vzalloc zeroes; vmalloc may hand back pages with old contents', () => {
    const { vm } = testVm();
    const a = vm.vmalloc(2 * PAGE)!;
    vm.write(a, new Uint8Array(2 * PAGE).fill(0xaa));
    vm.vfree(a);
    const z = vm.vzalloc(2 * PAGE)!;
    assert.ok(vm.read(z, 2 * PAGE).every((x) => x === 0));
    vm.write(z, new Uint8Array(2 * PAGE).fill(0x55));
    vm.vfree(z);
    const r = vm.vmalloc(2 * PAGE)!;
    assert.equal(
      vm.read(r, 1)[0],
      0x55,
      'the freed frames are reused as they are, like the kernel',
    );
  });
});

describe('memory goes through the area pages', () => {
  test('round trip across page boundaries', () => {
    const { vm } = testVm();
    const a = vm.vmalloc(4 * PAGE)!;
    const data = Uint8Array.from({ length: 3 * PAGE - 100 }, (_, k) => (k * 7 + 3) & 0xff);
    vm.write(a + 50, data);
    assert.deepEqual(vm.read(a + 50, data.length), data);
    const part = new Uint8Array(200);
    vm.readInto(a + PAGE - 100, part);
    assert.deepEqual(part, data.subarray(PAGE - 150, PAGE + 50));
  });

  test('each page is a separate frame: writing one area does not touch another', () => {
    const { vm } = testVm();
    const a = vm.vmalloc(PAGE)!;
    const b = vm.vmalloc(PAGE)!;
    vm.writeU8(a, 1);
    vm.writeU8(b, 2);
    assert.equal(vm.readU8(a), 1);
    assert.equal(vm.readU8(b), 2);
    assert.notEqual(vm.vmallocToPage(a), vm.vmallocToPage(b));
  });

  test('pointers are stored as kernel addresses', () => {
    const { vm } = testVm();
    const a = vm.vmalloc(PAGE)!;
    vm.writePtr(a + 8, a);
    vm.writePtr(a + 16, 0);
    assert.equal(vm.readPtr(a + 8), a);
    assert.equal(vm.readPtr(a + 16), 0);
    const bytes = vm.read(a + 8, 8);
    assert.equal(new DataView(bytes.buffer).getBigUint64(0, true), 0xffffc90000000000n);
  });

  test('guard page, freed and unknown addresses fault with EFAULT', () => {
    const { vm } = testVm();
    const a = vm.vmalloc(2 * PAGE)!;
    assert.throws(() => vm.readU8(a + 2 * PAGE), {
      code: 'EFAULT',
      message: /guard page of the vm area 0xffffc90000000000-0xffffc90000003000/,
    });
    assert.throws(() => vm.read(a + PAGE, PAGE + 1), { code: 'EFAULT' });
    assert.throws(() => vm.writeU8(a + 10 * PAGE, 1), {
      code: 'EFAULT',
      message: /no live vm area contains it/,
    });
    vm.vfree(a);
    assert.throws(
      () => vm.readU8(a),
      { code: 'EFAULT', message: /no live vm area/ },
      'a lazily freed range is not accessible',
    );
  });
});

describe('vmap, vunmap and the vm_area functions', () => {
  test('vmap maps caller pages; vunmap leaves them to the caller', () => {
    const { vm } = testVm();
    const pages = vm.allocPages(3);
    assert.equal(pages.length, 3);
    const a = vm.vmap(pages, { caller: 'my_driver' })!;
    assert.deepEqual(vm.findVmArea(a)!.pages, [...pages]);
    assert.equal(vm.vmallocToPage(a + PAGE + 7), pages[1]);
    vm.write(a + PAGE - 2, new Uint8Array([9, 8, 7, 6]));
    const again = vm.vmap([pages[1]!])!; // the same frame mapped twice
    assert.deepEqual(vm.read(again, 2), new Uint8Array([7, 6]));
    assert.match(vm.vmallocinfo(), /my_driver pages=3 vmap N0=3/);
    vm.vunmap(a);
    vm.vunmap(again);
    vm.purge();
    assert.equal(vm.stats().pagesUsed, 3, "the pages are still the caller's");
    vm.freePages(pages);
    assert.equal(vm.stats().pagesUsed, 0);
    vm.check();
  });

  test('vmap rejects unallocated frames and VM_FLUSH_RESET_PERMS', () => {
    const { vm } = testVm();
    assert.throws(() => vm.vmap([12345]), {
      code: 'EINVAL',
      message: /pages\[0\] must be an allocated page frame/,
    });
    const p = vm.allocPages(1);
    assert.throws(() => vm.vmap(p, { flags: VmFlags.VM_FLUSH_RESET_PERMS }), { code: 'EINVAL' });
    vm.freePages(p);
    vm.check();
  });

  for (const design of ['global', 'nodes'] as const) {
    test(`${design}: the same 16 pages mapped again and again: each vmap succeeds or is null`, () => {
      // Every vmap keeps its own copy of the pfn array (area->pages). With 16 frames of
      // physical memory those copies run out long before the address space: the call must say
      // so with null (and a warning), never with an internal error.
      const { vm, warnings } = testVm({ design, physicalMemory: 16 * PAGE });
      const pages = vm.allocPages(16);
      const mapped: number[] = [];
      let nulls = 0;
      for (let i = 0; i < 300; i++) {
        const a = vm.vmap(pages);
        if (a === null) nulls++;
        else mapped.push(a);
      }
      assert.ok(mapped.length >= 258, `${mapped.length} maps`);
      assert.equal(mapped.length + nulls, 300);
      assert.ok(nulls === 0 || warnings.some((w) => /vmap/.test(w)), 'a null is explained');
      vm.check();
      vm.write(mapped[mapped.length - 1]! + 5, new Uint8Array([42]));
      assert.equal(vm.readU8(mapped[0]! + 5), 42, 'every map shows the same frames');
      for (const a of mapped) vm.vunmap(a);
      vm.purge();
      assert.notEqual(vm.vmap(pages), null, 'the copies are given back by vunmap');
      vm.check();
    });
  }

  test('get_vm_area reserves address space without pages; remove_vm_area gives it back', () => {
    const { vm } = testVm();
    const area = vm.getVmArea(5 * PAGE, VmFlags.VM_IOREMAP, {
      caller: 'acpi_os_map_iomem+0x1a6/0x1e0',
      physAddr: 0xfed00000,
    })!;
    assert.equal(area.size, 6 * PAGE);
    assert.equal(area.nrPages, 0);
    assert.equal(
      area.addr % (8 * PAGE),
      0,
      'ioremap areas are aligned to their size rounded to a power of two',
    );
    assert.match(
      vm.vmallocinfo(),
      /24576 acpi_os_map_iomem\+0x1a6\/0x1e0 phys=0x00000000fed00000 ioremap\n/,
    );
    assert.equal(vm.vmallocToPage(area.addr), null);
    const removed = vm.removeVmArea(area.addr)!;
    assert.equal(removed.addr, area.addr);
    assert.equal(vm.findVmArea(area.addr), null);
    assert.equal(vm.removeVmArea(area.addr), null);
    vm.check();
  });

  test('VM_NO_GUARD areas have no guard page', () => {
    const { vm } = testVm();
    const a = vm.getVmArea(2 * PAGE, VmFlags.VM_NO_GUARD)!;
    assert.equal(a.size, 2 * PAGE);
    const b = vm.vmalloc(PAGE)!;
    assert.equal(b, a.addr + 2 * PAGE, 'the next area starts right after it');
    vm.check();
  });

  test('vmalloc_to_page: the frame behind each page; null in the guard page', () => {
    const { vm } = testVm();
    const a = vm.vmalloc(2 * PAGE)!;
    const pages = vm.findVmArea(a)!.pages;
    assert.equal(vm.vmallocToPage(a), pages[0]);
    assert.equal(vm.vmallocToPage(a + 2 * PAGE - 1), pages[1]);
    assert.equal(vm.vmallocToPage(a + 2 * PAGE), null);
    assert.equal(vm.vmallocToPage(a - 1), null);
  });
});

describe('page exhaustion', () => {
  test('vmalloc returns null when frames run out and leaks nothing', () => {
    const { vm, warnings } = testVm({ physicalMemory: 64 * PAGE });
    const a = vm.vmalloc(40 * PAGE)!;
    assert.ok(a);
    const before = snapshot(vm);
    assert.equal(vm.vmalloc(30 * PAGE), null);
    assert.ok(
      warnings.some((w) => /failed to allocate pages/.test(w)),
      warnings.join('\n'),
    );
    vm.purge();
    vm.check();
    const st = vm.stats();
    assert.equal(st.pagesUsed, 40);
    assert.equal(st.vmStructs, 1);
    vm.vfree(a);
    assert.equal(vm.stats().pagesUsed, 0);
    assert.notEqual(before, '');
  });

  test('a request larger than all memory fails at once with the kernel message', () => {
    const { vm, warnings } = testVm({ physicalMemory: 64 * PAGE });
    assert.equal(vm.vmalloc(65 * PAGE), null);
    assert.deepEqual(warnings, [`vmalloc error: size ${65 * PAGE}, exceeds total pages`]);
    vm.check();
  });
});

describe('bad input throws, names the argument and changes nothing', () => {
  const rows: [
    string,
    (vm: ReturnType<typeof testVm>['vm'], a: number) => unknown,
    string,
    RegExp,
  ][] = [
    [
      'vmalloc(0)',
      (vm) => vm.vmalloc(0),
      'EINVAL',
      /^Cannot vmalloc: size must be positive, got 0$/,
    ],
    ['negative size', (vm) => vm.vmalloc(-4096), 'EINVAL', /size must be positive/],
    ['fractional size', (vm) => vm.vmalloc(1.5), 'EINVAL', /size must be an integer/],
    ['NaN size', (vm) => vm.vmalloc(NaN), 'EINVAL', /size must be a finite number/],
    [
      'string size',
      (vm) => vm.vmalloc('4096' as unknown as number),
      'EINVAL',
      /size must be a number/,
    ],
    ['huge size', (vm) => vm.vmalloc(2 ** 50), 'EINVAL', /size must not exceed the address space/],
    [
      'align 3',
      (vm) => vm.vmalloc(PAGE, { align: 3 }),
      'EINVAL',
      /align must be a power of two from 1 to 2\^48, got 3/,
    ],
    [
      'null options',
      (vm) => vm.vmalloc(PAGE, null as unknown as object),
      'EINVAL',
      /options must be an object/,
    ],
    [
      'non-string caller',
      (vm) => vm.vmalloc(PAGE, { caller: 5 as unknown as string }),
      'EINVAL',
      /caller must be a string/,
    ],
    [
      'vfree of an unaligned address',
      (vm, a) => vm.vfree(a + 1),
      'EINVAL',
      /^Cannot vfree: addr must be page-aligned \(a multiple of 4096\), got 0xffffc90000000001 \(the kernel: "Trying to vfree\(\) bad address"\)$/,
    ],
    [
      'vfree of an unknown address',
      (vm) => vm.vfree(vm.vmallocStart + 100 * PAGE),
      'ENOENT',
      /^Cannot vfree: addr must be the start of a live vm area, got 0xffffc90000064000 \(the kernel: "Trying to vfree\(\) nonexistent vm area"\)$/,
    ],
    [
      'vfree inside an area',
      (vm, a) => vm.vfree(a + PAGE),
      'ENOENT',
      /inside the vm area 0xffffc90000000000-0xffffc90000003000: pass its start/,
    ],
    [
      'vfree of a string',
      (vm) => vm.vfree('x' as unknown as number),
      'EINVAL',
      /addr must be a number/,
    ],
    [
      'vunmap of an unknown address',
      (vm) => vm.vunmap(vm.vmallocStart + 100 * PAGE),
      'ENOENT',
      /^Cannot vunmap: addr must be the start of a live vm area, got 0xffffc90000064000 \(the kernel: "Trying to vunmap\(\) nonexistent vm area"\)$/,
    ],
    [
      'read with a negative length',
      (vm, a) => vm.read(a, -1),
      'EINVAL',
      /length must not be negative/,
    ],
    [
      'write of a non-array',
      (vm, a) => vm.write(a, [1, 2] as unknown as Uint8Array),
      'EINVAL',
      /bytes must be a Uint8Array/,
    ],
  ];
  for (const [name, call, code, message] of rows) {
    test(name, () => {
      const { vm } = testVm();
      const a = vm.vmalloc(2 * PAGE)!;
      const before = snapshot(vm);
      assert.throws(
        () => call(vm, a),
        (e: unknown) => e instanceof VmallocError && e.code === code && message.test(e.message),
      );
      assert.equal(snapshot(vm), before);
    });
  }

  test('double vfree', () => {
    const { vm } = testVm();
    const a = vm.vmalloc(PAGE)!;
    vm.vfree(a);
    assert.throws(() => vm.vfree(a), { code: 'ENOENT', message: /nonexistent vm area/ });
    vm.check();
  });

  test('createVmalloc options', () => {
    const bad: [object, RegExp][] = [
      [{ nrCpus: 0 }, /nrCpus must be an integer from 1/],
      [{ pageSize: 3000 }, /pageSize must be a power of two/],
      [
        { design: 'solaris' },
        new RegExp(
          `design must be one of ${DESIGN_NAMES.map((d) => `'${d}'`).join(', ')}, got "solaris"`,
        ),
      ],
      [{ physicalMemory: 100 }, /physicalMemory must be a multiple of the page size/],
      [{ vmallocSize: 4096 }, /vmallocSize must be/],
    ];
    for (const [o, m] of bad)
      assert.throws(
        () => testVm(o),
        (e: unknown) => e instanceof VmallocError && e.code === 'EINVAL' && m.test(e.message),
      );
  });
});
