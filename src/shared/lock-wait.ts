/**
 * The contended side of the locks of lock.ts: what a thread does when the lock it wants is
 * held.
 *
 * Holds: acquireSlow() (spin, then sleep in slices on the lock word), the hand-off a waiter
 * that starves asks for (STARVE_MS, withdraw()), and the detection of a holder whose worker
 * died or that keeps the lock too long (checkHolder(): EOWNERDEAD, ETIMEDOUT).
 * Invariant: a waiter leaves holding the lock (taken, or handed over to it) or throws; either
 * way its hand-off request is settled (withdrawn, or granted and cleared), so no unlock grants
 * the lock to a waiter that is gone. A waiter takes the lock by writing its cpu into the lock
 * word in the same compare-and-swap (lock-table.ts), so wherever Worker.terminate() stops a
 * thread (between any two statements, as far as this module assumes), a lock it holds names
 * it: its waiters see it dead (EOWNERDEAD) rather than wait out the timeout, and the recovery
 * frees it.
 * Callers: Lock.lock() and LockClass.lock() (src/shared/lock.ts) when their compare-and-swap
 * finds the lock held.
 *
 * Acquire: spin a bounded number of times retrying; then mark the word WAITERS and
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
const OWNER_SHIFT = layout.OWNER_SHIFT;
const STATE_MASK = layout.STATE_MASK;
const LOCKED = layout.LOCKED;
const WAITERS = layout.WAITERS;
const HANDOFF = layout.HANDOFF;
const LAST = layout.LAST;
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
  const mine = (cpu + 1) << OWNER_SHIFT;
  let taken = false;
  // Test and test-and-set: spin on a plain load (the line stays shared in our cache while the
  // holder runs) and try the compare-and-swap only when the lock looks free.
  for (let spin = 0; spin < SPIN_LIMIT; spin++) {
    if (Atomics.load(w, at) !== 0) continue;
    if (Atomics.compareExchange(w, at, 0, mine | LOCKED) === 0) {
      taken = true;
      break;
    }
  }
  if (!taken) sleepUntilHeld(t, w, at, cpu, t0, name);
  w[at + OWNER] = cpu + 1;
  if (stats) account(t.f64, o, w, at, cpu, true, now() - t0);
}

/**
 * Sleeps on the lock word until this waiter holds the lock: taken when it was free (as
 * WAITERS: others may sleep on it, so this holder's release must wake one), or handed to it
 * by an unlock; throws (checkHolder) when the holder is dead or the wait too long. Every
 * write that takes the lock writes this cpu into the lock word with it, so a kill anywhere
 * here leaves the lock free, or naming this cpu, or (a hand-off whose unlocker died before
 * its store) naming the dead unlocker.
 */
function sleepUntilHeld(
  t: LockTable,
  w: Int32Array,
  at: number,
  cpu: number,
  t0: number,
  name: string,
): void {
  const mine = (cpu + 1) << OWNER_SHIFT;
  let asked = false; // this waiter's cpu is in HANDOFF
  for (;;) {
    if (asked && Atomics.load(w, at + HANDOFF) === -(cpu + 1)) break; // handed to us
    let v = Atomics.load(w, at);
    if (v === 0) {
      if (Atomics.compareExchange(w, at, 0, mine | WAITERS) === 0) {
        if (asked) withdraw(w, at, cpu);
        return;
      }
      continue; // (taken meanwhile: look again)
    }
    if ((v & STATE_MASK) === LOCKED) {
      // Mark it: the holder's release must wake a sleeper. Changed meanwhile: look again.
      if (Atomics.compareExchange(w, at, v, v | WAITERS) !== v) continue;
      v |= WAITERS;
    }
    if (!asked && now() - t0 >= STARVE_MS)
      asked = Atomics.compareExchange(w, at + HANDOFF, 0, cpu + 1) === 0;
    sleep(w, at, v);
    if (asked && Atomics.load(w, at + HANDOFF) === -(cpu + 1)) break;
    // (false: handed over to us just as we gave up)
    if (!checkHolder(t, w, at, t0, cpu, asked, name)) break;
  }
  // Handed over: the unlock named us in the lock word, unless it died just after granting;
  // name us (whatever it left) before clearing the grant, so the word never names nobody.
  Atomics.store(w, at, mine | WAITERS);
  Atomics.store(w, at + HANDOFF, 0);
}

/**
 * A waiter that asked for a hand-off took the lock in the ordinary way: it withdraws the
 * request (nobody can grant it while this waiter holds the lock, unless a grant raced with
 * the take: then it is cleared all the same).
 */
function withdraw(w: Int32Array, at: number, cpu: number): void {
  if (Atomics.compareExchange(w, at + HANDOFF, cpu + 1, 0) !== cpu + 1)
    Atomics.store(w, at + HANDOFF, 0);
}

/**
 * One slice of sleep while the lock word is `v`; nothing (a spin) where this thread cannot
 * wait. A word that changed meanwhile (released, handed over) returns at once.
 */
function sleep(w: Int32Array, at: number, v: number): void {
  if (!canBlock || !isSharedBuffer(w.buffer)) return;
  try {
    Atomics.wait(w, at, v, WAIT_SLICE_MS);
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
  const owner = (Atomics.load(w, at) >> OWNER_SHIFT) - 1;
  const dead = owner >= 0 && owner !== cpu && t.isCpuDead(owner);
  const waited = now() - t0;
  if (!dead && waited <= t.timeoutMs) return true;
  // An unlocker granted our request just now: the lock is ours. (A request that is neither
  // ours nor granted was cleared by a recovery's forceRelease(): give up all the same.)
  if (asked && Atomics.compareExchange(w, at + HANDOFF, cpu + 1, 0) === -(cpu + 1)) return false;
  if (dead) {
    throw new VmallocError(
      'EOWNERDEAD',
      `Cannot take ${name}: it is held by cpu ${owner}, whose worker has died; the state it protects may be inconsistent`,
    );
  }
  throw new VmallocError(
    'ETIMEDOUT',
    `Cannot take ${name}: waited ${Math.round(waited)} ms for it, held by cpu ${owner}; its worker may have died or be stuck ` +
      `(lock word ${Atomics.load(w, at)}, previous holder cpu ${w[at + LAST]! - 1}, hand-off word ${Atomics.load(w, at + HANDOFF)})`,
  );
}
