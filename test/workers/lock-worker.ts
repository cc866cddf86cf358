/**
 * Worker of lock.test.ts: takes one lock of a shared LockTable as `cpu`, in one of these modes:
 *
 *   count   wait for the start flag, then `iters` times: lock, increment a plain (non-atomic)
 *           counter with a gap between its read and its write, count holders inside, unlock
 *   hold    lock, report 'locked', then never unlock: spin forever (hold: 'spin') or sleep
 *           forever (hold: 'block')
 *   take    report 'waiting', then lock; report how that ended (and unlock if it was taken)
 *   stall   like count, but hold the lock ~`holdUs` microseconds each time and wait ~`gapUs`
 *           after each release (for contention)
 *
 * Counter words (Int32): 0 the plain counter, 1 holders inside, 2 most holders seen inside,
 * 3 the start flag.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { Lock, LockTable } from '../../src/shared/lock.js';
import {
  C_COUNT,
  C_INSIDE,
  C_MAX_INSIDE,
  C_START,
  type LockWorkerData,
  type LockWorkerMessage,
} from './lock-protocol.js';

const data = workerData as LockWorkerData;
const port = parentPort!;
const lock = new Lock(new LockTable(data.locks), data.index, data.name);
const c = data.counters ? new Int32Array(data.counters) : new Int32Array(4);

function waitForStart(): void {
  while (Atomics.load(c, C_START) === 0) Atomics.wait(c, C_START, 0, 100);
}

function spinUs(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until);
}

if (data.mode === 'count' || data.mode === 'stall') {
  waitForStart();
  const holdUs = data.holdUs ?? 0;
  const gapUs = data.gapUs ?? 0;
  for (let k = 0; k < data.iters!; k++) {
    lock.lock(data.cpu);
    const v = c[C_COUNT]!; // a plain read ...
    const inside = Atomics.add(c, C_INSIDE, 1) + 1;
    if (inside > Atomics.load(c, C_MAX_INSIDE)) Atomics.store(c, C_MAX_INSIDE, inside);
    if (holdUs > 0) spinUs(holdUs);
    c[C_COUNT] = v + 1; // ... and a plain write: lost updates if two hold the lock
    Atomics.sub(c, C_INSIDE, 1);
    lock.unlock();
    if (gapUs > 0) spinUs(gapUs);
  }
  port.postMessage({ type: 'done' } satisfies LockWorkerMessage);
} else if (data.mode === 'hold') {
  lock.lock(data.cpu);
  port.postMessage({ type: 'locked' } satisfies LockWorkerMessage);
  if (data.hold === 'block') {
    const never = new Int32Array(new SharedArrayBuffer(4));
    for (;;) Atomics.wait(never, 0, 0);
  }
  for (;;) spinUs(1000);
} else {
  const t0 = performance.now();
  port.postMessage({
    type: 'waiting',
    at: performance.timeOrigin + t0,
  } satisfies LockWorkerMessage);
  try {
    lock.lock(data.cpu);
    const ms = performance.now() - t0;
    lock.unlock();
    port.postMessage({ type: 'result', ok: true, ms } satisfies LockWorkerMessage);
  } catch (e) {
    const err = e as { code?: string; message?: string };
    port.postMessage({
      type: 'result',
      ok: false,
      code: err.code,
      message: err.message,
      ms: performance.now() - t0,
    } satisfies LockWorkerMessage);
  }
}
