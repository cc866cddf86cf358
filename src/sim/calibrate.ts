/**
 * `vmalloc sim calibrate`: fits the cost model's weights to real one-worker runs on this
 * machine and validates the simulator against real runs of one and two workers.
 *
 * Holds: calibrate() (the real runs, medians of repeats, the simulated features of the same
 * runs, the non-negative least squares fit with its error per test) and validate() (real vs
 * simulated throughput and per lock class acquisitions, contentions, con-bounces at N = 1, 2,
 * both designs), with their text reports.
 * Invariant: the real and simulated runs of a comparison have the same parameters (seed, loop
 * count, nr_cpus = workers), so they make the same calls.
 * Callers: src/cli/sim.ts.
 *
 * The fit: per design and test, the median real time of the test (one worker, warmed up) =
 * weights . (calls, accesses, tree steps, pages, bytes zeroed, records merged) of the same test
 * in a one-CPU simulation + acquisitions x acquireNs; each equation divided by its real time,
 * so every test counts alike (a relative error). A tree step is not identifiable from these
 * tests (a test's steps grow with its calls, so a free fit trades one for the other and puts
 * the calls' cost inside the locks): it is fixed at STEP_NS, a node visit's few loads from
 * typed arrays (bench kva: a lowest-match search of ~20 nodes takes ~100 ns). transferNs cannot be seen in one worker (no
 * line ever moves); it keeps its value (100 ns, a cross-core transfer on current x86) and the
 * two-worker validation checks it.
 */

import { aggregateByClass } from '../shared/lock-stat.js';
import type { LockStat } from '../shared/lock.js';
import type { VmallocDesign } from '../mm/config.js';
import { defaultParams, type TestParams } from '../test-vmalloc/params.js';
import { runTestVmalloc } from '../test-vmalloc/run.js';
import { TEST_CASES } from '../test-vmalloc/tests.js';
import {
  type Calibration,
  DEFAULT_CALIBRATION,
  FEATURES,
  F_STEP,
  NR_FEATURES,
  costOf,
  nnls,
} from './cost.js';
import { simulateTestVmalloc } from './machine.js';

export interface CalibrateOptions {
  loops: number;
  repeat: number;
  designs: VmallocDesign[];
  seed: number;
  mask: number;
  progress?: (line: string) => void;
}

export interface FitRow {
  design: VmallocDesign;
  test: string;
  realNs: number;
  fittedNs: number;
}

export interface ValidationRow {
  design: VmallocDesign;
  cpus: number;
  realOpsPerSec: number;
  simOpsPerSec: number;
  /** Per busy lock class: real and simulated acquisitions, contentions, con-bounces. */
  locks: {
    name: string;
    real: [number, number, number];
    sim: [number, number, number];
  }[];
}

export interface CalibrationReport {
  calibration: Calibration;
  fit: FitRow[];
  validation: ValidationRow[];
}

/** ns per tree node visited (see the header). */
export const STEP_NS = 5;

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function paramsOf(o: CalibrateOptions, design: VmallocDesign, workers: number): TestParams {
  const p = defaultParams(o.mask, workers);
  p.design = design;
  p.nr_threads = workers;
  p.nr_cpus = workers;
  p.test_loop_count = o.loops;
  p.seed = o.seed;
  p.run_test_mask = o.mask;
  return p;
}

/** Operations of a run: what both sides count the throughput in (loops of every test, all workers). */
const loopsOf = (p: TestParams): number => {
  let tests = 0;
  for (const t of TEST_CASES) if ((p.run_test_mask & t.bit) !== 0 && t.run !== null) tests++;
  return tests * p.test_loop_count * p.test_repeat_count * p.nr_threads;
};

/** Fits the weights; then validates. */
export async function calibrate(o: CalibrateOptions): Promise<CalibrationReport> {
  const rows: number[][] = [];
  const targets: number[] = [];
  const meta: { design: VmallocDesign; test: string; realNs: number; f: number[] }[] = [];
  const realOne = new Map<VmallocDesign, number>();
  const base = DEFAULT_CALIBRATION;
  for (const design of o.designs) {
    const p = paramsOf(o, design, 1);
    const times: number[][] = TEST_CASES.map(() => []);
    const elapsed: number[] = [];
    for (let r = 0; r < o.repeat; r++) {
      o.progress?.(`real run: ${design}, 1 worker, repeat ${r + 1}/${o.repeat}`);
      const run = await runTestVmalloc({ params: p, warmup: true });
      for (const t of run.workers[0]!.tests) times[t.index]!.push(t.avgUsec * 1000);
      elapsed.push(run.elapsedNs);
    }
    realOne.set(design, median(elapsed));
    const sim = simulateTestVmalloc({ params: p, calibration: base });
    for (const t of sim.workers[0]!.tests) {
      const f = Array.from(sim.features[t.index]!);
      const realNs = median(times[t.index]!);
      const rest = realNs - sim.acquires[t.index]! * base.acquireNs - f[F_STEP]! * STEP_NS;
      // Relative: each row divided by the real time; the step column is fixed (STEP_NS).
      rows.push(f.map((x, k) => (k === F_STEP ? 0 : x / realNs)));
      targets.push(rest / realNs);
      meta.push({ design, test: t.name, realNs, f });
    }
  }
  const weights = nnls(rows, targets);
  weights[F_STEP] = STEP_NS;
  const fit: FitRow[] = meta.map((m, k) => ({
    design: m.design,
    test: m.test,
    realNs: m.realNs,
    // (real - target * real: the acquisitions' cost, outside the weights)
    fittedNs: costOf(weights, m.f) + (m.realNs - targets[k]! * m.realNs - m.f[F_STEP]! * STEP_NS),
  }));
  const rel = fit.map((r) => (r.fittedNs - r.realNs) / r.realNs);
  const fitError = Math.sqrt(rel.reduce((a, x) => a + x * x, 0) / Math.max(1, rel.length));
  const calibration: Calibration = {
    weights: weights.map((x) => Number(x.toPrecision(4))),
    acquireNs: base.acquireNs,
    transferNs: base.transferNs,
    source: `vmalloc sim calibrate ${new Date().toISOString()} (loops ${o.loops}, repeat ${o.repeat}, seed ${o.seed})`,
    fitError: Number(fitError.toFixed(4)),
  };
  const validation = await validate(o, calibration, realOne);
  return { calibration, fit, validation };
}

const byClass = (stats: readonly LockStat[]): Map<string, LockStat> =>
  new Map(aggregateByClass(stats).map((s) => [s.name, s]));

/** Real vs simulated at 1 and 2 CPUs, both designs. */
export async function validate(
  o: CalibrateOptions,
  cal: Calibration,
  realOne?: Map<VmallocDesign, number>,
): Promise<ValidationRow[]> {
  const out: ValidationRow[] = [];
  for (const design of o.designs) {
    for (const cpus of [1, 2]) {
      const p = paramsOf(o, design, cpus);
      let realNs = cpus === 1 ? realOne?.get(design) : undefined;
      if (realNs === undefined) {
        const el: number[] = [];
        for (let r = 0; r < o.repeat; r++) {
          o.progress?.(`real run: ${design}, ${cpus} workers, repeat ${r + 1}/${o.repeat}`);
          el.push((await runTestVmalloc({ params: p, warmup: true })).elapsedNs);
        }
        realNs = median(el);
      }
      o.progress?.(`real run with lock_stat: ${design}, ${cpus} worker(s)`);
      const ls = await runTestVmalloc({ params: p, warmup: true, lockStatFromStart: true });
      const real = byClass(ls.vm.lockStats());
      const sim = simulateTestVmalloc({ params: p, calibration: cal });
      const simC = byClass(sim.lockStats);
      const total = [...real.values()].reduce((a, s) => a + s.acquisitions, 0);
      const locks = [...real.values()]
        .filter((s) => s.acquisitions >= 0.01 * total)
        .map((s) => {
          const m = simC.get(s.name);
          return {
            name: s.name,
            real: [s.acquisitions, s.contentions, s.conBounces] as [number, number, number],
            sim: [m?.acquisitions ?? 0, m?.contentions ?? 0, m?.conBounces ?? 0] as [
              number,
              number,
              number,
            ],
          };
        });
      out.push({
        design,
        cpus,
        realOpsPerSec: loopsOf(p) / (realNs / 1e9),
        simOpsPerSec: loopsOf(p) / (sim.elapsedNs / 1e9),
        locks,
      });
    }
  }
  return out;
}

const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

/** The fit and the validation as Markdown tables. */
export function formatCalibration(r: CalibrationReport): string {
  const c = r.calibration;
  const lines = [
    `weights (ns per unit): ${FEATURES.map((f, k) => `${f} ${c.weights[k]}`).join(', ')}; acquireNs ${c.acquireNs}, transferNs ${c.transferNs}`,
    `fit error (RMS of the relative error per test): ${(c.fitError * 100).toFixed(1)}%`,
    '',
    '| design | test | real (ms) | fitted (ms) | error |',
    '|---|---|---:|---:|---:|',
    ...r.fit.map(
      (f) =>
        `| ${f.design} | ${f.test} | ${(f.realNs / 1e6).toFixed(2)} | ${(f.fittedNs / 1e6).toFixed(2)} | ${pct((f.fittedNs - f.realNs) / f.realNs)} |`,
    ),
    '',
    'Validation: real workers vs the simulator (loops/s; per busy lock class: acquisitions, contentions, con-bounces, contention rate)',
    '',
    '| design | CPUs | real loops/s | sim loops/s | diff | lock class | real acq / cont / con-b | sim acq / cont / con-b | real rate | sim rate |',
    '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|',
  ];
  for (const v of r.validation) {
    const head = `| ${v.design} | ${v.cpus} | ${v.realOpsPerSec.toFixed(0)} | ${v.simOpsPerSec.toFixed(0)} | ${pct((v.simOpsPerSec - v.realOpsPerSec) / v.realOpsPerSec)} `;
    if (v.locks.length === 0) lines.push(head + '| | | | | |');
    v.locks.forEach((l, k) => {
      const rate = (t: [number, number, number]): string =>
        t[0] > 0 ? `${((t[1] / t[0]) * 100).toFixed(2)}%` : '-';
      lines.push(
        (k === 0 ? head : '| | | | | ') +
          `| ${l.name} | ${l.real.join(' / ')} | ${l.sim.join(' / ')} | ${rate(l.real)} | ${rate(l.sim)} |`,
      );
    });
  }
  void NR_FEATURES;
  return lines.join('\n') + '\n';
}
