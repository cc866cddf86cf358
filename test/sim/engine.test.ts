/**
 * The simulated machine's lock model against hand-computed cases: two CPUs and one lock with
 * known hold times (known waits), FIFO order, the hand-over and bounce costs, mutex waiters
 * sleeping, trylock, and lock order (nested locks in one order complete; in opposite orders
 * they deadlock and the machine says so); the workers' lock model (spin, then sleep: the wake
 * and notify costs, a spinner handed over as in the kernel model, a running CPU barging past a
 * sleeper that is being woken).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  EV_ACQ,
  EV_REL,
  EV_TRY,
  Machine,
  type LockModel,
  type MachineCosts,
} from '../../src/sim/engine.js';

type Ev = [kind: number, id: number, work: number];
/** Each CPU runs one operation: `ops[cpu]` events, then `tail` ns. */
function run(
  ops: Ev[][],
  locks: LockModel[] = [{ name: 'L', mutex: false }],
  tail = 0,
  costs: MachineCosts = { acquireNs: 10, transferNs: 100 },
): Machine {
  const m = new Machine(ops.length, locks, costs);
  const done = new Array<boolean>(ops.length).fill(false);
  m.run((cpu) => {
    if (done[cpu]) return false;
    done[cpu] = true;
    for (const [k, id, w] of ops[cpu]!) m.record(k, id, w);
    m.finish(tail);
    return true;
  });
  return m;
}

const hold = (before: number, ns: number, id = 0): Ev[] => [
  [EV_ACQ, id, before],
  [EV_REL, id, ns],
];

describe('lock model', () => {
  test('two CPUs, one lock held 1000 ns: the second waits until the hand-over', () => {
    const m = run([hold(0, 1000), hold(0, 1000)]);
    // cpu 0 (tie broken by id) takes the free lock at 0, holds from 10 to 1010; cpu 1 spins
    // from 0; the hand-over reaches it at 1010 + 100; it holds from 1120 to 2120.
    assert.deepEqual(Array.from(m.finished), [1010, 2120]);
    const s = m.lockStat(0);
    assert.equal(s.acquisitions, 2);
    assert.equal(s.contentions, 1);
    assert.equal(s.conBounces, 1);
    assert.equal(s.acqBounces, 1);
    assert.equal(s.waitTotal, 1.11); // microseconds
    assert.equal(s.spinNs, 1110);
    assert.equal(s.holdTotal, 2);
    assert.equal(m.makespan, 2120);
  });

  test('waiters are served in arrival order, not by cpu id', () => {
    // cpu 0 holds 0..1010; cpu 2 arrives at 100, cpu 1 at 200.
    const m = run([hold(0, 1000), hold(200, 1000), hold(100, 1000)]);
    // cpu 2: handed over at 1110, holds 1120..2120; cpu 1: handed over at 2220, holds to 3230.
    assert.deepEqual(Array.from(m.finished), [1010, 3230, 2120]);
    const s = m.lockStat(0);
    assert.equal(s.contentions, 2);
    assert.equal(s.spinNs, 1110 - 100 + (2220 - 200));
    assert.equal(s.waitMax, 2.02);
    assert.equal(s.waitMin, 1.01);
  });

  test('a free lock last held by another CPU costs one line transfer, no contention', () => {
    const m = run([hold(0, 1000), hold(5000, 1000)]);
    // cpu 1 takes it at 5000: 10 to acquire + 100 to bring the line from cpu 0.
    assert.deepEqual(Array.from(m.finished), [1010, 6110]);
    const s = m.lockStat(0);
    assert.equal(s.contentions, 0);
    assert.equal(s.acqBounces, 1);
    assert.equal(s.spinNs, 0);
  });

  test("a mutex's waiter sleeps: the wait is not spinning", () => {
    const m = run([hold(0, 1000), hold(0, 1000)], [{ name: 'M', mutex: true }]);
    assert.deepEqual(Array.from(m.finished), [1010, 2120]);
    assert.equal(m.lockStat(0).spinNs, 0);
    assert.equal(m.lockStat(0).sleepNs, 1110);
  });

  test('a trylock that finds the lock held does not wait, and its release is ignored', () => {
    const m = run([
      hold(0, 1000),
      [
        [EV_TRY, 0, 100],
        [EV_REL, 0, 50],
      ],
    ]);
    assert.deepEqual(Array.from(m.finished), [1010, 150]);
    assert.equal(m.lockStat(0).tryFailures, 1);
    assert.equal(m.lockStat(0).acquisitions, 1);
  });

  test('nested locks taken in one order by every CPU complete; the computed times hold', () => {
    const ab: Ev[] = [
      [EV_ACQ, 0, 0],
      [EV_ACQ, 1, 100],
      [EV_REL, 1, 100],
      [EV_REL, 0, 0],
    ];
    const locks = [
      { name: 'A', mutex: false },
      { name: 'B', mutex: false },
    ];
    const m = run([ab, ab], locks);
    // cpu 0: A at 10, B at 110 + 10 = 120, both released at 220. cpu 1 waited on A from 0:
    // handed over at 320 (+10), B due at 430: free, last held by cpu 0: +10 +100 = 540, out at 640.
    assert.deepEqual(Array.from(m.finished), [220, 640]);
    assert.equal(m.lockStat(0).contentions, 1);
    assert.equal(m.lockStat(1).contentions, 0);
    assert.equal(m.lockStat(1).acqBounces, 1);
  });

  test('nested locks in opposite orders deadlock, and the machine names the locks', () => {
    const locks = [
      { name: 'A', mutex: false },
      { name: 'B', mutex: false },
    ];
    const ab: Ev[] = [
      [EV_ACQ, 0, 0],
      [EV_ACQ, 1, 100],
      [EV_REL, 1, 100],
      [EV_REL, 0, 0],
    ];
    const ba: Ev[] = [
      [EV_ACQ, 1, 0],
      [EV_ACQ, 0, 100],
      [EV_REL, 0, 100],
      [EV_REL, 1, 0],
    ];
    assert.throws(() => run([ab, ba], locks), /deadlock: cpu \d waits for [AB]/);
  });

  test('locks added while running (record locks) queue like the others; arrays grow', () => {
    // No lock at the start; each CPU's operation adds locks, as records with a lock appear.
    // Lock ids 0..4 are made by cpu 0; 5 more by cpu 1 force the arrays to grow twice.
    const m = new Machine(2, [], { acquireNs: 10, transferNs: 100 });
    const done = [false, false];
    const ids: number[] = [];
    m.run((cpu) => {
      if (done[cpu]) return false;
      done[cpu] = true;
      if (cpu === 0) for (let k = 0; k < 5; k++) ids.push(m.addLock({ name: 'vb', mutex: false }));
      const shared = ids[2]!;
      m.record(EV_ACQ, shared, 0);
      m.record(EV_REL, shared, 1000);
      if (cpu === 1) for (let k = 0; k < 5; k++) m.addLock({ name: 'vb', mutex: false });
      return true;
    });
    assert.deepEqual(ids, [0, 1, 2, 3, 4]);
    assert.equal(m.locks.length, 10);
    // As the two-CPU case above: cpu 1 waits for the hand-over.
    assert.deepEqual(Array.from(m.finished), [1010, 2120]);
    assert.equal(m.lockStat(2).contentions, 1);
    assert.equal(m.lockStat(9).acquisitions, 0);
  });

  test('the same events give the same times (no wall clock inside)', () => {
    const ops = [hold(5, 700), hold(3, 900), hold(3, 900), hold(40, 10)];
    const a = run(ops);
    const b = run(ops);
    assert.deepEqual(Array.from(a.finished), Array.from(b.finished));
    assert.deepEqual(a.lockStats(), b.lockStats());
  });
});

describe("the workers' lock model (spin, then sleep)", () => {
  const costs: MachineCosts = {
    acquireNs: 10,
    transferNs: 100,
    futex: { spinNs: 300, wakeNs: 5000, notifyNs: 700 },
  };
  const L = [{ name: 'L', mutex: false }];

  test('a waiter past its spin budget sleeps: the release notifies, the wake costs wakeNs', () => {
    const m = run([hold(0, 1000), hold(0, 1000)], L, 0, costs);
    // cpu 0 holds 10..1010; cpu 1 spins 0..300, then sleeps. The release at 1010 finds the
    // word 2: cpu 0 pays the notify (out at 1710); cpu 1 runs at 1010 + 5000 = 6010, takes
    // the free lock (10, +100: the line was cpu 0's), holds 6120..7120; its exchange left the
    // word 2, so its own release notifies too (out at 7820).
    assert.deepEqual(Array.from(m.finished), [1710, 7820]);
    const s = m.lockStat(0);
    assert.equal(s.contentions, 1);
    assert.equal(s.wakes, 1);
    assert.equal(s.waitTotal, 6.01);
    assert.equal(s.spinNs, 300);
    assert.equal(s.sleepNs, 5710);
  });

  test('a waiter still spinning is handed the lock as in the kernel model, no notify', () => {
    const m = run([hold(0, 200), hold(0, 1000)], L, 0, costs);
    // cpu 0 holds 10..210; cpu 1 spins from 0, handed over at 310, holds 320..1320.
    assert.deepEqual(Array.from(m.finished), [210, 1320]);
    assert.equal(m.lockStat(0).wakes, 0);
    assert.equal(m.lockStat(0).spinNs, 310);
    assert.equal(m.lockStat(0).sleepNs, 0);
  });

  test('a running CPU barges past the sleeper being woken, which sleeps again', () => {
    const twice: Ev[] = [
      [EV_ACQ, 0, 0],
      [EV_REL, 0, 1000],
      [EV_ACQ, 0, 100],
      [EV_REL, 0, 5000],
    ];
    const m = run([twice, hold(0, 1000)], L, 0, costs);
    // cpu 0: holds 10..1010, notifies (1710), takes the free lock again at 1810 (its own
    // line: 10) and holds 1820..6820. cpu 1 runs at 6010, finds it held, marks the word and
    // sleeps again; the release at 6820 notifies (cpu 0 out at 7520) and wakes it at 11820:
    // it takes the lock (+110), holds 11930..12930, notifies (out at 13630).
    assert.deepEqual(Array.from(m.finished), [7520, 13630]);
    const s = m.lockStat(0);
    assert.equal(s.acquisitions, 3);
    assert.equal(s.contentions, 1, 'the barging acquisition was not contended');
    assert.equal(s.wakes, 2);
    assert.equal(s.waitMax, 11.82);
  });

  test('the same events give the same times', () => {
    const ops = [hold(5, 700), hold(3, 900), hold(3, 900), hold(40, 10), hold(0, 3000)];
    const a = run(ops, L, 50, costs);
    const b = run(ops, L, 50, costs);
    assert.deepEqual(Array.from(a.finished), Array.from(b.finished));
    assert.deepEqual(a.lockStats(), b.lockStats());
    assert.equal(a.lockStat(0).acquisitions, 5);
  });
});
