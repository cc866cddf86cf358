/**
 * test_vmalloc with nr_threads workers (real worker threads, one CPU each): per-worker
 * results and Summary lines, a clean state afterwards, lock_stat from the start; and the CLI's
 * output for the same.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Vmalloc } from '../../src/index.js';
import { LockTable } from '../../src/shared/lock.js';
import { summaryLines } from '../../src/test-vmalloc/driver.js';
import { applyParams, defaultParams, type TestParams } from '../../src/test-vmalloc/params.js';
import { runTestVmalloc } from '../../src/test-vmalloc/run.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';
import { WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function params(words: string[]): TestParams {
  const p = defaultParams(IMPLEMENTED_MASK, 2);
  p.seed = 7;
  applyParams(p, words);
  return p;
}

const NAMES = ['fix_size_alloc_test', 'full_fit_alloc_test', 'long_busy_list_alloc_test'];

describe('test_vmalloc on two workers', () => {
  for (const design of ['nodes', 'global'] as const) {
    test(
      `nr_threads=2: one result per worker, every test passed, clean state (${design})`,
      { timeout: WORKER_TEST_TIMEOUT_MS },
      async () => {
        const p = params([
          'nr_threads=2',
          'test_loop_count=200',
          'run_test_mask=7',
          `design=${design}`,
        ]);
        const warnings: string[] = [];
        const run = await runTestVmalloc({
          params: p,
          logger: { warn: (m) => warnings.push(m) },
          lockStatFromStart: design === 'nodes',
        });
        assert.equal(run.nrCpus, 2);
        assert.equal(run.workers.length, 2);
        assert.deepEqual(
          run.workers.map((w) => [w.worker, w.cpu]),
          [
            [0, 0],
            [1, 1],
          ],
          'worker i runs as cpu i',
        );
        for (const w of run.workers) {
          assert.deepEqual(
            w.tests.map((t) => [t.name, t.passed, t.failed]),
            NAMES.map((n) => [n, 1, 0]),
            `worker ${w.worker}`,
          );
          assert.ok(w.totalNs > 0);
        }
        assert.deepEqual(warnings, []);
        const lines = summaryLines(run.workers, p);
        assert.equal(lines.length, 8);
        for (const [i, block] of [lines.slice(0, 4), lines.slice(4)].entries()) {
          block
            .slice(0, 3)
            .forEach((line, k) =>
              assert.match(
                line,
                new RegExp(
                  `^Summary: ${NAMES[k]} passed: 1 failed: 0 xfailed: 0 repeat: 1 loops: 200 avg: \\d+ usec$`,
                ),
              ),
            );
          // The default clock counts one cycle a nanosecond.
          assert.equal(block[3], `All test took worker${i}=${run.workers[i]!.totalNs} cycles`);
        }
        const { vm } = run;
        assert.equal(vm.config.design, design);
        vm.check();
        const st = vm.stats();
        assert.equal(st.busyAreas, 0);
        assert.equal(st.pagesUsed, 0);
        if (design === 'nodes') {
          const free = vm.lockStats().find((s) => s.name === 'free_vmap_area_lock')!;
          assert.ok(free.acquisitions > 0, 'lock_stat on from the start');
          assert.ok(free.contentions <= free.acquisitions);
          assert.match(vm.lockStat(), /^lock_stat version 0\.4$/m);
        } else {
          assert.ok(
            vm.lockStats().every((s) => s.acquisitions === 0),
            'lock_stat off by default',
          );
        }
        vm.purge();
        vm.shrinker.scan();
        vm.check();
        assert.equal(vm.stats().freeBlocks, 1);
      },
    );
  }

  test(
    'after the run, the cpu of the returned instance is not marked dead',
    { timeout: WORKER_TEST_TIMEOUT_MS },
    async () => {
      // Worker i runs as cpu i and is watched (watchWorker), so worker 0's exit marks cpu 0 dead;
      // but cpu 0 is also the returned instance's cpu, alive in this thread: a worker waiting for
      // a lock that this thread holds would give up with EOWNERDEAD.
      // The check must come after every worker's 'exit' event, however late they come: each
      // watched worker also gets a listener of ours, added after watchWorker's (which marks the
      // cpu dead), and the test waits for them all.
      const exits: Promise<void>[] = [];
      const watchWorker = Vmalloc.prototype.watchWorker;
      Vmalloc.prototype.watchWorker = function (worker, cpu) {
        watchWorker.call(this, worker, cpu);
        exits.push(new Promise((resolve) => worker.on('exit', () => resolve())));
      };
      let vm: Vmalloc;
      try {
        const p = params(['nr_threads=2', 'test_loop_count=10', 'run_test_mask=1']);
        ({ vm } = await runTestVmalloc({ params: p, logger: null }));
      } finally {
        Vmalloc.prototype.watchWorker = watchWorker;
      }
      assert.equal(vm.cpu, 0);
      assert.equal(exits.length, 2, 'both workers were watched');
      await Promise.all(exits); // the workers' 'exit' events, and so their markCpuDead()
      assert.equal(
        new LockTable(vm.handle.locks).isCpuDead(vm.cpu),
        false,
        'cpu 0 is marked dead, yet the returned instance (cpu 0) lives in this thread',
      );
    },
  );

  test('the CLI: two Summary blocks, two totals and the lock_stat block', () => {
    const r = spawnSync(
      process.execPath,
      [
        cli,
        'test',
        'nr_threads=2',
        'test_loop_count=100',
        'run_test_mask=1',
        'lock_stat=1',
        '--quiet',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', '--quiet');
    const out = r.stdout;
    const summaries = out.match(
      /^Summary: fix_size_alloc_test passed: 1 failed: 0 xfailed: 0 repeat: 1 loops: 100 avg: \d+ usec$/gm,
    );
    assert.equal(summaries?.length, 2, out);
    const totals = out.match(/^All test took worker(\d)=\d+ cycles$/gm);
    assert.deepEqual(
      totals?.map((l) => l.slice(0, 'All test took worker0'.length)),
      ['All test took worker0', 'All test took worker1'],
    );
    assert.match(out, /^lock_stat version 0\.4$/m);
    assert.match(out, /free_vmap_area_lock/);
    assert.ok(
      out.indexOf('All test took worker1') < out.indexOf('lock_stat version 0.4'),
      'lock_stat after the summary',
    );
  });
});
