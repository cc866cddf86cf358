/**
 * test_vmalloc with design=offload2023: the seven tests in one worker (the same results as
 * the other designs: six pass, align_shift_alloc_test fails as in the kernel), a reduced run
 * in the checked mode, and two worker threads on a 4-CPU machine (two vmap nodes, so both
 * node heaps serve and fetch); every run ends clean, with every fetched block returned.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createVmalloc, type Vmalloc } from '../../src/index.js';
import type { Offload2023Design } from '../../src/designs/offload2023.js';
import { runWorker } from '../../src/test-vmalloc/driver.js';
import { applyParams, defaultParams, type TestParams } from '../../src/test-vmalloc/params.js';
import { runTestVmalloc } from '../../src/test-vmalloc/run.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';
import { WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';

function params(words: string[], nrCpus: number): TestParams {
  const p = defaultParams(IMPLEMENTED_MASK, nrCpus);
  p.seed = 42;
  applyParams(p, ['design=offload2023', ...words]);
  return p;
}

/** No area left, and after a purge one free block spans the space: every block went back. */
function endsClean(vm: Vmalloc): void {
  vm.check();
  // vm_map_ram_test leaves its last vmap block (no live mapping) until a purge.
  assert.equal(vm.stats().busyAreas, vm.stats().vmapBlocks, 'every area but vmap blocks was freed');
  assert.equal(vm.stats().pagesUsed, 0, 'every page was freed');
  vm.purge();
  vm.check();
  assert.equal(vm.stats().freeBlocks, 1, 'one free block spans the space');
  const d = vm.areas.design as Offload2023Design;
  const { fetched, returned } = d.blockCounts();
  assert.ok(fetched > 0, 'the node heaps fetched blocks');
  assert.equal(returned, fetched, 'every fetched block went back to the global heap');
}

describe('test_vmalloc with design=offload2023', () => {
  test('one worker: six tests pass and align_shift_alloc_test fails, as in the kernel', () => {
    const warnings: string[] = [];
    const vm = createVmalloc({
      design: 'offload2023',
      nrCpus: 4,
      logger: { warn: (m) => warnings.push(m) },
    });
    const r = runWorker(
      vm,
      params(['test_loop_count=300', 'test_repeat_count=2', 'run_test_mask=1919'], 4),
      0,
    );
    assert.deepEqual(
      r.tests.map((t) => [t.name, t.passed, t.failed, t.xfailed]),
      [
        ['fix_size_alloc_test', 2, 0, 0],
        ['full_fit_alloc_test', 2, 0, 0],
        ['long_busy_list_alloc_test', 2, 0, 0],
        ['random_size_alloc_test', 2, 0, 0],
        ['fix_align_alloc_test', 2, 0, 0],
        ['random_size_align_alloc_test', 2, 0, 0],
        ['align_shift_alloc_test', 0, 0, 2],
        ['kvfree_rcu_1_arg_vmalloc_test', 2, 0, 0],
        ['kvfree_rcu_2_arg_vmalloc_test', 2, 0, 0],
        ['vm_map_ram_test', 2, 0, 0],
      ],
    );
    assert.ok(
      warnings.includes(
        'vmap allocation for size 8192 failed: use vmalloc=<size> to increase size',
      ),
      'the warning of the kernels before 6.11',
    );
    assert.ok(vm.stats().poolHits > 0, 'the node heap served allocations');
    endsClean(vm);
  });

  test('checked mode: check() after every 25th operation of a reduced run', () => {
    // 64 KiB pages make full_fit_alloc_test's junk small; 4 CPUs make 2 nodes of 512 KiB
    // blocks (8 pages), so the 1-page requests (2 with the guard page) are node ones. (Every
    // operation is checked in the model test; here that would take 20 s, as for 'nodes'.)
    const vm = createVmalloc({
      design: 'offload2023',
      nrCpus: 4,
      pageSize: 65536,
      checkEveryOp: 25,
      logger: null,
    });
    const r = runWorker(vm, params(['test_loop_count=40', 'run_test_mask=123'], 4), 0);
    assert.deepEqual(
      r.tests.map((t) => [t.failed, t.xfailed]),
      [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 1],
      ],
    );
    endsClean(vm);
  });

  test(
    'two workers on 4 CPUs: one result per worker, every test passed, clean state',
    { timeout: WORKER_TEST_TIMEOUT_MS },
    async () => {
      const p = params(['nr_threads=2', 'nr_cpus=4', 'test_loop_count=200', 'run_test_mask=7'], 4);
      const warnings: string[] = [];
      const run = await runTestVmalloc({ params: p, logger: { warn: (m) => warnings.push(m) } });
      assert.equal(run.nrCpus, 4);
      assert.equal(run.workers.length, 2);
      for (const w of run.workers)
        assert.deepEqual(
          w.tests.map((t) => [t.name, t.passed, t.failed]),
          [
            ['fix_size_alloc_test', 1, 0],
            ['full_fit_alloc_test', 1, 0],
            ['long_busy_list_alloc_test', 1, 0],
          ],
          `worker ${w.worker}`,
        );
      assert.deepEqual(warnings, []);
      const { vm } = run;
      assert.equal(vm.config.design, 'offload2023');
      const d = vm.areas.design as Offload2023Design;
      assert.equal(d.nrNodes, 2, 'cpu 0 uses node 0, cpu 1 node 1');
      endsClean(vm);
    },
  );
});
