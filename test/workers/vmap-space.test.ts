/**
 * A concurrent VmapSpace shared by three worker threads: random alloc/free, every page of a
 * live area claimed in a shared owner map, so that two workers holding the same range at once
 * is caught; the space checked and emptied afterwards.
 */

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { VmallocError, VmapSpace } from '../../src/index.js';
import { Lock, LockTable } from '../../src/shared/lock.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';
import { testSeed } from '../helpers/rng.js';
import type { SpaceWorkerReport } from './vmap-space-worker.js';

test(
  'a concurrent VmapSpace shared by 3 workers: no range owned twice, whole afterwards',
  { timeout: WORKER_TEST_TIMEOUT_MS },
  async () => {
    const seed = testSeed('VmapSpace workers');
    const page = 4096;
    const space = new VmapSpace({
      start: 0x100000,
      end: 0x100000 + 2 ** 30,
      pageSize: page,
      concurrent: true,
      lockTimeoutMs: WORKER_LOCK_TIMEOUT_MS,
    });
    const units = space.size / page;
    const ownersBuf = new SharedArrayBuffer(units);
    const startBuf = new SharedArrayBuffer(4);
    const workers = [1, 2, 3].map(
      (id) =>
        new Worker(new URL('./vmap-space-worker.js', import.meta.url), {
          workerData: {
            handle: space.handle,
            id,
            seed: (seed + id * 0x9e3779b1) >>> 0,
            // About 32000 allocations a worker (some 0.3 s on an idle 2-core machine), whatever
            // the load: the counts asserted below do not depend on time.
            ops: 65536,
            owners: ownersBuf,
            start: startBuf,
          },
        }),
    );
    let reports: SpaceWorkerReport[];
    try {
      const results = workers.map(
        (w) =>
          new Promise<SpaceWorkerReport>((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
            w.once('exit', (code) =>
              reject(new Error(`a worker exited (code ${code}) without a report`)),
            );
          }),
      );
      await Promise.all(workers.map((w) => once(w, 'online')));
      const start = new Int32Array(startBuf);
      Atomics.store(start, 0, 1);
      Atomics.notify(start, 0);
      reports = await Promise.all(results);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
    for (const r of reports) {
      assert.deepEqual(r.errors, []);
      assert.equal(r.nulls, 0, 'the space never ran out');
      assert.ok(r.allocs > 1000 && r.frees > 500, `worker ${r.id}: ${r.allocs} allocs`);
      assert.ok(r.windowed > 0 && r.aligned > 0);
    }
    console.log(
      `VmapSpace workers: ${reports.map((r) => `worker ${r.id} ${r.allocs}/${r.frees} (${r.windowNulls} full windows)`).join(', ')}`,
    );
    space.check();
    // The busy areas are exactly what the workers kept, and the owner map agrees.
    const kept = reports.flatMap((r) => r.kept.map((a) => ({ ...a, id: r.id })));
    kept.sort((a, b) => a.start - b.start);
    assert.deepEqual(
      [...space.busyAreas()],
      kept.map(({ start, end }) => ({ start, end })),
    );
    const owners = new Uint8Array(ownersBuf);
    const expected = new Uint8Array(units);
    for (const a of kept)
      expected.fill(a.id, (a.start - space.start) / page, (a.end - space.start) / page);
    assert.ok(
      owners.every((x, u) => x === expected[u]),
      'every unit of a kept area is claimed by its worker, and no other',
    );
    assert.equal(
      space.busyBytes,
      kept.reduce((n, a) => n + a.end - a.start, 0),
    );
    for (const a of kept) space.free(a.start);
    space.check();
    assert.deepEqual(
      [space.busyCount, space.busyBytes, space.freeCount, space.largestFree],
      [0, 0, 1, space.size],
    );
  },
);

test('stats() of a concurrent VmapSpace returns (it must not wait for its own lock)', () => {
  const space = new VmapSpace({ start: 0, end: 2 ** 30, concurrent: true });
  // A stats() that waited for the lock its own thread holds would give up with ETIMEDOUT once
  // the table's timeout (10 s by default; 300 ms here) ran out, and so throw; one that takes
  // no lock twice never waits at all (no other thread uses the space), however loaded the
  // machine. Its duration is not asserted: a descheduled thread may take long to return.
  new LockTable(space.handle.locks!).setTimeout(300);
  const a = space.alloc(3 * 4096)!;
  const st = space.stats();
  assert.deepEqual(
    [st.busyCount, st.busyBytes, st.freeCount, st.largestFree],
    [1, 3 * 4096, 1, 2 ** 30 - 3 * 4096],
  );
  space.free(a);
  space.check();
});

test('lockTimeoutMs bounds the wait for a lock whose holder never lets go', () => {
  const space = new VmapSpace({ start: 0, end: 2 ** 30, concurrent: true, lockTimeoutMs: 200 });
  // A holder that never releases: take the space's lock as another cpu, as a dead worker would.
  const lock = new Lock(new LockTable(space.handle.locks!), 0, 'vmap_space_lock');
  lock.lock(7);
  const t0 = performance.now();
  assert.throws(
    () => space.alloc(4096),
    (e: unknown) =>
      e instanceof VmallocError && e.code === 'ETIMEDOUT' && /vmap_space_lock/.test(e.message),
  );
  // It waited out the timeout before giving up (the only bound asserted: load can only make
  // the wait longer, and how much longer is not the lock's doing).
  const waited = performance.now() - t0;
  assert.ok(waited >= 190, `waited ${waited} ms`);
  lock.unlock();
  assert.equal(space.alloc(4096), 0, 'usable again once released');
  space.check();
  for (const bad of [0, -1, 1.5, NaN, '100', 2 ** 31]) {
    assert.throws(
      () =>
        new VmapSpace({ start: 0, end: 2 ** 30, concurrent: true, lockTimeoutMs: bad as number }),
      (e: unknown) =>
        e instanceof VmallocError && e.code === 'EINVAL' && /lockTimeoutMs must be/.test(e.message),
    );
  }
});
