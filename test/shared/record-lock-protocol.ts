/**
 * Data and messages of record-lock-worker.ts (a module of its own: importing the worker would
 * run it), and the layout of the test's records.
 *
 * A record is REC_WORDS Int32 words: the lock (LOCK_WORDS words at REC_LOCK), a plain
 * (non-atomic) counter, the holders inside, the most holders seen inside. Control words
 * (Int32): the start flag, the release flag.
 */

import { LOCK_WORDS } from '../../src/shared/lock.js';

export const REC_LOCK = 0;
export const REC_COUNT = LOCK_WORDS;
export const REC_INSIDE = LOCK_WORDS + 1;
export const REC_MAX_INSIDE = LOCK_WORDS + 2;
export const REC_WORDS = LOCK_WORDS + 4;

export const CTL_START = 0;
export const CTL_RELEASE = 1;
export const CTL_WORDS = 2;

export interface RecordWorkerData {
  /** The LockTable's buffer. */
  locks: SharedArrayBuffer;
  classIndex: number;
  className: string;
  /** The records (REC_WORDS words each). */
  records: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  cpu: number;
  /**
   * count: wait for the start flag, then `iters` times take record k % nrRecords, increment
   * its counter with a plain read and a plain write, release it.
   * hold: take record `record`, report 'locked', then keep it: until the release flag is set
   * (then release it and report 'released'), or forever if `forever`.
   * take: report 'waiting', take record `record`, release it, report how that ended.
   */
  mode: 'count' | 'hold' | 'take';
  record?: number;
  iters?: number;
  forever?: boolean;
}

export type RecordWorkerMessage =
  | { type: 'locked' }
  | { type: 'released' }
  | { type: 'waiting' }
  | { type: 'done' }
  | { type: 'result'; ok: boolean; code?: string; message?: string; ms: number };
