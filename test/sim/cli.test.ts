/**
 * The simulator through the command line: `vmalloc test ... simulate=1` prints the kernel's
 * lines in virtual time (the same every run), lock_stat and the spinning share;
 * `vmalloc bench scaling --json`; a bad calibration file is refused in one line.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

describe('vmalloc test simulate=1', () => {
  test('prints Summary and All test took per CPU, lock_stat, spinning; deterministic', () => {
    const args = [
      'test',
      'nr_threads=4',
      'simulate=1',
      'test_loop_count=30',
      'run_test_mask=1',
      'lock_stat=1',
      'design=global',
      'seed=3',
      '--quiet',
    ];
    const a = cli(args);
    assert.equal(a.status, 0, a.stderr);
    const lines = a.stdout.split('\n');
    assert.equal(
      lines.filter((l) =>
        l.startsWith('Summary: fix_size_alloc_test passed: 1 failed: 0 xfailed: 0'),
      ).length,
      4,
    );
    assert.equal(lines.filter((l) => /^All test took worker\d=\d+ cycles$/.test(l)).length, 4);
    assert.ok(lines.includes('lock_stat version 0.4'));
    assert.match(a.stdout, /^\s+vmap_area_lock:/m);
    assert.match(a.stdout, /virtual CPU time spinning: \d+\.\d% of 4 CPUs' time/);
    assert.equal(cli(args).stdout, a.stdout, 'the same run, the same virtual times');
  });

  test('a calibration file that is not one is refused in one line', (t) => {
    const f = join(tmpdir(), `vmalloc-bad-cal-${process.pid}.json`);
    writeFileSync(f, '{"weights":[1]}');
    t.after(() => rmSync(f, { force: true }));
    const r = cli(['test', 'simulate=1', 'test_loop_count=5', 'run_test_mask=1', '--quiet'], {
      VMALLOC_SIM_CALIBRATION: f,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /"weights" must be 6 numbers >= 0/);
  });
});

describe('vmalloc test simulate=1 run_test_mask=1024', () => {
  test('vm_map_ram_test: the block hash and vb->lock in lock_stat; the policy in the header', () => {
    const args = [
      'test',
      'nr_threads=8',
      'simulate=1',
      'test_loop_count=300',
      'run_test_mask=1024',
      'lock_stat=1',
      'design=global',
      'vmap_block_hash=global',
      'seed=3',
    ];
    const a = cli(args);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(
      a.stdout
        .split('\n')
        .filter((l) => l.startsWith('Summary: vm_map_ram_test passed: 1 failed: 0')).length,
      8,
    );
    assert.match(a.stdout, /^\s+vmap_blocks\.xa_lock:/m);
    assert.match(a.stdout, /^\s+&vb->lock:/m);
    assert.match(a.stderr, /policy nr_vmap_nodes=1 .*vmap_block_hash=global/);
    const bad = cli([...args.slice(0, -2), 'nr_vmap_nodes=300', '--quiet']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /nrVmapNodes must be an integer from 1 to 255, got 300/);
  });
});

describe('vmalloc bench scaling', () => {
  test('--json gives a row per size, policy and design (all five by default)', () => {
    const r = cli(['bench', 'scaling', '--cpus', '1,4', '--loops', '20', '--json', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    const o = JSON.parse(r.stdout) as {
      rows: { design: string; cpus: number; virtualMs: number }[];
    };
    const five = ['legacy', 'rfc2018', 'global', 'offload2023', 'nodes'];
    assert.deepEqual(
      o.rows.map((x) => [x.cpus, x.design]),
      [1, 4].flatMap((n) => five.map((d) => [n, d])),
    );
    assert.ok(o.rows.every((x) => x.virtualMs > 0));
  });

  test('--policy runs each design under each policy, in one table', () => {
    const r = cli([
      'bench',
      'scaling',
      '--cpus',
      '8',
      '--loops',
      '50',
      '--design',
      'nodes',
      '--policy',
      'default,nr_vmap_nodes=1',
      '--quiet',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\| 8 \| nodes \| default \|/);
    assert.match(r.stdout, /\| 8 \| nodes \| nr_vmap_nodes=1 \|/);
    assert.match(r.stdout, /- nr_vmap_nodes=1: nr_vmap_nodes=1 vmap_zone_size=1 /);
    const bad = cli(['bench', 'scaling', '--policy', 'nr_nodes=1', '--quiet']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--policy: "nr_nodes=1" is not a policy word/);
  });
});
