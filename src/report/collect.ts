/**
 * What a report shows, gathered: the test_vmalloc run on each design (per-test times,
 * lock_stat, a snapshot of the space at the end), the simulated scaling curves, the run's
 * parameters.
 *
 * Holds: ReportData (the JSON the page reads; its schema), collectReport().
 * Invariant: everything here is data (numbers and strings); the page only reads it.
 * Callers: src/cli/report.ts; src/report/synthetic.ts builds the same shape.
 *
 * Why the snapshot is taken at the end of each run: test_vmalloc's tests free what they
 * allocate, so the end shows what the design leaves behind (lazily freed areas waiting for a
 * purge, the vmap nodes' pools, vm_map_ram's blocks, the fragmentation of the free space),
 * deterministically for a seed and with every worker stopped. A snapshot at the moment of
 * most live areas would need the workers sampled mid-run, at times that depend on the
 * machine's speed, so two reports of the same run would differ. A layout with many live
 * areas is what `--synthetic-areas N` draws (src/report/synthetic.ts).
 */

import type { VmallocDesign } from '../mm/config.js';
import type { LockStat } from '../shared/lock.js';
import { runScalingBench, type ScalingOptions, type ScalingRow } from '../bench/scaling.js';
import { runTestVmalloc } from '../test-vmalloc/run.js';
import type { TestParams } from '../test-vmalloc/params.js';
import { encodeSnapshot, type MapData } from './encode.js';

export const REPORT_SCHEMA_VERSION = 1;

export interface ReportTestRow {
  design: string;
  /** Wall time of the whole run (ms). */
  elapsedMs: number;
  /** Per test: the average time of one repetition per worker (the kernel's avg usec). */
  tests: { name: string; avgUsec: number[]; passed: number; failed: number; xfailed: number }[];
}

export interface ReportData {
  schemaVersion: typeof REPORT_SCHEMA_VERSION;
  title: string;
  /** ISO date. */
  generated: string;
  command: string;
  machine: string;
  version: string;
  /** The run's parameters, as `name: value` (shown as a table). */
  params: Record<string, string | number | boolean>;
  tests: ReportTestRow[];
  lockStat: { design: string; classes: LockStat[] }[];
  scaling: { cpus: number[]; loops: number; mask: number; rows: ScalingRow[] } | null;
  maps: MapData[];
  /** Notes printed under the title (what was synthetic, what was skipped and why). */
  notes: string[];
}

export interface CollectOptions {
  /** The base parameters of the test run (its design is replaced by each of `designs`). */
  params: TestParams | null;
  designs: VmallocDesign[];
  scaling: ScalingOptions | null;
  command: string;
  machine: string;
  version: string;
  progress?: (line: string) => void;
}

/** Runs the test on each design and the scaling benchmark, and gathers their results. */
export async function collectReport(o: CollectOptions): Promise<ReportData> {
  const tests: ReportTestRow[] = [];
  const lockStat: ReportData['lockStat'] = [];
  const maps: MapData[] = [];
  const params: ReportData['params'] = {};
  if (o.params !== null) {
    for (const [k, v] of Object.entries(o.params)) if (k !== 'design') params[k] = v;
    params['designs'] = o.designs.join(', ');
    for (const design of o.designs) {
      o.progress?.(`test_vmalloc on design ${design}`);
      const p: TestParams = { ...o.params, design, lock_stat: true };
      const t0 = performance.now();
      const run = await runTestVmalloc({ params: p, lockStatFromStart: true, logger: null });
      const elapsedMs = performance.now() - t0;
      const byName = new Map<string, ReportTestRow['tests'][number]>();
      for (const w of run.workers) {
        for (const t of w.tests) {
          let row = byName.get(t.name);
          if (row === undefined) {
            row = { name: t.name, avgUsec: [], passed: 0, failed: 0, xfailed: 0 };
            byName.set(t.name, row);
          }
          row.avgUsec.push(t.avgUsec);
          row.passed += t.passed;
          row.failed += t.failed;
          row.xfailed += t.xfailed;
        }
      }
      tests.push({ design, elapsedMs, tests: [...byName.values()] });
      lockStat.push({ design, classes: run.vm.lockStats() });
      maps.push(encodeSnapshot(run.vm.snapshot()));
    }
  }
  let scaling: ReportData['scaling'] = null;
  if (o.scaling !== null) {
    const rows: ScalingRow[] = runScalingBench({ ...o.scaling, progress: o.progress });
    scaling = { cpus: o.scaling.cpus, loops: o.scaling.loops, mask: o.scaling.mask, rows };
    params['scaling cpus'] = o.scaling.cpus.join(', ');
    params['scaling designs'] = o.scaling.designs.join(', ');
    params['scaling test_loop_count'] = o.scaling.loops;
    params['scaling run_test_mask'] = o.scaling.mask;
    params['scaling seed'] = o.scaling.seed;
    params['scaling calibration'] = o.scaling.calibration.source;
  }
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    title: 'vmalloc report',
    generated: new Date().toISOString(),
    command: o.command,
    machine: o.machine,
    version: o.version,
    params,
    tests,
    lockStat,
    scaling,
    maps,
    notes:
      o.params === null
        ? []
        : [
            'Each map is the space at the end of the run on that design: what the tests leave behind (lazily freed areas, pools, vm_map_ram blocks) after freeing their own areas.',
          ],
  };
}
