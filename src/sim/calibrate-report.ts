/**
 * The report of `vmalloc sim calibrate`: the cross-core costs, the fit, the validation and the
 * issue's acceptance verdicts, as Markdown (pasted into BENCHMARKS.md as it is) and as the
 * body of the JSON report.
 *
 * Holds: verdicts() (throughput within THROUGHPUT_TOLERANCE, the contention rate of each
 * contended lock class within RATE_FACTOR; overall and for the held-out rows, N >= 2, alone),
 * formatCalibration() (the per-design costs, the fit per test and per design, the validation
 * per design, per test and per lock class) and calibrationJson().
 * Invariant: a lock class is judged when the real or the simulated contention rate reaches
 * CONTENDED_RATE; below it on both sides the class is not a busy one for contention (a rate of
 * 0.16% against 0% is no factor of anything) and is shown, not judged.
 * Callers: src/cli/sim.ts.
 */

import {
  type CalibrationReport,
  type FitRow,
  LOCK_COLUMN_GAIN,
  type ValidationLock,
  type ValidationRow,
} from './calibrate.js';
import { type Calibration, FEATURES, designCost } from './cost.js';
import { formatCrossCore } from './xcore.js';

export const THROUGHPUT_TOLERANCE = 0.2;
export const RATE_FACTOR = 2;
export const CONTENDED_RATE = 0.01;

const rate = (t: readonly number[]): number => (t[0]! > 0 ? t[1]! / t[0]! : 0);

/** A lock class's verdict: 'ok', 'off' (outside the factor), or '-' (not contended). */
export function lockVerdict(l: ValidationLock): 'ok' | 'off' | '-' {
  const r = rate(l.real);
  const s = rate(l.sim);
  if (r < CONTENDED_RATE && s < CONTENDED_RATE) return '-';
  return r > 0 && s > 0 && s / r <= RATE_FACTOR && r / s <= RATE_FACTOR ? 'ok' : 'off';
}

/** Whose real figures a row compares with: the fit's own runs, or held-out runs. */
const side = (v: ValidationRow): string => (v.fitData ? 'fit data' : 'held out');

export const throughputOk = (v: ValidationRow): boolean =>
  Math.abs(v.simOpsPerSec - v.realOpsPerSec) <= THROUGHPUT_TOLERANCE * v.realOpsPerSec;

export interface Verdicts {
  throughputRows: number;
  throughputOk: number;
  contendedClasses: number;
  ratesOk: number;
}

/** The verdicts over `rows`; `heldOut`: only the rows whose real side the fit never saw. */
export function verdicts(rows: readonly ValidationRow[], heldOut = false): Verdicts {
  const v = { throughputRows: 0, throughputOk: 0, contendedClasses: 0, ratesOk: 0 };
  for (const r of rows) {
    if (heldOut && r.fitData) continue;
    v.throughputRows++;
    if (throughputOk(r)) v.throughputOk++;
    for (const l of r.locks) {
      const k = lockVerdict(l);
      if (k !== '-') v.contendedClasses++;
      if (k === 'ok') v.ratesOk++;
    }
  }
  return v;
}

const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
const rel = (sim: number, real: number): number => (sim - real) / real;

/** RMS of the fit's relative error over the rows of one design. */
export function designFitError(fit: readonly FitRow[], design: string): number {
  const e = fit.filter((f) => f.design === design).map((f) => rel(f.fittedNs, f.realNs));
  return Math.sqrt(e.reduce((a, x) => a + x * x, 0) / Math.max(1, e.length));
}

/** The designs' fixed costs as one line each. */
function designLines(c: Calibration, fit: readonly FitRow[]): string[] {
  const names = Object.keys(c.designs) as (keyof Calibration['designs'])[];
  return names.map((d) => {
    const k = designCost(c, d);
    return `- ${d}: call ${k.callNs} ns, lock ${k.lockNs} ns per acquisition; fit error ${(designFitError(fit, d) * 100).toFixed(1)}% RMS`;
  });
}

const us = (x: number): string => (x > 0 ? x.toFixed(2) : '-');

/** The whole report as Markdown tables. */
export function formatCalibration(r: CalibrationReport): string {
  const c = r.calibration;
  const lines = [
    formatCrossCore(r.crossCore),
    `weights shared by the designs (ns per unit): ${FEATURES.map((f, k) => `${f} ${c.weights[k]}`).join(', ')} (step and record fixed, see calibrate.ts; call: the mean of the designs', for a design not fitted)`,
    `per design, fitted on one worker (N = 1) only, the tests weighed ${r.model.weighting === 'time' ? 'by their real time' : 'alike'}; the lock column ${r.model.lockColumn ? 'used' : 'left out'} (leave-one-out error over the N = 1 tests: call only ${(r.model.looCallOnly * 100).toFixed(1)}%, call and lock ${(r.model.looCallLock * 100).toFixed(1)}%):`,
    ...designLines(c, r.fit),
    `lock costs (ns, measured): acquire ${c.acquireNs}, transfer ${c.transferNs}; workers' lock: spin ${c.spinNs}, wake ${c.wakeNs}, notify ${c.notifyNs}`,
    `fit error (RMS of the relative error per test): ${(c.fitError * 100).toFixed(1)}%`,
    '',
    '| design | test | real (ms) | fitted (ms) | error |',
    '|---|---|---:|---:|---:|',
    ...r.fit.map(
      (f) =>
        `| ${f.design} | ${f.test} | ${(f.realNs / 1e6).toFixed(2)} | ${(f.fittedNs / 1e6).toFixed(2)} | ${pct((f.fittedNs - f.realNs) / f.realNs)} |`,
    ),
    '',
    `Validation, throughput (loops/s): real workers against the simulator with the workers' locks (spin, then sleep: what real workers take; required within ${THROUGHPUT_TOLERANCE * 100}%), and the simulator with the kernel's queued spinlocks beside it (not validated: no real run takes them)`,
    '',
    "| design | CPUs | real side | real | sim (workers' locks) | diff | within 20% | sim (kernel locks) |",
    '|---|---:|---|---:|---:|---:|---|---:|',
    ...r.validation.map(
      (v) =>
        `| ${v.design} | ${v.cpus} | ${side(v)} | ${v.realOpsPerSec.toFixed(0)} | ${v.simOpsPerSec.toFixed(0)} | ${pct(rel(v.simOpsPerSec, v.realOpsPerSec))} | ${throughputOk(v) ? 'yes' : 'no'} | ${v.simKernelOpsPerSec.toFixed(0)} |`,
    ),
    '',
    'Validation per test: ms per repetition (mean over the workers; real: median of the repeats), simulated with the same calibration (not refitted)',
    '',
    '| design | CPUs | real side | test | real (ms) | sim (ms) | diff |',
    '|---|---:|---|---|---:|---:|---:|',
    ...r.validation.flatMap((v) =>
      v.tests.map(
        (t) =>
          `| ${v.design} | ${v.cpus} | ${side(v)} | ${t.test} | ${(t.realNs / 1e6).toFixed(2)} | ${(t.simNs / 1e6).toFixed(2)} | ${pct(rel(t.simNs, t.realNs))} |`,
      ),
    ),
    '',
    `Validation, per busy lock class (at least 1% of the acquisitions): acquisitions / contentions / con-bounces, the contention rate (required within ${RATE_FACTOR}x where either side reaches ${CONTENDED_RATE * 100}%), mean hold per acquisition and mean wait per contention (us), and the sleepers the simulated releases woke`,
    '',
    '| design | CPUs | real side | lock class | real acq / cont / con-b | sim acq / cont / con-b | real rate | sim rate | within 2x | hold real / sim | wait real / sim | sim wakes |',
    '|---|---:|---|---|---:|---:|---:|---:|---|---:|---:|---:|',
  ];
  for (const v of r.validation)
    for (const l of v.locks)
      lines.push(
        `| ${v.design} | ${v.cpus} | ${side(v)} | ${l.name} | ${l.real.join(' / ')} | ${l.sim.join(' / ')} | ${(rate(l.real) * 100).toFixed(2)}% | ${(rate(l.sim) * 100).toFixed(2)}% | ${lockVerdict(l)} | ${us(l.realHoldUs)} / ${us(l.simHoldUs)} | ${us(l.realWaitUs)} / ${us(l.simWaitUs)} | ${l.simWakes} |`,
      );
  const k = verdicts(r.validation);
  const h = verdicts(r.validation, true);
  const real2 = r.validation
    .filter((v) => v.cpus === 2)
    .map((v) => {
      const one = r.validation.find((w) => w.design === v.design && w.cpus === 1);
      return one === undefined
        ? ''
        : `${v.design} ${(v.realOpsPerSec / one.realOpsPerSec).toFixed(2)}x real, ${(v.simOpsPerSec / one.simOpsPerSec).toFixed(2)}x simulated`;
    })
    .filter((x) => x !== '');
  lines.push(
    '',
    `Acceptance (issue 11, point 3): throughput within ${THROUGHPUT_TOLERANCE * 100}% in ${k.throughputOk} of ${k.throughputRows} rows; contention rate within ${RATE_FACTOR}x for ${k.ratesOk} of ${k.contendedClasses} contended lock classes.`,
    `Held out (the rows at 2 CPUs and more, never fitted): throughput within ${THROUGHPUT_TOLERANCE * 100}% in ${h.throughputOk} of ${h.throughputRows}; contention rate within ${RATE_FACTOR}x for ${h.ratesOk} of ${h.contendedClasses}.`,
  );
  if (real2.length > 0) lines.push(`2 CPUs over 1: ${real2.join('; ')}.`);
  return lines.join('\n') + '\n';
}

/** The JSON report's body (jsonReport() adds schemaVersion): every field carries its unit. */
export function calibrationJson(r: CalibrationReport): Record<string, unknown> {
  const c = r.calibration;
  return {
    calibration: {
      features: FEATURES,
      weightsNsPerUnit: c.weights,
      designs: c.designs,
      acquireNs: c.acquireNs,
      transferNs: c.transferNs,
      spinNs: c.spinNs,
      wakeNs: c.wakeNs,
      notifyNs: c.notifyNs,
      source: c.source,
      fitErrorRmsRatio: c.fitError,
    },
    crossCore: r.crossCore,
    fitModel: { ...r.model, lockColumnGainRatio: LOCK_COLUMN_GAIN },
    fit: r.fit.map((f) => ({ ...f, errorRatio: rel(f.fittedNs, f.realNs) })),
    fitErrorByDesign: Object.fromEntries(
      Object.keys(c.designs).map((d) => [d, { rmsRatio: designFitError(r.fit, d) }]),
    ),
    validation: r.validation.map((v) => ({
      ...v,
      throughputErrorRatio: rel(v.simOpsPerSec, v.realOpsPerSec),
      withinTolerance: throughputOk(v),
      tests: v.tests.map((t) => ({ ...t, errorRatio: rel(t.simNs, t.realNs) })),
      locks: v.locks.map((l) => ({
        name: l.name,
        real: { acquisitions: l.real[0], contentions: l.real[1], conBounces: l.real[2] },
        sim: { acquisitions: l.sim[0], contentions: l.sim[1], conBounces: l.sim[2] },
        realHoldUs: l.realHoldUs,
        simHoldUs: l.simHoldUs,
        realWaitUs: l.realWaitUs,
        simWaitUs: l.simWaitUs,
        simWakes: l.simWakes,
        verdict: lockVerdict(l),
      })),
    })),
    acceptance: verdicts(r.validation),
    acceptanceHeldOut: verdicts(r.validation, true),
  };
}
