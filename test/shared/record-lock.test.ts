/**
 * Locks that live in records (LockClass): the 4 lock words at any index of a plain
 * SharedArrayBuffer record array, taken by real worker threads. Mutual exclusion, independence
 * of two locks of one class, lock_stat per class and per cpu, tryLock, and a waiter that gives
 * up (EOWNERDEAD once the holder's cpu is marked dead, ETIMEDOUT after the table's timeout).
 * Every wait is on a condition (a message, a shared word); no duration is asserted as a bound.
 */

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { VmallocError } from '../../src/errors.js';
import { LOCK_WORDS, LockClass, LockTable } from '../../src/shared/lock.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';
import {
  CTL_RELEASE,
  CTL_START,
  CTL_WORDS,
  REC_COUNT,
  REC_LOCK,
  REC_MAX_INSIDE,
  REC_WORDS,
  type RecordWorkerData,
  type RecordWorkerMessage,
} from './record-lock-protocol.js';
import { next, until } from './worker-wait.js';

type Result = Extract<RecordWorkerMessage, { type: 'result' }>;
const timeout = WORKER_TEST_TIMEOUT_MS;

/** A table with one slot lock and two classes of record locks, and `n` shared records. */
function setup(nrCpus: number, n: number) {
  const table = LockTable.create(1, true, nrCpus, 2);
  table.setTimeout(WORKER_LOCK_TIMEOUT_MS);
  const vb = new LockClass(table, 0, 'vb->lock');
  const records = new SharedArrayBuffer(n * REC_WORDS * 4);
  const ctl = new SharedArrayBuffer(CTL_WORDS * 4);
  return {
    table,
    vb,
    records,
    ctl,
    rec: new Int32Array(records),
    c: new Int32Array(ctl),
    /** Int32 index of record `r`'s lock. */
    at: (r: number): number => r * REC_WORDS + REC_LOCK,
  };
}

function recordWorker(
  s: ReturnType<typeof setup>,
  data: Omit<RecordWorkerData, 'locks' | 'classIndex' | 'className' | 'records' | 'ctl'>,
): Worker {
  return new Worker(new URL('./record-lock-worker.js', import.meta.url), {
    workerData: {
      locks: s.table.buffer as SharedArrayBuffer,
      classIndex: 0,
      className: 'vb->lock',
      records: s.records,
      ctl: s.ctl,
      ...data,
    } satisfies RecordWorkerData,
  });
}

function setFlag(c: Int32Array, i: number): void {
  Atomics.store(c, i, 1);
  Atomics.notify(c, i);
}

describe('LockClass: locks in records', () => {
  test('the record layout reserves LOCK_WORDS words; a zeroed record is unlocked', () => {
    assert.equal(LOCK_WORDS, 4);
    const s = setup(2, 2);
    assert.equal(s.vb.isLocked(s.rec, s.at(0)), false);
    assert.equal(s.vb.owner(s.rec, s.at(0)), -1);
    assert.equal(s.vb.handoffRequested(s.rec, s.at(0)), -1);
    assert.throws(() => new LockClass(s.table, 2, 'x'), RangeError, 'only 2 classes');
    assert.throws(() => s.vb.lock(2, s.rec, s.at(0)), RangeError, 'cpu outside the table');
    assert.equal(s.vb.isLocked(s.rec, s.at(0)), false, 'a refused cpu takes nothing');
  });

  test('two locks of one class are independent; tryLock; owner and isLocked', () => {
    const s = setup(3, 3);
    const { vb, rec, at } = s;
    vb.lock(0, rec, at(0));
    assert.equal(vb.tryLock(1, rec, at(1)), true, 'record 1 is free while record 0 is held');
    assert.equal(vb.owner(rec, at(0)), 0);
    assert.equal(vb.owner(rec, at(1)), 1);
    assert.equal(vb.isLocked(rec, at(2)), false);
    assert.equal(vb.tryLock(2, rec, at(0)), false, 'record 0 is held');
    assert.equal(vb.tryLock(0, rec, at(1)), false, 'record 1 is held');
    vb.unlock(rec, at(0));
    assert.equal(vb.isLocked(rec, at(0)), false);
    assert.equal(vb.isLocked(rec, at(1)), true, 'releasing one leaves the other held');
    vb.unlock(rec, at(1));
    assert.equal(vb.owner(rec, at(1)), -1);
    // The lock words are the record's only: the neighbouring words were never written.
    for (let r = 0; r < 3; r++) assert.equal(rec[r * REC_WORDS + REC_COUNT], 0);
  });

  test('lock_stat per class, per cpu and summed; off counts nothing; reset zeroes', () => {
    const s = setup(3, 3);
    const { table, vb, rec, at } = s;
    const other = new LockClass(table, 1, 'other_lock');
    table.setStats(true);
    for (let k = 0; k < 3; k++) {
      vb.lock(0, rec, at(0));
      vb.unlock(rec, at(0));
    }
    for (let k = 0; k < 2; k++) {
      assert.ok(vb.tryLock(1, rec, at(1)));
      vb.unlock(rec, at(1));
    }
    vb.lock(1, rec, at(0)); // record 0 goes from cpu 0 to cpu 1: a bounce
    assert.equal(vb.tryLock(2, rec, at(0)), false, 'a failed tryLock is not an acquisition');
    vb.unlock(rec, at(0));
    other.lock(2, rec, at(2));
    other.unlock(rec, at(2));

    const sum = table.classStat(0, 'vb->lock');
    assert.equal(sum.name, 'vb->lock');
    assert.equal(sum.acquisitions, 6);
    assert.equal(sum.acqBounces, 1);
    assert.equal(sum.contentions, 0);
    assert.equal(sum.waitTotal, 0);
    assert.ok(sum.holdTotal > 0 && sum.holdMin > 0 && sum.holdMax >= sum.holdMin);
    assert.deepEqual(vb.stat(), sum, 'LockClass.stat() is the table sum');
    const per = [0, 1, 2].map((cpu) => table.classStat(0, 'vb->lock', cpu));
    assert.deepEqual(
      per.map((p) => p.acquisitions),
      [3, 3, 0],
    );
    assert.deepEqual(
      per.map((p) => p.acqBounces),
      [0, 1, 0],
    );
    assert.equal(per[0]!.holdTotal + per[1]!.holdTotal, sum.holdTotal);
    assert.equal(sum.holdMin, Math.min(per[0]!.holdMin, per[1]!.holdMin));
    assert.equal(sum.holdMax, Math.max(per[0]!.holdMax, per[1]!.holdMax));
    assert.equal(table.classStat(1, 'other_lock').acquisitions, 1, 'the other class apart');
    assert.equal(table.classStat(1, 'other_lock', 2).acquisitions, 1);
    assert.equal(table.stat(0, 'slot').acquisitions, 0, 'the slot lock apart');

    table.setStats(false);
    vb.lock(2, rec, at(0));
    vb.unlock(rec, at(0));
    assert.deepEqual(table.classStat(0, 'vb->lock'), sum, 'stats off: nothing counted');
    table.resetStats();
    const zero = table.classStat(0, 'vb->lock');
    assert.deepEqual(
      [zero.acquisitions, zero.acqBounces, zero.holdTotal, zero.holdMin],
      [0, 0, 0, 0],
    );
    assert.throws(() => table.classStat(2, 'x'), RangeError);
    assert.throws(() => table.classStat(0, 'x', 3), RangeError);
  });

  test(
    'mutual exclusion: 3 workers x 60000 increments of plain counters in 4 records',
    { timeout },
    async () => {
      const iters = 60_000;
      const nrRecords = 4;
      const s = setup(3, nrRecords);
      s.table.setStats(true);
      const workers = [0, 1, 2].map((cpu) => recordWorker(s, { cpu, mode: 'count', iters }));
      try {
        const done = workers.map((w) => next(w, 'done'));
        await Promise.all(workers.map((w) => once(w, 'online')));
        setFlag(s.c, CTL_START);
        await Promise.all(done);
      } finally {
        await Promise.all(workers.map((w) => w.terminate()));
      }
      for (let r = 0; r < nrRecords; r++) {
        assert.equal(s.rec[r * REC_WORDS + REC_COUNT], (3 * iters) / nrRecords, `record ${r}`);
        assert.equal(s.rec[r * REC_WORDS + REC_MAX_INSIDE], 1, `never two holders in record ${r}`);
        assert.equal(s.vb.isLocked(s.rec, s.at(r)), false);
      }
      const st = s.table.classStat(0, 'vb->lock');
      console.log(`3 workers on 4 record locks: ${JSON.stringify(st)}`);
      assert.equal(st.acquisitions, 3 * iters, 'every acquisition counted exactly');
      for (const cpu of [0, 1, 2])
        assert.equal(s.table.classStat(0, 'vb->lock', cpu).acquisitions, iters, `cpu ${cpu}`);
      assert.ok(st.contentions <= st.acquisitions);
      assert.ok(st.conBounces <= st.contentions && st.conBounces <= st.acqBounces);
      assert.ok(st.holdMax >= st.holdMin && st.holdMax <= st.holdTotal);
      assert.equal(s.table.classStat(1, 'other').acquisitions, 0);
    },
  );

  test(
    'two locks of one class held at once by two cpus: each keeps its own statistics',
    { timeout },
    async () => {
      const s = setup(3, 2);
      s.table.setStats(true);
      const a = recordWorker(s, { cpu: 1, mode: 'hold', record: 0 });
      const b = recordWorker(s, { cpu: 2, mode: 'hold', record: 1 });
      let both = 0;
      let release = 0;
      try {
        const released = [a, b].map((w) => next(w, 'released'));
        await Promise.all([a, b].map((w) => next(w, 'locked')));
        both = performance.now(); // from here both records are held, each by its cpu
        assert.equal(s.vb.owner(s.rec, s.at(0)), 1);
        assert.equal(s.vb.owner(s.rec, s.at(1)), 2);
        release = performance.now();
        setFlag(s.c, CTL_RELEASE);
        await Promise.all(released);
      } finally {
        await Promise.all([a, b].map((w) => w.terminate()));
      }
      const overlapUs = (release - both) * 1000;
      for (const cpu of [1, 2]) {
        const st = s.table.classStat(0, 'vb->lock', cpu);
        console.log(`cpu ${cpu}: ${JSON.stringify(st)}`);
        assert.equal(st.acquisitions, 1, `cpu ${cpu}`);
        assert.equal(st.contentions, 0, 'different locks: no contention');
        assert.equal(st.acqBounces, 0);
        assert.ok(st.holdTotal > 0, `cpu ${cpu}: its hold was timed (${st.holdTotal} us)`);
        assert.equal(st.holdMin, st.holdTotal);
        assert.equal(st.holdMax, st.holdTotal);
        assert.ok(st.holdTotal >= overlapUs - 1, 'the hold spans the time both were held');
      }
      const sum = s.table.classStat(0, 'vb->lock');
      assert.equal(sum.acquisitions, 2);
      assert.equal(
        sum.holdTotal,
        s.table.classStat(0, 'vb->lock', 1).holdTotal +
          s.table.classStat(0, 'vb->lock', 2).holdTotal,
      );
      assert.equal(s.table.classStat(0, 'vb->lock', 0).acquisitions, 0);
    },
  );

  test(
    'a worker takes one record lock while another cpu holds a second of the class',
    { timeout },
    async () => {
      const s = setup(2, 2);
      s.vb.lock(0, s.rec, s.at(0));
      const w = recordWorker(s, { cpu: 1, mode: 'take', record: 1 });
      try {
        const r = await next<Result>(w, 'result');
        assert.equal(r.ok, true, r.message);
        assert.equal(s.vb.owner(s.rec, s.at(0)), 0, 'record 0 still held by cpu 0');
        assert.equal(s.vb.isLocked(s.rec, s.at(1)), false, 'record 1 released by the worker');
      } finally {
        await w.terminate();
        s.vb.unlock(s.rec, s.at(0));
      }
    },
  );

  test(
    'dead holder: EOWNERDEAD for a waiting worker and for the main thread; ETIMEDOUT while it lives',
    { timeout },
    async () => {
      const s = setup(4, 3);
      const { table, vb, rec, at } = s;
      const holder = recordWorker(s, { cpu: 1, mode: 'hold', record: 2, forever: true });
      const others: Worker[] = [];
      try {
        await next(holder, 'locked');
        assert.equal(vb.owner(rec, at(2)), 1);
        assert.equal(vb.tryLock(0, rec, at(2)), false, 'held by the worker');

        // Holder alive: the main thread gives up after the table's timeout.
        table.setTimeout(50);
        let t0 = performance.now();
        assert.throws(
          () => vb.lock(0, rec, at(2)),
          (e: unknown) =>
            e instanceof VmallocError &&
            e.code === 'ETIMEDOUT' &&
            /Cannot take vb->lock: waited \d+ ms for it, held by cpu 1;/.test(e.message),
        );
        console.log(`ETIMEDOUT after ${(performance.now() - t0).toFixed(0)} ms (timeout 50)`);
        table.setTimeout(WORKER_LOCK_TIMEOUT_MS);

        // A worker waiting for it when the holder dies.
        const waiter = recordWorker(s, { cpu: 2, mode: 'take', record: 2 });
        others.push(waiter);
        const result = next<Result>(waiter, 'result');
        await next(waiter, 'waiting');
        // (The state word already says 2, from the main thread's attempt: wait for the worker's
        // hand-off request instead, which it makes once it has waited in lock() for a while.)
        await until(() => vb.handoffRequested(rec, at(2)) === 2, 'the waiter asks for the lock');
        await holder.terminate();
        table.markCpuDead(1);
        const r = await result;
        assert.equal(r.ok, false);
        assert.equal(r.code, 'EOWNERDEAD', r.message);
        assert.match(r.message!, /vb->lock/);
        assert.match(r.message!, /cpu 1\b/);
        console.log(`the waiting worker gave up after ${r.ms.toFixed(0)} ms`);

        // The main thread, arriving later.
        t0 = performance.now();
        assert.throws(
          () => vb.lock(0, rec, at(2)),
          (e: unknown) =>
            e instanceof VmallocError && e.code === 'EOWNERDEAD' && /cpu 1\b/.test(e.message),
        );
        console.log(`main thread: EOWNERDEAD after ${(performance.now() - t0).toFixed(0)} ms`);
        assert.equal(vb.owner(rec, at(2)), 1, 'the dead cpu still holds it');
        assert.equal(vb.handoffRequested(rec, at(2)), -1, 'the waiters withdrew their requests');
        assert.equal(vb.tryLock(0, rec, at(0)), true, 'other records of the class are unaffected');
        vb.unlock(rec, at(0));
      } finally {
        await Promise.all([holder, ...others].map((w) => w.terminate()));
      }
    },
  );
});
