/**
 * Frames mapped by several workers at once: each vmap() and each unmap counts itself in the
 * frame's owner word with an atomic add, so after two workers mapped and unmapped the same
 * frames thousands of times the words are exact: check() agrees with the live areas, and
 * freePages() refuses the frames while the main thread's map lives and takes them after.
 * In both designs.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createVmalloc, DESIGN_NAMES, VmallocError } from '../../src/index.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';

const WORKERS = 2;
const ROUNDS = 3000;

describe('frames shared between workers', () => {
  for (const design of DESIGN_NAMES) {
    test(
      `${design}: concurrent vmap/vunmap of the same frames keeps their owner words exact`,
      { timeout: WORKER_TEST_TIMEOUT_MS },
      async () => {
        const vm = createVmalloc({
          design,
          nrCpus: WORKERS + 1,
          logger: null,
          lockTimeoutMs: WORKER_LOCK_TIMEOUT_MS,
        });
        const pages = vm.allocPages(8);
        const held = vm.vmap(pages)!;
        const start = new SharedArrayBuffer(4);
        const workers = Array.from(
          { length: WORKERS },
          (_, i) =>
            new Worker(new URL('./shared-frames-worker.js', import.meta.url), {
              workerData: { handle: vm.handle, cpu: i + 1, pages, start, rounds: ROUNDS },
            }),
        );
        const done = workers.map(
          (w) =>
            new Promise<number>((resolve, reject) => {
              w.on('error', reject);
              w.on('message', (m: { type: 'done'; maps: number }) => resolve(m.maps));
            }),
        );
        const exited = workers.map((w) => new Promise((resolve) => w.on('exit', resolve)));
        Atomics.store(new Int32Array(start), 0, 1);
        Atomics.notify(new Int32Array(start), 0);
        const maps = await Promise.all(done);
        await Promise.all(exited);
        for (const n of maps) assert.ok(n > 0, 'every worker mapped the frames');
        vm.check();
        assert.throws(
          () => vm.freePages(pages),
          (e: unknown) =>
            e instanceof VmallocError &&
            e.code === 'EBUSY' &&
            /is still mapped by 1 vmap area$/.test(e.message),
        );
        vm.vunmap(held);
        vm.freePages(pages);
        vm.purge();
        assert.equal(vm.stats().pagesUsed, 0);
        vm.check();
      },
    );
  }
});
