/**
 * `vmalloc bench contention`: test_vmalloc's run_test_mask=7 (fix_size, full_fit,
 * long_busy_list) with 1, 2 and 4 workers (or --workers), for the 'global' and the 'nodes' design, in one
 * run: throughput, scaling ratios, lock_stat, and a model of larger machines calibrated on the
 * measured lock hold times.
 *
 * Holds: the run plan, the two passes per configuration (throughput with lock statistics off,
 * then lock statistics on: they cost about a third of the throughput), the model, the report.
 * Callers: src/cli/bench.ts.
 *
 * Every configuration simulates the same machine (nr_cpus, 8 by default), so each test does the
 * same work whatever the number of workers (full_fit_alloc_test's setup depends on nr_cpus).
 * Workers warm up (untimed) before the start barrier opens.
 */

import { aggregateByClass } from '../shared/lock-stat.js';
import type { LockStat } from '../shared/lock.js';
import { defaultParams, type TestParams } from '../test-vmalloc/params.js';
import { runTestVmalloc } from '../test-vmalloc/run.js';
import { IMPLEMENTED_MASK } from '../test-vmalloc/tests.js';
import type { VmallocDesign } from '../mm/config.js';
import { type RecordPlan, recordingWarmup } from './record-plan.js';
import { fmt } from './stats.js';

export interface ContentionOptions {
  loops: number;
  lockStatLoops: number;
  workers: number[];
  designs: VmallocDesign[];
  nrCpus: number;
  mask: number;
  progress?: (line: string) => void;
  /** Called after each configuration is measured, with every row so far (to print as it goes). */
  onRow?: (rows: readonly ContentionRow[]) => void;
  /**
   * --record: each run to a file of its own ("<design>-x<workers>" and its lock-statistics
   * pass "...-lockstat"), without the warm-up (record-plan.ts).
   */
  record?: RecordPlan;
}

export interface ContentionRow {
  design: VmallocDesign;
  workers: number;
  elapsedMs: number;
  /** Tests completed (workers x tests in the mask). */
  tests: number;
  testsPerSec: number;
  /** lock_stat of the lock-statistics pass, by class. */
  locks: LockStat[];
  /** Tests completed in the lock-statistics pass (to express hold times per test). */
  lockStatTests: number;
}

export interface ContentionResult {
  options: Omit<ContentionOptions, 'progress' | 'onRow' | 'record'>;
  rows: ContentionRow[];
}

function paramsFor(
  o: ContentionOptions,
  design: VmallocDesign,
  workers: number,
  loops: number,
): TestParams {
  const p = defaultParams(IMPLEMENTED_MASK, o.nrCpus);
  p.design = design;
  p.nr_threads = workers;
  p.nr_cpus = o.nrCpus;
  p.run_test_mask = o.mask;
  p.test_loop_count = loops;
  p.test_repeat_count = 1;
  p.seed = 20261122;
  return p;
}

const recorded = (o: ContentionOptions, p: TestParams, label: string): TestParams =>
  o.record === undefined ? p : o.record.params(p, label);

const testsIn = (mask: number): number =>
  [1, 2, 4, 8, 16, 32, 64].filter((b) => (mask & b) !== 0).length;

export async function runContentionBench(o: ContentionOptions): Promise<ContentionResult> {
  const say = o.progress ?? (() => {});
  const rows: ContentionRow[] = [];
  // Designs alternate at each worker count, so a slow phase of the machine hits both.
  for (const workers of o.workers) {
    for (const design of o.designs) {
      const label = `${design}-x${workers}`;
      const p = recorded(o, paramsFor(o, design, workers, o.loops), label);
      const run = await runTestVmalloc({ params: p, warmup: recordingWarmup(p), logger: null });
      o.record?.done(p, run.traced);
      const tests = workers * testsIn(o.mask);
      const elapsedMs = run.elapsedNs / 1e6;
      run.vm.check();
      const lp = recorded(o, paramsFor(o, design, workers, o.lockStatLoops), `${label}-lockstat`);
      const ls = await runTestVmalloc({
        params: lp,
        warmup: recordingWarmup(lp),
        logger: null,
        lockStatFromStart: true,
      });
      o.record?.done(lp, ls.traced);
      rows.push({
        design,
        workers,
        elapsedMs,
        tests,
        testsPerSec: tests / (elapsedMs / 1000),
        locks: aggregateByClass(ls.vm.lockStats()),
        lockStatTests: tests,
      });
      say(
        `${design} x${workers}: ${fmt(tests / (elapsedMs / 1000), 2)} tests/s (${fmt(elapsedMs, 0)} ms)`,
      );
      o.onRow?.(rows);
    }
  }
  const options = {
    loops: o.loops,
    lockStatLoops: o.lockStatLoops,
    workers: o.workers,
    designs: o.designs,
    nrCpus: o.nrCpus,
    mask: o.mask,
  };
  return { options, rows };
}

/** Locks every CPU contends for, per design (per-node locks are split N ways). */
const GLOBAL_LOCKS: Record<VmallocDesign, string[]> = {
  global: ['free_vmap_area_lock', 'vmap_area_lock', 'purge_vmap_area_lock', 'vmap_purge_lock'],
  nodes: ['free_vmap_area_lock', 'vmap_purge_lock'],
  legacy: ['vmap_area_lock', 'vmap_purge_lock'],
  offload2023: ['free_vmap_area_lock', 'vmap_purge_lock'],
  rfc2018: ['vmap_area_lock', 'vmap_purge_lock'],
};
const NODE_LOCKS = ['&vn->busy.lock', '&vn->lazy.lock', '&vn->pool_lock'];

export interface ModelPoint {
  cpus: number;
  global: number;
  nodes: number;
}

export interface ModelFit {
  design: VmallocDesign;
  /** tests per second, one worker */
  x1: number;
  /** measured scaling from 1 to 2 workers (the machine's two real cores) */
  scaling2: number;
  /** Amdahl serial fraction fitted from that scaling: X(N) = X1 * N / (1 + a (N - 1)) */
  serial: number;
  /** the busiest lock every CPU shares: its hold time per test (seconds) */
  maxHold: number;
  maxHoldLock: string;
}

/**
 * A model of an N-CPU machine, calibrated on this machine's 1- and 2-worker runs (the only
 * ones not oversubscribed on 2 cores): Amdahl's law with the serial fraction a fitted from the
 * 1 -> 2 worker scaling (it lumps lock waits and cache-line traffic), capped by the busiest lock
 * every CPU shares, which can be held at most all the time: X(N) <= 1 / hold-per-test.
 * Per-node locks count 1/nr_nodes of their hold time (nodes split them).
 */
export function fitModel(rows: readonly ContentionRow[]): ModelFit[] {
  const fits: ModelFit[] = [];
  for (const design of ['global', 'nodes'] as VmallocDesign[]) {
    const r1 = rows.find((x) => x.design === design && x.workers === 1);
    const r2 = rows.find((x) => x.design === design && x.workers === 2);
    if (!r1 || !r2) continue;
    const scaling2 = r2.testsPerSec / r1.testsPerSec;
    const serial = Math.min(1, Math.max(0, 2 / scaling2 - 1));
    let maxHold = 0;
    let maxHoldLock = '-';
    for (const name of [...GLOBAL_LOCKS[design], ...(design === 'nodes' ? NODE_LOCKS : [])]) {
      const l = r1.locks.find((x) => x.name === name);
      if (!l) continue;
      const perTest = l.holdTotal / 1e6 / r1.lockStatTests / (NODE_LOCKS.includes(name) ? 64 : 1);
      if (perTest > maxHold) {
        maxHold = perTest;
        maxHoldLock = name;
      }
    }
    fits.push({ design, x1: r1.testsPerSec, scaling2, serial, maxHold, maxHoldLock });
  }
  return fits;
}

export function modelThroughput(fits: readonly ModelFit[], cpus: readonly number[]): ModelPoint[] {
  const at = (f: ModelFit | undefined, n: number): number => {
    if (!f) return NaN;
    const amdahl = (f.x1 * n) / (1 + f.serial * (n - 1));
    return f.maxHold > 0 ? Math.min(amdahl, 1 / f.maxHold) : amdahl;
  };
  const g = fits.find((f) => f.design === 'global');
  const n = fits.find((f) => f.design === 'nodes');
  return cpus.map((k) => ({ cpus: k, global: at(g, k), nodes: at(n, k) }));
}

function lockRow(r: ContentionRow, name: string): string {
  const l = r.locks.find((x) => x.name === name);
  if (!l || l.acquisitions === 0) return '-';
  return `${fmt((100 * l.contentions) / l.acquisitions, 1)}%`;
}

/** The throughput table's title and header lines. */
export function formatThroughputHead(mask: number): string {
  return [
    '### Throughput (run_test_mask=' + mask + ', tests per second)',
    '',
    '| workers | global tests/s | global vs 1 worker | nodes tests/s | nodes vs 1 worker | nodes / global |',
    '|---:|---:|---:|---:|---:|---:|',
  ].join('\n');
}

/** The throughput table's line for `w` workers (the first worker count is the baseline). */
export function formatThroughputRow(
  rows: readonly ContentionRow[],
  workers: readonly number[],
  w: number,
): string {
  const find = (d: VmallocDesign, k: number) => rows.find((r) => r.design === d && r.workers === k);
  const g = find('global', w);
  const n = find('nodes', w);
  const g1 = find('global', workers[0]!);
  const n1 = find('nodes', workers[0]!);
  return (
    `| ${w} | ${g ? fmt(g.testsPerSec, 2) : '-'} | ${g && g1 ? fmt(g.testsPerSec / g1.testsPerSec, 2) + 'x' : '-'} | ` +
    `${n ? fmt(n.testsPerSec, 2) : '-'} | ${n && n1 ? fmt(n.testsPerSec / n1.testsPerSec, 2) + 'x' : '-'} | ` +
    `${g && n ? fmt(n.testsPerSec / g.testsPerSec, 2) + 'x' : '-'} |`
  );
}

export function formatContention(res: ContentionResult): string {
  const rows = res.rows;
  return [
    formatThroughputHead(res.options.mask),
    ...res.options.workers.map((w) => formatThroughputRow(rows, res.options.workers, w)),
    formatContentionDetails(res),
  ].join('\n');
}

/** The tables after the throughput one: lock_stat, wait times, the model. */
export function formatContentionDetails(res: ContentionResult): string {
  const { rows } = res;
  const lines: string[] = [];
  const names = [
    'free_vmap_area_lock',
    'vmap_area_lock',
    'purge_vmap_area_lock',
    'vmap_purge_lock',
    '&vn->busy.lock',
    '&vn->lazy.lock',
    '&vn->pool_lock',
  ];
  lines.push('', '### lock_stat: contentions / acquisitions per lock class', '');
  lines.push('| design | workers | ' + names.join(' | ') + ' |');
  lines.push('|---|---:|' + names.map(() => '---:').join('|') + '|');
  for (const r of rows)
    lines.push(`| ${r.design} | ${r.workers} | ${names.map((nm) => lockRow(r, nm)).join(' | ')} |`);
  lines.push('', '### Wait time per lock class (total ms of the lock-statistics pass)', '');
  lines.push('| design | workers | ' + names.join(' | ') + ' |');
  lines.push('|---|---:|' + names.map(() => '---:').join('|') + '|');
  for (const r of rows) {
    lines.push(
      `| ${r.design} | ${r.workers} | ${names
        .map((nm) => {
          const l = r.locks.find((x) => x.name === nm);
          return l && l.acquisitions > 0 ? fmt(l.waitTotal / 1000, 1) : '-';
        })
        .join(' | ')} |`,
    );
  }
  const fits = fitModel(rows);
  const model = modelThroughput(fits, [1, 2, 4, 8, 16, 32, 64]);
  lines.push('', '### Model of an N-CPU machine (calibrated on the 1- and 2-worker runs)', '');
  lines.push(
    '| design | 1 worker tests/s | 1 -> 2 workers | serial fraction | busiest shared lock | its hold per test |',
  );
  lines.push('|---|---:|---:|---:|---|---:|');
  for (const f of fits) {
    lines.push(
      `| ${f.design} | ${fmt(f.x1, 2)} | ${fmt(f.scaling2, 2)}x | ${fmt(f.serial, 3)} | ${f.maxHoldLock} | ${fmt(f.maxHold * 1000, 2)} ms |`,
    );
  }
  lines.push('', '| CPUs | global tests/s | nodes tests/s | nodes / global |');
  lines.push('|---:|---:|---:|---:|');
  for (const m of model)
    lines.push(
      `| ${m.cpus} | ${fmt(m.global, 1)} | ${fmt(m.nodes, 1)} | ${fmt(m.nodes / m.global, 2)}x |`,
    );
  return lines.join('\n');
}
