/**
 * `vmalloc bench space --record FILE`: the benchmark's runs once more, untimed, with their
 * real worker threads, each space's calls into a space trace of its own (a VmapSpace's
 * space_alloc / space_free calls, each with the cpu of the worker that made it: trace-ops.ts).
 *
 * Holds: recordSpace(), run by the CLI after the timed runs: for each worker count and each
 * of its modes, one run with the first repetition's seed ("single-lock-x1", "pooled-x1",
 * "single-lock-x2", "pooled-x2"; 'separate' gives each worker a space, so a trace a worker:
 * "separate-x2-space1", "separate-x2-space2"). The lock-bounce counts (space-bounces.ts:
 * two workers taking turns in one thread) are not recorded.
 * Invariant: the timed runs are never recorded (the trace lock serializes the workers and
 * adds two clock reads a call: a recorded run measures nothing). A recorded run starts from an
 * empty space and does not warm up: its trace holds each worker's fill of `live` ranges, its
 * `pairs` alloc+free pairs and its final frees, 2 * (live + pairs) calls a worker when no
 * allocation fails. Every call takes the run's trace lock and its global order inside it
 * (trace-record.ts), so replaying the trace on its layout, one attached instance per cpu
 * (`vmalloc replay FILE`: trace-replay-space.ts), gives its addresses back.
 * Callers: src/cli/bench-space.ts.
 */

import type { SpaceLayout } from '../test-vmalloc/trace-file.js';
import { type TraceSession, openSpaceTraceSession } from '../test-vmalloc/trace-session.js';
import type { RecordPlan } from './record-plan.js';
import {
  SPACE_SEED,
  type SpaceBenchOptions,
  type SpaceMode,
  modesAt,
  runSpaceRun,
} from './space.js';

/** The VmapSpace layout each mode makes ('separate': a pooled space per worker). */
const LAYOUT: Record<SpaceMode, SpaceLayout> = {
  'single-lock': 'single-lock',
  pooled: 'pooled',
  separate: 'pooled',
};

/** Records the runs of `o` (see the module header); each trace is noted in `plan`. */
export async function recordSpace(
  o: Pick<SpaceBenchOptions, 'pairs' | 'live' | 'maxPages' | 'workers'>,
  plan: RecordPlan,
): Promise<void> {
  const options: SpaceBenchOptions = { ...o, reps: 1 };
  for (const workers of o.workers)
    for (const mode of modesAt(workers)) {
      const label = `${mode}-x${workers}`;
      let sessions: { file: string; session: TraceSession }[] = [];
      try {
        await runSpaceRun(options, mode, workers, SPACE_SEED, (spaces) => {
          sessions = spaces.map((sp, k) => {
            const file = plan.fileFor(spaces.length === 1 ? label : `${label}-space${k + 1}`);
            // Worker w (cpu w + 1) calls space w % spaces.length.
            const cpus = spaces.length === 1 ? workers : 1;
            const session = openSpaceTraceSession(
              file,
              sp,
              LAYOUT[mode],
              {
                bench: 'space',
                mode,
                workers,
                ...(spaces.length === 1 ? {} : { worker: k + 1 }),
                pairs: o.pairs,
                live: o.live,
                maxPages: o.maxPages,
                seed: SPACE_SEED,
                warmup: 0,
              },
              { threads: cpus, nrCpus: spaces.length === 1 ? workers + 1 : k + 2 },
            );
            return { file, session };
          });
          return sessions.map((s) => s.session);
        });
      } catch (e) {
        // What arrived in order stays in each file; the run's error is the one reported.
        for (const s of sessions)
          try {
            s.session.writer.close();
          } catch {
            // the run's error is the one reported
          }
        throw e;
      }
      for (const s of sessions) plan.noteFile(s.file, s.session.close());
    }
}
