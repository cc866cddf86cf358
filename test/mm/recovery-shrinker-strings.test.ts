/**
 * Two structures recovery reaches besides the areas: the vmap-node shrinker enters the
 * recovery gate (a pool lock held by a dead cpu is recovered from, and the scan goes on), and
 * the interned caller names stay consistent when a worker dies holding strings_lock, even
 * half-way through adding a name.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createVmalloc, type Vmalloc } from '../../src/index.js';
import type { VmContext } from '../../src/mm/shared-state.js';

const ctxOf = (vm: Vmalloc): VmContext => (vm as unknown as { ctx: VmContext }).ctx;

/** Fills the nodes' pools: areas freed together past lazy_max_pages(), so a drain refills. */
function fillPools(vm: Vmalloc): void {
  const addrs: number[] = [];
  const pages = vm.stats().lazyMaxPages / 256 + 8;
  for (let k = 0; k < pages; k++) addrs.push(vm.getVmArea(255 * vm.pageSize)!.addr);
  for (const a of addrs) vm.vfree(a);
}

describe('the shrinker and recovery (nodes)', () => {
  test('a pool lock held by a dead cpu: scan() recovers and goes on', () => {
    const vm = createVmalloc({ nrCpus: 4, logger: null, design: 'nodes', lockTimeoutMs: 600_000 });
    const keep = vm.vmalloc(5 * vm.pageSize)!;
    vm.writeU8(keep, 99);
    fillPools(vm);
    assert.ok(vm.shrinker.count() > 0, 'the drain filled the pools');
    const poolLocks = ctxOf(vm).allLocks.filter((l) => l.name === '&vn->pool_lock');
    assert.ok(poolLocks.length > 0);
    for (const l of poolLocks) l.lock(1); // cpu 1, never attached, takes them and dies
    vm.markCpuDead(1);
    // The recovery frees every pooled area; the retried scan finds nothing left to release.
    assert.equal(vm.shrinker.scan(), 0);
    for (const l of poolLocks) assert.equal(l.owner(), -1, 'released by the recovery');
    assert.equal(vm.shrinker.count(), 0);
    vm.check();
    assert.equal(vm.readU8(keep), 99);
    fillPools(vm);
    assert.ok(vm.shrinker.scan() > 0, 'the shrinker works after the recovery');
    vm.vfree(keep);
    vm.purge();
    vm.check();
  });
});

for (const design of ['nodes', 'global'] as const) {
  describe(`caller names and dead workers (${design})`, () => {
    test('strings_lock held by a dead cpu: a new name is added after recovering', () => {
      const vm = createVmalloc({ nrCpus: 4, logger: null, design, lockTimeoutMs: 600_000 });
      const a = vm.vmalloc(vm.pageSize, { caller: 'first_caller+0x1/0x2' })!;
      const strings = ctxOf(vm).allLocks.find((l) => l.name === 'strings_lock')!;
      strings.lock(2);
      vm.markCpuDead(2);
      const b = vm.vmalloc(vm.pageSize, { caller: 'second_caller+0x3/0x4' })!;
      assert.equal(strings.owner(), -1);
      const info = vm.vmallocinfo();
      assert.match(info, /first_caller\+0x1\/0x2/);
      assert.match(info, /second_caller\+0x3\/0x4/);
      vm.vfree(a);
      vm.vfree(b);
      vm.check();
    });

    test('an add stopped before it was published leaves no trace in the next name', () => {
      const vm = createVmalloc({ nrCpus: 2, logger: null, design });
      const a = vm.vmalloc(vm.pageSize, { caller: 'before+0x0/0x1' })!;
      // What a worker killed inside StringTable.append() leaves: bytes written and the words
      // moved past them (offset and byte count), the entry count not raised.
      const buffers = ctxOf(vm).strings.buffers;
      const meta = new Int32Array(buffers.meta);
      const offsets = new Int32Array(buffers.offsets);
      const count = meta[0]!;
      new Uint8Array(buffers.bytes).set(new TextEncoder().encode('GARBAGE'), offsets[count]!);
      offsets[count + 1] = offsets[count]! + 7;
      meta[1] = offsets[count]! + 7;
      const b = vm.vmalloc(vm.pageSize, { caller: 'after+0x0/0x1' })!;
      const info = vm.vmallocinfo();
      assert.match(info, / after\+0x0\/0x1 /);
      assert.doesNotMatch(info, /GARBAGE/);
      assert.match(info, / before\+0x0\/0x1 /);
      vm.vfree(a);
      vm.vfree(b);
      vm.check();
    });
  });
}
