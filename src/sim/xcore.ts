/**
 * The cross-core costs of this machine, measured on two real workers for the simulator's lock
 * model: a cache-line transfer, the wake of a sleeping waiter, the releaser's notify, the real
 * lock's spin budget and an uncontended lock/unlock pair.
 *
 * Holds: measureCrossCore() (spawns the two workers of xcore-worker.ts, reduces their samples
 * to a low percentile and the median) and formatCrossCore().
 * Invariant: a figure is a low percentile (PERCENTILE) of many samples: another job on the
 * machine only ever adds time to a sample (a descheduled worker, a busy core), so the low
 * percentile of a few hundred samples is the undisturbed cost as long as some samples ran
 * undisturbed; the median beside it says how often they did not. A figure with no sample at
 * all (on a loaded machine every wake can find the sleeper not yet asleep, and is discarded)
 * is the built-in calibration's, with 0 samples: a calibration never holds NaN (its JSON
 * would hold null, which parseCalibration refuses).
 * Callers: src/sim/calibrate.ts (sim calibrate).
 *
 * What each figure is. transfer: half a round trip of one line written in turn by two
 * workers (each write waits for the other's; one transfer each way). wake: from a store and
 * Atomics.notify on the word a partner sleeps on in Atomics.wait to the partner's answer (the
 * futex wake, the scheduler waking the partner's core, one transfer back): what a release
 * costs the waiter that went to sleep. notify: the Atomics.notify call itself, on the
 * releaser's clock. spin: SPIN_LIMIT (lock-wait.ts: 200) loads of a held lock word, the time a
 * waiter spins before it sleeps. acquire: Lock.lock() and unlock() of a free lock whose line is
 * in this core's cache. The sleeper sleeps SLEEP_NS before it is woken, about a critical
 * section's length, as a waiter of the allocator's locks does.
 */

import { Worker } from 'node:worker_threads';
import { DEFAULT_CALIBRATION } from './cost.js';
import type { XcoreJob, XcoreSamples } from './xcore-worker.js';

/** lock-wait.ts's SPIN_LIMIT (not exported there; a waiter's loads of the word before sleeping). */
export const SPIN_LIMIT = 200;
/** The low percentile taken of each figure's samples. */
export const PERCENTILE = 0.1;
const SLEEP_NS = 5000;

export interface CrossCoreFigure {
  name: string;
  /** PERCENTILE of the samples (ns): the figure used. */
  lowNs: number;
  medianNs: number;
  samples: number;
}

export interface CrossCore {
  transferNs: number;
  wakeNs: number;
  notifyNs: number;
  spinNs: number;
  acquireNs: number;
  figures: CrossCoreFigure[];
  /** Wakes thrown away because the partner was not asleep yet when notified. */
  missedWakes: number;
}

const quantile = (a: readonly number[], q: number): number => {
  if (a.length === 0) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

export interface CrossCoreOptions {
  /** Samples of each figure. @defaultValue 400 */
  samples?: number;
  /** Round trips per ping-pong sample. @defaultValue 100 */
  rounds?: number;
  /** Untimed samples first. @defaultValue 50 */
  warm?: number;
}

/** Runs the microbenchmarks on two workers (about a second on an idle machine). */
export async function measureCrossCore(o: CrossCoreOptions = {}): Promise<CrossCore> {
  const samples = o.samples ?? 400;
  const sab = new SharedArrayBuffer(192 * 4);
  const job = (role: 0 | 1): XcoreJob => ({
    sab,
    role,
    batches: samples,
    rounds: o.rounds ?? 100,
    wakes: samples,
    sleepNs: SLEEP_NS,
    spinLimit: SPIN_LIMIT,
    warm: o.warm ?? 50,
  });
  const workers: Worker[] = [];
  const run = (role: 0 | 1): Promise<XcoreSamples> =>
    new Promise((resolve, reject) => {
      const w = new Worker(new URL('./xcore-worker.js', import.meta.url), {
        workerData: job(role),
      });
      workers.push(w);
      w.once('message', (m: XcoreSamples) => resolve(m));
      w.once('error', reject);
      w.once('exit', (code) => {
        if (code !== 0) reject(new Error(`cross-core benchmark worker exited with ${code}`));
      });
    });
  let a: XcoreSamples;
  try {
    [a] = await Promise.all([run(0), run(1)]);
  } catch (e) {
    // (the partner of a worker that failed would spin until its deadline)
    await Promise.all(workers.map((w) => w.terminate()));
    throw e;
  }
  const fig = (
    name: 'transferNs' | 'wakeNs' | 'notifyNs' | 'spinNs' | 'acquireNs',
    label: string,
  ): CrossCoreFigure => {
    const x = a[name];
    if (x.length === 0) {
      const ns = DEFAULT_CALIBRATION[name];
      return {
        name: `${label} (no sample: the built-in figure)`,
        lowNs: ns,
        medianNs: ns,
        samples: 0,
      };
    }
    return {
      name: label,
      lowNs: Number(quantile(x, PERCENTILE).toFixed(1)),
      medianNs: Number(quantile(x, 0.5).toFixed(1)),
      samples: x.length,
    };
  };
  const figures = [
    fig('transferNs', 'transfer (cache line, one way)'),
    fig('wakeNs', 'wake (release to sleeper running)'),
    fig('notifyNs', "notify (the releaser's call)"),
    fig('spinNs', `spin budget (${SPIN_LIMIT} loads)`),
    fig('acquireNs', 'acquire (free lock: lock + unlock)'),
  ];
  return {
    transferNs: figures[0]!.lowNs,
    wakeNs: figures[1]!.lowNs,
    notifyNs: figures[2]!.lowNs,
    spinNs: figures[3]!.lowNs,
    acquireNs: figures[4]!.lowNs,
    figures,
    missedWakes: a.missedWakes,
  };
}

/** The figures as a Markdown table. */
export function formatCrossCore(x: CrossCore): string {
  const p = Math.round(PERCENTILE * 100);
  return [
    `Cross-core costs (two workers; the figure used is the ${p}th percentile of the samples, the median beside it; ${x.missedWakes} wakes discarded, the sleeper not yet asleep):`,
    '',
    `| cost | p${p} (ns) | median (ns) | samples |`,
    '|---|---:|---:|---:|',
    ...x.figures.map((f) => `| ${f.name} | ${f.lowNs} | ${f.medianNs} | ${f.samples} |`),
    '',
  ].join('\n');
}
