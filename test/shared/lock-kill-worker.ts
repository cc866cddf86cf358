/**
 * Worker of lock-kill.test.ts: takes one lock of a shared LockTable as `cpu`, to be killed
 * (Worker.terminate()) at some point of the lock protocol. Modes:
 *
 *   churn   lock, count (words K_OPS + cpu), unlock, over and over, until the stop word is set
 *           or a lock() throws; then reports {type: 'stopped'} or {type: 'failed', code}
 *   take    lock (waiting for it), report {type: 'locked'}, then hold it forever (asleep)
 *
 * Control words (Int32): K_STOP the stop flag, K_OPS + cpu the operations of cpu.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { Lock, LockTable } from '../../src/shared/lock.js';

export const K_STOP = 0;
export const K_OPS = 4;

export interface LockKillData {
  locks: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  cpu: number;
  mode: 'churn' | 'take';
}

export type LockKillMessage =
  { type: 'locked' } | { type: 'stopped' } | { type: 'failed'; code: string; message: string };

// (Imported by the test for its types and words only: run only as a worker.)
if (parentPort !== null && (workerData as { mode?: string } | null)?.mode !== undefined) {
  const data = workerData as LockKillData;
  const port = parentPort;
  const lock = new Lock(new LockTable(data.locks), 0, 'kill_lock');
  const ctl = new Int32Array(data.ctl);
  if (data.mode === 'take') {
    lock.lock(data.cpu);
    port.postMessage({ type: 'locked' } satisfies LockKillMessage);
    for (;;) Atomics.wait(ctl, K_STOP, Atomics.load(ctl, K_STOP));
  } else {
    try {
      while (Atomics.load(ctl, K_STOP) === 0) {
        lock.lock(data.cpu);
        Atomics.add(ctl, K_OPS + data.cpu, 1);
        lock.unlock();
      }
      port.postMessage({ type: 'stopped' } satisfies LockKillMessage);
    } catch (e) {
      const err = e as { code?: string; message?: string };
      port.postMessage({
        type: 'failed',
        code: err.code ?? '',
        message: err.message ?? String(e),
      } satisfies LockKillMessage);
    }
  }
}
