/**
 * vm_map_ram from several real worker threads at once: each worker maps, fills, verifies and
 * unmaps its own frames thousands of times (its own vmap blocks, and large counts through the
 * area allocator), then leaves mappings for the main thread, which reads them through the
 * shared page table and unmaps them from its own cpu (vb_free of another cpu's block); check()
 * passes after, in both designs and both block hashes.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createVmalloc, type VmallocDesign } from '../../src/index.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';
import type { Kept } from './vm-map-ram-worker.js';

const WORKERS = 3;
const ROUNDS = 3000;
const KEPT = 40;

describe('vm_map_ram across workers', () => {
  for (const design of ['global', 'nodes'] as VmallocDesign[]) {
    for (const hash of ['global', 'percpu'] as const) {
      test(
        `${design}, ${hash} hash: concurrent map/unmap, then the main thread reads and unmaps`,
        { timeout: WORKER_TEST_TIMEOUT_MS },
        async () => {
          const vm = createVmalloc({
            design,
            vmapBlockHash: hash,
            nrCpus: WORKERS + 1,
            logger: null,
            lockTimeoutMs: WORKER_LOCK_TIMEOUT_MS,
            physicalMemory: 8192 * 4096,
          });
          const start = new SharedArrayBuffer(4);
          const workers = Array.from(
            { length: WORKERS },
            (_, i) =>
              new Worker(new URL('./vm-map-ram-worker.js', import.meta.url), {
                workerData: { handle: vm.handle, cpu: i + 1, start, rounds: ROUNDS, kept: KEPT },
              }),
          );
          const done = workers.map(
            (w) =>
              new Promise<{ errors: string[]; kept: Kept[] }>((resolve, reject) => {
                w.on('error', reject);
                w.on('message', resolve);
              }),
          );
          const exited = workers.map((w) => new Promise((resolve) => w.on('exit', resolve)));
          Atomics.store(new Int32Array(start), 0, 1);
          Atomics.notify(new Int32Array(start), 0);
          const results = await Promise.all(done);
          await Promise.all(exited);
          for (const r of results) assert.deepEqual(r.errors, []);
          vm.check();
          const kept = results.flatMap((r) => r.kept);
          assert.equal(kept.length, WORKERS * KEPT);
          for (const m of kept) {
            for (let p = 0; p < m.count; p++)
              assert.equal(vm.readU8(m.addr + p * vm.pageSize), (m.cpu * 10 + p) & 0xff);
          }
          for (const m of kept) vm.vmUnmapRam(m.addr, m.count);
          vm.check();
          vm.vmUnmapAliases();
          vm.purge();
          vm.check();
          assert.equal(vm.stats().vmapBlocks, 0, 'every block was fragmented or freed');
        },
      );
    }
  }
});
