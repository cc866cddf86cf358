/**
 * `vmalloc report`: writes one self-contained HTML file where --out says, with the data the
 * page reads (tests per design, lock_stat, the maps, scaling rows); bad arguments are a
 * one-line usage error with exit status 1 and no file.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vmalloc-report-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, 'report', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The JSON the page reads, out of the report. */
function dataOf(html: string): Record<string, unknown> & {
  tests: { design: string; tests: { name: string }[] }[];
  lockStat: { design: string; classes: { name: string }[] }[];
  maps: { design: string; classes: Record<string, { count: number }> }[];
  scaling: { rows: { design: string; cpus: number }[] } | null;
} {
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m, 'the report holds its data as JSON');
  return JSON.parse(m[1]!);
}

function assertSelfContained(html: string): void {
  assert.doesNotMatch(html, /<(script|link|img|iframe)[^>]+(src|href)=/i, 'no external resource');
  assert.doesNotMatch(html, /\bfetch\(|XMLHttpRequest|https?:\/\//, 'nothing fetched at view time');
}

test('report test ... --out: the runs on two designs, lock_stat and their maps, no scaling', () => {
  const out = join(dir, 'small.html');
  const r = run(
    'test',
    'run_test_mask=1',
    'test_loop_count=200',
    'seed=7',
    '--designs',
    'global,nodes',
    '--no-scaling',
    '--quiet',
    '--out',
    out,
  );
  assert.equal(r.status, 0, r.stderr);
  const html = readFileSync(out, 'utf8');
  assertSelfContained(html);
  const data = dataOf(html);
  assert.equal(data['schemaVersion'], 1);
  assert.deepEqual(
    data.tests.map((t) => [t.design, t.tests.map((x) => x.name)]),
    [
      ['global', ['fix_size_alloc_test']],
      ['nodes', ['fix_size_alloc_test']],
    ],
  );
  assert.deepEqual(
    data.lockStat.map((l) => l.design),
    ['global', 'nodes'],
  );
  assert.ok(data.lockStat[0]!.classes.some((c) => c.name === 'free_vmap_area_lock'));
  assert.deepEqual(
    data.maps.map((m) => m.design),
    ['global', 'nodes'],
  );
  assert.equal(data.scaling, null);
  assert.equal((data['params'] as Record<string, unknown>)['seed'], 7);
});

test('report with design= and bench scaling: one design, the scaling rows', () => {
  const out = join(dir, 'scaling.html');
  const r = run(
    'test',
    'run_test_mask=1',
    'test_loop_count=100',
    'design=legacy',
    'bench',
    'scaling',
    '--cpus',
    '1,2',
    '--loops',
    '50',
    '--out',
    out,
    '--quiet',
  );
  assert.equal(r.status, 0, r.stderr);
  const data = dataOf(readFileSync(out, 'utf8'));
  assert.deepEqual(
    data.tests.map((t) => t.design),
    ['legacy'],
  );
  assert.deepEqual(
    data.scaling?.rows.map((x) => `${x.design}@${x.cpus}`),
    ['global@1', 'nodes@1', 'global@2', 'nodes@2'],
  );
});

test('report --synthetic-areas N: the map of N live areas and nothing else', () => {
  const out = join(dir, 'synthetic.html');
  const r = run('--synthetic-areas', '2000', '--out', out, '--quiet');
  assert.equal(r.status, 0, r.stderr);
  const data = dataOf(readFileSync(out, 'utf8'));
  assert.equal(data.maps.length, 1);
  assert.equal(data.maps[0]!.classes['busy']!.count, 2000);
  assert.deepEqual(data.tests, []);
});

test('bad arguments: a usage error naming the problem, status 1, no file', () => {
  const out = join(dir, 'never.html');
  const cases: [string[], RegExp][] = [
    [['--out', join(dir, 'x.txt')], /--out must name an \.html file/],
    [['frob', '--out', out], /report: unexpected "frob"/],
    [['bench', 'kva', '--out', out], /report runs 'bench scaling' only/],
    [['test', 'nr_threads=0', '--out', out], /report test: .*nr_threads/],
    [['test', 'fast', '--out', out], /unknown mode "fast"/],
    [['test', '--json', '--out', out], /unknown option --json/],
    [['--designs', 'global,btree', '--out', out], /--designs: each value is one of/],
    [['bench', 'scaling', '--cpus', '0', '--out', out], /--cpus: each value must be an integer/],
    [['--synthetic-areas', 'many', '--out', out], /--synthetic-areas must be an integer/],
    [
      ['--synthetic-areas', '10', 'test', '--out', out],
      /--synthetic-areas draws a synthetic layout alone/,
    ],
    [['--out'], /--out needs a value/],
    [['--quiet', '--quiet'], /option --quiet is given twice/],
    [
      ['test', 'design=global', '--designs', 'nodes', '--out', out],
      /either as design= or as --designs/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, /^vmalloc: .*run 'vmalloc help' for usage\n$/, 'one line');
  }
  assert.equal(existsSync(out), false);
});

test('report --help lists the options', () => {
  const r = run('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^Usage: vmalloc report/);
  assert.match(r.stdout, /--out FILE/);
  assert.match(r.stdout, /--synthetic-areas N/);
});
