/**
 * `--record FILE` on the bench commands: contention (real worker threads), vmmapram (both
 * block hashes), scaling (simulated, under a policy), kva (space traces of a bare VmapSpace)
 * and space (space traces of a VmapSpace shared by worker threads, each call with its
 * worker's cpu) write one trace per run, listed on stderr and in the JSON, and
 * `vmalloc replay` of each on its own design (layout) returns the same addresses;
 * record=FILE is the same flag; a path no trace can be written to is refused in one line
 * with status 1, before any run.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { labelled } from '../../src/bench/record-plan.js';
import { readTrace } from '../../src/test-vmalloc/trace-file.js';
import { WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vmalloc-bench-record-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Traced {
  schemaVersion: number;
  traces: { label: string; file: string; calls: number }[];
}

/** Each trace listed: on stderr, on disk, and replayed on its design without divergence. */
function replaysClean(out: Traced, stderr: string, labels: string[]): void {
  assert.deepEqual(
    out.traces.map((t) => t.label),
    labels,
  );
  for (const t of out.traces) {
    assert.ok(existsSync(t.file), `${t.file} written`);
    assert.ok(t.calls > 0, `${t.label}: calls recorded`);
    assert.ok(
      stderr.includes(`record: ${t.calls} calls written to ${t.file} (${t.label})`),
      `${t.label} listed on stderr:\n${stderr}`,
    );
    const r = run('replay', t.file, '--strict', '--json');
    assert.equal(r.status, 0, `${t.label}: ${r.stderr}${r.stdout}`);
    const rep = JSON.parse(r.stdout) as { replay: { calls: number; divergent: number } };
    assert.equal(rep.replay.calls, t.calls, `${t.label}: every call replayed`);
    assert.equal(rep.replay.divergent, 0, `${t.label}: the same addresses`);
  }
}

test('a trace per run is FILE with the run label before its extension', () => {
  assert.equal(labelled('/t/trace.jsonl', 'nodes-x2'), '/t/trace.nodes-x2.jsonl');
  assert.equal(labelled('trace', 'nodes-x2'), 'trace.nodes-x2');
  assert.equal(labelled('/t/.trace', 'a'), '/t/.trace.a');
});

test(
  'bench contention --record: a trace per design, worker count and pass; each replays',
  { timeout: WORKER_TEST_TIMEOUT_MS },
  () => {
    const file = join(dir, 'contention.jsonl');
    const r = run(
      'bench',
      'contention',
      '--workers',
      '1,2',
      '--design',
      'nodes',
      '--nr-cpus',
      '2',
      '--mask',
      '1',
      '--loops',
      '300',
      '--lock-stat-loops',
      '200',
      '--record',
      file,
      '--json',
      '--quiet',
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Traced;
    replaysClean(out, r.stderr, ['nodes-x1', 'nodes-x1-lockstat', 'nodes-x2', 'nodes-x2-lockstat']);
    assert.equal(out.traces[2]!.file, join(dir, 'contention.nodes-x2.jsonl'));
  },
);

test(
  'bench vmmapram record=FILE: both block hashes, two workers; each replays',
  { timeout: WORKER_TEST_TIMEOUT_MS },
  () => {
    const r = run(
      'bench',
      'vmmapram',
      '--workers',
      '2',
      '--loops',
      '600',
      '--lock-stat-loops',
      '300',
      `record=${join(dir, 'vmr.jsonl')}`,
      '--json',
      '--quiet',
    );
    assert.equal(r.status, 0, r.stderr);
    replaysClean(JSON.parse(r.stdout) as Traced, r.stderr, [
      'global-x2',
      'global-x2-lockstat',
      'percpu-x2',
      'percpu-x2-lockstat',
    ]);
  },
);

test('bench scaling --record: a trace per simulated run, its policy replayed with it', () => {
  const r = run(
    'bench',
    'scaling',
    '--cpus',
    '4',
    '--design',
    'global,nodes',
    // Under this policy the addresses differ from the default's (one node, purges every
    // 64 pages): a replay without it would diverge.
    '--policy',
    'default,lazy_max_pages=64+nr_vmap_nodes=1',
    '--mask',
    '9',
    '--loops',
    '300',
    '--record',
    join(dir, 'scaling.jsonl'),
    '--json',
    '--quiet',
  );
  assert.equal(r.status, 0, r.stderr);
  replaysClean(JSON.parse(r.stdout) as Traced, r.stderr, [
    'global-cpus4',
    'nodes-cpus4',
    'global-cpus4-lazy_max_pages=64+nr_vmap_nodes=1',
    'nodes-cpus4-lazy_max_pages=64+nr_vmap_nodes=1',
  ]);
});

test('bench kva --record: each pattern and scaling run once more, untimed, into a space trace', () => {
  const r = run(
    'bench',
    'kva',
    '--loops',
    '500',
    '--reps',
    '1',
    '--mask',
    '40', // random_size_alloc_test and random_size_align_alloc_test
    '--scale',
    '200',
    '--scale-loops',
    '300',
    '--heap-pairs',
    '1000',
    '--record',
    join(dir, 'kva.jsonl'),
    '--json',
    '--quiet',
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Traced;
  replaysClean(out, r.stderr, [
    'pattern8-random_size_alloc_test',
    'pattern32-random_size_align_alloc_test',
    'scale-B200-steady',
    'scale-B200-mixed',
  ]);
  const align = out.traces[1]!;
  assert.equal(align.calls, 1000, '500 loops of one alloc and one free');
  // The same space with its lock: the same addresses; with pools: it runs, and says what differs.
  const locked = run('replay', align.file, 'layout=single-lock', '--strict');
  assert.equal(locked.status, 0, locked.stderr + locked.stdout);
  assert.match(locked.stdout, /on vmap-space \(single-lock\)/);
  assert.match(locked.stdout, /divergence: none \(1000 calls/);
  const pooled = run('replay', align.file, 'layout=pooled');
  assert.equal(pooled.status, 0, pooled.stderr);
  assert.match(pooled.stdout, /check: every invariant holds at the end/);
  const wrong = run('replay', align.file, 'design=nodes');
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /is a space trace \(bench kva or space: a bare VmapSpace\)/);
});

test(
  'bench space --record: each mode and worker count once more, untimed, every worker call with its cpu; each replays',
  { timeout: WORKER_TEST_TIMEOUT_MS },
  () => {
    const live = 64;
    const pairs = 300;
    const r = run(
      'bench',
      'space',
      '--pairs',
      String(pairs),
      '--live',
      String(live),
      '--reps',
      '1',
      '--record',
      join(dir, 'space.jsonl'),
      '--json',
      '--quiet',
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Traced;
    replaysClean(out, r.stderr, [
      'single-lock-x1',
      'pooled-x1',
      'single-lock-x2',
      'pooled-x2',
      'separate-x2-space1',
      'separate-x2-space2',
    ]);
    // No warm-up: each worker's fill, its pairs, and its final frees (no allocation fails).
    const perWorker = 2 * (live + pairs);
    assert.deepEqual(
      out.traces.map((t) => t.calls),
      [1, 1, 2, 2, 1, 1].map((w) => w * perWorker),
    );
    const shared = out.traces[3]!;
    assert.equal(shared.file, join(dir, 'space.pooled-x2.jsonl'));
    const trace = readTrace(readFileSync(shared.file, 'utf8'), shared.file);
    assert.equal(trace.header.space?.layout, 'pooled');
    assert.equal(trace.header.nr_threads, 2);
    for (const cpu of [1, 2]) {
      const mine = trace.calls.filter((c) => c.cpu === cpu);
      assert.equal(mine.length, perWorker, `cpu ${cpu}: every call of its worker`);
      assert.deepEqual(
        mine.map((c) => c.seq),
        mine.map((_, k) => k),
        `cpu ${cpu}: its calls in its own order`,
      );
    }
    // The same layout, named: one attached view per cpu, the same addresses.
    const pooled = run('replay', shared.file, 'layout=pooled', '--strict', '--json');
    assert.equal(pooled.status, 0, pooled.stderr + pooled.stdout);
    const rep = JSON.parse(pooled.stdout) as { replay: { nrCpus: number; divergent: number } };
    assert.equal(rep.replay.nrCpus, 2);
    assert.equal(rep.replay.divergent, 0);
    // Another layout replays every call and says what differs.
    const plain = run('replay', shared.file, 'layout=plain');
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stdout, /check: every invariant holds at the end/);
    // The markdown report says the runs were recorded.
    const md = run(
      'bench',
      'space',
      '--pairs',
      '50',
      '--live',
      '8',
      '--reps',
      '1',
      `record=${join(dir, 'space-md.jsonl')}`,
      '--quiet',
    );
    assert.equal(md.status, 0, md.stderr);
    assert.match(
      md.stdout,
      /recorded \(--record .*space-md\.jsonl\): 6 space traces of untimed runs/,
    );
    assert.equal(md.stderr.match(/^record: /gm)?.length, 6, md.stderr);
  },
);

test('bad --record paths: one line, status 1, no run', () => {
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  const cases: [string[], RegExp][] = [
    [
      ['bench', 'contention', '--record', '/no/such/dir/t.jsonl'],
      /--record \/no\/such\/dir\/t\.jsonl: no directory \/no\/such\/dir to write the traces in/,
    ],
    [
      ['bench', 'vmmapram', `record=${empty}`],
      /--record .*empty: is a directory; give a file name/,
    ],
    [['bench', 'scaling', '--record', '-'], /--record -: the traces are files, one per run/],
    [['bench', 'seeds', '--record', '/no/such/dir/t.jsonl'], /no directory \/no\/such\/dir/],
    [
      ['bench', 'space', '--record', join(empty, 'none', 't.jsonl')],
      /--record .*t\.jsonl: no directory .*none to write the traces in/,
    ],
    [['bench', 'space', `record=${empty}/`], /give a file name \(each run writes FILE/],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.equal(r.stdout, '', 'nothing ran');
  }
  assert.deepEqual(readdirSync(empty), [], 'no trace written');
});

test('bench --help says what recording does to the timings', () => {
  const r = run('bench', '--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--record FILE/);
  assert.match(r.stdout, /one at a time under the trace lock/);
  assert.match(r.stdout, /bench space records the same way/);
  assert.match(r.stdout, /--record FILE {7}each run once more, untimed, with its workers/);
});
