/**
 * `vmalloc test` follows Linux v6.17's test_vmalloc output and fails the run (exit status 1)
 * only on an unexpected failure: align_shift_alloc_test failing is counted as xfailed and the
 * run passes; a test that fails for real makes it exit 1. The counting rule itself (an xfail
 * test that passes counts as failed) is checked on the driver's function.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  COUNT_FAILED,
  COUNT_PASSED,
  COUNT_XFAILED,
  TEST_VMALLOC_VERSION,
  countOf,
  cyclesOf,
} from '../../src/test-vmalloc/kernel-version.js';
import { clockFromCpuinfo } from '../../src/cli/machine.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, 'test', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('an expected failure (align_shift_alloc_test) is xfailed and the run exits 0', () => {
  const r = run('run_test_mask=65', 'test_loop_count=10', 'nr_cpus=1', '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^Summary: align_shift_alloc_test passed: 0 failed: 0 xfailed: 1 repeat: 1 loops: 10 avg: \d+ usec$/m,
  );
});

test('an unexpected failure makes the run exit 1', (t) => {
  // 1.1 million pages do not fit the largest simulated memory (4 GiB): every vmalloc fails.
  const r = run('run_test_mask=1', 'nr_pages=1100000', 'test_loop_count=1', 'nr_cpus=1', '--quiet');
  if (r.stdout === '' && /memory/.test(r.stderr)) {
    t.skip(`this machine refuses the run's memory: ${r.stderr.trim()}`);
    return;
  }
  assert.match(r.stdout, /^Summary: fix_size_alloc_test passed: 0 failed: 1 xfailed: 0 /m);
  assert.equal(r.status, 1);
});

test('counting as v6.17 does: an xfail test that passes is a failure', () => {
  assert.equal(countOf('fix_size_alloc_test', 0), COUNT_PASSED);
  assert.equal(countOf('fix_size_alloc_test', -1), COUNT_FAILED);
  assert.equal(countOf('align_shift_alloc_test', -1), COUNT_XFAILED);
  assert.equal(countOf('align_shift_alloc_test', 0), COUNT_FAILED);
});

test('the version is named in --help; cycles come from the clock rate', () => {
  const r = run('--help');
  assert.equal(r.status, 0);
  assert.ok(r.stdout.includes(TEST_VMALLOC_VERSION), r.stdout);
  assert.match(r.stdout, /align_shift_alloc_test {2}\(expected to fail: xfail\)/);
  assert.equal(cyclesOf(1_000_000, { mhz: 2400, source: 't' }), 2_400_000);
  assert.equal(
    clockFromCpuinfo('model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\ncpu MHz\t\t: 1200.000\n').mhz,
    2200,
  );
  assert.equal(clockFromCpuinfo('model name\t: AMD EPYC\ncpu MHz\t\t: 2596.142\n').mhz, 2596.142);
  assert.ok(clockFromCpuinfo('').mhz > 0, 'a fallback');
});
