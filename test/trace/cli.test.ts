/**
 * `vmalloc replay` and `vmalloc load-vmallocinfo` from the command line: their output, exit
 * statuses (0 when it ran, 1 with --strict and a divergence, 1 for a usage error with one
 * line saying why), record= on real and simulated runs, and the refusal of bad files.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vmalloc-trace-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function vmalloc(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const SHORT = ['run_test_mask=9', 'test_loop_count=300', 'seed=5'];

test(
  'test ... record=: the trace replays with no divergence; --strict exits 0',
  { timeout: WORKER_TEST_TIMEOUT_MS },
  () => {
    const file = join(dir, 'cli.jsonl');
    const rec = vmalloc('test', 'nr_threads=2', 'nr_cpus=2', ...SHORT, `record=${file}`);
    assert.equal(rec.status, 0, rec.stderr);
    assert.match(rec.stdout, /^Summary: fix_size_alloc_test passed: 1 failed: 0 /m);
    assert.match(rec.stderr, /record: \d+ calls written to /);
    const r = vmalloc('replay', file, '--strict');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^replay: \d+ calls of a nodes trace on design=nodes nr_cpus=2$/m);
    assert.match(r.stdout, /^vmalloc +\d+ +0 +0 +0 +0 /m);
    assert.match(r.stdout, /^divergence: none/m);
    assert.match(r.stdout, /^time: \d+ ns\/call here, \d+ ns\/call in the trace$/m);
    const json = vmalloc('replay', file, 'design=global', '--json');
    assert.equal(json.status, 0, json.stderr);
    const report = (JSON.parse(json.stdout) as { replay: { design: string; calls: number } })
      .replay;
    assert.equal(report.design, 'global');
    assert.ok(report.calls > 0);
  },
);

test('replay --strict: a divergence exits 1, without --strict 0', () => {
  const lines = readFileSync(join(dir, 'cli.jsonl'), 'utf8').split('\n');
  const k = lines.findIndex((l, i) => i > 0 && l.includes('"op":"vmalloc"'));
  const call = JSON.parse(lines[k]!) as { ret: number };
  call.ret += 2 ** 20;
  lines[k] = JSON.stringify(call);
  const file = join(dir, 'tampered.jsonl');
  writeFileSync(file, lines.join('\n'));
  const loose = vmalloc('replay', file);
  assert.equal(loose.status, 0);
  assert.match(
    loose.stdout,
    /^divergence: \d+ calls; first at call \d+ \(cpu \d vmalloc\): expected 0x[0-9a-f]{16}, got 0x[0-9a-f]{16}$/m,
  );
  assert.equal(vmalloc('replay', file, '--strict').status, 1);
});

test('a simulated run records too (simulate=1), and replays exactly', () => {
  const file = join(dir, 'sim.jsonl');
  const rec = vmalloc(
    'test',
    'simulate=1',
    'nr_threads=3',
    'nr_cpus=1',
    ...SHORT,
    `record=${file}`,
    '--quiet',
  );
  assert.equal(rec.status, 0, rec.stderr);
  const header = JSON.parse(readFileSync(file, 'utf8').split('\n')[0]!) as {
    simulated: boolean;
    nr_cpus: number;
  };
  assert.equal(header.simulated, true);
  assert.equal(header.nr_cpus, 3);
  const r = vmalloc('replay', file, '--strict');
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /divergence: none/);
});

test('replay: usage errors are one line and exit 1', () => {
  const cases: [string[], RegExp][] = [
    [[], /replay needs a trace file/],
    [[join(dir, 'missing.jsonl')], /cannot read .*missing\.jsonl/],
    [[join(dir, 'cli.jsonl'), 'design=bogus'], /design is one of nodes/],
    [
      [join(dir, 'cli.jsonl'), 'nr_cpus=1'],
      /nr_cpus=1 is too few for this trace: it has calls on cpu 1/,
    ],
    [[join(dir, 'cli.jsonl'), 'loops=3'], /unexpected argument "loops=3"/],
    [[join(dir, 'cli.jsonl'), '--fast'], /unknown option --fast for replay/],
    [[join(fixtures, 'vmallocinfo-plain.txt')], /line 1: not JSON/],
  ];
  for (const [args, message] of cases) {
    const r = vmalloc('replay', ...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const help = vmalloc('help', 'replay');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage: vmalloc replay TRACE/);
});

test('load-vmallocinfo FILE: the layout, then the Summary lines; --vmallocinfo shows both', () => {
  const r = vmalloc(
    'load-vmallocinfo',
    join(fixtures, 'vmallocinfo-plain.txt'),
    'test_loop_count=100',
    '--vmallocinfo',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stderr,
    /load-vmallocinfo: .*vmallocinfo-plain\.txt: 14 busy areas, 1 unpurged ranges, \d+ pages; addresses exact/,
  );
  // The default mask is 7: the first three tests.
  assert.match(
    r.stdout,
    /^Summary: fix_size_alloc_test passed: 1 failed: 0 xfailed: 0 repeat: 1 loops: 100 /m,
  );
  assert.match(r.stdout, /^Summary: long_busy_list_alloc_test passed: 1 /m);
  assert.doesNotMatch(r.stdout, /random_size_alloc_test/);
  assert.match(
    r.stdout,
    /^0xffffc90000400000-0xffffc90000801000 4198400 alloc_large_system_hash\+0x15c\/0x270 pages=1024 vmalloc vpages/m,
  );
  assert.match(
    r.stdout,
    /^0xffffffffc0000000-0xffffffffc0005000 {3}20480 execmem_vmalloc\+0x1a\/0x40 pages=4 vmalloc/m,
  );
});

test('load-vmallocinfo: hidden addresses are said, even with --quiet', () => {
  const r = vmalloc(
    'load-vmallocinfo',
    join(fixtures, 'vmallocinfo-zeroed.txt'),
    'run_test_mask=1',
    'test_loop_count=10',
    '--quiet',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^load-vmallocinfo: warning: the addresses are hidden \(all zero/m);
  assert.match(r.stdout, /^Summary: fix_size_alloc_test passed: 1 /m);
});

test('load-vmallocinfo: a bad line, a missing file, bad arguments: one line, exit 1', () => {
  const bad = join(dir, 'bad-vmallocinfo.txt');
  writeFileSync(
    bad,
    '0xffffc90000000000-0xffffc90000002000    8192 f+0x1/0x2 pages=1 vmalloc\n0xffffc90000002000-0xffffc90000003000 1000 g+0x1/0x2\n',
  );
  const cases: [string[], RegExp][] = [
    [
      [bad],
      /bad-vmallocinfo\.txt: Cannot load vmallocinfo: line 2: the size must be a positive multiple of the page size/,
    ],
    [[join(dir, 'none.txt')], /cannot read .*none\.txt/],
    [['--json'], /takes the file first/],
  ];
  for (const [args, message] of cases) {
    const r = vmalloc('load-vmallocinfo', ...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const sim = vmalloc('load-vmallocinfo', join(fixtures, 'vmallocinfo-plain.txt'), 'simulate=1');
  assert.equal(sim.status, 1);
  assert.match(sim.stderr, /simulate=1 does not load a layout/);
  const param = vmalloc('load-vmallocinfo', join(fixtures, 'vmallocinfo-plain.txt'), 'loops=1');
  assert.equal(param.status, 1);
  assert.match(param.stderr, /unknown parameter/);
  const help = vmalloc('load-vmallocinfo', '--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage: vmalloc load-vmallocinfo FILE/);
});
