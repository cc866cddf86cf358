/**
 * The `vmalloc bench kva` command: runs end to end (tiny loop counts), prints the tables, and
 * rejects bad flags with exit status 1.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('bench kva prints the six patterns, the scaling table and the heap line', () => {
  const r = run(
    'bench',
    'kva',
    '--loops',
    '2000',
    '--reps',
    '1',
    '--scale',
    '1000,2000',
    '--scale-loops',
    '2000',
    '--heap-pairs',
    '2000',
    '--quiet',
  );
  assert.equal(r.status, 0, r.stderr);
  for (const name of [
    'fix_size_alloc_test',
    'full_fit_alloc_test',
    'long_busy_list_alloc_test',
    'random_size_alloc_test',
    'fix_align_alloc_test',
    'random_size_align_alloc_test',
  ]) {
    assert.match(r.stdout, new RegExp(`\\| ${name} \\|`));
  }
  assert.match(r.stdout, /\| 1000 \| 1000 \|/); // the last hole merges with the free tail
  assert.match(r.stdout, /Cost at B=2000 over cost at B=1000/);
  assert.match(r.stdout, /JS heap after 2,000 alloc\/free pairs/);
});

test('bench kva --json is machine-readable', () => {
  const r = run(
    'bench',
    'kva',
    '--loops',
    '1000',
    '--reps',
    '1',
    '--mask',
    '3',
    '--scale',
    'none',
    '--heap-pairs',
    '1000',
    '--json',
    '--quiet',
  );
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as {
    schemaVersion: number;
    patterns: { id: number; jsMedianNs: number; jsNs: number[] }[];
  };
  assert.equal(j.schemaVersion, 2);
  assert.deepEqual(
    j.patterns.map((p) => p.id),
    [1, 2],
  );
  assert.ok(j.patterns.every((p) => p.jsMedianNs > 0 && p.jsNs.length === 1));
  assert.doesNotMatch(r.stdout, /"(js|jsMedian|waitMax)":/); // every timing names its unit
});

test('bad flags exit 1 with a message naming the flag', () => {
  const r = run('bench', 'kva', '--loops', '-5');
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /--loops must be an integer from 1 to 2147483647 \(test_loop_count is an int\), got -5/,
  );
  const u = run('bench', 'kva', '--bogus');
  assert.equal(u.status, 1);
  assert.match(u.stderr, /unknown option --bogus/);
  const w = run('bench', 'nothing');
  assert.equal(w.status, 1);
  assert.match(w.stderr, /unknown benchmark "nothing"/);
  const c = run('bench', 'kva', '--cref', '/no/such/file');
  assert.equal(c.status, 1);
  assert.match(c.stderr, /--cref: no file at \/no\/such\/file/);
});

test('help', () => {
  const r = run('help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /Usage: vmalloc <command>/);
  const b = run('bench', '--help');
  assert.equal(b.status, 0);
  assert.match(b.stdout, /--cref PATH/);
});
