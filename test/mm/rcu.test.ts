/**
 * kvfree_rcu and grace periods in one thread: a second Vmalloc attached in this thread as
 * another cpu plays the worker that makes no call (it holds every grace period until it
 * passes a quiescent state, goes offline or detaches). Batching, rcuBarrier, synchronizeRcu,
 * the drain of a partial batch, the waits that time out on a cpu that never passes a
 * quiescent state (state unchanged), and pending areas counted busy by check, stats and
 * vmallocinfo; every design.
 * Real worker threads: test/workers/rcu.test.ts.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  attachVmalloc,
  createVmalloc,
  DESIGN_NAMES,
  VmallocError,
  type Vmalloc,
} from '../../src/index.js';
import { KVFREE_BATCH, KVFREE_DRAIN_QS, KVFREE_SLOTS } from '../../src/mm/rcu.js';
import { PAGE, snapshot } from '../helpers/vm.js';

function make(design: string, lockTimeoutMs = 10_000): Vmalloc {
  return createVmalloc({
    design: design as 'nodes',
    nrCpus: 2,
    physicalMemory: 64 * 2 ** 20,
    logger: null,
    lockTimeoutMs,
  });
}

/** Allocates `n` one-page areas, writes each, queues each with kvfreeRcu. */
function queue(vm: Vmalloc, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = vm.vmalloc(PAGE)!;
    vm.writeU8(p + 16, 0x61);
    vm.kvfreeRcu(p);
    out.push(p);
  }
  return out;
}

for (const design of DESIGN_NAMES) {
  describe(`kvfree_rcu [${design}]`, () => {
    test('alone: a full batch is freed at the call that closes it; rcuBarrier frees the rest', () => {
      const vm = make(design);
      const first = queue(vm, KVFREE_BATCH - 1);
      let st = vm.stats();
      assert.equal(st.rcuPending, KVFREE_BATCH - 1, 'a partial batch waits');
      assert.equal(st.rcuBatches, 0);
      assert.equal(st.busyAreas, KVFREE_BATCH - 1, 'pending areas are busy');
      assert.equal(vm.findVmArea(first[0]!)!.addr, first[0]);
      assert.match(vm.vmallocinfo(), /kvfree_rcu|vmalloc/);
      vm.check();
      queue(vm, 1);
      st = vm.stats();
      // The only attached cpu is at a quiescent state when the batch closes: the grace
      // period it starts ends at once, and the batch is freed before the call returns.
      assert.equal(st.rcuPending, 0);
      assert.equal(st.rcuBatches, 1);
      assert.equal(st.rcuGracePeriods, 1);
      assert.equal(st.rcuFreed, KVFREE_BATCH);
      queue(vm, 5);
      vm.rcuBarrier();
      st = vm.stats();
      assert.equal(st.rcuPending, 0);
      assert.equal(st.rcuQueued, KVFREE_BATCH + 5);
      assert.equal(st.rcuFreed, KVFREE_BATCH + 5);
      assert.equal(st.busyAreas, 0);
      assert.equal(st.pagesUsed, 0);
      vm.check();
      vm.rcuBarrier(); // nothing pending: returns
    });

    test('a cpu that makes no call holds the grace period; its quiescent state releases it', () => {
      const vm = make(design);
      const other = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      const areas = queue(vm, KVFREE_BATCH);
      for (let i = 0; i < 50; i++) vm.vfree(vm.vmalloc(PAGE)); // cpu 0 passes many states
      let st = vm.stats();
      assert.equal(st.rcuPending, KVFREE_BATCH, 'nothing freed before cpu 1 passed a state');
      assert.equal(st.rcuBatches, 1);
      for (const a of areas) assert.equal(vm.readU8(a + 16), 0x61, 'still mapped, still ours');
      other.rcuQuiescent();
      assert.equal(vm.stats().rcuPending, KVFREE_BATCH, 'freed at a call of a cpu, not at once');
      vm.vfree(vm.vmalloc(PAGE));
      st = vm.stats();
      assert.equal(st.rcuPending, 0);
      assert.equal(st.busyAreas, 0);
      vm.check();
      other.detach();
    });

    test('a detached cpu and an offline one hold no grace period', () => {
      const vm = make(design);
      const other = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      other.rcuOffline();
      queue(vm, KVFREE_BATCH);
      assert.equal(vm.stats().rcuPending, 0, 'offline');
      other.rcuOnline();
      queue(vm, KVFREE_BATCH);
      assert.equal(vm.stats().rcuPending, KVFREE_BATCH, 'online again: held');
      other.detach();
      vm.vfree(vm.vmalloc(PAGE));
      assert.equal(vm.stats().rcuPending, 0, 'detached');
      vm.check();
    });

    test('a call of the holding cpu that frees nothing still ends its read-side section', () => {
      const vm = make(design);
      const other = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      queue(vm, KVFREE_BATCH);
      other.vfree(other.vmalloc(PAGE)); // a state-changing call's exit is a quiescent state
      vm.rcuQuiescent();
      assert.equal(vm.stats().rcuPending, 0);
      other.detach();
    });

    test('synchronizeRcu and rcuBarrier wait for a grace period they drive themselves', () => {
      const vm = make(design);
      const other = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      other.rcuOffline();
      queue(vm, 3);
      vm.synchronizeRcu(); // a grace period passes; the partial batch is not closed by it
      assert.equal(vm.stats().rcuPending, 3);
      vm.rcuBarrier();
      assert.equal(vm.stats().rcuPending, 0);
      other.detach();
      vm.check();
    });

    test('a partial batch closes after KVFREE_DRAIN_QS quiescent states of its cpu', () => {
      const vm = make(design);
      queue(vm, 2);
      for (let i = 0; i < KVFREE_DRAIN_QS; i++) vm.rcuQuiescent();
      assert.equal(vm.stats().rcuPending, 0);
      assert.equal(vm.stats().rcuBatches, 1);
    });

    test('detach closes the batch; another cpu frees it after its grace period', () => {
      const vm = make(design);
      const worker = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      queue(worker, 4);
      assert.equal(vm.stats().rcuPending, 4);
      worker.detach(); // closes the batch; cpu 0 has not passed a state since: it waits
      assert.equal(vm.stats().rcuPending, 4);
      vm.rcuBarrier();
      assert.equal(vm.stats().rcuPending, 0);
      assert.equal(vm.stats().busyAreas, 0);
      vm.check();
    });

    test('waiting on a cpu that never passes a state times out, naming it; nothing changes', () => {
      const vm = make(design, 200);
      const other = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      queue(vm, 3);
      const before = snapshot(vm);
      for (const call of [() => vm.rcuBarrier(), () => vm.synchronizeRcu()]) {
        assert.throws(call, (e: unknown) => {
          assert.ok(e instanceof VmallocError);
          assert.equal(e.code, 'ETIMEDOUT');
          assert.match(e.message, /cpu 1 made no call/);
          assert.match(e.message, /must/);
          return true;
        });
      }
      // rcuBarrier closed the partial batch (it waits now): only that differs.
      assert.equal(vm.stats().rcuPending, 3);
      // Every batch waiting: kvfreeRcu waits for the oldest, times out, changes nothing.
      queue(vm, (KVFREE_SLOTS - 1) * KVFREE_BATCH); // slot 0 holds the 3 above
      const p = vm.vmalloc(PAGE)!;
      const full = snapshot(vm);
      assert.throws(() => vm.kvfreeRcu(p), { code: 'ETIMEDOUT' });
      assert.equal(snapshot(vm), full);
      assert.notEqual(before, full);
      other.detach();
      vm.kvfreeRcu(p); // no cpu holds it now: frees the oldest batch, queues p
      vm.rcuBarrier();
      assert.equal(vm.stats().rcuPending, 0);
      assert.equal(vm.stats().busyAreas, 0);
      vm.check();
    });
  });
}

test('checked mode: check() verifies the batches after every call', () => {
  const vm = createVmalloc({ nrCpus: 1, checkEveryOp: true, logger: null });
  queue(vm, KVFREE_BATCH + 3);
  vm.rcuBarrier();
  assert.equal(vm.stats().rcuPending, 0);
});
