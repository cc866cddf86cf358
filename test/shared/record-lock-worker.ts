/**
 * Worker of record-lock.test.ts: takes locks that live in records (a LockClass of a shared
 * LockTable) as `cpu`; the modes are described in record-lock-protocol.ts.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { LockClass, LockTable } from '../../src/shared/lock.js';
import {
  CTL_RELEASE,
  CTL_START,
  REC_COUNT,
  REC_INSIDE,
  REC_LOCK,
  REC_MAX_INSIDE,
  REC_WORDS,
  type RecordWorkerData,
  type RecordWorkerMessage,
} from './record-lock-protocol.js';

const data = workerData as RecordWorkerData;
const port = parentPort!;
const cls = new LockClass(new LockTable(data.locks), data.classIndex, data.className);
const rec = new Int32Array(data.records);
const ctl = new Int32Array(data.ctl);
const nrRecords = rec.length / REC_WORDS;
const send = (m: RecordWorkerMessage): void => port.postMessage(m);

/** Sleeps until control word `i` is no longer 0 (condition-based: no time limit). */
function waitFor(i: number): void {
  while (Atomics.load(ctl, i) === 0) Atomics.wait(ctl, i, 0);
}

if (data.mode === 'count') {
  waitFor(CTL_START);
  for (let k = 0; k < data.iters!; k++) {
    const r = (k % nrRecords) * REC_WORDS;
    cls.lock(data.cpu, rec, r + REC_LOCK);
    const v = rec[r + REC_COUNT]!; // a plain read ...
    const inside = Atomics.add(rec, r + REC_INSIDE, 1) + 1;
    if (inside > Atomics.load(rec, r + REC_MAX_INSIDE))
      Atomics.store(rec, r + REC_MAX_INSIDE, inside);
    rec[r + REC_COUNT] = v + 1; // ... and a plain write: lost updates if two hold the lock
    Atomics.sub(rec, r + REC_INSIDE, 1);
    cls.unlock(rec, r + REC_LOCK);
  }
  send({ type: 'done' });
} else if (data.mode === 'hold') {
  const at = data.record! * REC_WORDS + REC_LOCK;
  cls.lock(data.cpu, rec, at);
  send({ type: 'locked' });
  if (data.forever) {
    const never = new Int32Array(new SharedArrayBuffer(4));
    for (;;) Atomics.wait(never, 0, 0);
  }
  waitFor(CTL_RELEASE);
  cls.unlock(rec, at);
  send({ type: 'released' });
} else {
  const at = data.record! * REC_WORDS + REC_LOCK;
  const t0 = performance.now();
  send({ type: 'waiting' });
  try {
    cls.lock(data.cpu, rec, at);
    const ms = performance.now() - t0;
    cls.unlock(rec, at);
    send({ type: 'result', ok: true, ms });
  } catch (e) {
    const err = e as { code?: string; message?: string };
    send({
      type: 'result',
      ok: false,
      code: err.code,
      message: err.message,
      ms: performance.now() - t0,
    });
  }
}
