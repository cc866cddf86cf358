/**
 * `vmalloc bench scaling`: test_vmalloc on simulated machines of 1, 2, 4, ... 256 CPUs for the
 * 'global' and 'nodes' designs: virtual time, loops per second, the nodes / global ratio and
 * the share of CPU time spent spinning, beside the seed's figures (the vmap nodes series:
 * run_test_mask=7 nr_threads=64, 10m51s -> 51s, spinlock slowpath 93.07% -> 16.51% of cycles).
 *
 * Holds: the run plan (every design at every size, nr_threads = nr_cpus = N, one seed), the
 * rows, the Markdown report.
 * Callers: src/cli/bench.ts.
 *
 * Virtual times are deterministic for a seed and calibration (src/sim); the wall time each
 * simulation took is reported apart, with the simulator's cost per operation.
 */

import type { VmallocDesign } from '../mm/config.js';
import type { Calibration } from '../sim/cost.js';
import { simulateTestVmalloc } from '../sim/machine.js';
import { defaultParams } from '../test-vmalloc/params.js';
import { IMPLEMENTED_MASK, TEST_CASES } from '../test-vmalloc/tests.js';

export interface ScalingOptions {
  cpus: number[];
  designs: VmallocDesign[];
  loops: number;
  mask: number;
  seed: number;
  calibration: Calibration;
  progress?: (line: string) => void;
}

export interface ScalingRow {
  design: VmallocDesign;
  cpus: number;
  virtualMs: number;
  loopsPerSec: number;
  spinShare: number;
  /** The lock class CPUs spin on most, and its share. */
  topSpin: string;
  failedTests: number;
  /** Simulator cost: wall ms and operations simulated. */
  wallMs: number;
  ops: number;
}

/** The seed's figures (001_1a946457b5ae6496.txt), run_test_mask=7 nr_threads=64, 32-core Threadripper. */
export const SEED = {
  cpus: 64,
  global: { seconds: 651.271, spin: 0.9307 },
  nodes: { seconds: 51.301, spin: 0.1651 },
};

export function runScalingBench(o: ScalingOptions): ScalingRow[] {
  const rows: ScalingRow[] = [];
  let tests = 0;
  for (const t of TEST_CASES) if ((o.mask & t.bit) !== 0 && t.run !== null) tests++;
  for (const cpus of o.cpus) {
    for (const design of o.designs) {
      o.progress?.(`simulating ${design} at ${cpus} CPUs`);
      const p = defaultParams(IMPLEMENTED_MASK, cpus);
      Object.assign(p, {
        design,
        nr_threads: cpus,
        nr_cpus: cpus,
        test_loop_count: o.loops,
        run_test_mask: o.mask,
        seed: o.seed,
      });
      const t0 = performance.now();
      const r = simulateTestVmalloc({ params: p, calibration: o.calibration });
      const wallMs = performance.now() - t0;
      const top = r.spin[0];
      rows.push({
        design,
        cpus,
        virtualMs: r.elapsedNs / 1e6,
        loopsPerSec: (tests * o.loops * cpus) / (r.elapsedNs / 1e9),
        spinShare: r.spinShare,
        topSpin: top ? `${top.name} ${(top.spinShare * 100).toFixed(1)}%` : '-',
        failedTests: r.workers.reduce(
          (a, w) =>
            a +
            w.tests.reduce((b, t) => b + (t.name === 'align_shift_alloc_test' ? 0 : t.failed), 0),
          0,
        ),
        wallMs,
        ops: r.ops,
      });
    }
  }
  return rows;
}

export function formatScaling(rows: readonly ScalingRow[], o: ScalingOptions): string {
  const get = (d: string, n: number): ScalingRow | undefined =>
    rows.find((r) => r.design === d && r.cpus === n);
  const lines = [
    '| CPUs | design | virtual ms | loops/s | spinning | top spinner | global / nodes time | failed tests | sim wall ms | sim us/op |',
    '|---:|---|---:|---:|---:|---|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const g = get('global', r.cpus);
    const n = get('nodes', r.cpus);
    const ratio =
      r.design === 'nodes' && g && n ? `${(g.virtualMs / n.virtualMs).toFixed(2)}x` : '';
    lines.push(
      `| ${r.cpus} | ${r.design} | ${r.virtualMs.toFixed(2)} | ${r.loopsPerSec.toFixed(0)} | ${(r.spinShare * 100).toFixed(1)}% | ${r.topSpin} | ${ratio} | ${r.failedTests} | ${r.wallMs.toFixed(0)} | ${((r.wallMs * 1000) / Math.max(1, r.ops)).toFixed(2)} |`,
    );
  }
  const g = get('global', SEED.cpus);
  const n = get('nodes', SEED.cpus);
  lines.push(
    '',
    `Beside the seed (run_test_mask=7 nr_threads=${SEED.cpus}, kernel 6.7-rc8 on a 32-core Threadripper; ours: run_test_mask=${o.mask}, test_loop_count=${o.loops}, ${SEED.cpus} simulated CPUs):`,
    '',
    '| | global | nodes | global / nodes | spinning global | spinning nodes |',
    '|---|---:|---:|---:|---:|---:|',
    `| seed | ${SEED.global.seconds} s | ${SEED.nodes.seconds} s | ${(SEED.global.seconds / SEED.nodes.seconds).toFixed(1)}x | ${(SEED.global.spin * 100).toFixed(1)}% | ${(SEED.nodes.spin * 100).toFixed(1)}% |`,
  );
  if (g && n)
    lines.push(
      `| simulated | ${g.virtualMs.toFixed(2)} ms | ${n.virtualMs.toFixed(2)} ms | ${(g.virtualMs / n.virtualMs).toFixed(1)}x | ${(g.spinShare * 100).toFixed(1)}% | ${(n.spinShare * 100).toFixed(1)}% |`,
    );
  else lines.push(`| simulated | (no ${SEED.cpus}-CPU run in --cpus) | | | | |`);
  return lines.join('\n') + '\n';
}
