/**
 * `vmalloc bench seeds`: --quick runs end to end and every verdict it computes from measured
 * figures says the seed's claim reproduced (in direction); rows whose capability is absent say
 * what they need and carry no figure; the verdict is a function of the figures (decide());
 * the plug seam runs a plugged capability; the scaling data has every design; bad flags are
 * refused.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pluggedRows, registerSeedPlugs } from '../../src/bench/seeds-plugs.js';
import { ALL_2019_TESTS, seedParams } from '../../src/bench/seeds-real.js';
import { decide, quickVerdict, type SeedRow } from '../../src/bench/seeds-rows.js';
import { SCHEMA_VERSION } from '../../src/cli/json-report.js';
import { DESIGN_NAMES } from '../../src/designs/registry.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const MEASURED_VERDICTS = ['reproduced', 'reproduced in direction only', 'not reproduced'];

test('bench seeds --quick: every verdict computed from measured figures is reproduced', () => {
  const r = run('bench', 'seeds', '--quick', '--json', '--quiet');
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const out = JSON.parse(r.stdout) as {
    schemaVersion: number;
    quick: boolean;
    rows: Record<string, unknown>[];
  };
  assert.equal(out.schemaVersion, SCHEMA_VERSION);
  assert.equal(out.quick, true);
  const ids = out.rows.map((x) => x['id']);
  for (const id of ['2018-test_2', '2019-performance', '2019-random-all-cpu', '2024-locks-2'])
    assert.ok(ids.includes(id), `row ${id} is in the table`);
  let called = 0;
  for (const row of out.rows) {
    const v = row['verdict'] as string;
    if (MEASURED_VERDICTS.includes(v)) {
      called++;
      assert.match(v, /^reproduced/, `${String(row['id'])}: ${v}: ${String(row['reason'])}`);
      assert.ok((row['oursRatio'] as number) > 1, `${String(row['id'])} ratio above 1`);
      // Figures carry their unit in the field name.
      assert.ok(
        Object.keys(row).some((k) => /^oursOld(Us|Ms|S|Contentions|ConBounces)$/.test(k)),
        `${String(row['id'])} has a unit-suffixed figure`,
      );
    }
    if (/^(needs |not run)/.test(v))
      assert.equal(row['oursRatio'], null, `${String(row['id'])} no figure`);
  }
  assert.ok(called >= 4, `at least four claims called, got ${called}`);
  // The 2023 rows: two workers rarely meet on the block hash lock at --quick's loop count
  // (measured by the full run only: the row says why, with no figure); 64 simulated CPUs do,
  // on the global hash far more than on the per-CPU ones.
  const vmr = out.rows.filter((x) => x['year'] === 2023);
  assert.deepEqual(
    vmr.map((x) => [x['id'], x['verdict']]),
    [
      ['2023-vm_map_ram-2', 'not run (--quick)'],
      ['2023-vm_map_ram-64-sim', 'reproduced'],
    ],
  );
  assert.match(String(vmr[0]!['reason']), /workers/);
});

function row(oldV: number, newV: number, seedOld: number, seedNew: number): SeedRow {
  return {
    id: 't',
    year: 2018,
    workload: 'w',
    oldDesign: 'legacy',
    newDesign: 'rfc2018',
    seed: { file: 'f', machine: 'm', old: seedOld, new: seedNew, unit: 'Us' },
    measuredOn: 'real workers (1)',
    ours: { old: oldV, new: newV, unit: 'Us', pairs: 1, ratios: [] },
    beside: [],
    sizeFactor: 2,
    sizeCaveat: 'caveat',
    verdict: 'not reproduced',
    reason: '',
    notes: [],
  };
}

test('decide: direction from our ratio, size against the seed within the factor', () => {
  assert.equal(decide(row(40, 10, 54, 15)).verdict, 'reproduced'); // 4x vs 3.6x
  assert.equal(decide(row(20, 10, 54, 15)).verdict, 'reproduced'); // 2x: within 2x of 3.6x
  const d = decide(row(15, 10, 54, 15)); // 1.5x: direction only
  assert.equal(d.verdict, 'reproduced in direction only');
  assert.match(d.reason, /caveat/);
  assert.equal(decide(row(10, 11, 54, 15)).verdict, 'not reproduced');
  // Paired ratios win over the medians' ratio.
  const p = row(10, 11, 54, 15);
  p.ours!.ratios = [3, 4, 5];
  assert.equal(decide(p).verdict, 'reproduced');
  // Size factor 0: different measures, direction only.
  const z = row(40, 10, 54, 15);
  z.sizeFactor = 0;
  assert.equal(decide(z).verdict, 'reproduced in direction only');
  // --quick does not call a seed effect under 1.25x.
  assert.equal(quickVerdict(decide(row(12, 10, 1.22, 1.14))).verdict, 'not checked (--quick)');
  // --quick calls a real-worker row only when it has more than one pair: one wall-clock pair
  // samples the machine's load at that moment.
  const one = quickVerdict(decide(row(40, 10, 54, 15)));
  assert.equal(one.verdict, 'not checked (--quick)');
  assert.match(one.reason, /one pair of real runs \(ours 4\.00x\)/);
  const three = row(40, 10, 54, 15);
  three.ours!.pairs = 3;
  three.ours!.ratios = [3.9, 4, 4.1];
  assert.equal(quickVerdict(decide(three)).verdict, 'reproduced');
  const sim = row(40, 10, 54, 15);
  sim.measuredOn = 'simulated (64 CPUs)';
  assert.equal(quickVerdict(decide(sim)).verdict, 'reproduced');
  // A small claim (1.07x) is reproduced only when every pair shows it; otherwise the reason
  // gives the pairs' span and the row's measured flatReason.
  const m = row(12, 10, 1.22, 1.14);
  m.ours!.ratios = [0.97, 1.02, 1.03];
  m.flatReason = 'same work';
  const dm = decide(m);
  assert.equal(dm.verdict, 'not reproduced');
  assert.match(
    dm.reason,
    /not faster in every pair here \(pairs 0\.97x\.\.1\.03x, within the noise\); same work/,
  );
  m.ours!.ratios = [1.04, 1.05, 1.06];
  assert.equal(decide(m).verdict, 'reproduced');
});

test('plugs: absent capabilities are verdicts; a plugged one is measured and decided', async () => {
  const params = (p: Parameters<typeof seedParams>[0]) => seedParams(p);
  const base = { quick: true, params, allTestsMask: ALL_2019_TESTS, say: () => {} };
  registerSeedPlugs({ simulator: null, vmMapRam: null });
  const absent = await pluggedRows({ ...base, years: [2019, 2023, 2024] });
  assert.deepEqual(
    absent.map((r) => [r.id, r.verdict, r.ours]),
    [
      ['2019-random-all-cpu-sim', 'needs the simulator (issue 11)', null],
      ['2024-mask7-64-sim', 'needs the simulator (issue 11)', null],
      ['2023-vm_map_ram-2', 'needs vm_map_ram (issue 10)', null],
      ['2023-vm_map_ram-64-sim', 'needs vm_map_ram (issue 10)', null],
    ],
  );
  // A simulator plug (a stand-in returning figures, to test the seam): rows run through it.
  const seen: number[] = [];
  registerSeedPlugs({
    simulator: {
      run: (p) => {
        seen.push(p.nr_threads);
        // The old design of each claim 9x slower: legacy (2019), global at 64 CPUs (2024).
        const slow = p.design === 'legacy' || (p.design === 'global' && p.nr_threads === 64);
        return Promise.resolve({ virtualNs: slow ? 9e9 : 1e9, locks: [], spinShare: 0.5 });
      },
    },
  });
  try {
    const plugged = await pluggedRows({ ...base, years: [2019, 2024] });
    assert.deepEqual(seen, [4, 4, 64, 64]);
    assert.deepEqual(
      plugged.map((r) => [r.id, r.measuredOn, r.verdict]),
      [
        ['2019-random-all-cpu-sim', 'simulated (4 CPUs)', 'reproduced in direction only'],
        ['2024-mask7-64-sim', 'simulated (64 CPUs)', 'reproduced'],
      ],
    );
  } finally {
    registerSeedPlugs({ simulator: null });
  }
});

test('bench seeds --scaling-out writes every design at every size', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'seeds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'scaling.csv');
  const r = run(
    'bench',
    'seeds',
    '--only',
    'none',
    '--scaling-out',
    file,
    '--scaling-sizes',
    '1000,2000',
    '--scaling-cap-ms',
    '100',
    '--quiet',
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  assert.equal(lines[0], 'design,liveAreas,usPerOp,ops,setupMs,timeCapped');
  const got = lines.slice(1).map((l) => l.split(',').slice(0, 2).join(','));
  const want = [1000, 2000].flatMap((n) => DESIGN_NAMES.map((d) => `${d},${n}`));
  assert.deepEqual(got, want);
  for (const l of lines.slice(1)) assert.ok(Number(l.split(',')[2]) > 0, l);
});

test('bench seeds refuses bad flags with one line and status 1', () => {
  for (const [args, re] of [
    [['--only', '2020'], /--only: each value is one of 2018, 2019, 2023, 2024, got "2020"/],
    [['--loops', '5'], /unknown option --loops for bench seeds/],
    [['--scaling-sizes', '0'], /--scaling-sizes: each value must be an integer from 1/],
    [['extra'], /unexpected argument "extra" after bench seeds/],
  ] as const) {
    const r = run('bench', 'seeds', ...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stdout, '');
  }
});
