/**
 * `vmalloc bench seeds`: the 2024 vmap nodes claim on real workers.
 *
 * Holds: run_test_mask=7 at 1 and 2 workers, global vs nodes with offload2023 beside: the run
 * time (interleaved rounds, lock statistics off) and a lock-statistics pass whose contentions
 * on the locks every CPU shares make the 2-worker lock row.
 * Invariant: as in seeds-real.ts, designs alternate round by round on the same seed.
 * Callers: src/cli/bench-seeds.ts.
 */

import type { LockStat } from '../shared/lock-table.js';
import type { VmallocDesign } from '../mm/config.js';
import { seedParams, timedRun, type SeedsOptions } from './seeds-real.js';
import { decide, type SeedRow } from './seeds-rows.js';
import { median } from './stats.js';

const S2024 = '001_1a946457b5ae6496.txt';

/** The busiest lock class of a run (most contentions) and its count. */
function busiest(locks: readonly LockStat[]): { name: string; contentions: number; rate: number } {
  let best = { name: '-', contentions: 0, rate: 0 };
  for (const l of locks)
    if (l.contentions > best.contentions)
      best = {
        name: l.name,
        contentions: l.contentions,
        rate: l.contentions / Math.max(1, l.acquisitions),
      };
  return best;
}

/** Contentions of the lock classes every CPU shares (not the per-node &vn->... classes). */
function sharedContentions(locks: readonly LockStat[]): number {
  let sum = 0;
  for (const l of locks) if (!l.name.startsWith('&vn->')) sum += l.contentions;
  return sum;
}

function topClasses(locks: readonly LockStat[], k: number): string {
  return (
    [...locks]
      .filter((l) => l.contentions > 0)
      .sort((a, b) => b.contentions - a.contentions)
      .slice(0, k)
      .map((l) => `${l.name} ${l.contentions}/${l.acquisitions}`)
      .join(', ') || 'none contended'
  );
}

export async function rows2024(o: SeedsOptions): Promise<SeedRow[]> {
  const rows: SeedRow[] = [];
  const designs: VmallocDesign[] = ['global', 'nodes', 'offload2023'];
  const seed = {
    file: S2024,
    machine: 'Threadripper 3970X, nr_threads=64',
    old: 651.271,
    new: 51.301,
    unit: 'S' as const,
  };
  const loops = o.quick ? 3_000 : 30_000;
  const lsLoops = o.quick ? 3_000 : 10_000;
  const pairs = o.quick ? 1 : 3;
  for (const threads of [1, 2]) {
    const ms: Record<string, number[]> = { global: [], nodes: [], offload2023: [] };
    // Time (lock statistics off: they cost about a third), skipped by --quick at 2 workers:
    // there it depends on whether the shared machine gives the two workers two cores.
    const timeRuns = !(o.quick && threads === 2);
    if (timeRuns) {
      for (let r = 0; r < pairs; r++)
        for (let k = 0; k < designs.length; k++) {
          const d = designs[(r + k) % designs.length]!;
          const p = seedParams({
            design: d,
            threads,
            mask: 7,
            loops,
            repeat: 1,
            sequential: false,
            seed: 2024 + r,
            nrCpus: 2,
          });
          ms[d]!.push((await timedRun(p, false, o.record, `2024-${d}-x${threads}-r${r + 1}`)).ms);
          o.say(`2024 mask=7 x${threads}: ${d} round ${r + 1}/${pairs}`);
        }
    }
    const locks: Record<string, LockStat[]> = {};
    for (const d of designs) {
      const p = seedParams({
        design: d,
        threads,
        mask: 7,
        loops: lsLoops,
        repeat: 1,
        sequential: false,
        seed: 2024,
        nrCpus: 2,
      });
      locks[d] = (await timedRun(p, true, o.record, `2024-${d}-x${threads}-lockstat`)).locks;
      o.say(`2024 mask=7 x${threads}: ${d} lock_stat`);
    }
    const lockNote = `2024 x${threads} lock_stat (test_loop_count ${lsLoops}), contentions/acquisitions of the busiest classes: ${designs.map((d) => `${d}: ${topClasses(locks[d]!, 3)}`).join('; ')}`;
    const timeRow: SeedRow = {
      id: `2024-mask7-${threads}`,
      year: 2024,
      workload: `run_test_mask=7 nr_threads=${threads}, time`,
      oldDesign: 'global',
      newDesign: 'nodes',
      seed,
      measuredOn: `real workers (${threads})`,
      ours: timeRuns
        ? {
            old: median(ms['global']!) / 1000,
            new: median(ms['nodes']!) / 1000,
            unit: 'S',
            pairs,
            ratios: ms['global']!.map((x, i) => x / ms['nodes']![i]!),
          }
        : null,
      beside: timeRuns ? [{ design: 'offload2023', value: median(ms['offload2023']!) / 1000 }] : [],
      sizeFactor: 2,
      sizeCaveat:
        'a 2-core machine cannot show a 64-CPU lock effect: with 2 workers the most a design can gain from removing lock waits is 2x',
      verdict: 'not run (--quick)',
      reason:
        'throughput at 2 workers depends on whether the shared machine gives the two workers two cores; the lock_stat row checks this claim in --quick',
      notes: timeRuns
        ? [
            `2024-mask7-${threads}: test_loop_count ${loops}, nr_cpus 2, median of ${pairs} interleaved rounds; wall time of the run`,
          ]
        : [],
    };
    if (threads === 1) {
      // One worker: the seed's effect is lock waiting, and one CPU waits for nobody. The row
      // shows what each design costs on one CPU; its verdict checks that no lock was contended.
      const none = designs.every((d) => busiest(locks[d]!).contentions === 0);
      const g = median(ms['global']!);
      const n = median(ms['nodes']!);
      rows.push({
        ...timeRow,
        verdict: none ? 'baseline' : 'not reproduced',
        reason: none
          ? `one worker: no lock contended in any design (the seed's effect needs several CPUs); nodes costs ${(n / g).toFixed(2)}x global's time on one CPU`
          : `one worker, yet contended locks: ${lockNote}`,
        notes: [...timeRow.notes, lockNote],
      });
      continue;
    }
    if (timeRuns) rows.push(decide(timeRow));
    else rows.push(timeRow);
    const shared = (d: VmallocDesign): number => sharedContentions(locks[d]!);
    const n = busiest(locks['nodes']!);
    rows.push(
      decide({
        id: `2024-locks-${threads}`,
        year: 2024,
        workload: `run_test_mask=7 nr_threads=${threads}, contentions of the locks every CPU shares`,
        oldDesign: 'global',
        newDesign: 'nodes',
        seed: {
          file: S2024,
          machine: 'Threadripper 3970X, nr_threads=64',
          old: 93.07,
          new: 16.51,
          unit: 'Percent',
        },
        measuredOn: `real workers (${threads})`,
        ours: {
          old: shared('global'),
          new: shared('nodes'),
          unit: 'Contentions',
          pairs: 1,
          ratios: [],
        },
        beside: [{ design: 'offload2023', value: shared('offload2023') }],
        sizeFactor: 0,
        sizeCaveat:
          "the seed gives native_queued_spin_lock_slowpath's share of cycles (93.07% -> 16.51%), we count contentions: sizes are not comparable",
        verdict: 'not reproduced',
        reason: '',
        notes: [
          `2024-locks-${threads}: the locks every CPU shares are the classes not per node (global: free_vmap_area_lock, vmap_area_lock, purge_vmap_area_lock, vmap_purge_lock; nodes and offload2023: free_vmap_area_lock, vmap_purge_lock); the per-node classes (&vn->...) are spread over the nodes, one per CPU (2 here, 64 on the seed's machine); nodes' busiest class: ${n.name} ${n.contentions}`,
          lockNote,
        ],
      }),
    );
  }
  return rows;
}
