/**
 * Locks in shared memory with real worker threads: mutual exclusion under contention,
 * lock_stat counts, and a waiter that gives up (EOWNERDEAD once the holder's cpu is marked dead,
 * ETIMEDOUT after the table's timeout) instead of hanging; the same through the Vmalloc API
 * when a worker dies holding a lock or in the middle of vmalloc/vfree.
 * Every wait is on a condition (a message, an event, a shared word); durations are printed,
 * never asserted as upper bounds, so a loaded machine cannot fail them.
 */

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { VmallocError, createVmalloc } from '../../src/index.js';
import { Lock, LockTable } from '../../src/shared/lock.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';
import { testSeed } from '../helpers/rng.js';
import { PAGE } from '../helpers/vm.js';
import {
  C_COUNT,
  C_MAX_INSIDE,
  C_START,
  type LockWorkerData,
  type LockWorkerMessage,
} from '../workers/lock-protocol.js';
import { opsAfterDeath, type OpOutcome } from '../workers/vm-ops.js';
import { next, until } from './worker-wait.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const timeout = WORKER_TEST_TIMEOUT_MS;

/**
 * Releases `workers` at once (they wait for counters[C_START] after saying 'online'), waits for
 * each one's 'done', and terminates them all whatever happened.
 */
async function startTogether(workers: Worker[], counters: Int32Array): Promise<void> {
  try {
    const done = workers.map((w) => next(w, 'done'));
    await Promise.all(workers.map((w) => once(w, 'online')));
    Atomics.store(counters, C_START, 1);
    Atomics.notify(counters, C_START);
    await Promise.all(done);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function lockWorker(data: LockWorkerData): Worker {
  return new Worker(new URL('../workers/lock-worker.js', import.meta.url), { workerData: data });
}

type Result = Extract<LockWorkerMessage, { type: 'result' }>;

describe('Lock between workers', () => {
  test(
    'mutual exclusion: 4 workers x 200000 increments of a plain counter',
    { timeout },
    async () => {
      const table = LockTable.create(1, true, 4);
      table.setTimeout(WORKER_LOCK_TIMEOUT_MS);
      const counters = new SharedArrayBuffer(16);
      const c = new Int32Array(counters);
      const workers = [0, 1, 2, 3].map((cpu) =>
        lockWorker({
          locks: table.buffer as SharedArrayBuffer,
          index: 0,
          name: 'test_lock',
          cpu,
          mode: 'count',
          iters: 200_000,
          counters,
        }),
      );
      await startTogether(workers, c);
      assert.equal(c[C_COUNT], 800_000, 'no increment lost');
      assert.equal(c[C_MAX_INSIDE], 1, 'never two holders inside');
      assert.equal(new Lock(table, 0, 'test_lock').isLocked(), false);
    },
  );

  test('lock_stat in one thread: acquisitions, no contention, hold time; off counts nothing', () => {
    const table = LockTable.create(2, true, 2);
    const lock = new Lock(table, 1, 'test_lock');
    table.setStats(true);
    for (let k = 0; k < 1000; k++) {
      lock.lock(0);
      assert.equal(lock.owner(), 0);
      lock.unlock();
    }
    assert.equal(lock.owner(), -1);
    let st = table.stat(1, 'test_lock');
    assert.equal(st.name, 'test_lock');
    assert.equal(st.acquisitions, 1000);
    assert.equal(st.contentions, 0);
    assert.equal(st.conBounces, 0);
    assert.equal(st.acqBounces, 0, 'always the same cpu');
    assert.equal(st.waitTotal, 0);
    assert.ok(st.holdTotal > 0, `holdTotal ${st.holdTotal}`);
    assert.ok(st.holdMax >= st.holdMin && st.holdMax <= st.holdTotal);
    assert.deepEqual(table.stat(0, 'other'), { ...table.stat(0, 'other'), acquisitions: 0 });

    // Another cpu takes it: each change of cpu is a bounce.
    for (const cpu of [1, 1, 0, 1]) {
      lock.lock(cpu);
      lock.unlock();
    }
    assert.ok(lock.tryLock(1));
    assert.equal(lock.tryLock(0), false, 'held');
    lock.unlock();
    st = table.stat(1, 'test_lock');
    assert.equal(st.acquisitions, 1005, 'a failed tryLock is not an acquisition');
    assert.equal(st.acqBounces, 3, '0 -> 1, 1 -> 0, 0 -> 1');
    assert.equal(st.contentions, 0);

    table.setStats(false);
    for (let k = 0; k < 100; k++) {
      lock.lock(k & 1);
      lock.unlock();
    }
    assert.deepEqual(table.stat(1, 'test_lock'), st, 'stats off: nothing counted');
    table.resetStats();
    const zero = table.stat(1, 'test_lock');
    assert.deepEqual(
      [zero.acquisitions, zero.contentions, zero.acqBounces, zero.holdTotal],
      [0, 0, 0, 0],
    );
  });

  test(
    'lock_stat with two workers contending: contentions counted, bounces bounded',
    { timeout },
    async () => {
      // The main thread (cpu 2) holds the lock when the workers start and lets go only once one
      // of them waits for it: at least one contended acquisition, whatever the scheduling.
      const table = LockTable.create(1, true, 3);
      table.setTimeout(WORKER_LOCK_TIMEOUT_MS);
      table.setStats(true);
      const lock = new Lock(table, 0, 'test_lock');
      const counters = new SharedArrayBuffer(16);
      const c = new Int32Array(counters);
      lock.lock(2);
      const workers = [0, 1].map((cpu) =>
        lockWorker({
          locks: table.buffer as SharedArrayBuffer,
          index: 0,
          name: 'test_lock',
          cpu,
          mode: 'stall',
          iters: 2000,
          holdUs: 20,
          gapUs: 30,
          counters,
        }),
      );
      const started = startTogether(workers, c);
      started.catch(() => undefined); // (awaited below; a failure meanwhile is not unhandled)
      try {
        await until(() => lock.hasWaiters(), 'a worker waiting for the lock');
      } finally {
        lock.unlock();
      }
      await started;
      assert.equal(c[C_COUNT], 4000);
      assert.equal(c[C_MAX_INSIDE], 1);
      const st = table.stat(0, 'test_lock');
      console.log(`two workers contending: ${JSON.stringify(st)}`);
      assert.equal(st.acquisitions, 4001, 'every acquisition counted exactly (the main one too)');
      assert.ok(st.contentions > 0, 'a worker waited for the lock');
      assert.ok(st.conBounces > 0, 'it waited for another cpu');
      assert.ok(st.contentions <= st.acquisitions);
      assert.ok(st.conBounces <= st.contentions);
      assert.ok(st.conBounces <= st.acqBounces && st.acqBounces <= st.acquisitions);
      assert.ok(st.acqBounces > 0, 'the lock went from one cpu to the other');
      assert.ok(st.waitTotal > 0 && st.waitMax >= st.waitMin && st.waitMax <= st.waitTotal);
      assert.ok(st.holdTotal >= 4000 * 20 * 0.9, `each hold is about 20 us: ${st.holdTotal}`);
    },
  );

  for (const hold of ['spin', 'block'] as const) {
    test(
      `dead holder (${hold}): waiters give up with EOWNERDEAD once its cpu is marked dead`,
      { timeout },
      async () => {
        const table = LockTable.create(1, true, 4);
        table.setTimeout(WORKER_LOCK_TIMEOUT_MS); // (EOWNERDEAD, however slowly it comes)
        const locks = table.buffer as SharedArrayBuffer;
        const base = { locks, index: 0, name: 'test_lock' };
        const holder = lockWorker({ ...base, cpu: 1, mode: 'hold', hold });
        const others: Worker[] = [];
        try {
          await next(holder, 'locked');
          assert.equal(new Lock(table, 0, 'test_lock').owner(), 1);
          const waiter = lockWorker({ ...base, cpu: 2, mode: 'take' });
          others.push(waiter);
          const result = next<Result>(waiter, 'result');
          await next(waiter, 'waiting');
          // The waiter is in lock(), past its spins: it marked the lock contended.
          const lock = new Lock(table, 0, 'test_lock');
          await until(() => lock.hasWaiters(), 'the waiter in lock()');
          await holder.terminate();
          table.markCpuDead(1);
          const marked = performance.now();
          const r = await result;
          const afterMark = performance.now() - marked;
          assert.equal(r.ok, false);
          assert.equal(r.code, 'EOWNERDEAD', r.message);
          assert.match(r.message!, /test_lock/);
          assert.match(r.message!, /cpu 1\b/);
          console.log(`dead holder (${hold}): gave up ${afterMark.toFixed(0)} ms after the mark`);
          // A waiter arriving later gives up as soon as it sleeps once.
          const late = lockWorker({ ...base, cpu: 3, mode: 'take' });
          others.push(late);
          const r2 = await next<Result>(late, 'result');
          assert.equal(r2.code, 'EOWNERDEAD', r2.message);
          console.log(`dead holder (${hold}): a later waiter gave up after ${r2.ms.toFixed(0)} ms`);
          assert.equal(new Lock(table, 0, 'test_lock').owner(), 1, 'the dead cpu still holds it');
        } finally {
          await Promise.all([holder, ...others].map((w) => w.terminate()));
        }
      },
    );
  }

  test(
    'holder alive but never releasing: the waiter gives up with ETIMEDOUT after the timeout',
    { timeout },
    async () => {
      const table = LockTable.create(1, true, 4);
      table.setTimeout(300);
      const base = { locks: table.buffer as SharedArrayBuffer, index: 0, name: 'test_lock' };
      const holder = lockWorker({ ...base, cpu: 1, mode: 'hold', hold: 'spin' });
      const others: Worker[] = [];
      try {
        await next(holder, 'locked');
        const waiter = lockWorker({ ...base, cpu: 2, mode: 'take' });
        others.push(waiter);
        const r = await next<Result>(waiter, 'result');
        assert.equal(r.ok, false);
        assert.equal(r.code, 'ETIMEDOUT', r.message);
        assert.match(r.message!, /Cannot take test_lock: waited \d+ ms for it, held by cpu 1;/);
        console.log(`ETIMEDOUT after ${r.ms.toFixed(0)} ms (timeout 300)`);
        assert.ok(r.ms >= 300, 'not before the timeout');
      } finally {
        await Promise.all([holder, ...others].map((w) => w.terminate()));
      }
    },
  );

  test(
    'a waiter that waited 10 ms gets the lock handed over: no barging past it',
    { timeout },
    async () => {
      const table = LockTable.create(1, true, 4);
      table.setTimeout(WORKER_LOCK_TIMEOUT_MS);
      const lock = new Lock(table, 0, 'test_lock');
      const base = { locks: table.buffer as SharedArrayBuffer, index: 0, name: 'test_lock' };
      lock.lock(0);
      // The worker blocks in lock(), asks for a hand-off, and once it has the lock keeps it.
      const waiter = lockWorker({ ...base, cpu: 2, mode: 'hold', hold: 'block' });
      try {
        await until(() => lock.handoffRequested() === 2, 'the hand-off request');
        const locked = next(waiter, 'locked');
        lock.unlock();
        assert.equal(lock.owner(), 2, 'unlock passed the lock to the starving waiter');
        assert.equal(lock.tryLock(0), false, 'the releasing thread cannot take it back');
        assert.equal(lock.handoffRequested(), -1);
        await locked;
        assert.equal(lock.owner(), 2);
      } finally {
        await waiter.terminate();
      }
    },
  );

  test('a waiter that gives up withdraws its hand-off request', { timeout }, async () => {
    const table = LockTable.create(1, true, 4);
    table.setTimeout(WORKER_LOCK_TIMEOUT_MS); // long enough to ask for the hand-off first
    const lock = new Lock(table, 0, 'test_lock');
    const base = { locks: table.buffer as SharedArrayBuffer, index: 0, name: 'test_lock' };
    lock.lock(0);
    const waiter = lockWorker({ ...base, cpu: 3, mode: 'take' });
    try {
      const result = next<Result>(waiter, 'result');
      await until(() => lock.handoffRequested() === 3, 'the hand-off request');
      table.setTimeout(1); // now give up, at the end of the current sleep slice
      const r = await result;
      assert.equal(r.code, 'ETIMEDOUT');
      assert.equal(lock.handoffRequested(), -1, 'withdrawn');
      lock.unlock();
      assert.equal(lock.isLocked(), false, 'released, not handed to the waiter that left');
      assert.equal(lock.tryLock(0), true);
      lock.unlock();
    } finally {
      await waiter.terminate();
    }
  });
});

describe('dead workers through the Vmalloc API', () => {
  /** A worker (cpu 1) that takes free_vmap_area_lock (lock slot 0) and never lets it go. */
  async function holdFreeLock(vm: ReturnType<typeof createVmalloc>): Promise<Worker> {
    const w = lockWorker({
      locks: vm.handle.locks as SharedArrayBuffer,
      index: 0,
      name: 'free_vmap_area_lock',
      cpu: 1,
      mode: 'hold',
      hold: 'spin',
    });
    await next(w, 'locked');
    return w;
  }

  test(
    'watchWorker: a worker that dies holding free_vmap_area_lock: the next vmalloc finds it dead (EOWNERDEAD inside), recovers and succeeds',
    { timeout },
    async () => {
      const vm = createVmalloc({
        nrCpus: 4,
        logger: null,
        lockTimeoutMs: WORKER_LOCK_TIMEOUT_MS, // (the dead holder is found, however slowly)
        lockStat: true,
      });
      const w = await holdFreeLock(vm);
      const exit = once(w, 'exit');
      vm.watchWorker(w, 1);
      try {
        const held = vm.lockStats().find((s) => s.name === 'free_vmap_area_lock')!;
        assert.equal(held.acquisitions, 1, 'slot 0 is free_vmap_area_lock');
        await w.terminate();
        await exit;
        const t0 = performance.now();
        const a = vm.vmalloc(PAGE);
        assert.ok(a !== null, 'vmalloc goes on after the recovery');
        vm.check();
        vm.vfree(a);
        vm.check();
        console.log(`recovered and allocated after ${(performance.now() - t0).toFixed(0)} ms`);
      } finally {
        await w.terminate();
      }
    },
  );

  test(
    'without watchWorker the same vmalloc fails with ETIMEDOUT after lockTimeoutMs',
    { timeout },
    async () => {
      const vm = createVmalloc({ nrCpus: 4, logger: null, lockTimeoutMs: 300 });
      const w = await holdFreeLock(vm);
      try {
        await w.terminate();
        const t0 = performance.now();
        assert.throws(
          () => vm.vmalloc(PAGE),
          (e: unknown) => e instanceof VmallocError && e.code === 'ETIMEDOUT',
        );
        const ms = performance.now() - t0;
        console.log(`ETIMEDOUT after ${ms.toFixed(0)} ms (lockTimeoutMs 300)`);
        assert.ok(ms >= 300, 'not before the timeout');
      } finally {
        await w.terminate();
      }
    },
  );

  test(
    'a worker killed in the middle of vmalloc/vfree: later operations end, never hang',
    { timeout },
    async () => {
      const seed = testSeed('killed worker');
      const churnUrl = new URL('../workers/vm-churn-worker.js', import.meta.url);
      const acceptable = (o: OpOutcome): boolean =>
        o.ok || o.code === 'EOWNERDEAD' || o.code === 'ETIMEDOUT';
      for (const [round, delay] of [2, 10, 25, 60, 120].entries()) {
        const vm = createVmalloc({ nrCpus: 4, logger: null, lockTimeoutMs: 2000 });
        const w = new Worker(churnUrl, {
          workerData: { handle: vm.handle, cpu: 1, mode: 'churn', seed: seed + round },
        });
        vm.watchWorker(w, 1);
        const exit = once(w, 'exit');
        await next(w, 'running');
        // Not a wait for anything: the kill lands at a different point of the churn each round,
        // and every outcome below is accepted whatever the point.
        await sleep(delay);
        await w.terminate();
        await exit;
        // First from another worker, under a time bound the main thread can enforce.
        const probe = new Worker(churnUrl, {
          workerData: { handle: vm.handle, cpu: 2, mode: 'probe', seed },
        });
        let probed: OpOutcome[];
        try {
          probed = (await next<{ type: 'outcomes'; outcomes: OpOutcome[] }>(probe, 'outcomes'))
            .outcomes;
        } finally {
          await probe.terminate();
        }
        // Then in the main thread (cpu 0).
        const t0 = performance.now();
        const main = opsAfterDeath(vm);
        const mainMs = performance.now() - t0;
        const show = (o: OpOutcome[]): string =>
          o.map((x) => `${x.op}: ${x.ok ? 'ok' : x.code} ${x.ms.toFixed(0)}ms`).join(', ');
        console.log(`killed after ${delay} ms: probe ${show(probed)}; main ${show(main)}`);
        console.log(
          `killed after ${delay} ms: main thread's operations took ${mainMs.toFixed(0)} ms`,
        );
        for (const o of [...probed, ...main]) {
          assert.ok(acceptable(o), `${o.op}: ${o.code} ${o.message}`);
        }
      }
    },
  );
});
