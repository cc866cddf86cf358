/**
 * `vmalloc sim calibrate`: measures this machine's cross-core costs, fits the cost model's
 * weights to real one-worker runs, and validates the simulator against real runs of one and
 * two workers.
 *
 * Holds: calibrate() (the cross-core microbenchmarks of xcore.ts, the real runs, medians of
 * repeats, the simulated features of the same runs), fitWeights() (the non-negative least
 * squares fit on the one-worker runs only, its error per test and the leave-one-out choice of
 * its columns, a pure function of the real times) and validate() (real vs simulated, never
 * refitted: throughput and each test's time, per lock class acquisitions, contentions,
 * con-bounces, mean hold and wait, at N = 1 and 2, both designs). The report's text is
 * calibrate-report.ts's.
 * Invariant: the real and simulated runs of a comparison have the same parameters (seed, loop
 * count, nr_cpus = workers), so they make the same calls; the simulated side of the
 * validation models the locks the real workers take (spin, then sleep: lock-model.ts's workers'
 * model), and the kernel's queued spinlocks beside it for comparison. No figure of a run with
 * two or more workers reaches the fit: the rows at N >= 2 are held out, and the N = 1 rows are
 * marked as the fit's own data.
 * Callers: src/cli/sim.ts.
 *
 * The fit: per design and test, the median real time of the test (one worker, warmed up) =
 * weights . (accesses, pages, bytes zeroed; shared by the designs) + the design's callNs x
 * calls [+ the design's lockNs x acquisitions] + acquisitions x acquireNs + tree steps x
 * STEP_NS + records merged x RECORD_NS, the counts from a one-CPU simulation of the same test.
 * The tests are weighed by their real time (o.weighting 'time': least squares in ns), because
 * what is validated is a run's throughput, and full_fit and long_busy_list make 80% of a run:
 * fitted on the relative error of each test alike ('test'), the 18:25 quiet run's one-worker
 * times gave a fit 20-35% under on those two and whole runs 42-50% too fast at N = 1 (the fit's
 * own data), where the time-weighted fit gives +6.7% and +0.5%, at the price of the short tests
 * (align_shift_alloc_test, 93 calls, and vm_map_ram_test are off by 2x either way). The
 * per-design call cost is what one shared call weight could not give (on 2026-12-03 18:25,
 * global fix_size 3.15 ms against nodes 7.33 ms real: fit error 46%, nodes under on every
 * test). The lock column is used only when it predicts the tests left out of the fit better
 * (leave-one-out on the N = 1 tests; FitModel): calls and acquisitions grow together in most
 * tests, and a column the data cannot tell apart would only move cost from a call's start to
 * just before its locks. Two columns are not identifiable from these tests and are fixed. A tree step: a test's steps grow with its calls, so a free fit trades
 * one for the other and puts the calls' cost inside the locks; STEP_NS is a node visit's few
 * loads from typed arrays (bench kva: a lowest-match search of ~20 nodes takes ~100 ns). A
 * record merged: every vfree merges one (global: into the lazy tree, under
 * purge_vmap_area_lock; then again into the free tree at the purge), so its column is the
 * vfree count again; fitted freely it took a vfree's whole fixed cost (1763 ns on 2026-12-03,
 * quiet machine) and charged it inside purge_vmap_area_lock, whose simulated contention came
 * out 4x the real one (30% vs 7.9% at 2 CPUs). RECORD_NS is a merge's own work beyond its
 * tree steps (a few record writes, an rb-tree link or erase with its rotations). The lock
 * costs (acquireNs, transferNs, and the workers' lock's spinNs, wakeNs, notifyNs) are
 * measured on two workers (xcore.ts), not fitted.
 */

import { aggregateByClass } from '../shared/lock-stat.js';
import type { LockStat } from '../shared/lock.js';
import type { VmallocDesign } from '../mm/config.js';
import { defaultParams, type TestParams } from '../test-vmalloc/params.js';
import { runTestVmalloc } from '../test-vmalloc/run.js';
import { TEST_CASES } from '../test-vmalloc/tests.js';
import type { WorkerResult } from '../test-vmalloc/driver.js';
import {
  type Calibration,
  DEFAULT_CALIBRATION,
  type DesignCost,
  F_ACCESS,
  F_BYTE,
  F_CALL,
  F_PAGE,
  F_RECORD,
  F_STEP,
  NR_FEATURES,
  nnls,
} from './cost.js';
import { simulateTestVmalloc } from './machine.js';
import { type CrossCore, type CrossCoreOptions, measureCrossCore } from './xcore.js';

export interface CalibrateOptions {
  loops: number;
  repeat: number;
  designs: VmallocDesign[];
  seed: number;
  mask: number;
  /** The simulated machine sizes validated against as many real workers. @defaultValue [1, 2] */
  cpus?: number[];
  /**
   * How the fit weighs the tests: 'time', by their real time (least squares in ns: the long
   * tests, which make most of a run's time and so its throughput, count most), or 'test', each
   * test alike (least squares of the relative error). @defaultValue 'time'
   */
  weighting?: 'time' | 'test';
  /** The cross-core microbenchmarks' sample counts (tests: a handful). @defaultValue xcore.ts's */
  crossCore?: CrossCoreOptions;
  progress?: (line: string) => void;
}

export interface FitRow {
  design: VmallocDesign;
  test: string;
  realNs: number;
  fittedNs: number;
}

/** One busy lock class of a validation row: real against simulated (the workers' locks). */
export interface ValidationLock {
  name: string;
  /** Acquisitions, contentions, con-bounces. */
  real: [number, number, number];
  sim: [number, number, number];
  /** Mean hold per acquisition and mean wait per contention (microseconds). */
  realHoldUs: number;
  simHoldUs: number;
  realWaitUs: number;
  simWaitUs: number;
  /** Sleeping waiters the simulated releases woke. */
  simWakes: number;
}

/** One test of a validation row: ns per repetition, mean over the workers (real: median of repeats). */
export interface ValidationTest {
  test: string;
  realNs: number;
  simNs: number;
}

export interface ValidationRow {
  design: VmallocDesign;
  cpus: number;
  /** The real side is the fit's own runs (one worker): a check of the fit, not held out. */
  fitData: boolean;
  /** Per test (the tests both sides ran). */
  tests: ValidationTest[];
  realOpsPerSec: number;
  /** The simulator with the workers' locks (spin, then sleep), what the real run takes. */
  simOpsPerSec: number;
  /** The simulator with the kernel's queued spinlocks, for comparison (not validated). */
  simKernelOpsPerSec: number;
  /** Per busy lock class (at least 1% of the real acquisitions). */
  locks: ValidationLock[];
}

export interface CalibrationReport {
  calibration: Calibration;
  crossCore: CrossCore;
  fit: FitRow[];
  model: FitModel;
  validation: ValidationRow[];
}

/** ns per tree node visited (see the header). */
export const STEP_NS = 5;
/** ns per record merged beyond its tree steps (see the header). */
export const RECORD_NS = 100;

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The parameters of the runs compared: `workers` workers (or simulated CPUs), nr_cpus the same. */
export function paramsOf(o: CalibrateOptions, design: VmallocDesign, workers: number): TestParams {
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

/** The real one-worker time of one test (median over the repeats), the input of the fit. */
export interface RealTestTime {
  design: VmallocDesign;
  test: string;
  realNs: number;
}

/**
 * Which per-design columns the fit used, and why: the lock column is kept only when it
 * predicts the one-worker tests it was not fitted on better (leave-one-out over the N = 1
 * tests; the N = 2 runs are never looked at), by at least LOCK_COLUMN_GAIN.
 */
export interface FitModel {
  weighting: 'time' | 'test';
  lockColumn: boolean;
  /** Leave-one-out RMS error (relative, each test weighed as in the fit), call cost only. */
  looCallOnly: number;
  /** The same with the per-design call and lock costs. */
  looCallLock: number;
}

/** The lock column must cut the leave-one-out error to 0.9x of the call-only one, and by 0.1 point. */
export const LOCK_COLUMN_GAIN = 0.9;

/** One equation of the fit: a test of a design, its counted work and the fixed part of its time. */
interface Equation {
  design: VmallocDesign;
  test: string;
  realNs: number;
  f: number[];
  acquires: number;
  fixed: number;
  /** The equation's weight in the fit (its relative error is multiplied by it). */
  weight: number;
}

/** The shared fitted columns (the per-design call and lock columns follow them). */
const SHARED = [F_ACCESS, F_PAGE, F_BYTE];

/** The fit's unknowns: shared weights, then per design callNs (and lockNs when `lock`). */
function row(e: Equation, d: number, nd: number, lock: boolean): number[] {
  const per = lock ? 2 : 1;
  const r = new Array<number>(SHARED.length + nd * per).fill(0);
  SHARED.forEach((k, j) => (r[j] = e.f[k]! / e.realNs));
  r[SHARED.length + d * per] = e.f[F_CALL]! / e.realNs;
  if (lock) r[SHARED.length + d * per + 1] = e.acquires / e.realNs;
  return r;
}

const rms = (rel: readonly number[]): number =>
  Math.sqrt(rel.reduce((a, x) => a + x * x, 0) / Math.max(1, rel.length));

/** The non-negative least squares over `eqs`: each equation's relative error times its weight. */
function solve(
  eqs: readonly Equation[],
  designs: readonly VmallocDesign[],
  lock: boolean,
): number[] {
  const a = eqs.map((e) =>
    row(e, designs.indexOf(e.design), designs.length, lock).map((v) => v * e.weight),
  );
  const b = eqs.map((e) => ((e.realNs - e.fixed) / e.realNs) * e.weight);
  return nnls(a, b);
}

const predict = (
  x: readonly number[],
  e: Equation,
  designs: readonly VmallocDesign[],
  lock: boolean,
): number => {
  const r = row(e, designs.indexOf(e.design), designs.length, lock);
  return e.fixed + e.realNs * r.reduce((s, v, j) => s + v * x[j]!, 0);
};

/** Leave-one-out: each equation predicted by the fit of the others (relative errors, RMS). */
function leaveOneOut(
  eqs: readonly Equation[],
  designs: readonly VmallocDesign[],
  lock: boolean,
): number {
  if (eqs.length < 2) return NaN;
  const rel = eqs.map((e, i) => {
    const x = solve(
      eqs.filter((_, j) => j !== i),
      designs,
      lock,
    );
    return (e.weight * (predict(x, e, designs, lock) - e.realNs)) / e.realNs;
  });
  return rms(rel);
}

/**
 * Fits the weights to real one-worker test times; the lock costs are `xcore`'s. Pure: the
 * simulated features come from one-CPU simulations with the same options. Shared across the
 * designs: ns per access, page, byte zeroed (the same code in every design); per design: a
 * fixed cost per call and, when it predicts better (FitModel), per lock acquisition. The
 * shared call weight (for a design not fitted) is the mean of the fitted designs' call costs.
 */
export function fitWeights(
  o: CalibrateOptions,
  real: readonly RealTestTime[],
  xcore: Pick<Calibration, 'acquireNs' | 'transferNs' | 'spinNs' | 'wakeNs' | 'notifyNs'>,
  source: string,
): { calibration: Calibration; fit: FitRow[]; model: FitModel } {
  const eqs: Equation[] = [];
  for (const design of o.designs) {
    const p = paramsOf(o, design, 1);
    const sim = simulateTestVmalloc({ params: p, calibration: DEFAULT_CALIBRATION });
    for (const t of sim.workers[0]!.tests) {
      const r = real.find((x) => x.design === design && x.test === t.name);
      if (r === undefined) continue;
      const f = Array.from(sim.features[t.index]!);
      const acquires = sim.acquires[t.index]!;
      const fixed = acquires * xcore.acquireNs + f[F_STEP]! * STEP_NS + f[F_RECORD]! * RECORD_NS;
      eqs.push({ design, test: t.name, realNs: r.realNs, f, acquires, fixed, weight: 1 });
    }
  }
  const weighting = o.weighting ?? 'time';
  if (weighting === 'time') {
    const mean = eqs.reduce((a, e) => a + e.realNs, 0) / Math.max(1, eqs.length);
    for (const e of eqs) e.weight = e.realNs / mean;
  }
  const designs = o.designs.filter((d) => eqs.some((e) => e.design === d));
  const looCallOnly = leaveOneOut(eqs, designs, false);
  const looCallLock = leaveOneOut(eqs, designs, true);
  const lock =
    Number.isFinite(looCallLock) &&
    looCallLock < LOCK_COLUMN_GAIN * looCallOnly &&
    looCallLock < looCallOnly - 0.001;
  const x = solve(eqs, designs, lock);
  const fit: FitRow[] = eqs.map((e) => ({
    design: e.design,
    test: e.test,
    realNs: e.realNs,
    fittedNs: predict(x, e, designs, lock),
  }));
  const r4 = (v: number): number => Number(v.toPrecision(4));
  const per = lock ? 2 : 1;
  const perDesign: Partial<Record<VmallocDesign, DesignCost>> = {};
  designs.forEach((d, i) => {
    perDesign[d] = {
      callNs: r4(x[SHARED.length + i * per]!),
      lockNs: lock ? r4(x[SHARED.length + i * per + 1]!) : 0,
    };
  });
  const calls = designs.map((d) => perDesign[d]!.callNs);
  const weights = new Array<number>(NR_FEATURES).fill(0);
  weights[F_CALL] = calls.length > 0 ? calls.reduce((a, v) => a + v, 0) / calls.length : 0;
  SHARED.forEach((k, j) => (weights[k] = x[j]!));
  weights[F_STEP] = STEP_NS;
  weights[F_RECORD] = RECORD_NS;
  const fitError = rms(fit.map((r) => (r.fittedNs - r.realNs) / r.realNs));
  const calibration: Calibration = {
    weights: weights.map(r4),
    designs: perDesign,
    acquireNs: xcore.acquireNs,
    transferNs: xcore.transferNs,
    spinNs: xcore.spinNs,
    wakeNs: xcore.wakeNs,
    notifyNs: xcore.notifyNs,
    source,
    fitError: Number(fitError.toFixed(4)),
  };
  const round = (v: number): number => Number(v.toFixed(4));
  return {
    calibration,
    fit,
    model: {
      weighting,
      lockColumn: lock,
      looCallOnly: round(looCallOnly),
      looCallLock: round(looCallLock),
    },
  };
}

/** Measures the cross-core costs, fits the weights on one worker; then validates. */
export async function calibrate(o: CalibrateOptions): Promise<CalibrationReport> {
  o.progress?.('cross-core costs: two workers (ping-pong, wake, spin, lock pair)');
  const crossCore = await measureCrossCore(o.crossCore);
  const real: RealTestTime[] = [];
  const realOne = new Map<VmallocDesign, RealRun>();
  for (const design of o.designs) {
    const run = await realRuns(o, design, 1);
    realOne.set(design, run);
    for (const [test, realNs] of run.tests) real.push({ design, test, realNs });
  }
  const { calibration, fit, model } = fitWeights(
    o,
    real,
    crossCore,
    `vmalloc sim calibrate ${new Date().toISOString()} (loops ${o.loops}, repeat ${o.repeat}, seed ${o.seed})`,
  );
  const validation = await validate(o, calibration, realOne);
  return { calibration, crossCore, fit, model, validation };
}

/** Medians over the repeats of real runs: the run's time and each test's (mean over the workers). */
export interface RealRun {
  elapsedNs: number;
  /** Test name -> ns of one repetition. */
  tests: Map<string, number>;
}

async function realRuns(
  o: CalibrateOptions,
  design: VmallocDesign,
  workers: number,
): Promise<RealRun> {
  const p = paramsOf(o, design, workers);
  const times: number[][] = TEST_CASES.map(() => []);
  const elapsed: number[] = [];
  for (let r = 0; r < o.repeat; r++) {
    o.progress?.(`real run: ${design}, ${workers} worker(s), repeat ${r + 1}/${o.repeat}`);
    const run = await runTestVmalloc({ params: p, warmup: true });
    meanPerTest(run.workers).forEach((ns, i) => {
      if (ns !== undefined) times[i]!.push(ns);
    });
    elapsed.push(run.elapsedNs);
  }
  const tests = new Map<string, number>();
  TEST_CASES.forEach((t, i) => {
    if (times[i]!.length > 0) tests.set(t.name, median(times[i]!));
  });
  return { elapsedNs: median(elapsed), tests };
}

/** Each test's ns per repetition, the mean over the workers (by table index). */
function meanPerTest(workers: readonly WorkerResult[]): (number | undefined)[] {
  const sum: (number | undefined)[] = TEST_CASES.map(() => undefined);
  for (const w of workers)
    for (const t of w.tests) sum[t.index] = (sum[t.index] ?? 0) + t.avgUsec * 1000;
  return sum.map((x) => (x === undefined ? x : x / workers.length));
}

const byClass = (stats: readonly LockStat[]): Map<string, LockStat> =>
  new Map(aggregateByClass(stats).map((s) => [s.name, s]));

/**
 * Real vs simulated at o.cpus (1 and 2), both designs, with the calibration as fitted: nothing
 * here changes it. The one-CPU rows reuse the fit's own real runs (`realOne`): they check the
 * fit summed over a run, not the model; the rows at 2 CPUs and more are held out.
 */
export async function validate(
  o: CalibrateOptions,
  cal: Calibration,
  realOne?: Map<VmallocDesign, RealRun>,
): Promise<ValidationRow[]> {
  const out: ValidationRow[] = [];
  for (const design of o.designs) {
    for (const cpus of o.cpus ?? [1, 2]) {
      const p = paramsOf(o, design, cpus);
      const reused = cpus === 1 ? realOne?.get(design) : undefined;
      const run = reused ?? (await realRuns(o, design, cpus));
      o.progress?.(`real run with lock_stat: ${design}, ${cpus} worker(s)`);
      const ls = await runTestVmalloc({ params: p, warmup: true, lockStatFromStart: true });
      const row = compare(p, run.elapsedNs, ls.vm.lockStats(), cal, run.tests);
      row.fitData = reused !== undefined;
      out.push(row);
    }
  }
  return out;
}

/** One validation row: a real run's time and lock_stat against the simulator's. */
export function compare(
  p: TestParams,
  realNs: number,
  realStats: readonly LockStat[],
  cal: Calibration,
  realTests?: ReadonlyMap<string, number>,
): ValidationRow {
  const real = byClass(realStats);
  const sim = simulateTestVmalloc({ params: p, calibration: cal, locks: 'workers' });
  const kernelNs =
    p.nr_threads === 1
      ? sim.elapsedNs // (one CPU: nothing waits, both models give the same run)
      : simulateTestVmalloc({ params: p, calibration: cal, locks: 'kernel' }).elapsedNs;
  const simC = byClass(sim.lockStats);
  const wakes = new Map<string, number>();
  for (const s of sim.lockStats) wakes.set(s.name, (wakes.get(s.name) ?? 0) + s.wakes);
  const total = [...real.values()].reduce((a, s) => a + s.acquisitions, 0);
  const per = (x: number, n: number): number => (n > 0 ? x / n : 0);
  const locks = [...real.values()]
    .filter((s) => s.acquisitions >= 0.01 * total)
    .map((s): ValidationLock => {
      const m = simC.get(s.name);
      return {
        name: s.name,
        real: [s.acquisitions, s.contentions, s.conBounces],
        sim: [m?.acquisitions ?? 0, m?.contentions ?? 0, m?.conBounces ?? 0],
        realHoldUs: per(s.holdTotal, s.acquisitions),
        simHoldUs: per(m?.holdTotal ?? 0, m?.acquisitions ?? 0),
        realWaitUs: per(s.waitTotal, s.contentions),
        simWaitUs: per(m?.waitTotal ?? 0, m?.contentions ?? 0),
        simWakes: wakes.get(s.name) ?? 0,
      };
    });
  const loops = loopsOf(p);
  const simTests = meanPerTest(sim.workers);
  const tests: ValidationTest[] = [];
  TEST_CASES.forEach((t, i) => {
    const realNs = realTests?.get(t.name);
    const simNs = simTests[i];
    if (realNs !== undefined && simNs !== undefined) tests.push({ test: t.name, realNs, simNs });
  });
  return {
    design: p.design,
    cpus: p.nr_threads,
    fitData: false,
    tests,
    realOpsPerSec: loops / (realNs / 1e9),
    simOpsPerSec: loops / (sim.elapsedNs / 1e9),
    simKernelOpsPerSec: loops / (kernelNs / 1e9),
    locks,
  };
}
