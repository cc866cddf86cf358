/** The `vmalloc test` command: kernel lines, test_vmalloc.sh validation, --json, modes, help. */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { IMPLEMENTED_MASK, TEST_CASES } from '../../src/test-vmalloc/tests.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, 'test', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('prints the Summary lines of every implemented test and the total, as v6.17 does', () => {
  const r = run('test_loop_count=200', 'nr_cpus=1', 'seed=3', 'nr_pcpu_objects=500');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  const names = TEST_CASES.filter((t) => t.run !== null).map((t) => t.name);
  assert.equal(lines.length, names.length + 1);
  for (const [k, line] of lines.slice(0, -1).entries()) {
    assert.match(
      line,
      new RegExp(
        `^Summary: ${names[k]} passed: \\d+ failed: \\d+ xfailed: \\d+ repeat: 1 loops: 200 avg: \\d+ usec$`,
      ),
    );
  }
  // The expected failure is counted as xfailed, and does not fail the run (status 0).
  assert.match(
    lines[names.indexOf('align_shift_alloc_test')]!,
    /^Summary: align_shift_alloc_test passed: 0 failed: 0 xfailed: 1 /,
  );
  assert.match(lines.at(-1)!, /^All test took worker0=\d+ cycles$/);
  assert.match(r.stderr, /test_vmalloc: cycles at \d+(\.\d+)? (MHz|GHz)/);
  assert.match(
    r.stderr,
    new RegExp(`design=nodes nr_cpus=1 nr_threads=1 run_test_mask=${IMPLEMENTED_MASK} .* seed=3`),
  );
  assert.match(
    r.stderr,
    /vmalloc_node_range for size 8192 failed: Address range restricted to 0xffffc90000000000 - 0xffffe8ffffffffff/,
  );
});

test('test_vmalloc.sh validation: unknown key or a value not above zero exits 1', () => {
  for (const [arg, msg] of [
    ['foo=1', 'Error: key or value is not correct: foo 1 (unknown parameter; '],
    [
      'test_loop_count=0',
      'Error: key or value is not correct: test_loop_count 0 (the value must be a decimal number above 0)',
    ],
    [
      'nr_pages=x',
      'Error: key or value is not correct: nr_pages x (the value must be a decimal number above 0)',
    ],
  ] as const) {
    const r = run(arg);
    assert.equal(r.status, 1, arg);
    assert.ok(r.stderr.startsWith(msg), r.stderr);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    assert.equal(r.stdout, '');
  }
});

test('the default mask runs all eleven tests, the run_test_mask of 6.x (INT_MAX) too', () => {
  const r = run(
    'run_test_mask=2147483647',
    'test_loop_count=20',
    'nr_cpus=1',
    'nr_pcpu_objects=50',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.match(/^Summary: /gm)?.length, 11);
});

test('modes, with overrides after the mode', () => {
  const r = run('smoke', 'test_loop_count=50', 'run_test_mask=1', 'nr_cpus=1', '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^Summary: fix_size_alloc_test passed: 10 failed: 0 xfailed: 0 repeat: 10 loops: 50 avg: \d+ usec$/m,
  );
  assert.equal(r.stderr, '');
  const bad = run('fast');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown mode "fast"/);
});

test('--json and --vmallocinfo', () => {
  const r = run(
    'test_loop_count=20',
    'run_test_mask=3',
    'nr_cpus=1',
    '--json',
    '--vmallocinfo',
    '--quiet',
  );
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as {
    schemaVersion: number;
    params: { test_loop_count: number };
    workers: { tests: { name: string; passed: number }[] }[];
    stats: { busyAreas: number };
    vmallocinfo: string;
  };
  assert.equal(j.schemaVersion, 2);
  assert.equal(j.params.test_loop_count, 20);
  assert.deepEqual(
    j.workers[0]!.tests.map((t) => [t.name, t.passed]),
    [
      ['fix_size_alloc_test', 1],
      ['full_fit_alloc_test', 1],
    ],
  );
  assert.equal(j.stats.busyAreas, 0);
  assert.equal(typeof j.vmallocinfo, 'string');
});

test('--help lists the parameters and tests', () => {
  const r = run('--help');
  assert.equal(r.status, 0);
  for (const word of [
    'test_loop_count',
    'run_test_mask',
    'sequential_test_order',
    'nr_pages',
    'design',
    'nr_cpus',
    'align_shift_alloc_test',
    'performance',
  ]) {
    assert.ok(r.stdout.includes(word), word);
  }
});

test('--check=N checks the invariants every N-th operation; a bad N is refused', () => {
  const r = run('run_test_mask=1', 'test_loop_count=300', 'nr_cpus=1', '--check=50', '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Summary: fix_size_alloc_test passed: 1 failed: 0 /);
  for (const bad of ['0', 'x', '-1', '1.5', '']) {
    const b = run('run_test_mask=1', `--check=${bad}`);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /--check=N: N must be a positive integer/);
  }
});

test('--json with lock_stat: schemaVersion and lock times named in microseconds', () => {
  const r = run(
    'run_test_mask=1',
    'test_loop_count=50',
    'nr_cpus=1',
    'lock_stat=1',
    '--json',
    '--quiet',
  );
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { schemaVersion: number; lockStat: Record<string, unknown>[] };
  assert.equal(j.schemaVersion, 2);
  assert.ok(j.lockStat.length > 0);
  for (const l of j.lockStat) {
    for (const k of [
      'waitMinUs',
      'waitMaxUs',
      'waitTotalUs',
      'holdMinUs',
      'holdMaxUs',
      'holdTotalUs',
    ])
      assert.equal(typeof l[k], 'number', k);
    assert.equal(l['waitMax'], undefined);
  }
});
