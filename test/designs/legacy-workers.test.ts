/**
 * test_vmalloc with design=legacy on two workers (real worker threads, one CPU each, sharing
 * vmap_area_lock, the lockless purge list and the search cache), and the CLI accepting the
 * design.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DESIGN_NAMES } from '../../src/designs/registry.js';
import { applyParams, defaultParams, PARAM_HELP } from '../../src/test-vmalloc/params.js';
import { runTestVmalloc } from '../../src/test-vmalloc/run.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';
import { WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test(
  'nr_threads=2 design=legacy: every test passes on both workers, the state ends clean',
  { timeout: WORKER_TEST_TIMEOUT_MS },
  async () => {
    const p = defaultParams(IMPLEMENTED_MASK, 2);
    p.seed = 11;
    // Tests 1-6 (align_shift_alloc_test fails by design, in every design).
    applyParams(p, ['nr_threads=2', 'test_loop_count=150', 'run_test_mask=63', 'design=legacy']);
    const warnings: string[] = [];
    const run = await runTestVmalloc({
      params: p,
      logger: { warn: (m) => warnings.push(m) },
      lockStatFromStart: true,
    });
    assert.equal(run.workers.length, 2);
    for (const w of run.workers) {
      assert.deepEqual(
        w.tests.map((t) => [t.passed, t.failed]),
        Array.from({ length: 6 }, () => [1, 0]),
        `worker ${w.worker}: ${JSON.stringify(w.tests)}`,
      );
    }
    assert.deepEqual(warnings, []);
    const { vm } = run;
    assert.equal(vm.config.design, 'legacy');
    vm.check();
    assert.equal(vm.stats().busyAreas, 0);
    assert.equal(vm.stats().pagesUsed, 0);
    const lock = vm.lockStats().find((s) => s.name === 'vmap_area_lock')!;
    assert.ok(lock.acquisitions > 0, 'one global lock takes every operation');
    assert.equal(
      vm.lockStats().find((s) => s.name === 'free_vmap_area_lock'),
      undefined,
      'no free tree, no free_vmap_area_lock',
    );
    vm.purge();
    vm.check();
    assert.equal(vm.stats().lazyAreas, 0);
  },
);

test('the CLI and the parameter table take design=legacy from the registry', () => {
  assert.ok(DESIGN_NAMES.includes('legacy'));
  assert.match(PARAM_HELP.design, /legacy \(<= 5\.1\)/);
  const r = spawnSync(
    process.execPath,
    [cli, 'test', 'design=legacy', 'test_loop_count=50', 'run_test_mask=1', '--quiet'],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Summary: fix_size_alloc_test passed: 1 failed: 0 /m);
});
