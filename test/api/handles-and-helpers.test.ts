/**
 * What the misuse battery cannot say by itself: that attachVmalloc's handle check refuses a
 * handle whose control block does not carry its creation brand, yet lets through the real
 * handle however it travels (structured clone, as postMessage sends it); that the
 * kernel-address helpers still answer for every legal value; that a caller name is checked
 * on its first use and served from the per-thread table after; and the option checks of the
 * per-call options (arrays refused, unknown keys of vmalloc's ignored).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  KERNEL_BASE,
  VmallocError,
  attachVmalloc,
  createVmalloc,
  fromKernelAddress,
  kernelHex,
  toKernelAddress,
  type VmallocOptions,
} from '../../src/index.js';
import { refuses } from '../helpers/misuse.js';
import { PAGE, snapshot } from '../helpers/vm.js';

const isEinval =
  (re: RegExp) =>
  (e: unknown): boolean =>
    e instanceof VmallocError && e.code === 'EINVAL' && re.test(e.message);

for (const design of ['global', 'nodes'] as const) {
  const base: VmallocOptions = { design, nrCpus: 3, physicalMemory: 64 * PAGE, logger: null };

  describe(`${design}: attachVmalloc's handle`, () => {
    test('the handle through structuredClone attaches, shares the areas, and detaches', () => {
      const vm = createVmalloc(base);
      const a = vm.vmalloc(PAGE)!;
      vm.writeU8(a, 42);
      const w = attachVmalloc(structuredClone(vm.handle), { cpu: 1, logger: null });
      assert.equal(w.readU8(a), 42);
      w.vfree(a);
      w.detach();
      vm.check();
    });

    test('a control block without the brand is refused, naming handle, and nothing changes', () => {
      const vm = createVmalloc(base);
      vm.vmalloc(PAGE);
      const ctl = new Int32Array(vm.handle.ctl);
      // The brand word ("vmal"), written at creation.
      const at = ctl.lastIndexOf(0x766d616c);
      assert.ok(at >= 0);
      const saved = ctl[at]!;
      ctl[at] = 0;
      const before = snapshot(vm);
      assert.throws(
        () => attachVmalloc(vm.handle, { cpu: 2, logger: null }),
        isEinval(
          /^Cannot attach vmalloc: handle must be the handle of a Vmalloc .*changed after creation/,
        ),
      );
      assert.equal(snapshot(vm), before);
      ctl[at] = saved;
      attachVmalloc(vm.handle, { cpu: 2, logger: null }).detach();
    });

    test('an edited config (lockTimeoutMs) is refused although every buffer fits', () => {
      const vm = createVmalloc(base);
      const forged = { ...vm.handle, config: { ...vm.handle.config, lockTimeoutMs: 1 } };
      assert.throws(
        () => attachVmalloc(forged, { cpu: 2, logger: null }),
        isEinval(/handle must be .*config or control block was changed after creation/),
      );
    });
  });

  describe(`${design}: per-call options`, () => {
    test('an array as options is refused before anything changes', () => {
      const vm = createVmalloc(base);
      const frames = Array.from(vm.allocPages(1));
      const arr = [] as unknown as undefined;
      for (const call of [
        () => vm.vmalloc(PAGE, arr),
        () => vm.vzalloc(PAGE, arr),
        () => vm.vmallocHuge(PAGE, arr),
        () => vm.getVmArea(PAGE, 0, arr),
        () => vm.vmap(frames, arr),
      ])
        refuses(vm, call, 'EINVAL', /options must be an object, got an object/);
    });

    test("vmalloc's unknown option keys are ignored (no key loop on the hot path)", () => {
      const vm = createVmalloc(base);
      const opts = { aling: 8 } as unknown as { align: number };
      const a = vm.vmalloc(PAGE, opts);
      assert.notEqual(a, null);
      vm.vfree(a);
    });

    test('a caller name is checked on first use, then served from the table', () => {
      const vm = createVmalloc(base);
      const name = ['my', 'caller+0x10/0x20'].join('_');
      const a = vm.vmalloc(PAGE, { caller: name })!;
      const b = vm.vmalloc(PAGE, { caller: `my_caller+0x10/0x20` })!;
      assert.equal(vm.findVmArea(a)!.caller, name);
      assert.equal(vm.findVmArea(b)!.caller, name);
      refuses(vm, () => vm.vmalloc(PAGE, { caller: `${name}\n` }), 'EINVAL', /caller must not/);
      // Refused once, refused again: a bad name is never remembered.
      refuses(vm, () => vm.vmalloc(PAGE, { caller: `${name}\n` }), 'EINVAL', /caller must not/);
      assert.equal(
        vm
          .vmallocinfo()
          .split('\n')
          .filter((l) => l.includes(name)).length,
        2,
      );
    });
  });
}

describe('kernel-address helpers', () => {
  test('every legal value still converts, both ways', () => {
    for (const a of [0, 1, PAGE, 2 ** 32, 0xc90000000000, 2 ** 48 - 1]) {
      const k = toKernelAddress(a);
      assert.equal(k, KERNEL_BASE + BigInt(a));
      assert.equal(kernelHex(a), '0x' + k.toString(16));
      assert.equal(fromKernelAddress(k), a);
      assert.equal(fromKernelAddress(kernelHex(a)), a);
    }
    assert.equal(kernelHex(-0), '0xffff000000000000');
  });

  test('bad values are EINVAL naming the argument and the rule', () => {
    assert.throws(
      () => kernelHex(2 ** 48),
      isEinval(
        /^Cannot kernelHex: addr must be a library address, an integer in \[0, 2\^48\), got 281474976710656$/,
      ),
    );
    assert.throws(() => toKernelAddress('4096' as unknown as number), isEinval(/got "4096"$/));
    assert.throws(
      () => fromKernelAddress('0x1'),
      isEinval(/^Cannot fromKernelAddress: kaddr must be a kernel address in .*, got 0x1$/),
    );
    assert.throws(() => fromKernelAddress('xyz'), isEinval(/kaddr must .*, got "xyz"$/));
    assert.throws(
      () => fromKernelAddress(5 as unknown as bigint),
      isEinval(/kaddr must .*, got 5$/),
    );
  });
});
