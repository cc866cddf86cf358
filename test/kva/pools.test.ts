/**
 * A VmapSpace with `pools`, model-tested in one thread: seeded random alloc/free/misuse/purge
 * through two instances on two caches (the creating one, cpu 0, and one attached as cpu 1),
 * against a reference model of the live ranges. Every range is aligned, inside its window and
 * the space, and overlaps no live range; busyAreas() is the model's live set; after purge()
 * the free blocks are exactly the space the model says is not live; misuse throws and changes
 * nothing; check() holds throughout. The seed is printed; VMALLOC_SEED=<seed> replays a run.
 * Also: pooled reuse (an alloc of a freed size after a purge comes from the pool), the purge
 * at the lazy threshold, and a lock left taken by a dead holder (ETIMEDOUT, nothing changed).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmallocError, VmapSpace } from '../../src/index.js';
import { Lock, LockTable } from '../../src/shared/lock.js';
import { type Interval } from '../helpers/free-model.js';
import { Rng, testSeed } from '../helpers/rng.js';

const PAGE = 4096;

/** The space not covered by `live` (start -> end), as coalesced blocks. */
function complement(start: number, end: number, live: Map<number, number>): Interval[] {
  const out: Interval[] = [];
  let at = start;
  for (const [s, e] of [...live].sort((a, b) => a[0] - b[0])) {
    if (s > at) out.push({ start: at, end: s });
    at = e;
  }
  if (at < end) out.push({ start: at, end });
  return out;
}

function lowestFitIn(free: Interval[], size: number, align: number, vstart: number, vend: number) {
  for (const b of free) {
    const a = Math.ceil(Math.max(b.start, vstart) / align) * align;
    if (a + size <= b.end && a + size <= vend) return a;
  }
  return -1;
}

function state(sp: VmapSpace): string {
  return JSON.stringify([sp.stats(), [...sp.freeBlocks()], [...sp.busyAreas()]]);
}

function runPooled(seed: number, fit: 'kernel' | 'exact', ops: number) {
  const rng = new Rng(seed);
  const start = 2 ** 32;
  const end = start + 3000 * PAGE;
  const lazyMax = rng.range(1, 12);
  const a = new VmapSpace({
    start,
    end,
    concurrent: true,
    fit,
    pools: { caches: 2, classes: 8, lazyMax },
  });
  const b = VmapSpace.attach(a.handle, { cpu: 1 });
  const live = new Map<number, number>();
  const log: string[] = [];
  const n = { allocs: 0, nulls: 0, purges: 0, misuse: 0, reused: 0 };
  const fail = (msg: string): never =>
    assert.fail(
      `${fit} seed ${seed} lazyMax ${lazyMax}, op ${log.length}: ${msg}\n  ${log.slice(-20).join('\n  ')}`,
    );
  const freedSizes = new Set<number>();
  for (let i = 0; i < ops; i++) {
    const sp = rng.chance(0.5) ? a : b;
    const r = rng.float();
    if (r < 0.02) {
      const before = state(a);
      const kind = rng.below(5);
      const inside = [...live.keys()].find((s) => live.get(s)! - s > PAGE);
      try {
        if (kind === 0) sp.alloc(PAGE + 1);
        else if (kind === 1) sp.alloc(PAGE, { align: 3 });
        else if (kind === 2) sp.alloc(PAGE, { vstart: end });
        else if (kind === 3) sp.free(inside === undefined ? end + PAGE : inside + PAGE);
        else sp.free(start + 7); // never an area start: areas are page-sized from a page-aligned start
        fail(`misuse ${kind} did not throw`);
      } catch (e) {
        if (!(e instanceof VmallocError)) throw e;
        log.push(`misuse ${kind} -> ${e.code}`);
      }
      if (state(a) !== before) fail(`misuse ${kind} changed the state`);
      n.misuse++;
    } else if (r < 0.03) {
      sp.purge();
      n.purges++;
      log.push('purge');
      const st = a.stats();
      if (st.lazyCount + st.pooledCount !== 0) fail('purge left lazy or pooled ranges');
      const want = complement(start, end, live);
      if (JSON.stringify([...a.freeBlocks()]) !== JSON.stringify(want))
        fail('after purge the free blocks are not the space the model says is free');
    } else if (live.size > 0 && (r < 0.47 || live.size > 150)) {
      const at = rng.pick([...live.keys()]);
      sp.free(at);
      freedSizes.add(live.get(at)! - at);
      live.delete(at);
      log.push(`free ${at}`);
      if (rng.chance(0.05)) {
        assert.throws(() => sp.free(at), { code: 'ENOENT' });
        log.push(`free ${at} again -> ENOENT`);
      }
    } else {
      const size = rng.range(1, 12) * PAGE;
      const align = rng.chance(0.2) ? PAGE << rng.below(5) : rng.chance(0.5) ? 1 : PAGE;
      let vstart = start;
      let vend = end;
      if (rng.chance(0.1)) {
        vstart = start + rng.below(2000) * PAGE;
        vend = vstart + size + rng.below(200) * PAGE;
      }
      const got = sp.alloc(size, { align, vstart, vend });
      const desc = `alloc ${size} align ${align} [${vstart}, ${vend}) -> ${got}`;
      log.push(desc);
      n.allocs++;
      if (got === null) {
        n.nulls++;
        // A full purge ran before the null: the tree is the whole non-live space now.
        if (
          fit === 'exact' &&
          lowestFitIn(complement(start, end, live), size, align, vstart, vend) !== -1
        )
          fail(`${desc}: null, but the model has room`);
        continue;
      }
      if (got % align !== 0 || got < vstart || got + size > vend || got < start || got + size > end)
        fail(`${desc}: violates the request`);
      for (const [s, e] of live)
        if (got < e && s < got + size) fail(`${desc}: overlaps live [${s}, ${e})`);
      if (freedSizes.has(size)) n.reused++;
      live.set(got, got + size);
    }
    if (i % 53 === 0) {
      a.check();
      const busy = [...b.busyAreas()];
      const want = [...live].sort((x, y) => x[0] - y[0]).map(([s, e]) => ({ start: s, end: e }));
      if (JSON.stringify(busy) !== JSON.stringify(want)) fail('busyAreas() is not the live set');
      if (a.busyCount !== live.size) fail(`busyCount ${a.busyCount} != ${live.size}`);
      const bytes = [...live].reduce((m, [s, e]) => m + e - s, 0);
      if (b.busyBytes !== bytes) fail(`busyBytes ${b.busyBytes} != ${bytes}`);
    }
    if (i % 97 === 0 && live.size > 0) {
      const [s, e] = [...live][0]!;
      assert.deepEqual(b.find(s + Math.floor((e - s) / 2)), { start: s, end: e });
    }
  }
  for (const at of [...live.keys()]) (rng.chance(0.5) ? a : b).free(at);
  a.check();
  a.purge();
  a.check();
  assert.deepEqual([...a.freeBlocks()], [{ start, end }]);
  assert.equal(a.alloc(end - start), start);
  return n;
}

for (const fit of ['kernel', 'exact'] as const) {
  test(`pools: two caches against the reference model (fit '${fit}')`, () => {
    const seed = testSeed(`pools ${fit}`);
    const n = runPooled(seed, fit, 30_000);
    assert.ok(n.allocs > 8000 && n.purges > 100 && n.misuse > 200, JSON.stringify(n));
    assert.ok(n.nulls > 0, 'the space filled up at times (the purge-and-retry path ran)');
  });
}

test('pools: a freed range waits lazily, then a purge pools it and an alloc of its size reuses it', () => {
  const sp = new VmapSpace({
    start: 0,
    end: 2 ** 30,
    concurrent: true,
    pools: { lazyMax: 4, refill: 1 },
  });
  const x = sp.alloc(3 * PAGE)!;
  const y = sp.alloc(PAGE)!;
  sp.free(x);
  assert.deepEqual([sp.stats().lazyCount, sp.stats().lazyBytes], [1, 3 * PAGE]);
  // Lazy: not reusable yet, so the lowest fit is above y.
  assert.equal(sp.alloc(3 * PAGE), y + PAGE);
  sp.free(y);
  sp.free(y + PAGE);
  assert.equal(sp.stats().lazyCount, 3);
  sp.free(sp.alloc(5 * PAGE)!); // the fourth lazy range: the purge runs
  const st = sp.stats();
  assert.deepEqual([st.lazyCount, st.pooledCount], [0, 4]);
  // The 3-page ranges come back from the pool (the lazy list moves over in reverse: the
  // first freed first), not from the lowest free address.
  assert.equal(sp.alloc(3 * PAGE), x);
  assert.equal(sp.alloc(3 * PAGE), y + PAGE);
  assert.equal(sp.stats().pooledCount, 2);
  sp.check();
  assert.equal(sp.purge(), 2);
  sp.check();
});

test('pools: a lock left taken by a dead holder gives ETIMEDOUT and changes nothing', () => {
  const sp = new VmapSpace({
    start: 0,
    end: 2 ** 30,
    concurrent: true,
    pools: { caches: 2 },
    lockTimeoutMs: 100,
  });
  let x = sp.alloc(PAGE)!;
  const table = new LockTable(sp.handle.locks!);
  // The space's lock, both caches', the shard of x (zone 0: shard 0) and another shard's.
  for (const k of [0, 1, 2, 3, 10]) {
    const before = state(sp);
    const lock = new Lock(table, k, 'test');
    lock.lock(9);
    let timedOut = 0;
    const attempt = (call: () => unknown): boolean => {
      try {
        call();
        return true;
      } catch (e) {
        if (!(e instanceof VmallocError) || e.code !== 'ETIMEDOUT') throw e;
        timedOut++;
        return false;
      }
    };
    let got: number | null = null;
    attempt(() => (got = sp.alloc(PAGE)));
    const freed = attempt(() => sp.free(x));
    attempt(() => sp.check());
    lock.unlock();
    assert.ok(timedOut > 0, `lock ${k}: check() at least waits for it`);
    sp.check();
    if (got !== null) sp.free(got);
    if (freed) x = sp.alloc(PAGE)!;
    sp.purge();
    sp.check();
    if (!freed && got === null) assert.equal(state(sp), before, `lock ${k}: nothing changed`);
  }
  assert.equal(sp.busyCount, 1);
});
