/**
 * test_vmalloc through the same code path as the CLI (runWorker): all seven tests with small
 * loop counts, the checked mode, the shuffle, the mask rules, the summary lines.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createVmalloc } from '../../src/index.js';
import { checkMask, runWorker, shuffleOrder, summaryLines } from '../../src/test-vmalloc/driver.js';
import {
  applyParams,
  defaultParams,
  modeWords,
  type TestParams,
} from '../../src/test-vmalloc/params.js';
import { KernelRandom } from '../../src/test-vmalloc/random.js';
import { IMPLEMENTED_MASK, TEST_CASES } from '../../src/test-vmalloc/tests.js';

function params(words: string[], nrCpus = 1): TestParams {
  const p = defaultParams(IMPLEMENTED_MASK, nrCpus);
  p.seed = 42;
  applyParams(p, words);
  return p;
}

describe('the seven tests', () => {
  test('six pass and align_shift_alloc_test fails, as in the kernel; the state ends clean', () => {
    const warnings: string[] = [];
    const vm = createVmalloc({ nrCpus: 2, logger: { warn: (m) => warnings.push(m) } });
    // All but pcpu_alloc_test, which keeps a percpu chunk (test/mm/pcpu.test.ts covers it).
    const p = params(['test_loop_count=300', 'test_repeat_count=2', 'run_test_mask=1919'], 2);
    const r = runWorker(vm, p, 0);
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
        'vmalloc_node_range for size 8192 failed: Address range restricted to 0xffffc90000000000 - 0xffffe8ffffffffff',
      ),
    );
    vm.check();
    const st = vm.stats();
    // vm_map_ram_test leaves its last vmap block (no live mapping) until a purge.
    assert.equal(st.busyAreas, st.vmapBlocks, 'every area but vmap blocks was freed');
    assert.equal(st.pagesUsed, 0, 'every page was freed');
    vm.purge();
    assert.equal(vm.stats().freeBlocks, 1, 'after a purge one free block spans the space');
    assert.ok(st.purges >= 1, 'full_fit_alloc_test frees more than lazy_max_pages()');
  });

  test('align_shift_alloc_test fails at the first alignment past the window (2^46 on x86_64)', () => {
    const vm = createVmalloc({ nrCpus: 1, logger: null });
    for (let i = 0; i < 46; i++) {
      const a = vm.vmalloc(4096, { align: 2 ** i });
      assert.notEqual(a, null, `align 2^${i}`);
      vm.vfree(a);
    }
    assert.equal(vm.vmalloc(4096, { align: 2 ** 46 }), null);
  });

  test('checked mode: check() after every operation of a reduced run', () => {
    // 64 KiB pages make full_fit_alloc_test's junk 512 areas; long_busy_list_alloc_test's
    // 15000 areas are checked every 500 operations in a run of their own.
    const vm = createVmalloc({ nrCpus: 1, pageSize: 65536, checkEveryOp: true, logger: null });
    const r = runWorker(vm, params(['test_loop_count=40', 'run_test_mask=123']), 0);
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
    const vm2 = createVmalloc({ nrCpus: 1, checkEveryOp: 500, logger: null });
    const r2 = runWorker(vm2, params(['test_loop_count=100', 'run_test_mask=4']), 0);
    assert.equal(r2.tests[0]!.passed, 1);
    vm2.check();
  });

  test('nr_pages and use_huge for fix_size_alloc_test', () => {
    const vm = createVmalloc({ nrCpus: 1, logger: null });
    const r = runWorker(
      vm,
      params(['test_loop_count=20', 'run_test_mask=1', 'nr_pages=600', 'use_huge=1']),
      0,
    );
    assert.equal(r.tests[0]!.passed, 1);
    vm.check();
  });
});

describe('driver rules', () => {
  test("the shuffle is the kernel's: a permutation, every element moved (Sattolo)", () => {
    const rng = new KernelRandom(7);
    for (let k = 0; k < 50; k++) {
      const o = shuffleOrder(11, rng);
      assert.deepEqual(
        [...o].sort((a, b) => a - b),
        [...Array(11).keys()],
      );
      assert.ok(
        o.every((v, i) => v !== i),
        'i = n-1..1 swapped with j < i moves every element',
      );
    }
  });

  test('sequential order runs the tests in table order; otherwise each worker shuffles', () => {
    const vm = createVmalloc({ nrCpus: 1, logger: null });
    const seq = runWorker(
      vm,
      params(['test_loop_count=5', 'sequential_test_order=1', 'run_test_mask=1']),
      0,
    );
    assert.deepEqual(seq.order, [...Array(11).keys()]);
    const shuffled = runWorker(vm, params(['test_loop_count=5', 'run_test_mask=1']), 0);
    assert.notDeepEqual(shuffled.order, seq.order);
  });

  test('all eleven tests of the table are implemented; bits past the table are ignored', () => {
    assert.equal(TEST_CASES.length, 11);
    assert.ok(TEST_CASES.every((t) => t.run !== null));
    assert.equal(IMPLEMENTED_MASK, 2047);
    assert.doesNotThrow(() => checkMask(0x7fffffff), 'INT_MAX, the 6.x default, selects all');
    assert.doesNotThrow(
      () => checkMask(IMPLEMENTED_MASK | (1 << 20)),
      'bits past the table are ignored, as in the kernel',
    );
  });

  test('Summary and total lines in the kernel format', () => {
    const vm = createVmalloc({ nrCpus: 1, logger: null });
    const p = params(['test_loop_count=10', 'run_test_mask=9']);
    const lines = summaryLines([runWorker(vm, p, 0)], p);
    assert.equal(lines.length, 3);
    assert.match(
      lines[0]!,
      /^Summary: fix_size_alloc_test passed: 1 failed: 0 xfailed: 0 repeat: 1 loops: 10 avg: \d+ usec$/,
    );
    assert.match(
      lines[1]!,
      /^Summary: random_size_alloc_test passed: 1 failed: 0 xfailed: 0 repeat: 1 loops: 10 avg: \d+ usec$/,
    );
    assert.match(lines[2]!, /^All test took worker0=\d+ cycles$/);
  });

  test('parameters: test_vmalloc.sh validation and modes', () => {
    assert.throws(() => params(['foo=1']), {
      message: /^Error: key or value is not correct: foo 1 \(unknown parameter; /,
    });
    assert.throws(() => params(['test_loop_count=0']), {
      message:
        'Error: key or value is not correct: test_loop_count 0 (the value must be a decimal number above 0)',
    });
    assert.throws(() => params(['test_loop_count=-5']), /key or value is not correct/);
    assert.throws(() => params(['test_loop_count=abc']), /key or value is not correct/);
    assert.throws(() => params(['design=bogus']), /key or value is not correct: design bogus/);
    const perf = params(modeWords('performance', 2));
    assert.equal(perf.sequential_test_order, true);
    assert.equal(perf.test_repeat_count, 3);
    const smoke = params(modeWords('smoke', 2));
    assert.equal(smoke.test_loop_count, 10000);
    assert.equal(smoke.test_repeat_count, 10);
    assert.equal(params(modeWords('stress', 8)).nr_threads, 8);
    // The kernel clamps to USHRT_MAX; here it is refused, naming the rule.
    assert.throws(() => params(['nr_threads=100000']), /nr_threads is at most 65535, USHRT_MAX/);
    assert.equal(TEST_CASES.length, 11);
  });
});
