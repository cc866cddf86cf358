/**
 * Waiting on worker threads by condition, for the lock tests: the next message of a type, or a
 * condition on shared memory. The time limits only turn a hang into a failure (see
 * test/helpers/hang-guard.ts); nothing here measures how long anything took.
 */

import type { Worker } from 'node:worker_threads';
import { WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';

/** The next message of `w` of type `type`; rejects when the worker fails, or after `ms`. */
export function next<T extends { type: string }>(
  w: Worker,
  type: T['type'],
  ms = WORKER_TEST_TIMEOUT_MS,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no '${type}' message within ${ms} ms (a hang)`));
    }, ms);
    const onMessage = (m: T): void => {
      if (m.type !== type) return;
      cleanup();
      resolve(m);
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`the worker exited (code ${code}) before sending '${type}'`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
    };
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
  });
}

/**
 * Resolves once `cond` holds, polling it every millisecond from the main thread's event loop
 * (for shared words that change without an Atomics.notify); rejects after `ms` (a hang).
 */
export async function until(
  cond: () => boolean,
  what: string,
  ms = WORKER_TEST_TIMEOUT_MS,
): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms (a hang)`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
