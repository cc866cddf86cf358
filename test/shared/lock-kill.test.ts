/**
 * A lock whose holder is killed (Worker.terminate()) at any point of the lock protocol: the
 * lock is left free, or naming a cpu that is dead (its waiters give up with EOWNERDEAD and the
 * recovery's rule, "free a held lock whose owner is dead or unnamed", frees it), never held
 * while naming nobody (which a waiter cannot tell from a live holder's: it would wait out the
 * timeout, "held by cpu -1", while the recovery waits for it to leave its operation).
 *
 * First every point where a thread can stop inside lock(), unlock() and the waiter's loop,
 * each set up by running the protocol's steps up to it on the lock words in this thread (the
 * steps that complete run the real code); then real kills: a waiter killed after an unlock
 * handed it the lock, an unlock that dies half-way through a hand-off, and workers killed at
 * random moments while two of them churn one lock.
 * Waits are on conditions (messages, shared words); a hang fails by the test's timeout, the
 * lock timeout is long (WORKER_LOCK_TIMEOUT_MS), and no duration is asserted.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { VmallocError } from '../../src/index.js';
import { Lock, LockTable } from '../../src/shared/lock.js';
import { HANDOFF, LOCKED, OWNER, OWNER_SHIFT, WAITERS } from '../../src/shared/lock-table.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';
import { Rng, testSeed } from '../helpers/rng.js';
import { next, until } from './worker-wait.js';
import { K_OPS, K_STOP, type LockKillData, type LockKillMessage } from './lock-kill-worker.js';

const timeout = WORKER_TEST_TIMEOUT_MS;

/** A shared table of one lock for cpus 0..3, with the long lock timeout of worker tests. */
function table1(): { table: LockTable; lock: Lock; w: Int32Array; at: number } {
  const table = LockTable.create(1, true, 4);
  table.setTimeout(WORKER_LOCK_TIMEOUT_MS);
  const lock = new Lock(table, 0, 'kill_lock');
  return { table, lock, w: lock.words, at: lock.at };
}

/** The lock word naming `cpu` in state `state`. */
const word = (cpu: number, state: number): number => ((cpu + 1) << OWNER_SHIFT) | state;

/** What recover() does to a held lock (src/mm/recovery.ts): free it if its owner is dead. */
function recoveryRule(table: LockTable, lock: Lock): void {
  if (!lock.isLocked()) return;
  const owner = lock.owner();
  if (owner < 0 || table.isCpuDead(owner)) lock.forceRelease();
}

/** Takes and releases the lock as `cpu`: 'taken', or the code it threw. */
function takeOnce(lock: Lock, cpu: number): string {
  try {
    lock.lock(cpu);
  } catch (e) {
    if (e instanceof VmallocError) return e.code;
    throw e;
  }
  lock.unlock();
  return 'taken';
}

/**
 * The points where a thread (cpu 1, or the waiter cpu 2 of a hand-off) can stop: each sets
 * the lock up as a stop there leaves it, from a free lock, and gives the cpu the lock then
 * names (-1: free). `dead` are the cpus killed.
 */
interface KillPoint {
  where: string;
  dead: number[];
  named: number;
  leave(lock: Lock, w: Int32Array, at: number): void;
}

const POINTS: KillPoint[] = [
  { where: 'lock(): before its compare-and-swap', dead: [1], named: -1, leave: () => undefined },
  {
    where: 'lock(): after the compare-and-swap, before the owner copy',
    dead: [1],
    named: 1,
    leave: (_l, w, at) => void Atomics.compareExchange(w, at, 0, word(1, LOCKED)),
  },
  {
    where: 'lock(): returned (holding)',
    dead: [1],
    named: 1,
    leave: (l) => l.lock(1),
  },
  {
    where: 'unlock(): owner copy cleared, before the compare-and-swap',
    dead: [1],
    named: 1,
    leave(l, w, at) {
      l.lock(1);
      w[at + OWNER] = 0;
    },
  },
  {
    where: 'unlock() with waiters: owner copy cleared, before the store of 0',
    dead: [1],
    named: 1,
    leave(l, w, at) {
      l.lock(1);
      Atomics.compareExchange(w, at, word(1, LOCKED), word(1, WAITERS)); // (a waiter's mark)
      w[at + OWNER] = 0;
    },
  },
  {
    where: 'unlock() with waiters: stored 0, before the notify',
    dead: [1],
    named: -1,
    leave(l, w, at) {
      l.lock(1);
      Atomics.compareExchange(w, at, word(1, LOCKED), word(1, WAITERS));
      w[at + OWNER] = 0;
      Atomics.store(w, at, 0);
    },
  },
  {
    where: 'unlock() handing over: grant made (hand-off word negated), lock word not rewritten',
    dead: [1],
    named: 1,
    leave(l, w, at) {
      l.lock(1);
      Atomics.compareExchange(w, at, word(1, LOCKED), word(1, WAITERS));
      Atomics.store(w, at + HANDOFF, 3); // cpu 2 asks
      Atomics.compareExchange(w, at + HANDOFF, 3, -3);
    },
  },
  {
    where: 'unlock() handing over: lock word names the waiter, which is killed asleep',
    dead: [1, 2],
    named: 2,
    leave(l, w, at) {
      l.lock(1);
      Atomics.compareExchange(w, at, word(1, LOCKED), word(1, WAITERS));
      Atomics.store(w, at + HANDOFF, 3);
      Atomics.compareExchange(w, at + HANDOFF, 3, -3);
      Atomics.store(w, at, word(2, WAITERS));
    },
  },
  {
    where: 'waiter: took the free lock (compare-and-swap 0 -> it, WAITERS)',
    dead: [1],
    named: 1,
    leave: (_l, w, at) => void Atomics.compareExchange(w, at, 0, word(1, WAITERS)),
  },
  {
    where: 'waiter: handed the lock, named itself, grant not cleared',
    dead: [1],
    named: 1,
    leave(_l, w, at) {
      Atomics.store(w, at, word(1, WAITERS));
      Atomics.store(w, at + HANDOFF, -2);
    },
  },
  {
    where: 'waiter: asked for a hand-off, killed asleep; a live holder then unlocks',
    dead: [1],
    named: 1,
    leave(l, w, at) {
      l.lock(0);
      Atomics.compareExchange(w, at, word(0, LOCKED), word(0, WAITERS));
      Atomics.store(w, at + HANDOFF, 2); // cpu 1's request, left behind
      l.unlock(); // the real unlock grants it to the dead waiter
    },
  },
];

describe('a lock whose holder is killed at any point of the protocol', () => {
  for (const p of POINTS) {
    test(`killed at ${p.where}: ${p.named < 0 ? 'free' : `names cpu ${p.named}, recovered`}`, () => {
      const { table, lock, w, at } = table1();
      p.leave(lock, w, at);
      for (const c of p.dead) table.markCpuDead(c);
      assert.equal(lock.owner(), p.named, 'the cpu the lock word names');
      if (p.named < 0) {
        assert.equal(lock.isLocked(), false);
      } else {
        assert.equal(lock.isLocked(), true);
        assert.ok(table.isCpuDead(p.named), 'a held lock names a dead cpu');
        // A waiter gives up at its first look (not after the timeout), naming the dead cpu.
        try {
          lock.lock(3);
          assert.fail('the lock was taken from a dead holder');
        } catch (e) {
          assert.ok(e instanceof VmallocError && e.code === 'EOWNERDEAD', String(e));
          assert.match(e.message, new RegExp(`cpu ${p.named}\\b`));
        }
        recoveryRule(table, lock);
      }
      assert.equal(lock.isLocked(), false, 'free after the recovery');
      assert.equal(lock.handoffRequested(), -1, 'no hand-off left behind');
      assert.equal(takeOnce(lock, 3), 'taken');
      assert.equal(takeOnce(lock, 0), 'taken');
    });
  }
});

function spawn(data: LockKillData): Worker {
  return new Worker(new URL('./lock-kill-worker.js', import.meta.url), { workerData: data });
}

describe('real kills of a lock holder', () => {
  test(
    'a waiter killed after an unlock handed it the lock: the lock names it',
    { timeout },
    async () => {
      const { table, lock } = table1();
      const ctl = new SharedArrayBuffer(64);
      lock.lock(0);
      const waiter = spawn({ locks: table.buffer as SharedArrayBuffer, ctl, cpu: 1, mode: 'take' });
      try {
        // It waited long enough to ask for a hand-off (a condition, not a duration).
        await until(() => lock.handoffRequested() === 1, 'the waiter asking for a hand-off');
        lock.unlock(); // handed to cpu 1: the lock word names it from this store on
        assert.equal(lock.owner(), 1);
        await waiter.terminate(); // wherever it is: asleep, waking, or holding
        table.markCpuDead(1);
        assert.equal(lock.owner(), 1, 'the killed waiter is named');
        assert.equal(takeOnce(lock, 2), 'EOWNERDEAD');
        recoveryRule(table, lock);
        assert.equal(takeOnce(lock, 2), 'taken');
      } finally {
        await waiter.terminate();
      }
    },
  );

  test(
    'an unlock killed half-way through a hand-off: the waiter takes the lock and names itself',
    { timeout },
    async () => {
      const { table, lock, w, at } = table1();
      const ctl = new SharedArrayBuffer(64);
      lock.lock(0);
      const waiter = spawn({ locks: table.buffer as SharedArrayBuffer, ctl, cpu: 1, mode: 'take' });
      try {
        const locked = next<LockKillMessage>(waiter, 'locked');
        await until(() => lock.handoffRequested() === 1, 'the waiter asking for a hand-off');
        // cpu 0's unlock stops after granting (its first step): the word still names cpu 0.
        assert.equal(Atomics.compareExchange(w, at + HANDOFF, 2, -2), 2);
        table.markCpuDead(0);
        await locked;
        assert.equal(lock.owner(), 1, 'the waiter named itself');
        assert.equal(lock.handoffRequested(), -1, 'and cleared the grant');
      } finally {
        await waiter.terminate();
      }
    },
  );

  test('workers killed at random moments while two churn one lock', { timeout }, async () => {
    const seed = testSeed('lock kill random');
    const rng = new Rng(seed);
    let heldAtDeath = 0;
    const TRIALS = 24;
    for (let k = 0; k < TRIALS; k++) {
      const { table, lock } = table1();
      const ctl = new SharedArrayBuffer(64);
      const c = new Int32Array(ctl);
      const locks = table.buffer as SharedArrayBuffer;
      const victim = spawn({ locks, ctl, cpu: 1, mode: 'churn' });
      const peer = spawn({ locks, ctl, cpu: 2, mode: 'churn' });
      try {
        const peerSays = next<LockKillMessage>(peer, 'stopped').catch(() => null);
        const failed = next<LockKillMessage>(peer, 'failed').catch(() => null);
        const after = 1 + rng.below(20000);
        await until(
          () => Atomics.load(c, K_OPS + 1) >= after && Atomics.load(c, K_OPS + 2) > 0,
          'both churning',
        );
        await victim.terminate();
        table.markCpuDead(1);
        const victimHeld = lock.isLocked() && lock.owner() === 1;
        Atomics.store(c, K_STOP, 1);
        const m = await Promise.race([peerSays, failed]);
        assert.ok(m !== null, `seed ${seed} trial ${k}: the peer reported`);
        if (m.type === 'failed') {
          assert.equal(m.code, 'EOWNERDEAD', `seed ${seed} trial ${k}: ${m.message}`);
          assert.match(m.message, /cpu 1\b/);
        }
        // The peer released what it held: the lock is free or names the dead victim.
        assert.ok(!lock.isLocked() || lock.owner() === 1, `seed ${seed} trial ${k}`);
        if (victimHeld || lock.isLocked()) heldAtDeath++;
        recoveryRule(table, lock);
        assert.equal(takeOnce(lock, 0), 'taken', `seed ${seed} trial ${k}`);
      } finally {
        await Promise.all([victim.terminate(), peer.terminate()]);
      }
    }
    console.log(
      `lock kill random (seed ${seed}): ${TRIALS} kills, ${heldAtDeath} holding the lock`,
    );
  });
});
