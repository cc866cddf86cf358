/** Data and messages of lock-worker.ts (a module of its own: importing the worker would run it). */

export const C_COUNT = 0;
export const C_INSIDE = 1;
export const C_MAX_INSIDE = 2;
export const C_START = 3;

export interface LockWorkerData {
  locks: SharedArrayBuffer;
  index: number;
  name: string;
  cpu: number;
  mode: 'count' | 'hold' | 'take' | 'stall';
  hold?: 'spin' | 'block';
  iters?: number;
  holdUs?: number;
  /** Microseconds spent outside the lock after each release (stall). */
  gapUs?: number;
  counters?: SharedArrayBuffer;
}

export type LockWorkerMessage =
  | { type: 'locked' }
  | { type: 'waiting'; at: number }
  | { type: 'done' }
  | { type: 'result'; ok: boolean; code?: string; message?: string; ms: number };
