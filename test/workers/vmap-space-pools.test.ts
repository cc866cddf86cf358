/**
 * A VmapSpace with `pools` shared by three worker threads (vmap-space-worker.ts: random
 * alloc/free with windows and alignments, every page of a live area claimed in a shared owner
 * map, so that two workers holding the same range at once is caught). Afterwards the workers
 * are gone (terminated: dead, as far as the space knows) with ranges still lazy or pooled in
 * their caches: check() holds, the busy areas are what they kept, and the whole space can be
 * allocated again once those are freed (the failing allocation purges every cache).
 */

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { VmapSpace } from '../../src/index.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';
import { testSeed } from '../helpers/rng.js';
import type { SpaceWorkerReport } from './vmap-space-worker.js';

test(
  'a pooled VmapSpace shared by 3 workers: no range owned twice, whole again after they die',
  { timeout: WORKER_TEST_TIMEOUT_MS },
  async () => {
    const seed = testSeed('VmapSpace pools workers');
    const page = 4096;
    const space = new VmapSpace({
      start: 0x100000,
      end: 0x100000 + 2 ** 30,
      pageSize: page,
      concurrent: true,
      lockTimeoutMs: WORKER_LOCK_TIMEOUT_MS,
      pools: { caches: 4, classes: 32, lazyMax: 32 },
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
    }
    space.check();
    const st = space.stats();
    assert.ok(st.lazyCount + st.pooledCount > 0, 'the dead workers left ranges in their caches');
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
      'the owner map agrees',
    );
    for (const a of kept) space.free(a.start);
    space.check();
    // The whole space in one piece: the allocation that finds no room purges every cache.
    assert.equal(space.alloc(space.size), space.start);
    space.check();
    space.free(space.start);
    space.purge();
    assert.deepEqual([...space.freeBlocks()], [{ start: space.start, end: space.end }]);
  },
);
