/**
 * The page-array pools (concurrent VmapSpaces inside the subsystem) learn which cpus died from
 * the subsystem's lock table: a pool lock a dead cpu holds makes its waiter give up at once
 * (EOWNERDEAD) and recover, instead of waiting out lockTimeoutMs; and a dead cpu that still
 * holds one cannot be attached again.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attachVmalloc, createVmalloc, type Vmalloc } from '../../src/index.js';
import type { VmContext } from '../../src/mm/shared-state.js';

const ctxOf = (vm: Vmalloc): VmContext => (vm as unknown as { ctx: VmContext }).ctx;

for (const design of ['nodes', 'global'] as const) {
  describe(`page-array pool locks and dead cpus (${design})`, () => {
    test('a pool lock held by a dead cpu is recovered from, not waited out', () => {
      // Long enough that a wait for the timeout would fail the test, not pass it slowly.
      const vm = createVmalloc({ nrCpus: 4, logger: null, design, lockTimeoutMs: 600_000 });
      const keep = vm.vmalloc(3 * vm.pageSize)!;
      vm.writeU8(keep, 42);
      const poolLocks = ctxOf(vm).pool.locks();
      assert.ok(poolLocks.length >= 1);
      // Cpu 1 (never attached here) takes the pool lock cpu 0 allocates from, then dies.
      poolLocks[0]!.lock(1);
      vm.markCpuDead(1);
      const a = vm.vmalloc(2 * vm.pageSize);
      assert.notEqual(a, null, 'the allocation recovered and succeeded');
      assert.equal(poolLocks[0]!.owner(), -1, 'the recovery freed the dead holder');
      vm.writeU8(a!, 7);
      assert.equal(vm.readU8(a!), 7);
      assert.equal(vm.readU8(keep), 42, 'a live area kept its pages');
      vm.check();
      vm.vfree(a!);
      vm.vfree(keep);
      vm.check();
    });

    test('a dead cpu still holding a pool lock cannot be attached again', () => {
      const vm = createVmalloc({ nrCpus: 4, logger: null, design });
      const poolLocks = ctxOf(vm).pool.locks();
      poolLocks[poolLocks.length - 1]!.lock(2);
      vm.markCpuDead(2);
      assert.throws(
        () => attachVmalloc(vm.handle, { cpu: 2 }),
        (e: Error & { code?: string }) => e.code === 'EOWNERDEAD' && /died holding/.test(e.message),
      );
      vm.recover();
      const vm2 = attachVmalloc(vm.handle, { cpu: 2 });
      const b = vm2.vmalloc(vm.pageSize)!;
      vm2.vfree(b);
      vm2.detach();
      vm.check();
    });
  });
}
