/**
 * test_vmalloc's kvfree_rcu_1_arg_vmalloc_test and kvfree_rcu_2_arg_vmalloc_test with one
 * worker (in this thread) and two (worker threads), in both designs: every repetition passes,
 * the grace periods and batches show in stats, and the run leaves nothing pending or leaked
 * (the driver ends with rcuBarrier()).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyParams, defaultParams } from '../../src/test-vmalloc/params.js';
import { runTestVmalloc } from '../../src/test-vmalloc/run.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';
import { WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';

for (const design of ['global', 'nodes'] as const) {
  describe(`kvfree_rcu tests [${design}]`, () => {
    for (const threads of [1, 2]) {
      test(
        `${threads} worker(s): both pass, nothing left`,
        { timeout: WORKER_TEST_TIMEOUT_MS },
        async () => {
          assert.equal(IMPLEMENTED_MASK & 768, 768, 'in the default mask');
          const p = defaultParams(IMPLEMENTED_MASK, 2);
          applyParams(p, [
            'run_test_mask=768',
            'test_loop_count=600',
            'test_repeat_count=2',
            `nr_threads=${threads}`,
            `design=${design}`,
          ]);
          const run = await runTestVmalloc({ params: p, logger: null });
          assert.equal(run.workers.length, threads);
          for (const w of run.workers)
            assert.deepEqual(
              w.tests.map((t) => [t.name, t.passed, t.failed, t.xfailed]),
              [
                ['kvfree_rcu_1_arg_vmalloc_test', 2, 0, 0],
                ['kvfree_rcu_2_arg_vmalloc_test', 2, 0, 0],
              ],
            );
          const { vm } = run;
          vm.check();
          const st = vm.stats();
          assert.equal(st.rcuQueued, threads * 2 * 2 * 600);
          assert.equal(st.rcuFreed, st.rcuQueued);
          assert.equal(st.rcuPending, 0);
          assert.ok(st.rcuBatches >= Math.floor(st.rcuQueued / 128));
          assert.ok(st.rcuGracePeriods > 0);
          assert.equal(st.busyAreas, 0);
          assert.equal(st.pagesUsed, 0);
        },
      );
    }
  });
}
