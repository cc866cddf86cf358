/**
 * Grace periods with real worker threads, in both designs: a writer queues areas with
 * kvfreeRcu while a reader worker sits in a read-side section (parked, making no call).
 * Nothing is freed, however many quiescent states the writer passes, until the reader passes
 * one; then the writer's calls free the batch. A reader that dies inside its section holds
 * nothing up: the writer's rcuBarrier() completes and nothing is left pending or leaked. The
 * main thread is offline (rcuOffline) meanwhile, so it holds nothing up either.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createVmalloc } from '../../src/index.js';
import { KVFREE_BATCH } from '../../src/mm/rcu.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';
import type { RcuReport } from './rcu-worker.js';

/** flags word the parked reader waits on (rcu-worker.ts). */
const WAKE = 0;

/** A worker whose messages are awaited one at a time, in order. */
function start(
  handle: unknown,
  cpu: number,
  role: string,
  flags: SharedArrayBuffer,
): { w: Worker; next: () => Promise<RcuReport>; exited: Promise<number> } {
  const w = new Worker(new URL('./rcu-worker.js', import.meta.url), {
    workerData: { handle, cpu, role, flags },
  });
  const queue: RcuReport[] = [];
  const waiting: ((r: RcuReport) => void)[] = [];
  let failure: Error | null = null;
  const fail: ((e: Error) => void)[] = [];
  w.on('message', (m: RcuReport & { message?: string }) => {
    if (m.type === 'error') {
      failure = new Error(`${role}: ${m.message}`);
      fail.splice(0).forEach((f) => f(failure!));
      return;
    }
    const wake = waiting.shift();
    if (wake) wake(m);
    else queue.push(m);
  });
  w.on('error', (e) => fail.splice(0).forEach((f) => f(e)));
  const exited = new Promise<number>((r) => w.on('exit', r));
  const next = (): Promise<RcuReport> =>
    new Promise((resolve, reject) => {
      if (failure) return reject(failure);
      const m = queue.shift();
      if (m) return resolve(m);
      waiting.push(resolve);
      fail.push(reject);
    });
  return { w, next, exited };
}

for (const design of ['global', 'nodes'] as const) {
  describe(`kvfree_rcu with worker threads [${design}]`, () => {
    test(
      'no free before the parked reader passes a quiescent state; a dead reader holds nothing',
      { timeout: WORKER_TEST_TIMEOUT_MS },
      async () => {
        const vm = createVmalloc({
          design,
          nrCpus: 3,
          logger: null,
          lockTimeoutMs: WORKER_LOCK_TIMEOUT_MS,
        });
        vm.rcuOffline();
        const flags = new SharedArrayBuffer(8);
        const reader = start(vm.handle, 2, 'reader', flags);
        vm.watchWorker(reader.w, 2);
        assert.equal((await reader.next()).type, 'ready');
        const writer = start(vm.handle, 1, 'writer', flags);
        vm.watchWorker(writer.w, 1);
        assert.equal((await writer.next()).type, 'ready');

        writer.w.postMessage({ cmd: 'queue', n: KVFREE_BATCH, calls: 300 });
        const held = await writer.next();
        assert.equal(held.type, 'queued');
        assert.equal(held.pending, KVFREE_BATCH, 'held by the parked reader');
        assert.equal(held.batches, 1, 'the full batch closed and waits');
        assert.ok(held.intact, 'every queued area still mapped and unchanged');
        assert.equal(vm.stats().busyAreas, KVFREE_BATCH, 'pending areas are busy');

        Atomics.store(new Int32Array(flags), WAKE, 1);
        Atomics.notify(new Int32Array(flags), WAKE);
        assert.equal((await reader.next()).type, 'quiesced');
        writer.w.postMessage({ cmd: 'drain' });
        const drained = await writer.next();
        assert.equal(drained.pending, 0);
        assert.ok(drained.gracePeriods > held.gracePeriods);

        // The reader parks again, for good: it holds the next batch until it dies.
        writer.w.postMessage({ cmd: 'queue', n: KVFREE_BATCH, calls: 300 });
        const again = await writer.next();
        assert.equal(again.pending, KVFREE_BATCH);
        assert.ok(again.intact);
        await reader.w.terminate();
        await reader.exited;
        writer.w.postMessage({ cmd: 'barrier' });
        assert.equal((await writer.next()).pending, 0, 'rcuBarrier after the reader died');
        writer.w.postMessage({ cmd: 'detach' });
        await writer.exited;

        vm.rcuOnline();
        vm.check();
        const st = vm.stats();
        assert.equal(st.rcuPending, 0);
        assert.equal(st.rcuQueued, 2 * KVFREE_BATCH);
        assert.equal(st.rcuFreed, 2 * KVFREE_BATCH);
        assert.equal(st.busyAreas, 0);
        assert.equal(st.pagesUsed, 0);
      },
    );
  });
}
