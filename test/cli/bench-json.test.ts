/**
 * Every `bench ... --json` (kva, contention, vmmapram, scaling, space, seeds and its
 * --scaling-out .json file) starts with the common schemaVersion, and every numeric field
 * carries its unit at the end of its name (Ns, Us, Ms, S, PerSec, Bytes...) unless it is one
 * of the unit-less counts, shares and ratios listed here: a new field must name its unit or
 * be added to the list, on purpose.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SCHEMA_VERSION } from '../../src/cli/json-report.js';
import { WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vmalloc-bench-json-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A unit at the end of a name (seeds' figures: cycles, contentions, con-bounces, %). */
const UNIT = /(Ns|Us|Usec|Ms|S|PerSec|Bytes|Cycles|Contentions|ConBounces|Percent)$/;

/** Numeric fields without a unit, on purpose: counts, sizes in items, shares, ratios, ids. */
const UNITLESS = new Set([
  'schemaVersion',
  // counts of things
  'loops',
  'lockStatLoops',
  'scaleLoops',
  'heapPairs',
  'reps',
  'pairs',
  'live',
  'maxPages',
  'nrPages',
  'nrCpus',
  'cpus',
  'workers',
  'tests',
  'lockStatTests',
  'ops',
  'calls',
  'nulls',
  'acquisitions',
  'contentions',
  'conBounces',
  'acqBounces',
  'bounces',
  // bench space: why the pooled space's lock is taken (per pair), and the refill setting
  'slowAllocs',
  'refills',
  'lockedPurges',
  'quickPurges',
  'refill',
  'failedTests',
  'liveAreas',
  'vmMapRamLoops',
  'scaleB',
  'b',
  'freeBlocks',
  // ids, masks, seeds, years
  'id',
  'mask',
  'seed',
  'year',
  // shares (0..1), ratios, load averages
  'spinShare',
  'fitError',
  'load',
  'seedRatio',
  'oursRatio',
  'oursPairRatios',
  'sizeFactor',
  'pooledScaling',
  'pooledOverSingleAt2',
  'singleScaling',
  'separateScaling',
  'ratio',
  'ratios',
]);

/** Every numeric field's path whose name has no unit and is not listed. */
function unitless(v: unknown, path: string, out: string[]): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => unitless(x, `${path}[${i}]`, out));
    return;
  }
  if (v === null || typeof v !== 'object') return;
  for (const [k, x] of Object.entries(v)) {
    const numeric =
      typeof x === 'number' || (Array.isArray(x) && x.length > 0 && typeof x[0] === 'number');
    // A map keyed by a count (median by worker count: "1", "2") names no field.
    if (numeric && !/^[0-9]+$/.test(k) && !UNIT.test(k) && !UNITLESS.has(k))
      out.push(`${path}.${k}`);
    unitless(x, `${path}.${k}`, out);
  }
}

function checked(what: string, text: string): Record<string, unknown> {
  const j = JSON.parse(text) as Record<string, unknown>;
  assert.equal(Object.keys(j)[0], 'schemaVersion', `${what}: schemaVersion first`);
  assert.equal(j['schemaVersion'], SCHEMA_VERSION, what);
  const bad: string[] = [];
  unitless(j, what, bad);
  assert.deepEqual(bad, [], `${what}: numeric fields without a unit`);
  return j;
}

const BENCHES: [string, string[]][] = [
  [
    'kva',
    ['--loops', '1000', '--reps', '1', '--mask', '3', '--scale', '1000', '--scale-loops', '1000'],
  ],
  ['contention', ['--workers', '1,2', '--design', 'global,nodes', '--nr-cpus', '2', '--mask', '1']],
  ['vmmapram', ['--workers', '1', '--loops', '200', '--lock-stat-loops', '200']],
  ['scaling', ['--cpus', '1,2', '--design', 'global,nodes', '--mask', '1', '--loops', '50']],
  ['space', ['--pairs', '2000', '--reps', '1', '--live', '32']],
];

for (const [what, args] of BENCHES) {
  test(
    `bench ${what} --json: schemaVersion and unit-suffixed names`,
    { timeout: WORKER_TEST_TIMEOUT_MS },
    () => {
      const tiny = what === 'contention' ? ['--loops', '100', '--lock-stat-loops', '100'] : [];
      const extra = what === 'kva' ? ['--heap-pairs', '1000'] : [];
      const r = run('bench', what, ...args, ...tiny, ...extra, '--json', '--quiet');
      assert.equal(r.status, 0, r.stderr);
      checked(`bench ${what}`, r.stdout);
      // The names that carried no unit before they joined the common schema.
      assert.doesNotMatch(r.stdout, /"(nsPerPair|cpuNsPerPair|weights)":/);
    },
  );
}

test('bench seeds --json and its --scaling-out .json: the common schema', () => {
  const file = join(dir, 'scaling.json');
  const r = run(
    'bench',
    'seeds',
    '--quick',
    '--only',
    '2018',
    '--scaling-out',
    file,
    '--scaling-sizes',
    '1000',
    '--scaling-cap-ms',
    '50',
    '--json',
    '--quiet',
  );
  // The exit status is the verdicts' (1: a claim not reproduced); the JSON is the same.
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  const j = checked('bench seeds', r.stdout);
  assert.ok((j['rows'] as unknown[]).length > 0, 'the 2018 rows ran');
  const s = checked('--scaling-out', readFileSync(file, 'utf8'));
  const points = s['points'] as Record<string, unknown>[];
  assert.ok(points.length > 0 && points.every((p) => typeof p['perOpUs'] === 'number'));
});
