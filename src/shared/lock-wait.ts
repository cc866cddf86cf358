/**
 * The contended side of the locks of lock.ts: what a thread does when the lock it wants is
 * held.
 *
 * Holds: acquireSlow() (spin, then sleep in slices on the state word), the hand-off a waiter
 * that starves asks for (STARVE_MS, endHandoff()), and the detection of a holder whose worker
 * died or that keeps the lock too long (checkHolder(): EOWNERDEAD, ETIMEDOUT).
 * Invariant: a waiter leaves holding the lock (taken, or handed over to it) or throws; either
 * way its hand-off request is settled (withdrawn, or granted and cleared), so no unlock grants
 * the lock to a waiter that is gone. Between taking the lock and recording itself as its
 * owner a waiter makes no call and crosses no loop back edge, the points where
 * Worker.terminate() stops a thread: a killed holder is always named in the owner word, so
 * its waiters see it dead (EOWNERDEAD) rather than wait out the timeout.
 * Callers: Lock.lock() and LockClass.lock() (src/shared/lock.ts) when their compare-and-swap
 * finds the lock held.
 *
 * Acquire: spin a bounded number of times retrying; then mark the word 2 (waiters) and
 * Atomics.wait on it until a release wakes us (Drepper, "Futexes are tricky", mutex 2). After
 * each slice a waiter checks whether the holder's cpu was marked dead (markCpuDead) and how
 * long it has waited. Over memory that is not shared nothing waits: a lock that is already
 * held spins until the timeout.
 */

import { VmallocError } from '../errors.js';
import { isSharedBuffer } from './buffers.js';
import * as layout from './lock-table.js';
import { type LockTable, account, now } from './lock-table.js';

// The lock words and header word used here, bound as this module's own (V8 folds a module's
// own constants but loads imported ones at every use).
const OWNER = layout.OWNER;
const HANDOFF = layout.HANDOFF;
const H_STATS = layout.H_STATS;

/** Spins before sleeping: long enough to ride out a short critical section on another core. */
const SPIN_LIMIT = 200;
/** A sleeping waiter wakes at least this often to check on the holder. */
const WAIT_SLICE_MS = 20;
/**
 * A waiter that has waited this long asks for a hand-off: the next unlock passes the lock to
 * it directly instead of releasing it to whoever grabs it first. Without it a worker that
 * releases and re-takes a lock in a loop keeps a sleeping waiter out (26-42 ms measured, see
 * BENCHMARKS.md). Go's sync.Mutex switches to hand-offs after 1 ms, but Go also gives the
 * waiter the releasing thread's processor; here the waiter may not be running, and the lock
 * idles until the OS schedules it: with 1 ms, 8 workers on 2 CPUs ran the global design 1.5x
 * slower. 10 ms keeps waits near 10-15 ms at no measurable cost.
 */
const STARVE_MS = 10;

/**
 * May this thread block in Atomics.wait? A browser's main thread may not: the first wait that
 * throws turns sleeping into spinning for the rest of the thread's life (module state is per
 * thread).
 */
let canBlock = true;

/** Contended: spin, then sleep until woken, checking on the holder between naps. */
export function acquireSlow(
  t: LockTable,
  w: Int32Array,
  at: number,
  cpu: number,
  o: number,
  name: string,
): void {
  const stats = t.i32[H_STATS] === 1;
  const t0 = now();
  let c = 1;
  // Test and test-and-set: spin on a plain load (the line stays shared in our cache while the
  // holder runs) and try the compare-and-swap only when the lock looks free.
  for (let spin = 0; spin < SPIN_LIMIT; spin++) {
    if (Atomics.load(w, at) !== 0) continue;
    c = Atomics.compareExchange(w, at, 0, 1);
    if (c === 0) break;
  }
  if (c !== 0) {
    if (c !== 2) c = Atomics.exchange(w, at, 2);
    let asked = false; // this waiter's cpu is in HANDOFF
    while (c !== 0) {
      if (asked && Atomics.load(w, at + HANDOFF) === -(cpu + 1)) break; // handed to us
      if (!asked && now() - t0 >= STARVE_MS)
        asked = Atomics.compareExchange(w, at + HANDOFF, 0, cpu + 1) === 0;
      sleep(w, at);
      if (asked && Atomics.load(w, at + HANDOFF) === -(cpu + 1)) break;
      c = Atomics.exchange(w, at, 2);
      // Ours: out at once, not through the loop's back edge, where a Worker.terminate() can
      // stop a thread (as at a call): a lock held with no owner recorded would make its
      // waiters wait out the timeout instead of seeing a dead holder.
      if (c === 0) break;
      // (false: handed over to us just as we gave up; the unlock recorded us as its owner)
      if (!checkHolder(t, w, at, t0, cpu, asked, name)) break;
    }
    w[at + OWNER] = cpu + 1; // (first: endHandoff() is a call)
    if (asked) endHandoff(w, at, cpu, c === 0);
  }
  w[at + OWNER] = cpu + 1;
  if (stats) account(t.f64, o, w, at, cpu, true, now() - t0);
}

/**
 * Settles a waiter's hand-off request once it holds the lock: taken in the ordinary way
 * (`released`), it withdraws the request (nobody can grant it while this waiter holds the
 * lock); handed over, it clears the grant and marks the state 2, held with waiters, whatever
 * the unlock left (3, or the old state if that holder died right after granting), so that
 * its own unlock wakes the next waiter.
 */
function endHandoff(w: Int32Array, at: number, cpu: number, released: boolean): void {
  if (released && Atomics.compareExchange(w, at + HANDOFF, cpu + 1, 0) === cpu + 1) return;
  Atomics.store(w, at + HANDOFF, 0);
  Atomics.store(w, at, 2);
}

/** One slice of sleep on the state word; nothing (a spin) where this thread cannot wait. */
function sleep(w: Int32Array, at: number): void {
  if (!canBlock || !isSharedBuffer(w.buffer)) return;
  try {
    Atomics.wait(w, at, 2, WAIT_SLICE_MS);
  } catch {
    canBlock = false; // a browser's main thread may not wait: spin from now on
  }
}

/**
 * Gives up when the holder's worker is known dead, or after the table's timeout: throws,
 * after withdrawing this waiter's hand-off request. Returns true to keep waiting, false when
 * the lock was handed to this waiter just as it was giving up (it then holds the lock).
 */
function checkHolder(
  t: LockTable,
  w: Int32Array,
  at: number,
  t0: number,
  cpu: number,
  asked: boolean,
  name: string,
): boolean {
  const owner = Atomics.load(w, at + OWNER) - 1;
  const dead = owner >= 0 && owner !== cpu && t.isCpuDead(owner);
  const waited = now() - t0;
  if (!dead && waited <= t.timeoutMs) return true;
  if (asked && Atomics.compareExchange(w, at + HANDOFF, cpu + 1, 0) !== cpu + 1) {
    return false; // an unlocker granted our request: the lock is ours
  }
  if (dead) {
    throw new VmallocError(
      'EOWNERDEAD',
      `Cannot take ${name}: it is held by cpu ${owner}, whose worker has died; the state it protects may be inconsistent`,
    );
  }
  throw new VmallocError(
    'ETIMEDOUT',
    `Cannot take ${name}: waited ${Math.round(waited)} ms for it, held by cpu ${owner}; its worker may have died or be stuck`,
  );
}
