/**
 * The homes of a pooled VmapSpace (space-pools-layout.ts): a cache's slow-path allocations come
 * from its home when the request's window allows, else from anywhere in the window; a home's
 * areas sit in that home's busy shards only, so a worker never waits on a shard lock another
 * worker's own areas use; a space too small for its caches' homes still hands out every page
 * to every cache. And the purge at the lazy threshold covers the freeing worker's cache only,
 * while an allocation that finds no room still purges every cache.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmallocError, VmapSpace } from '../../src/index.js';
import { SHARDS, homeShiftOf } from '../../src/kva/space-pools-layout.js';
import { Lock, LockTable } from '../../src/shared/lock.js';

const PAGE = 4096;

test('homes: the least power of two of pages that lets the caches cover the space, if worth it', () => {
  assert.equal(homeShiftOf(4096, 4), 10);
  assert.equal(homeShiftOf(4000, 4), 10);
  assert.equal(homeShiftOf(4097, 4), 11);
  assert.equal(homeShiftOf(2 ** 24, 8), 21);
  assert.equal(homeShiftOf(2 ** 15, 64), 9);
  // A home must span 8 zones (512 pages), else no homes.
  assert.equal(homeShiftOf(4095, 4), 10);
  assert.equal(homeShiftOf(1024, 4), -1);
  assert.equal(homeShiftOf(4, 8), -1);
  assert.equal(homeShiftOf(1, 1), -1);
  assert.equal(homeShiftOf(2 ** 12, 64), -1);
});

test("homes: each cache allocates in its own home first, and in the window's rest after", () => {
  const start = 2 ** 32;
  const home = 1024 * PAGE; // 4096 pages, 4 caches
  const a = new VmapSpace({
    start,
    end: start + 4 * home,
    concurrent: true,
    pools: { caches: 4, refill: 1 },
  });
  const sp = [a, ...[1, 2, 3].map((cpu) => VmapSpace.attach(a.handle, { cpu }))];
  for (let c = 0; c < 4; c++) {
    for (let j = 0; j < 5; j++)
      assert.equal(sp[c]!.alloc(2 * PAGE), start + c * home + j * 2 * PAGE);
  }
  // A window that misses cache 1's home: the lowest fit in the window.
  assert.equal(
    sp[1]!.alloc(PAGE, { vstart: start + 3 * PAGE, vend: start + 200 * PAGE }),
    start + 10 * PAGE,
  );
  // A window that overlaps it: the lowest fit in the overlap.
  assert.equal(sp[1]!.alloc(PAGE, { vstart: start + 100 * PAGE }), start + home + 10 * PAGE);
  // Cache 2's home holds it; then no longer: the lowest fit in the rest of the window.
  assert.equal(sp[2]!.alloc(1010 * PAGE), start + 2 * home + 10 * PAGE);
  assert.equal(sp[2]!.alloc(10 * PAGE), start + 11 * PAGE);
  a.check();
});

test("homes: a home's areas use its own shards, so one worker never waits on another's", () => {
  const start = 0;
  const caches = 4;
  const home = 1024 * PAGE;
  const a = new VmapSpace({
    start,
    end: start + caches * home,
    concurrent: true,
    pools: { caches, lazyMax: 2, refill: 1 },
    lockTimeoutMs: 100,
  });
  const b = VmapSpace.attach(a.handle, { cpu: 1 });
  const c = VmapSpace.attach(a.handle, { cpu: 2 });
  const xb = [b.alloc(PAGE)!, b.alloc(3 * PAGE)!, b.alloc(PAGE)!];
  const xc = c.alloc(PAGE)!;
  // A dead holder keeps every shard lock of cache 2's home (home 2).
  const table = new LockTable(a.handle.locks!);
  const per = SHARDS / caches;
  const held = Array.from(
    { length: per },
    (_, k) => new Lock(table, 1 + caches + 2 * per + k, 'x'),
  );
  for (const l of held) l.lock(9);
  try {
    // Cache 1 works on: its frees, its purge, its pooled and slow-path allocations.
    for (const x of xb) b.free(x);
    assert.equal(b.alloc(PAGE), xb[0], 'from the pool (the third free is still lazy)');
    assert.equal(b.alloc(7 * PAGE), start + home + 5 * PAGE);
    // Cache 2 meets its own shard's lock.
    assert.throws(
      () => c.free(xc),
      (e: unknown) => e instanceof VmallocError && e.code === 'ETIMEDOUT',
    );
  } finally {
    for (const l of held) l.unlock();
  }
  c.free(xc);
  a.check();
});

test('homes: a space too small for homes (4 pages, 8 caches) gives every page to every cache', () => {
  const start = 2 ** 40;
  const a = new VmapSpace({ start, end: start + 4 * PAGE, concurrent: true, pools: true });
  const all = [a, ...[1, 2, 3, 4, 5, 6, 7].map((cpu) => VmapSpace.attach(a.handle, { cpu }))];
  for (const sp of all) {
    const got = [sp.alloc(PAGE), sp.alloc(PAGE), sp.alloc(2 * PAGE)];
    assert.ok(got.every((x) => x !== null));
    assert.equal(new Set(got).size, 3);
    assert.equal(sp.alloc(PAGE), null);
    a.check();
    for (const x of got) sp.free(x!);
    assert.equal(sp.alloc(4 * PAGE), start, 'the allocation that finds no room purges all');
    sp.free(start);
    a.check();
  }
  a.purge();
  assert.deepEqual([...a.freeBlocks()], [{ start, end: start + 4 * PAGE }]);
});

test("purge: the lazy threshold purges the freeing worker's cache only; no room purges all", () => {
  const a = new VmapSpace({
    start: 0,
    end: 64 * PAGE,
    concurrent: true,
    pools: { caches: 2, lazyMax: 2, refill: 1 },
  });
  const b = VmapSpace.attach(a.handle, { cpu: 1 });
  a.free(a.alloc(PAGE)!);
  b.free(b.alloc(PAGE)!);
  b.free(b.alloc(2 * PAGE)!); // cache 1's second lazy range: its purge runs
  const st = a.stats();
  assert.deepEqual([st.lazyCount, st.pooledCount], [1, 2], "cache 0's lazy range stays");
  a.check();
  assert.equal(a.alloc(64 * PAGE), 0);
  const after = a.stats();
  assert.deepEqual([after.lazyCount, after.pooledCount], [0, 0]);
  a.free(0);
  a.check();
});
