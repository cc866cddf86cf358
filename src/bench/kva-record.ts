/**
 * `vmalloc bench kva --record FILE`: the benchmark's runs once more, each into a space trace
 * of its own (a bare VmapSpace's space_alloc / space_free calls: trace-ops.ts), untimed.
 *
 * Holds: recordKva(), run by the CLI after every timed run: each pattern of the mask
 * ("pattern<id>-<name>") and each scaling run ("scale-B<b>-steady", "scale-B<b>-mixed").
 * Invariant: the timed runs are never recorded (a recording view would change the shapes
 * their loops were compiled for, and its lock and clock reads their times); the repetitions
 * of a run make the same calls (same sizes, same random tables), so one is recorded.
 * Callers: src/cli/bench.ts. `vmalloc replay` replays the traces onto a VmapSpace of any
 * layout (trace-replay-space.ts).
 */

import type { TraceRecorder } from '../test-vmalloc/trace-record.js';
import { type TraceSession, openSpaceTraceSession } from '../test-vmalloc/trace-session.js';
import {
  KVA_PATTERNS,
  type KvaBenchOptions,
  type SpaceWrap,
  runKvaPattern,
  runKvaScale,
} from './kva.js';
import type { RecordPlan } from './record-plan.js';

/** Records the runs of `o` (see the module header); each trace is noted in `plan`. */
export function recordKva(
  o: Pick<KvaBenchOptions, 'mask' | 'loops' | 'scaleB' | 'scaleLoops'>,
  plan: RecordPlan,
): void {
  const recorded = (
    label: string,
    params: Record<string, unknown>,
    run: (w: SpaceWrap) => void,
  ) => {
    const file = plan.fileFor(label);
    let session: TraceSession | null = null;
    let recorder: TraceRecorder | null = null;
    const wrap: SpaceWrap = (sp) => {
      session = openSpaceTraceSession(file, sp, 'plain', { bench: 'kva', ...params });
      recorder = session.recorder(0);
      return recorder.wrapSpace(sp);
    };
    run(wrap);
    (recorder as TraceRecorder | null)?.flush();
    plan.noteFile(file, (session as TraceSession | null)?.close());
  };
  for (const p of KVA_PATTERNS) {
    if ((o.mask & p.id) === 0) continue;
    recorded(`pattern${p.id}-${p.name}`, { pattern: p.id, name: p.name, loops: o.loops }, (w) =>
      runKvaPattern(p.id, o.loops, w),
    );
  }
  for (const b of o.scaleB)
    for (const mixed of [false, true])
      recorded(
        `scale-B${b}-${mixed ? 'mixed' : 'steady'}`,
        { scale: b, mixed, loops: o.scaleLoops },
        (w) => runKvaScale(b, o.scaleLoops, mixed, w),
      );
}
