/**
 * What recovery-fault.test.ts and its worker (recovery-worker.ts) share: the words of the
 * control buffer, the worker's data and its messages.
 */

import type { VmallocHandle } from '../../src/index.js';

/** Words of the test's control buffer. */
export const STOP = 0;
export const FOREVER = 1;
export const VICTIM_OPS = 2;

export interface RecoveryWorkerData {
  handle: VmallocHandle;
  cpu: number;
  role: 'victim' | 'survivor';
  ctl: SharedArrayBuffer;
  seed: number;
  step: number;
  nth: number;
  maxOps: number;
}

export type RecoveryWorkerMessage =
  | { type: 'parked'; step: number }
  | { type: 'unreached' }
  | { type: 'verified'; areas: number; bad: number; ops: number }
  | { type: 'error'; message: string };
