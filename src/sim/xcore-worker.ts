/**
 * The worker side of the cross-core microbenchmarks of xcore.ts: two of these run at once,
 * role 0 (the one that times) and role 1 (its partner), over one SharedArrayBuffer.
 *
 * Holds: the ping-pong of one cache line (role 0 times batches of round trips), the wake of a
 * sleeper (role 0 notifies role 1, asleep in Atomics.wait, and times until role 1 answers),
 * and, in role 0 alone, the spin budget of the real lock's waiter and an uncontended
 * lock/unlock pair of the real Lock.
 * Invariant: every wait is bounded (DEADLINE_MS): a partner that never comes makes this worker
 * throw, never hang; samples are raw nanoseconds, the statistics are xcore.ts's.
 * Callers: xcore.ts (new Worker, workerData { sab, role, ... }).
 */

import { parentPort, workerData } from 'node:worker_threads';
import { LockTable } from '../shared/lock-table.js';
import { Lock } from '../shared/lock.js';

export interface XcoreJob {
  sab: SharedArrayBuffer;
  role: 0 | 1;
  /** Ping-pong: batches timed, round trips per batch. */
  batches: number;
  rounds: number;
  /** Wakes timed (warm-up ones not counted), and how long the sleeper sleeps first (ns). */
  wakes: number;
  sleepNs: number;
  /** The real lock's spin budget (lock-wait.ts SPIN_LIMIT). */
  spinLimit: number;
  /** Untimed batches and wakes first (the JIT compiles the loops). */
  warm: number;
}

export interface XcoreSamples {
  transferNs: number[];
  wakeNs: number[];
  notifyNs: number[];
  spinNs: number[];
  acquireNs: number[];
  /** Wakes thrown away: the notify found nobody asleep yet. */
  missedWakes: number;
}

// Int32 words, each on its own 128-byte block (no false sharing, no adjacent-line prefetch).
const GO = 0;
const PING = 32;
const WORD = 64;
const ACK = 96;
const PHASE = 128;
const HELD = 160;
// (xcore.ts allocates 192 words.)

const DEADLINE_MS = 120_000;

const job = workerData as XcoreJob;
const WARM = job.warm;
const i32 = new Int32Array(job.sab);
const t0 = performance.now();

/** Spins until word `at` holds `v`; throws past the deadline (a partner gone). */
function until(at: number, v: number): void {
  let k = 0;
  while (Atomics.load(i32, at) !== v) {
    if ((++k & 0xffff) === 0 && performance.now() - t0 > DEADLINE_MS)
      throw new Error(`cross-core benchmark: partner did not answer (word ${at} != ${v})`);
  }
}

/** Both roles arrive before either goes on. */
function barrier(n: number): void {
  Atomics.add(i32, GO, 1);
  until(GO, 2 * n);
}

function pingPong(out: number[]): void {
  let v = 0;
  for (let b = 0; b < WARM + job.batches; b++) {
    const s = performance.now();
    for (let r = 0; r < job.rounds; r++) {
      if (job.role === 0) {
        Atomics.store(i32, PING, ++v);
        until(PING, ++v);
      } else {
        until(PING, ++v);
        Atomics.store(i32, PING, ++v);
      }
    }
    if (b >= WARM) out.push(((performance.now() - s) * 1e6) / (2 * job.rounds));
  }
}

function wakes(wake: number[], notify: number[]): number {
  let missed = 0;
  for (let k = 1; k <= WARM + job.wakes; k++) {
    if (job.role === 1) {
      until(PHASE, k);
      Atomics.wait(i32, WORD, 0, 1000); // returns at once if the waker was first
      Atomics.store(i32, ACK, k);
      continue;
    }
    Atomics.store(i32, WORD, 0);
    Atomics.store(i32, PHASE, k);
    const go = performance.now() + job.sleepNs / 1e6;
    while (performance.now() < go);
    const s = performance.now();
    Atomics.store(i32, WORD, 1);
    const n = Atomics.notify(i32, WORD, 1);
    const m = performance.now();
    until(ACK, k);
    const e = performance.now();
    if (n !== 1) missed++;
    else if (k > WARM) {
      wake.push((e - s) * 1e6);
      notify.push((m - s) * 1e6);
    }
  }
  return missed;
}

/** Role 0 alone: SPIN_LIMIT loads of a held word, as lock-wait.ts's waiter spins (per sample: 100 spins). */
function spins(out: number[]): void {
  Atomics.store(i32, HELD, 1);
  for (let b = 0; b < WARM + job.batches; b++) {
    const s = performance.now();
    let got = 0;
    for (let r = 0; r < 100; r++) {
      for (let spin = 0; spin < job.spinLimit; spin++) {
        if (Atomics.load(i32, HELD) !== 0) continue;
        got += Atomics.compareExchange(i32, HELD, 0, 1) === 0 ? 1 : 0;
        break;
      }
    }
    if (got !== 0) throw new Error('cross-core benchmark: the held word was free');
    if (b >= WARM) out.push(((performance.now() - s) * 1e6) / 100);
  }
}

/** Role 0 alone: the real Lock taken and released, uncontended (per sample: 1000 pairs). */
function pairs(out: number[]): void {
  const lock = new Lock(LockTable.create(1, true, 1), 0, 'xcore');
  for (let b = 0; b < WARM + job.batches; b++) {
    const s = performance.now();
    for (let r = 0; r < 1000; r++) {
      lock.lock(0);
      lock.unlock();
    }
    if (b >= WARM) out.push(((performance.now() - s) * 1e6) / 1000);
  }
}

const out: XcoreSamples = {
  transferNs: [],
  wakeNs: [],
  notifyNs: [],
  spinNs: [],
  acquireNs: [],
  missedWakes: 0,
};
barrier(1);
pingPong(out.transferNs);
barrier(2);
out.missedWakes = wakes(out.wakeNs, out.notifyNs);
if (job.role === 0) {
  spins(out.spinNs);
  pairs(out.acquireNs);
}
parentPort!.postMessage(out);
