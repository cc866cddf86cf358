/**
 * `vmalloc bench scaling`: test_vmalloc on simulated machines of 1, 2, 4, ... 256 CPUs for
 * the designs asked for (all five by default): virtual time, loops per second, each design's
 * time against 'global' at the same size, the share of CPU time spent spinning, beside the
 * seed's figures (the vmap nodes series: run_test_mask=7 nr_threads=64, 10m51s -> 51s,
 * spinlock slowpath 93.07% -> 16.51% of cycles); each run under one or more policies (the
 * kernel's tunables: nr_vmap_nodes=, lazy_max_pages=, ...), side by side in one table; and
 * vm_map_ram_test at 64 CPUs with the global and the per-CPU block hash, beside seed 002.
 *
 * Holds: the run plan (every size x design x policy, nr_threads = nr_cpus = N, one seed), the
 * rows, the vm_map_ram rows, the Markdown report.
 * Callers: src/cli/bench.ts.
 *
 * Virtual times are deterministic for a seed and calibration (src/sim), recorded or not (a
 * recording view adds wall time, no virtual work); the wall time each simulation took is
 * reported apart, with the simulator's cost per operation.
 */

import type { VmallocDesign } from '../mm/config.js';
import { aggregateByClass } from '../shared/lock-stat.js';
import type { Calibration } from '../sim/cost.js';
import { simulateTestVmalloc } from '../sim/machine.js';
import { simMaskFor } from '../sim/workload.js';
import { applyParams, defaultParams, policyLine, type TestParams } from '../test-vmalloc/params.js';
import { IMPLEMENTED_MASK, TEST_CASES } from '../test-vmalloc/tests.js';
import { type RecordPlan, simulateRecorded } from './record-plan.js';
import { HASH_LOCK, type HashMode } from './vmmapram.js';

/** A policy: test_vmalloc's policy words (nr_vmap_nodes=1 ...), '' for the kernel's defaults. */
export interface Policy {
  name: string;
  words: string[];
}

export const DEFAULT_POLICY: Policy = { name: 'default', words: [] };

/** The policy parameters a --policy entry may set (test_vmalloc's names). */
export const POLICY_KEYS = [
  'nr_vmap_nodes',
  'vmap_zone_size',
  'vmap_pool_limit',
  'vmap_pool_decay',
  'lazy_max_pages',
  'vmap_block_hash',
] as const;

/**
 * One --policy entry: `default`, or policy words joined by '+' (nr_vmap_nodes=1+lazy_max_pages=4096).
 * Throws (the message names the word and the rule) on anything else.
 */
export function parsePolicy(text: string): Policy {
  if (text === 'default') return DEFAULT_POLICY;
  const words = text.split('+');
  for (const w of words) {
    const key = w.slice(0, Math.max(0, w.indexOf('=')));
    if (!(POLICY_KEYS as readonly string[]).includes(key))
      throw new Error(
        `"${w}" is not a policy word: key=value with key one of ${POLICY_KEYS.join(', ')}, or default`,
      );
  }
  applyParams(defaultParams(1, 1), words); // the values' rules (ParamError)
  return { name: text, words };
}

export interface ScalingOptions {
  cpus: number[];
  designs: VmallocDesign[];
  loops: number;
  mask: number;
  seed: number;
  calibration: Calibration;
  /** Policies to run each design under (default: the kernel's). */
  policies?: Policy[];
  /** vm_map_ram_test loops per CPU for the 64-CPU block hash table; 0: no table. */
  vmMapRamLoops?: number;
  progress?: (line: string) => void;
  /**
   * --record: each simulated run to a file of its own ("<design>-cpus<N>", with the policy
   * when it is not the default), its order the order the machine ran the calls in.
   */
  record?: RecordPlan;
}

export interface ScalingRow {
  design: VmallocDesign;
  cpus: number;
  /** The run_test_mask run (the asked one, narrowed to what the machine holds), and why. */
  mask: number;
  dropped: string | null;
  /** The policy's name ('default' or its words), and its resolved knobs. */
  policy: string;
  knobs: string;
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

/** Seed 002's lock_stat of the block hash lock, 64 threads on 64 CPUs mapping one page. */
export const SEED_2023 = {
  cpus: 64,
  global: { conBounces: 862689, contentions: 862698 },
  percpu: { conBounces: 10333, contentions: 10394 },
};

function paramsFor(
  design: VmallocDesign,
  cpus: number,
  loops: number,
  mask: number,
  seed: number,
  policy: Policy,
): TestParams {
  const p = defaultParams(IMPLEMENTED_MASK, cpus);
  Object.assign(p, {
    design,
    nr_threads: cpus,
    nr_cpus: cpus,
    test_loop_count: loops,
    run_test_mask: mask,
    seed,
  });
  applyParams(p, policy.words);
  return p;
}

const recorded = (plan: RecordPlan | undefined, p: TestParams, label: string): TestParams =>
  plan === undefined ? p : plan.params(p, label);

export function runScalingBench(o: ScalingOptions): ScalingRow[] {
  const rows: ScalingRow[] = [];
  const policies = o.policies ?? [DEFAULT_POLICY];
  for (const cpus of o.cpus) {
    for (const policy of policies) {
      for (const design of o.designs) {
        o.progress?.(
          `simulating ${design} at ${cpus} CPUs${policy === DEFAULT_POLICY ? '' : ` (${policy.name})`}`,
        );
        const { mask, dropped } = simMaskFor(o.mask, cpus);
        const label = `${design}-cpus${cpus}${policy === DEFAULT_POLICY ? '' : `-${policy.name}`}`;
        const p = recorded(o.record, paramsFor(design, cpus, o.loops, mask, o.seed, policy), label);
        const t0 = performance.now();
        const { result: r, traced } = simulateRecorded(p, (views) =>
          simulateTestVmalloc({ params: p, calibration: o.calibration, ...views }),
        );
        const wallMs = performance.now() - t0;
        o.record?.done(p, traced);
        const top = r.spin[0];
        let tests = 0;
        for (const t of TEST_CASES) if ((mask & t.bit) !== 0) tests++;
        rows.push({
          design,
          cpus,
          mask,
          dropped,
          policy: policy.name,
          knobs: policyLine(r.vm.config),
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
  }
  return rows;
}

export interface VmMapRamSimRow {
  hash: HashMode;
  cpus: number;
  virtualMs: number;
  /** vm_map_ram + store + vm_unmap_ram per virtual second, all CPUs. */
  mapsPerSec: number;
  spinShare: number;
  /** The block hash lock's class: acquisitions, contentions, con-bounces. */
  hashClass: string;
  acquisitions: number;
  contentions: number;
  conBounces: number;
  /** Every busy class: name, contentions / acquisitions. */
  top: string[];
  wallMs: number;
}

/**
 * vm_map_ram_test (one page, `loops` per CPU) on a simulated machine of `cpus` CPUs, design
 * 'global' (the seed's 6.3 kernel), with each block hash.
 */
export function runVmMapRamScaling(o: {
  cpus: number;
  loops: number;
  seed: number;
  calibration: Calibration;
  progress?: (line: string) => void;
  /** --record: each run to a file of its own ("vmmapram-<hash>-cpus<N>"). */
  record?: RecordPlan;
}): VmMapRamSimRow[] {
  const rows: VmMapRamSimRow[] = [];
  for (const hash of ['global', 'percpu'] as const) {
    o.progress?.(`simulating vm_map_ram_test at ${o.cpus} CPUs, ${hash} block hash`);
    const p = recorded(
      o.record,
      paramsFor('global', o.cpus, o.loops, 1024, o.seed, {
        name: hash,
        words: [`vmap_block_hash=${hash}`],
      }),
      `vmmapram-${hash}-cpus${o.cpus}`,
    );
    const t0 = performance.now();
    const { result: r, traced } = simulateRecorded(p, (views) =>
      simulateTestVmalloc({ params: p, calibration: o.calibration, ...views }),
    );
    const wallMs = performance.now() - t0;
    o.record?.done(p, traced);
    if (r.workers.some((w) => w.tests.some((t) => t.failed > 0)))
      throw new Error(`simulated vm_map_ram_test failed (${hash} block hash)`);
    const classes = aggregateByClass(r.lockStats.map((l) => ({ ...l })))
      .filter((l) => l.acquisitions > 0)
      .sort((a, b) => b.contentions - a.contentions || b.acquisitions - a.acquisitions);
    const h = classes.find((l) => l.name === HASH_LOCK[hash]);
    rows.push({
      hash,
      cpus: o.cpus,
      virtualMs: r.elapsedNs / 1e6,
      mapsPerSec: (o.cpus * o.loops) / (r.elapsedNs / 1e9),
      spinShare: r.spinShare,
      hashClass: HASH_LOCK[hash],
      acquisitions: h?.acquisitions ?? 0,
      contentions: h?.contentions ?? 0,
      conBounces: h?.conBounces ?? 0,
      top: classes.slice(0, 4).map((l) => `${l.name} ${int(l.contentions)}/${int(l.acquisitions)}`),
      wallMs,
    });
  }
  return rows;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

export function formatVmMapRamScaling(rows: readonly VmMapRamSimRow[], loops: number): string {
  const lines = [
    `vm_map_ram_test (1 page, test_loop_count ${loops} per CPU, design global) at ${rows[0]?.cpus ?? '-'} simulated CPUs, global vs per-CPU block hash:`,
    '',
    '| hash | virtual ms | maps/s | spinning | hash lock class | con-bounces | contentions | acquisitions | contentions per 1M maps | most contended (contentions/acquisitions) |',
    '|---|---:|---:|---:|---|---:|---:|---:|---:|---|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.hash} | ${r.virtualMs.toFixed(2)} | ${int(r.mapsPerSec)} | ${(r.spinShare * 100).toFixed(1)}% | ${r.hashClass} | ${int(r.conBounces)} | ${int(r.contentions)} | ${int(r.acquisitions)} | ${((r.contentions / (r.cpus * loops)) * 1e6).toFixed(1)} | ${r.top.join('; ')} |`,
    );
  const s = SEED_2023;
  lines.push(
    `| seed 002, before | - | - | - | vmap_blocks.xa_lock | ${int(s.global.conBounces)} | ${int(s.global.contentions)} | - | - | |`,
    `| seed 002, after | - | - | - | &xa->xa_lock#1 | ${int(s.percpu.conBounces)} | ${int(s.percpu.contentions)} | - | - | |`,
  );
  const g = rows.find((r) => r.hash === 'global');
  const p = rows.find((r) => r.hash === 'percpu');
  if (g && p)
    lines.push(
      '',
      `Contentions global / per-CPU: ours ${p.contentions > 0 ? (g.contentions / p.contentions).toFixed(1) + 'x' : `${int(g.contentions)} vs 0`}, the seed's ${(s.global.contentions / s.percpu.contentions).toFixed(1)}x (its loop count is not given: compare ratios, not counts).`,
    );
  return lines.join('\n') + '\n';
}

export function formatScaling(rows: readonly ScalingRow[], o: ScalingOptions): string {
  const get = (d: string, n: number, policy: string): ScalingRow | undefined =>
    rows.find((r) => r.design === d && r.cpus === n && r.policy === policy);
  const manyPolicies = new Set(rows.map((r) => r.policy)).size > 1;
  const lines = [
    `| CPUs | design |${manyPolicies ? ' policy |' : ''} virtual ms | loops/s | spinning | top spinner | global / this time | failed tests | sim wall ms | sim us/op |`,
    `|---:|---|${manyPolicies ? '---|' : ''}---:|---:|---:|---|---:|---:|---:|---:|`,
  ];
  for (const r of rows) {
    const g = get('global', r.cpus, r.policy);
    const ratio = g && r.design !== 'global' ? `${(g.virtualMs / r.virtualMs).toFixed(2)}x` : '';
    lines.push(
      `| ${r.cpus} | ${r.design} |${manyPolicies ? ` ${r.policy} |` : ''} ${r.virtualMs.toFixed(2)} | ${r.loopsPerSec.toFixed(0)} | ${(r.spinShare * 100).toFixed(1)}% | ${r.topSpin} | ${ratio} | ${r.failedTests} | ${r.wallMs.toFixed(0)} | ${((r.wallMs * 1000) / Math.max(1, r.ops)).toFixed(2)} |`,
    );
  }
  const dropped = new Set(rows.map((r) => r.dropped).filter((d) => d !== null));
  if (dropped.size > 0) lines.push('', ...[...dropped].map((d) => `- ${d}`));
  if (manyPolicies) {
    lines.push('', 'Policies (resolved at the largest size):', '');
    for (const name of new Set(rows.map((r) => r.policy))) {
      const last = rows.filter((r) => r.policy === name).at(-1)!;
      lines.push(`- ${name}: ${last.knobs} (${last.design}, ${last.cpus} CPUs)`);
    }
  }
  const g = get('global', SEED.cpus, rows[0]?.policy ?? 'default');
  const n = get('nodes', SEED.cpus, rows[0]?.policy ?? 'default');
  lines.push(
    '',
    `Beside the seed (run_test_mask=7 nr_threads=${SEED.cpus}, kernel 6.7-rc8 on a 32-core Threadripper; ours: run_test_mask=${g?.mask ?? o.mask}, test_loop_count=${o.loops}, ${SEED.cpus} simulated CPUs):`,
    '',
    '| | global | nodes | global / nodes | spinning global | spinning nodes |',
    '|---|---:|---:|---:|---:|---:|',
    `| seed | ${SEED.global.seconds} s | ${SEED.nodes.seconds} s | ${(SEED.global.seconds / SEED.nodes.seconds).toFixed(1)}x | ${(SEED.global.spin * 100).toFixed(1)}% | ${(SEED.nodes.spin * 100).toFixed(1)}% |`,
  );
  if (g && n)
    lines.push(
      `| simulated | ${g.virtualMs.toFixed(2)} ms | ${n.virtualMs.toFixed(2)} ms | ${(g.virtualMs / n.virtualMs).toFixed(1)}x | ${(g.spinShare * 100).toFixed(1)}% | ${(n.spinShare * 100).toFixed(1)}% |`,
    );
  else lines.push(`| simulated | (no ${SEED.cpus}-CPU run of both designs) | | | | |`);
  return lines.join('\n') + '\n';
}
