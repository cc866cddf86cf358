/**
 * `vmalloc sim calibrate`: measures this machine's cross-core costs, fits the cost model's
 * weights to real one-worker runs, and validates the simulator against real runs of one and
 * two workers.
 *
 * Holds: calibrate() (the cross-core microbenchmarks of xcore.ts, the real runs, medians of
 * repeats, the simulated features of the same runs), fitWeights() (the non-negative least
 * squares fit with its error per test, a pure function of the real times) and validate() (real
 * vs simulated throughput and per lock class acquisitions, contentions, con-bounces, mean hold
 * and wait at N = 1, 2, both designs). The report's text is calibrate-report.ts's.
 * Invariant: the real and simulated runs of a comparison have the same parameters (seed, loop
 * count, nr_cpus = workers), so they make the same calls; the simulated side of the
 * validation models the locks the real workers take (spin, then sleep: lock-model.ts's workers'
 * model), and the kernel's queued spinlocks beside it for comparison.
 * Callers: src/cli/sim.ts.
 *
 * The fit: per design and test, the median real time of the test (one worker, warmed up) =
 * weights . (calls, accesses, tree steps, pages, bytes zeroed, records merged) of the same test
 * in a one-CPU simulation + acquisitions x acquireNs; each equation divided by its real time,
 * so every test counts alike (a relative error). Two columns are not identifiable from these
 * tests and are fixed. A tree step: a test's steps grow with its calls, so a free fit trades
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
import { type Calibration, DEFAULT_CALIBRATION, F_RECORD, F_STEP, costOf, nnls } from './cost.js';
import { simulateTestVmalloc } from './machine.js';
import { type CrossCore, measureCrossCore } from './xcore.js';

export interface CalibrateOptions {
  loops: number;
  repeat: number;
  designs: VmallocDesign[];
  seed: number;
  mask: number;
  /** The simulated machine sizes validated against as many real workers. @defaultValue [1, 2] */
  cpus?: number[];
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

export interface ValidationRow {
  design: VmallocDesign;
  cpus: number;
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
 * Fits the weights to real one-worker test times; the lock costs are `xcore`'s. Pure: the
 * simulated features come from one-CPU simulations with the same options.
 */
export function fitWeights(
  o: CalibrateOptions,
  real: readonly RealTestTime[],
  xcore: Pick<Calibration, 'acquireNs' | 'transferNs' | 'spinNs' | 'wakeNs' | 'notifyNs'>,
  source: string,
): { calibration: Calibration; fit: FitRow[] } {
  const rows: number[][] = [];
  const targets: number[] = [];
  const meta: {
    design: VmallocDesign;
    test: string;
    realNs: number;
    f: number[];
    fixed: number;
  }[] = [];
  for (const design of o.designs) {
    const p = paramsOf(o, design, 1);
    const sim = simulateTestVmalloc({ params: p, calibration: DEFAULT_CALIBRATION });
    for (const t of sim.workers[0]!.tests) {
      const r = real.find((x) => x.design === design && x.test === t.name);
      if (r === undefined) continue;
      const f = Array.from(sim.features[t.index]!);
      const fixed =
        sim.acquires[t.index]! * xcore.acquireNs + f[F_STEP]! * STEP_NS + f[F_RECORD]! * RECORD_NS;
      // Relative: each row divided by the real time; the fixed columns are zero.
      rows.push(f.map((x, k) => (k === F_STEP || k === F_RECORD ? 0 : x / r.realNs)));
      targets.push((r.realNs - fixed) / r.realNs);
      meta.push({ design, test: t.name, realNs: r.realNs, f, fixed });
    }
  }
  const weights = nnls(rows, targets);
  weights[F_STEP] = STEP_NS;
  weights[F_RECORD] = RECORD_NS;
  const fit: FitRow[] = meta.map((m) => ({
    design: m.design,
    test: m.test,
    realNs: m.realNs,
    fittedNs: costOf(weights, m.f) + m.fixed - m.f[F_STEP]! * STEP_NS - m.f[F_RECORD]! * RECORD_NS,
  }));
  const rel = fit.map((r) => (r.fittedNs - r.realNs) / r.realNs);
  const fitError = Math.sqrt(rel.reduce((a, x) => a + x * x, 0) / Math.max(1, rel.length));
  const calibration: Calibration = {
    weights: weights.map((x) => Number(x.toPrecision(4))),
    acquireNs: xcore.acquireNs,
    transferNs: xcore.transferNs,
    spinNs: xcore.spinNs,
    wakeNs: xcore.wakeNs,
    notifyNs: xcore.notifyNs,
    source,
    fitError: Number(fitError.toFixed(4)),
  };
  return { calibration, fit };
}

/** Measures the cross-core costs, fits the weights; then validates. */
export async function calibrate(o: CalibrateOptions): Promise<CalibrationReport> {
  o.progress?.('cross-core costs: two workers (ping-pong, wake, spin, lock pair)');
  const crossCore = await measureCrossCore();
  const real: RealTestTime[] = [];
  const realOne = new Map<VmallocDesign, number>();
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
    TEST_CASES.forEach((t, i) => {
      if (times[i]!.length > 0) real.push({ design, test: t.name, realNs: median(times[i]!) });
    });
  }
  const { calibration, fit } = fitWeights(
    o,
    real,
    crossCore,
    `vmalloc sim calibrate ${new Date().toISOString()} (loops ${o.loops}, repeat ${o.repeat}, seed ${o.seed})`,
  );
  const validation = await validate(o, calibration, realOne);
  return { calibration, crossCore, fit, validation };
}

const byClass = (stats: readonly LockStat[]): Map<string, LockStat> =>
  new Map(aggregateByClass(stats).map((s) => [s.name, s]));

/** Real vs simulated at 1 and 2 CPUs (o.cpus), both designs. */
export async function validate(
  o: CalibrateOptions,
  cal: Calibration,
  realOne?: Map<VmallocDesign, number>,
): Promise<ValidationRow[]> {
  const out: ValidationRow[] = [];
  for (const design of o.designs) {
    for (const cpus of o.cpus ?? [1, 2]) {
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
      out.push(compare(p, realNs, ls.vm.lockStats(), cal));
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
  return {
    design: p.design,
    cpus: p.nr_threads,
    realOpsPerSec: loops / (realNs / 1e9),
    simOpsPerSec: loops / (sim.elapsedNs / 1e9),
    simKernelOpsPerSec: loops / (kernelNs / 1e9),
    locks,
  };
}
