// The pools of page arrays: kmalloc-sized ranges, the per-cpu cache of freed arrays per size
// class, and its drain when a pool runs full.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { PagesPool } from '../../src/mm/pages-pool.js';
import { LockTable } from '../../src/shared/lock-table.js';

function pool(maxPages: number, cpu = 0, nrCpus = 1): PagesPool {
  const handle = PagesPool.createHandle(nrCpus, maxPages, true);
  return new PagesPool(handle, cpu, LockTable.create(1, true, nrCpus));
}

const live = (p: PagesPool): Map<number, number> =>
  new Map(p.ranges().map((r) => [r.start, r.end - r.start]));

describe('pages pool', () => {
  it('rounds arrays of up to a page of entries up to a power of two, longer ones are exact', () => {
    const p = pool(4096);
    const cases: [number, number][] = [
      [1, 1],
      [2, 2],
      [3, 4],
      [5, 8],
      [100, 128],
      [512, 512],
      [513, 513],
      [2000, 2000],
    ];
    for (const [n, len] of cases) {
      assert.equal(p.lengthFor(n), len, `lengthFor(${n})`);
      const slot = p.alloc(n);
      assert.ok(slot >= 0);
      assert.equal(live(p).get(slot), len, `the range of an array of ${n}`);
    }
    p.check();
  });

  it('a freed array comes back from this cpu cache for any length of its class', () => {
    const p = pool(4096);
    const a = p.alloc(5);
    p.free(a, 5);
    assert.equal(p.cached().get(a), 8);
    assert.equal(p.alloc(7), a, 'same class (8 slots): the cached array');
    assert.equal(p.cached().size, 0);
    const b = p.alloc(100);
    p.free(b, 100);
    assert.notEqual(p.alloc(64), b, 'class of 64 is not the class of 128');
    p.check();
  });

  it('an array freed without its length goes back to the pool, not the cache', () => {
    const p = pool(4096);
    const a = p.alloc(3);
    p.free(a);
    assert.equal(p.cached().size, 0);
    assert.equal(live(p).has(a), false);
  });

  it('when the pool is full, the arrays in this cpu cache go back to it and the alloc succeeds', () => {
    // A pool of 2 * 64 + 4096 slots: fill it with 512-slot arrays, cache some of them.
    const p = pool(64);
    const got: number[] = [];
    for (;;) {
      const s = p.alloc(512);
      if (s < 0) break;
      got.push(s);
    }
    assert.ok(got.length >= 2, `${got.length} arrays of 512 fit`);
    for (const s of got.slice(0, 2)) p.free(s, 512);
    assert.equal(p.cached().size, 2);
    // A 200-pfn array (class 256) needs the pool: only the drain makes room.
    const s = p.alloc(200);
    assert.ok(s >= 0, 'allocated after the drain');
    assert.equal(live(p).get(s), 256);
    assert.equal(p.cached().size, 0, 'the cache went back to the pool');
    p.check();
  });
});
