/**
 * `vmalloc bench vmmapram`: test_vmalloc's vm_map_ram_test with 1 and 2 workers (real
 * threads), the vmap blocks found through one global hash or through per-CPU hashes, in one
 * run: throughput and the lock_stat of the hash lock, beside seed 002's figures.
 *
 * Holds: the run plan (per worker count, per hash mode: a throughput pass with lock
 * statistics off, then a pass with them on), the rows and the report.
 * Callers: src/cli/bench.ts.
 *
 * Seed 002 (mm: vmalloc: Remove a global vmap_blocks xarray, 2023): 64 threads on 64 CPUs
 * mapping and unmapping one page; vmap_blocks.xa_lock had 862,689 con-bounces and 862,698
 * contentions; after, &xa->xa_lock#1 had 10,333 and 10,394.
 */

import { aggregateByClass } from '../shared/lock-stat.js';
import type { LockStat } from '../shared/lock.js';
import type { VmallocDesign } from '../mm/config.js';
import { defaultParams, type TestParams } from '../test-vmalloc/params.js';
import { runTestVmalloc } from '../test-vmalloc/run.js';
import { type RecordPlan, recordingWarmup } from './record-plan.js';
import { fmt } from './stats.js';

export type HashMode = 'global' | 'percpu';

export interface VmMapRamOptions {
  loops: number;
  lockStatLoops: number;
  workers: number[];
  hashes: HashMode[];
  design: VmallocDesign;
  nrCpus: number;
  nrPages: number;
  progress?: (line: string) => void;
  /**
   * --record: each run to a file of its own ("<hash>-x<workers>" and its lock-statistics pass
   * "...-lockstat"), without the warm-up (record-plan.ts).
   */
  record?: RecordPlan;
}

export interface VmMapRamRow {
  hash: HashMode;
  workers: number;
  elapsedMs: number;
  /** vm_map_ram + store + vm_unmap_ram per second, all workers together. */
  mapsPerSec: number;
  /** The hash lock's class in the lock-statistics pass. */
  hashLock: LockStat | null;
  /** Every class of that pass, by contentions. */
  locks: LockStat[];
}

export interface VmMapRamResult {
  options: Omit<VmMapRamOptions, 'progress' | 'record'>;
  rows: VmMapRamRow[];
}

/** The hash lock's lock_stat class name in each mode (the kernel's). */
export const HASH_LOCK: Record<HashMode, string> = {
  global: 'vmap_blocks.xa_lock',
  percpu: '&xa->xa_lock#1',
};

function paramsFor(o: VmMapRamOptions, workers: number, loops: number): TestParams {
  const p = defaultParams(1024, o.nrCpus);
  p.design = o.design;
  p.nr_threads = workers;
  p.nr_cpus = o.nrCpus;
  p.run_test_mask = 1024;
  p.nr_pages = o.nrPages;
  p.test_loop_count = loops;
  p.test_repeat_count = 1;
  p.seed = 20261203;
  return p;
}

const recorded = (o: VmMapRamOptions, p: TestParams, label: string): TestParams =>
  o.record === undefined ? p : o.record.params(p, label);

export async function runVmMapRamBench(o: VmMapRamOptions): Promise<VmMapRamResult> {
  const say = o.progress ?? (() => {});
  const rows: VmMapRamRow[] = [];
  // Modes alternate at each worker count, so a slow phase of the machine hits both.
  for (const workers of o.workers) {
    for (const hash of o.hashes) {
      const label = `${hash}-x${workers}`;
      const p = recorded(o, paramsFor(o, workers, o.loops), label);
      const run = await runTestVmalloc({
        params: p,
        warmup: recordingWarmup(p),
        logger: null,
        vmapBlockHash: hash,
      });
      o.record?.done(p, run.traced);
      const elapsedMs = run.elapsedNs / 1e6;
      run.vm.check();
      const failed = run.workers.some((w) => w.tests.some((t) => t.failed > 0));
      if (failed) throw new Error(`vm_map_ram_test failed (${hash} hash, ${workers} workers)`);
      const lp = recorded(o, paramsFor(o, workers, o.lockStatLoops), `${label}-lockstat`);
      const ls = await runTestVmalloc({
        params: lp,
        warmup: recordingWarmup(lp),
        logger: null,
        lockStatFromStart: true,
        vmapBlockHash: hash,
      });
      o.record?.done(lp, ls.traced);
      ls.vm.check();
      const locks = aggregateByClass(ls.vm.lockStats()).sort(
        (a, b) => b.contentions - a.contentions || b.acquisitions - a.acquisitions,
      );
      const mapsPerSec = (workers * o.loops) / (elapsedMs / 1000);
      rows.push({
        hash,
        workers,
        elapsedMs,
        mapsPerSec,
        hashLock: locks.find((l) => l.name === HASH_LOCK[hash]) ?? null,
        locks,
      });
      say(
        `${hash} hash x${workers}: ${fmt(mapsPerSec / 1000, 1)} k maps/s (${fmt(elapsedMs, 0)} ms)`,
      );
    }
  }
  const options = {
    loops: o.loops,
    lockStatLoops: o.lockStatLoops,
    workers: o.workers,
    hashes: o.hashes,
    design: o.design,
    nrCpus: o.nrCpus,
    nrPages: o.nrPages,
  };
  return { options, rows };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

export function formatVmMapRam(r: VmMapRamResult): string {
  const out: string[] = [];
  out.push(
    '| hash | workers | maps/s (all workers) | hash lock class | con-bounces | contentions | acquisitions | contentions per 1M maps |',
    '|---|---:|---:|---|---:|---:|---:|---:|',
  );
  for (const row of r.rows) {
    const l = row.hashLock;
    const maps = row.workers * r.options.lockStatLoops;
    out.push(
      `| ${row.hash} | ${row.workers} | ${int(row.mapsPerSec)} | ${HASH_LOCK[row.hash]} | ` +
        `${l ? int(l.conBounces) : 0} | ${l ? int(l.contentions) : 0} | ${l ? int(l.acquisitions) : 0} | ` +
        `${l ? fmt((l.contentions / maps) * 1e6, 1) : '0.0'} |`,
    );
  }
  out.push(
    '| seed 002, before (global xarray, 64 CPUs) | 64 | - | vmap_blocks.xa_lock | 862,689 | 862,698 | - | - |',
    '| seed 002, after (per-CPU xarrays, 64 CPUs) | 64 | - | &xa->xa_lock#1 | 10,333 | 10,394 | - | - |',
    '',
    'Most contended lock classes of each lock-statistics pass (contentions / acquisitions):',
    '',
  );
  for (const row of r.rows) {
    const top = row.locks
      .filter((l) => l.acquisitions > 0)
      .slice(0, 4)
      .map((l) => `${l.name} ${int(l.contentions)}/${int(l.acquisitions)}`);
    out.push(`- ${row.hash} x${row.workers}: ${top.join('; ')}`);
  }
  return out.join('\n');
}
