/**
 * `bench space`: one VmapSpace shared by 1 and 2 workers (this machine's cores), each doing
 * random-size alloc/free pairs with some long-lived ranges (space-worker.ts), for the
 * single-lock space (`concurrent: true`) and the pooled one (`pools: true`), in one run; and,
 * at 2 workers, the same workload on a pooled space per worker ('separate'): what the machine
 * gives two workers that share nothing at that moment, printed beside the shared space's ratio.
 *
 * Holds: the runs (modes alternate within each repetition, so a slow phase of a shared
 * machine hits both), their medians and the ratios the issue asks for: pooled at 2 workers
 * over pooled at 1, pooled over single-lock at 2, and ns per alloc+free pair on one worker.
 * Invariant: each run starts from a new, empty space and ends with check() passing on it.
 * Callers: src/cli/bench-space.ts; space-record.ts (runSpaceRun(), recorded runs).
 */

import { loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { VmapSpace } from '../kva/vmap-space.js';
import { DEFAULT_REFILL } from '../kva/vmap-space-options.js';
import { measureSpaceBounces, type SpaceBounces } from './space-bounces.js';
import { fmt, median, pairedRatio } from './stats.js';
import type { SpaceWorkerData, SpaceWorkerMessage, SpaceWorkerReport } from './space-worker.js';
import type { TraceSession } from '../test-vmalloc/trace-session.js';

/**
 * 'separate': the machine's ceiling, not a space mode: each worker on a pooled space of its
 * own (nothing shared but the machine), run at 2 workers only; at 1 worker it is 'pooled'.
 */
export type SpaceMode = 'single-lock' | 'pooled' | 'separate';
export const SPACE_MODES: SpaceMode[] = ['single-lock', 'pooled', 'separate'];
/** The modes measured at `workers` workers. */
export function modesAt(workers: number): SpaceMode[] {
  return workers === 1 ? ['single-lock', 'pooled'] : SPACE_MODES;
}

export interface SpaceBenchOptions {
  /** Timed alloc+free pairs per worker. */
  pairs: number;
  reps: number;
  workers: number[];
  live: number;
  maxPages: number;
  progress?: (line: string) => void;
}

export interface SpaceRun {
  mode: SpaceMode;
  workers: number;
  /** alloc+free pairs per second, all workers together. */
  pairsPerSec: number;
  /** wall time of the timed part / pairs per worker, in ns. */
  nsPerPair: number;
  nulls: number;
  /**
   * CPU time of the whole process during the timed part / all pairs, in ns: unlike wall time
   * it barely moves with the load of a shared machine; what two workers sharing a space pay
   * for cache lines moving between cores shows as the 2-worker figure above the 1-worker one.
   */
  cpuNsPerPair: number;
  /** 1-minute load average when the run ended (the machine is shared). */
  load: number;
}

export interface SpaceBenchResult {
  runs: SpaceRun[];
  /** Medians by mode and worker count. */
  median: Record<
    SpaceMode,
    Record<number, { pairsPerSec: number; nsPerPair: number; cpuNsPerPair: number }>
  >;
  /** pooled(2) / pooled(1), pooled(2) / single-lock(2), paired by repetition. */
  pooledScaling: number;
  pooledOverSingleAt2: number;
  singleScaling: number;
  /** separate(2) / pooled(1): what two workers gain when they share nothing (the ceiling). */
  separateScaling: number;
  /** Lock bounces per pair, two workers interleaved in one thread (space-bounces.ts). */
  bounces: SpaceBounces[];
  /** The pooled space's `refill` (ranges cut at a pool miss): its default. */
  refill: number;
}

const PAGE = 4096;
/** The first repetition's seed (repetition r: SPACE_SEED + r; worker w adds w * 0x9e3779b1). */
export const SPACE_SEED = 0x5eed;

/**
 * Recording a run (space-record.ts): given the run's spaces (one, or a worker's each for
 * 'separate'), a trace session for each, in the same order.
 */
export type OpenSpaceTraces = (spaces: VmapSpace[]) => TraceSession[];

/**
 * One run of `mode` at `workers` workers. With `openTraces` it is a recorded run: no warm-up,
 * each worker's calls into the session of its space, whose chunks arrive before its report.
 */
export async function runSpaceRun(
  o: SpaceBenchOptions,
  mode: SpaceMode,
  workers: number,
  seed: number,
  openTraces?: OpenSpaceTraces,
): Promise<SpaceRun> {
  const make = () =>
    new VmapSpace({
      start: 0,
      end: 2 ** 36,
      pageSize: PAGE,
      concurrent: true,
      ...(mode === 'single-lock' ? {} : { pools: true }),
    });
  const spaces = mode === 'separate' ? Array.from({ length: workers }, make) : [make()];
  const sessions = openTraces?.(spaces) ?? null;
  const syncBuf = new SharedArrayBuffer(16);
  const sync = new Int32Array(syncBuf);
  const ws: Worker[] = [];
  const reports: Promise<SpaceWorkerReport>[] = [];
  for (let w = 0; w < workers; w++) {
    const session = sessions === null ? null : sessions[w % sessions.length]!;
    const data: SpaceWorkerData = {
      handle: spaces[w % spaces.length]!.handle,
      cpu: w + 1,
      seed: (seed + w * 0x9e3779b1) >>> 0,
      pairs: o.pairs,
      warmup: sessions === null ? Math.min(o.pairs, 200_000) : 0,
      live: o.live,
      maxPages: o.maxPages,
      longEvery: 64,
      longMax: 512,
      sync: syncBuf,
      trace: session === null ? null : session.shared,
    };
    const worker = new Worker(new URL('./space-worker.js', import.meta.url), { workerData: data });
    ws.push(worker);
    reports.push(
      new Promise((resolve, reject) => {
        worker.on('message', (m: SpaceWorkerMessage) => {
          if (m.type === 'trace') session?.add(m.chunk);
          else resolve(m);
        });
        worker.once('error', reject);
        worker.once('exit', (c) => reject(new Error(`a bench worker exited (code ${c})`)));
      }),
    );
  }
  // Rejects as soon as a worker fails (the waits below must not outlive it).
  const all = Promise.all(reports);
  const until = async (word: number): Promise<void> => {
    for (let r; (r = Atomics.load(sync, word)) < workers;) {
      const w = Atomics.waitAsync(sync, word, r, 1000);
      if (w.async) await Promise.race([w.value, all]);
    }
  };
  try {
    await until(0);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    Atomics.store(sync, 1, 1);
    Atomics.notify(sync, 1);
    await until(2);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    const got = await all;
    for (const space of spaces) space.check();
    return {
      mode,
      workers,
      pairsPerSec: (workers * o.pairs) / (ms / 1000),
      nsPerPair: (ms * 1e6) / o.pairs,
      cpuNsPerPair: ((cpu.user + cpu.system) * 1000) / (workers * o.pairs),
      nulls: got.reduce((n, r) => n + r.nulls, 0),
      load: loadavg()[0]!,
    };
  } finally {
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

export async function runSpaceBench(o: SpaceBenchOptions): Promise<SpaceBenchResult> {
  const runs: SpaceRun[] = [];
  for (let rep = 0; rep < o.reps; rep++) {
    for (const workers of o.workers) {
      const modes = modesAt(workers);
      for (const mode of rep % 2 === 0 ? modes : [...modes].reverse()) {
        const r = await runSpaceRun(o, mode, workers, SPACE_SEED + rep);
        runs.push(r);
        o.progress?.(
          `rep ${rep + 1}/${o.reps} ${mode} x${workers}: ${fmt(r.pairsPerSec / 1e6, 3)} M pairs/s, ${fmt(r.nsPerPair, 0)} ns/pair, ${fmt(r.cpuNsPerPair, 0)} CPU ns/pair, load ${fmt(r.load, 2)}`,
        );
      }
    }
  }
  const of = (mode: SpaceMode, workers: number) =>
    runs.filter((r) => r.mode === mode && r.workers === workers);
  const med = {} as SpaceBenchResult['median'];
  for (const mode of SPACE_MODES) {
    med[mode] = {};
    for (const w of o.workers) {
      const rs = of(mode === 'separate' && w === 1 ? 'pooled' : mode, w);
      med[mode][w] = {
        pairsPerSec: median(rs.map((r) => r.pairsPerSec)),
        nsPerPair: median(rs.map((r) => r.nsPerPair)),
        cpuNsPerPair: median(rs.map((r) => r.cpuNsPerPair)),
      };
    }
  }
  const pps = (mode: SpaceMode, w: number) => of(mode, w).map((r) => r.pairsPerSec);
  const bounces = (['single-lock', 'pooled'] as const).map((m) =>
    measureSpaceBounces(m, Math.min(o.pairs, 200_000), o.live, o.maxPages),
  );
  return {
    runs,
    median: med,
    pooledScaling: pairedRatio(pps('pooled', 2), pps('pooled', 1)),
    pooledOverSingleAt2: pairedRatio(pps('pooled', 2), pps('single-lock', 2)),
    singleScaling: pairedRatio(pps('single-lock', 2), pps('single-lock', 1)),
    separateScaling: pairedRatio(pps('separate', 2), pps('pooled', 1)),
    bounces,
    refill: DEFAULT_REFILL,
  };
}

export function formatSpaceBench(r: SpaceBenchResult, workers: number[]): string {
  const lines = [
    '| space | ' +
      workers.map((w) => `${w} worker${w > 1 ? 's' : ''}: M pairs/s`).join(' | ') +
      ' | ns per alloc+free, 1 worker |',
    '|---|' + workers.map(() => '---:|').join('') + '---:|',
  ];
  for (const mode of SPACE_MODES) {
    const m = r.median[mode];
    const name = mode === 'separate' ? 'separate (pooled, a space per worker: the ceiling)' : mode;
    lines.push(
      `| ${name} | ${workers.map((w) => fmt(m[w]!.pairsPerSec / 1e6, 3)).join(' | ')} | ${fmt(m[1]?.nsPerPair ?? NaN, 0)} |`,
    );
  }
  lines.push(
    '',
    `- pooled, 2 workers / 1 worker: ${fmt(r.pooledScaling, 2)}x (required >= 1.7x)`,
    `- pooled / single-lock at 2 workers: ${fmt(r.pooledOverSingleAt2, 2)}x (required >= 1.5x)`,
    `- single-lock, 2 workers / 1 worker: ${fmt(r.singleScaling, 2)}x`,
    `- separate spaces (the machine's ceiling now), 2 workers / pooled 1 worker: ${fmt(r.separateScaling, 2)}x`,
    `- CPU ns per pair (all threads), 1 / 2 workers: ${SPACE_MODES.map((m) => `${m} ${workers.map((w) => fmt(r.median[m][w]!.cpuNsPerPair, 0)).join(' / ')}`).join(', ')}`,
    '- ratios are medians of the ratios paired by repetition',
    `- lock acquisitions per alloc+free pair, and how many of them follow the other worker (a cache line moved between cores), two workers taking turns pair by pair in one thread (independent of the load): ${r.bounces
      .map(
        (b) =>
          `${b.mode}: ${(['space', 'caches', 'shards'] as const)
            .filter((g) => b.groups[g].acquisitions > 0)
            .map((g) => `${g} ${fmt(b.groups[g].acquisitions, 3)} / ${fmt(b.groups[g].bounces, 3)}`)
            .join(', ')}`,
      )
      .join('; ')}`,
    ...r.bounces
      .filter((b) => b.trips !== null)
      .map(
        (b) =>
          `- why the pooled space's lock is taken, per pair, same turn-taking run: pool misses cut from the free tree ${fmt(b.trips!.slowAllocs, 4)} (of which refills of ${r.refill} ranges ${fmt(b.trips!.refills, 4)}), purges under the lock ${fmt(b.trips!.lockedPurges, 4)}; purges at the lazy threshold under the cache's lock alone ${fmt(b.trips!.quickPurges, 4)}`,
      ),
    `- 1-minute load average at the end of the runs: ${fmt(Math.min(...r.runs.map((x) => x.load)), 2)} to ${fmt(Math.max(...r.runs.map((x) => x.load)), 2)}`,
  );
  return lines.join('\n');
}
