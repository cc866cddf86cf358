/**
 * recover() keeps what the parts added after the recovery issue own: a percpu chunk's pages, the
 * frames vm_map_ram maps (small, from a vmap block, and large, an area of its own), and a
 * pending kvfree_rcu area; their memory reads back and everything can be freed afterwards.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createVmalloc } from '../../src/index.js';

for (const design of ['nodes', 'global'] as const) {
  describe(`recover() with percpu, vm_map_ram and kvfree_rcu state (${design})`, () => {
    test('every kept mapping reads back, check() passes, and everything frees', () => {
      const vm = createVmalloc({ nrCpus: 2, logger: null, design });
      const p = vm.allocPercpu(64, 8);
      assert.notEqual(p, null);
      vm.writeU8(vm.perCpuPtr(p!, 1), 77);
      const small = vm.allocPages(3);
      const m = vm.vmMapRam(small, 3)!;
      vm.writeU8(m + vm.pageSize, 55);
      const big = vm.allocPages(70);
      const mb = vm.vmMapRam(big, 70)!;
      vm.writeU8(mb + 69 * vm.pageSize, 44);
      const a = vm.vmalloc(8192)!;
      vm.writeU8(a, 9);
      vm.kvfreeRcu(vm.vmalloc(4096)!);
      const before = vm.stats();
      vm.recover();
      vm.check();
      assert.equal(vm.readU8(vm.perCpuPtr(p!, 1)), 77);
      assert.equal(vm.readU8(m + vm.pageSize), 55);
      assert.equal(vm.readU8(mb + 69 * vm.pageSize), 44);
      assert.equal(vm.readU8(a), 9);
      assert.equal(vm.stats().pagesUsed, before.pagesUsed, 'no frame freed or leaked');
      assert.throws(() => vm.freePages(small), /EBUSY|mapped/, 'vm_map_ram still maps them');
      vm.vmUnmapRam(m, 3);
      vm.vmUnmapRam(mb, 70);
      vm.freePercpu(p);
      vm.vfree(a);
      vm.rcuBarrier();
      vm.freePages(small);
      vm.freePages(big);
      vm.purge();
      vm.check();
      assert.equal(vm.stats().rcuPending, 0);
    });
  });
}
