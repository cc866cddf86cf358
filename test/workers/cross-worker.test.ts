/**
 * One vmalloc shared by real worker threads: random traffic on five CPUs (four workers and the
 * main thread) with owner signatures in every page and a shared map of page owners, hand-offs
 * of memory between workers, and the state left clean afterwards; in both designs.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { attachVmalloc, createVmalloc, type VmallocDesign } from '../../src/index.js';
import { Churner, OWNER_MAP_PAGES, type LiveArea } from '../helpers/churn.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';
import { Rng, testSeed } from '../helpers/rng.js';
import { PAGE } from '../helpers/vm.js';
import type { WorkerReport } from './cross-worker-worker.js';

const WORKERS = 4;
/**
 * Random operations per worker: a count, not a duration, so that the counts asserted below
 * hold however slow or loaded the machine is (about 1800 allocations and 1800 frees a worker,
 * some 1.2 s on an idle 2-core machine).
 */
const STEPS = 4096;
const HANDOFFS = 3;

interface Checked {
  type: 'checked';
  id: number;
  owner: number;
  by: number;
  error: string | null;
}

type FromWorker =
  | { type: 'handoff'; id: number; owner: number; addr: number; len: number; seed: number }
  | Checked
  | { type: 'done'; report: WorkerReport }
  | { type: 'error'; message: string };

/** Lets the workers' messages in between the main thread's bursts, without spinning. */
const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 2));

async function crossWorkerRun(design: VmallocDesign): Promise<void> {
  const seed = testSeed(`cross-worker traffic (${design})`);
  const vm = createVmalloc({
    design,
    nrCpus: WORKERS + 1,
    logger: null,
    lockTimeoutMs: WORKER_LOCK_TIMEOUT_MS,
  });
  const ownersBuf = new SharedArrayBuffer(OWNER_MAP_PAGES);
  const owners = new Uint8Array(ownersBuf);
  const mainChurn = new Churner(vm, new Rng(seed), owners, 32);
  const workers = Array.from(
    { length: WORKERS },
    (_, i) =>
      new Worker(new URL('./cross-worker-worker.js', import.meta.url), {
        workerData: {
          handle: vm.handle,
          cpu: i + 1,
          seed: (seed + Math.imul(i + 1, 0x9e3779b1)) >>> 0,
          steps: STEPS,
          owners: ownersBuf,
          handoffs: HANDOFFS,
        },
      }),
  );
  const exited = workers.map((w) => new Promise<number>((resolve) => w.on('exit', resolve)));
  const reports = new Map<number, WorkerReport>();
  const checks: Checked[] = [];
  let finished = false;
  const allDone = new Promise<void>((resolve, reject) => {
    workers.forEach((w, i) => {
      const cpu = i + 1;
      w.on('error', reject);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'handoff') {
          // Worker of cpu c hands its areas to the worker of cpu c % 4 + 1.
          workers[cpu % WORKERS]!.postMessage({ ...m, type: 'check' });
        } else if (m.type === 'checked') {
          checks.push(m);
          workers[m.owner - 1]!.postMessage({ type: 'release', id: m.id });
        } else if (m.type === 'done') {
          reports.set(cpu, m.report);
          if (reports.size === WORKERS) resolve();
        } else {
          reject(new Error(`worker of cpu ${cpu}: ${m.message}`));
        }
      });
    });
  });
  allDone.then(
    () => (finished = true),
    () => (finished = true),
  );
  try {
    // The main thread is cpu 0 and takes part, in short bursts between messages, until every
    // worker has reported (or one failed); the test's timeout is the only bound on the wait.
    while (!finished) {
      for (let k = 0; k < 32; k++) mainChurn.step();
      await pause();
    }
    await allDone;
    for (const w of workers) w.postMessage({ type: 'exit' });
    assert.deepEqual(await Promise.all(exited), [0, 0, 0, 0], 'every worker exits cleanly');
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }

  // What every CPU saw.
  let allocs = mainChurn.counters.allocs;
  for (const [cpu, r] of reports) {
    assert.deepEqual(r.errors, [], `cpu ${cpu}: no bad signature, no overlap`);
    assert.equal(r.counters.failures, 0, `cpu ${cpu}: no allocation failed`);
    assert.equal(r.counters.outside, 0, `cpu ${cpu}: every area inside the owner map`);
    assert.ok(r.counters.allocs > 100, `cpu ${cpu} made ${r.counters.allocs} allocations`);
    assert.ok(r.counters.frees > 50, `cpu ${cpu} made ${r.counters.frees} frees`);
    assert.ok(r.counters.alignedAllocs > 0 && r.counters.zeroAllocs > 0);
    assert.equal(r.handoffsChecked, HANDOFFS, `cpu ${cpu}: every hand-off was read by its peer`);
    assert.equal(r.peerChecks, HANDOFFS, `cpu ${cpu} read its peer's hand-offs`);
    assert.deepEqual(r.warnings, []);
    allocs += r.counters.allocs;
  }
  assert.deepEqual(mainChurn.errors, [], 'cpu 0: no bad signature, no overlap');
  assert.equal(checks.length, WORKERS * HANDOFFS);
  for (const c of checks) {
    assert.equal(c.error, null, `hand-off ${c.id} of cpu ${c.owner} read by cpu ${c.by}`);
    assert.equal(c.by, (c.owner % WORKERS) + 1);
  }
  console.log(
    `cross-worker (${design}): ${allocs} allocations on 5 CPUs; ` +
      [...reports.values()]
        .map(
          (r) =>
            `cpu${r.cpu} ${r.counters.allocs}/${r.counters.frees} max live ${r.counters.maxLive}`,
        )
        .join(', ') +
      `; stats ${JSON.stringify(vm.stats())}`,
  );

  // The workers have stopped: the state is whole, with their remaining areas still live.
  mainChurn.freeAllBut(0);
  const kept: LiveArea[] = [...reports.values()].flatMap((r) => r.kept);
  vm.check();
  const mid = vm.stats();
  assert.equal(mid.busyAreas, kept.length, 'only the areas the workers kept are busy');
  assert.ok(mid.purges >= 1, 'the traffic went past lazy_max_pages()');
  // cpu 0 reads the workers' signatures and frees their areas.
  for (const a of kept) mainChurn.release(a);
  assert.deepEqual(mainChurn.errors, [], 'the workers areas read back whole on cpu 0');
  assert.ok(
    owners.every((x) => x === 0),
    'every page claimed in the owner map was released',
  );
  vm.check();
  vm.purge();
  vm.shrinker.scan();
  vm.check();
  const st = vm.stats();
  assert.deepEqual(
    {
      busyAreas: st.busyAreas,
      pagesUsed: st.pagesUsed,
      lazyPages: st.lazyPages,
      lazyAreas: st.lazyAreas,
      pooledAreas: st.pooledAreas,
      freeBlocks: st.freeBlocks,
    },
    { busyAreas: 0, pagesUsed: 0, lazyPages: 0, lazyAreas: 0, pooledAreas: 0, freeBlocks: 1 },
  );
}

describe('workers sharing one vmalloc', () => {
  for (const design of ['nodes', 'global'] as const) {
    test(
      `4 workers and the main thread: no lost write, no overlap, clean state after (${design})`,
      { timeout: WORKER_TEST_TIMEOUT_MS },
      async () => {
        await crossWorkerRun(design);
      },
    );
  }

  for (const design of ['nodes', 'global'] as const) {
    test(`after free, purge and reuse by another CPU, a CPU that read the old area sees the new one (${design})`, () => {
      // The kernel flushes every CPU's TLB in the purge (flush_tlb_kernel_range) before a lazily
      // freed range can be reused; a stale translation must not survive it.
      const a = createVmalloc({ design, nrCpus: 3, logger: null });
      const b = attachVmalloc(a.handle, { cpu: 1, logger: null });
      const c = attachVmalloc(a.handle, { cpu: 2, logger: null });
      const old = a.vmalloc(PAGE)!;
      a.writeU8(old, 0x11);
      assert.equal(b.readU8(old), 0x11, 'cpu 1 reads cpu 0 area');
      a.vfree(old);
      a.purge();
      const fresh = c.vmalloc(PAGE)!;
      assert.equal(fresh, old, 'the range is reused after the purge');
      c.writeU8(fresh, 0x55);
      assert.equal(a.readU8(fresh), 0x55);
      assert.equal(b.readU8(fresh), 0x55, 'cpu 1 reads the new area, not the old frame');
      b.writeU8(fresh, 0x77);
      assert.equal(c.readU8(fresh), 0x77, 'cpu 1 writes into the new area');
      const other = a.vmalloc(PAGE)!;
      assert.equal(a.readU8(other) === 0x77, false, 'no write of cpu 1 lands in another area');
      a.check();
    });
  }
});
