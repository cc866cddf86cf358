/**
 * Misuse of addresses and memory access, in both designs: every method that takes an address
 * refuses one outside the address space [0, 2^48) with the same code and message in either
 * design (the nodes design would look for a node of a negative address), before any design
 * code runs; values and buffers that do not fit are refused; nothing changes.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DESIGN_NAMES, VmallocError, type Vmalloc } from '../../src/index.js';
import { PAGE, snapshot, testVm } from '../helpers/vm.js';
import { refuses } from '../helpers/misuse.js';

/** Every method that takes an address, called with `addr`. */
const BY_ADDRESS: [string, (vm: Vmalloc, addr: number) => unknown][] = [
  ['read', (vm, addr) => vm.read(addr, 1)],
  ['readInto', (vm, addr) => vm.readInto(addr, new Uint8Array(1))],
  ['write', (vm, addr) => vm.write(addr, new Uint8Array(1))],
  ['readU8', (vm, addr) => vm.readU8(addr)],
  ['writeU8', (vm, addr) => vm.writeU8(addr, 1)],
  ['readPtr', (vm, addr) => vm.readPtr(addr)],
  ['writePtr', (vm, addr) => vm.writePtr(addr, 0)],
  ['findVmArea', (vm, addr) => vm.findVmArea(addr)],
  ['vmallocToPage', (vm, addr) => vm.vmallocToPage(addr)],
  ['vfree', (vm, addr) => vm.vfree(addr)],
  ['vunmap', (vm, addr) => vm.vunmap(addr)],
  ['removeVmArea', (vm, addr) => vm.removeVmArea(addr)],
  ['addrToNodeId', (vm, addr) => vm.addrToNodeId(addr)],
];

const OUTSIDE = [-PAGE, -1, 2 ** 48, 2 ** 48 + PAGE, 2 ** 53 - PAGE, -(2 ** 53) + 1];
const NOT_INTEGERS: [unknown, RegExp][] = [
  [NaN, /addr must be a finite number, got NaN$/],
  [Infinity, /addr must be a finite number, got Infinity$/],
  [-Infinity, /addr must be a finite number, got -Infinity$/],
  [PAGE + 0.5, /addr must be an integer, got 4096\.5$/],
  [2 ** 53, /addr must not exceed 2\^53 - 1 in magnitude/],
  ['4096', /addr must be a number, got "4096"$/],
  [4096n, /addr must be a number, got 4096n \(a bigint\)$/],
  [{}, /addr must be a number, got an object$/],
];

/** What each call answers, as "code: message" (or "returned ..."), in order. */
function answers(vm: Vmalloc, addrs: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const [name, call] of BY_ADDRESS) {
    for (const addr of addrs) {
      const before = snapshot(vm);
      try {
        out.push(`${name}(${String(addr)}) returned ${String(call(vm, addr as number))}`);
      } catch (e) {
        assert.ok(e instanceof VmallocError, `${name}(${String(addr)}): ${String(e)}`);
        out.push(`${name}(${String(addr)}) ${e.code}: ${e.message}`);
      }
      assert.equal(snapshot(vm), before, `${name}(${String(addr)}) changed the state`);
    }
  }
  return out;
}

describe('addresses outside the address space', () => {
  test('both designs refuse them with EINVAL and the same message, for every method', () => {
    const seen = DESIGN_NAMES.map((design) => {
      const { vm } = testVm({ design, nrCpus: 4 });
      vm.vmalloc(2 * PAGE);
      return answers(vm, OUTSIDE);
    });
    for (const line of seen[0]!)
      assert.match(
        line,
        /^\w+\(-?\d+\) EINVAL: Cannot \w+: addr must lie in the address space \[0, 2\^48\), got -?\d+/,
      );
    for (const other of seen.slice(1)) assert.deepEqual(other, seen[0]);
  });

  test('both designs refuse addresses that are not integers, with the same message', () => {
    const seen = DESIGN_NAMES.map((design) => {
      const { vm } = testVm({ design, nrCpus: 4 });
      vm.vmalloc(2 * PAGE);
      return answers(
        vm,
        NOT_INTEGERS.map(([addr]) => addr),
      );
    });
    let k = 0;
    for (const [name] of BY_ADDRESS)
      for (const [addr, message] of NOT_INTEGERS) {
        const line = seen[0]![k++]!;
        // vfree/vunmap of 0-like values return early only for 0, null and undefined.
        assert.match(line, /EINVAL: Cannot /, `${name}(${String(addr)})`);
        assert.match(line, message, line);
      }
    for (const other of seen.slice(1)) assert.deepEqual(other, seen[0]);
  });

  for (const design of DESIGN_NAMES) {
    test(`${design}: in the space but unmapped: EFAULT / ENOENT / null, never an internal error`, () => {
      const { vm } = testVm({ design, nrCpus: 4 });
      const a = vm.vmalloc(2 * PAGE)!;
      const top = 2 ** 48 - 1;
      refuses(
        vm,
        () => vm.read(top, 2),
        'EFAULT',
        /^Cannot read: addr \.\. addr \+ length must lie in the mapped pages of a live vm area, got 0xffffffffffffffff and length 2 \(no live vm area contains it\)$/,
      );
      refuses(
        vm,
        () => vm.write(top, new Uint8Array(2)),
        'EFAULT',
        /no live vm area contains it\)$/,
      );
      refuses(vm, () => vm.readPtr(top - 7), 'EFAULT', /no live vm area contains it\)$/);
      refuses(
        vm,
        () => vm.readU8(0),
        'EFAULT',
        /^Cannot read: addr \.\. addr \+ 1 must lie in the mapped pages of a live vm area, got 0xffff000000000000 \(no live vm area/,
      );
      refuses(
        vm,
        () => vm.vfree(top + 1 - PAGE),
        'ENOENT',
        /^Cannot vfree: addr must be the start of a live vm area, got 0xfffffffffffff000 \(the kernel: "Trying to vfree\(\) nonexistent vm area"\)$/,
      );
      refuses(
        vm,
        () => vm.vunmap(a + 1),
        'EINVAL',
        // a + 1: where a is depends on the design (offload2023 serves it from a node's block)
        /^Cannot vunmap: addr must be page-aligned \(a multiple of 4096\), got 0xffffc9[0-9a-f]+1 \(the kernel: "Trying to vunmap\(\) bad address"\)$/,
      );
      assert.equal(vm.findVmArea(top), null);
      assert.equal(vm.findVmArea(0), null);
      assert.equal(vm.vmallocToPage(top), null);
      assert.equal(vm.removeVmArea(top + 1 - PAGE), null);
      vm.check();
    });
  }
});

for (const design of DESIGN_NAMES) {
  describe(`${design}: values and buffers of memory access`, () => {
    test('read lengths, targets and sources that do not fit', () => {
      const { vm } = testVm({ design });
      const a = vm.vmalloc(2 * PAGE)!;
      refuses(
        vm,
        () => vm.read(a, 2 ** 40),
        'EINVAL',
        /^Cannot read: length must not exceed 2\^31 bytes, got 1099511627776/,
      );
      for (const length of [-1, 0.5, NaN, '1', 1n])
        refuses(vm, () => vm.read(a, length as number), 'EINVAL', /^Cannot read: length must /);
      for (const target of [
        null,
        undefined,
        [0],
        new Uint16Array(1),
        new DataView(new ArrayBuffer(1)),
      ])
        refuses(
          vm,
          () => vm.readInto(a, target as unknown as Uint8Array),
          'EINVAL',
          /^Cannot read: target must be a Uint8Array, got /,
        );
      for (const bytes of [null, 'ab', [1], new Int8Array(1)])
        refuses(
          vm,
          () => vm.write(a, bytes as unknown as Uint8Array),
          'EINVAL',
          /^Cannot write: bytes must be a Uint8Array, got /,
        );
      // Checked against the mapping before the buffer is made: no 2 GiB array for an EFAULT.
      refuses(
        vm,
        () => vm.read(a, 2 ** 31),
        'EFAULT',
        /^Cannot read: addr \.\. addr \+ length must lie in the mapped pages of a live vm area, got 0xffffc90000000000 and length 2147483648 \(the range runs past the mapped pages/,
      );
      assert.deepEqual(vm.read(a, 0), new Uint8Array(0));
      refuses(vm, () => vm.read(-1, 0), 'EINVAL', /addr must lie in the address space/);
    });

    test('writeU8 takes a byte, writePtr an address a kernel pointer can hold', () => {
      const { vm } = testVm({ design });
      const a = vm.vmalloc(2 * PAGE)!;
      vm.writeU8(a, 7);
      for (const value of [256, -1, 1.5, NaN, Infinity, '1', true, null, 1n])
        refuses(
          vm,
          () => vm.writeU8(a, value as number),
          'EINVAL',
          /^Cannot write: value must be an integer from 0 to 255, got /,
        );
      assert.equal(vm.readU8(a), 7, 'the byte is untouched');
      vm.writePtr(a + 8, a);
      for (const value of [2 ** 60, 2 ** 48, -1, 0.5, NaN, '0', 1n])
        refuses(
          vm,
          () => vm.writePtr(a + 8, value as number),
          'EINVAL',
          /^Cannot write: value must be an address in \[0, 2\^48\) or 0, got /,
        );
      assert.equal(vm.readPtr(a + 8), a, 'the pointer is untouched');
      vm.writePtr(a + 8, 2 ** 48 - 1);
      assert.equal(vm.readPtr(a + 8), 2 ** 48 - 1);
    });
  });
}
