/**
 * The pooled VmapSpace's trips under its shared lock (space-pools.ts): a pool miss cuts
 * `refill` ranges of its size at once (the first returned, the rest pooled, taken next in
 * address order), only for plain requests in a space with homes, and only when the home has
 * room for them all; and the purge at the lazy threshold takes the cache's lock alone (its
 * decay waits on the back list for the next trip to the tree), so it goes through while the
 * space's lock is held by a dead worker.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmallocError, VmapSpace } from '../../src/index.js';
import { Lock, LockTable } from '../../src/shared/lock.js';

const PAGE = 4096;

function pooled(sp: VmapSpace): [number, number] {
  const st = sp.stats();
  return [st.pooledCount, st.pooledBytes / PAGE];
}

test('refill: a pool miss cuts refill ranges of its size, returns the first, pools the rest', () => {
  const sp = new VmapSpace({
    start: 0,
    end: 2 ** 30,
    concurrent: true,
    pools: { caches: 1, refill: 4 },
  });
  assert.equal(sp.alloc(2 * PAGE), 0);
  assert.deepEqual(pooled(sp), [3, 6]);
  assert.equal(sp.busyCount, 1);
  sp.check();
  // The next three come from the pool, in address order; the fifth misses and refills again.
  assert.deepEqual(
    [1, 2, 3, 4].map(() => sp.alloc(2 * PAGE)! / PAGE),
    [2, 4, 6, 8],
  );
  assert.deepEqual(pooled(sp), [3, 6]);
  // Aligned, windowed or unpooled requests cut one range.
  assert.equal(sp.alloc(2 * PAGE, { align: 4 * PAGE }), 16 * PAGE);
  assert.equal(sp.alloc(PAGE, { vstart: 100 * PAGE }), 100 * PAGE);
  assert.equal(sp.alloc(65 * PAGE), 18 * PAGE);
  assert.deepEqual(pooled(sp), [3, 6]);
  sp.check();
  assert.equal(sp.purge(), 3);
  assert.deepEqual([...sp.busyAreas()].length, 8);
  sp.check();
});

test('refill: without room for them all in the home, or without homes, one range is cut', () => {
  // Two homes of 512 pages; cache 0's is [0, 512) pages.
  const sp = new VmapSpace({
    start: 0,
    end: 1024 * PAGE,
    concurrent: true,
    pools: { caches: 2, refill: 4 },
  });
  assert.equal(sp.alloc(500 * PAGE), 0);
  assert.equal(sp.alloc(4 * PAGE), 500 * PAGE, '12 pages left in the home: one range');
  assert.deepEqual(pooled(sp), [0, 0]);
  assert.equal(sp.alloc(2 * PAGE), 504 * PAGE, '8 pages left: refilled');
  assert.deepEqual(pooled(sp), [3, 6]);
  assert.equal(sp.alloc(2 * PAGE), 506 * PAGE);
  sp.check();
  // A space too small for homes (8 pages) keeps one range per miss.
  const small = new VmapSpace({
    start: 0,
    end: 8 * PAGE,
    concurrent: true,
    pools: { caches: 1, refill: 4 },
  });
  assert.equal(small.alloc(PAGE), 0);
  assert.deepEqual(pooled(small), [0, 0]);
  small.check();
  // refill: 1 cuts one range at every miss.
  const one = new VmapSpace({
    start: 0,
    end: 2 ** 30,
    concurrent: true,
    pools: { caches: 1, refill: 1 },
  });
  assert.equal(one.alloc(PAGE), 0);
  assert.deepEqual(pooled(one), [0, 0]);
});

test('refill: misuse of the option is refused', () => {
  for (const refill of [0, 65, 1.5, '4', NaN]) {
    assert.throws(
      () => new VmapSpace({ start: 0, end: 2 ** 30, concurrent: true, pools: { refill } as never }),
      (e: unknown) =>
        e instanceof VmallocError && e.code === 'EINVAL' && /pools\.refill/.test(e.message),
      String(refill),
    );
  }
});

test("purge: a threshold purge that only refills the pools needs no space's lock", () => {
  const sp = new VmapSpace({
    start: 0,
    end: 2 ** 30,
    concurrent: true,
    pools: { caches: 2, lazyMax: 2, refill: 1 },
    lockTimeoutMs: 100,
  });
  const x = [sp.alloc(PAGE)!, sp.alloc(2 * PAGE)!, sp.alloc(PAGE)!];
  const dead = new Lock(new LockTable(sp.handle.locks!), 0, 'x');
  dead.lock(9); // the space's lock, kept by a dead worker
  try {
    sp.free(x[0]!);
    sp.free(x[1]!); // the second lazy range: the purge moves both to their pools
    assert.equal(sp.alloc(PAGE), x[0], 'from the pool');
    assert.equal(sp.alloc(2 * PAGE), x[1], 'from the pool');
    // A miss needs the tree: it meets the dead holder.
    assert.throws(
      () => sp.alloc(3 * PAGE),
      (e: unknown) => e instanceof VmallocError && e.code === 'ETIMEDOUT',
    );
  } finally {
    dead.unlock();
  }
  sp.check();
  assert.deepEqual(pooled(sp), [0, 0]);
  sp.free(x[2]!);
  assert.equal(sp.stats().lazyCount, 1);
  sp.check();
});
