/**
 * `--record FILE` on the bench commands: one trace file per recorded run, named after FILE.
 *
 * Holds: RecordPlan (the file of each run: FILE with the run's label put before its
 * extension, trace.jsonl -> trace.nodes-x2.jsonl; the list of what was written) and
 * simulateRecorded() (a simulated run with recording views, as `vmalloc test simulate=1`
 * makes them).
 * Invariant: a file holds one run, from a fresh allocator to the run's end, so
 * `vmalloc replay` on the run's design gives its addresses back: a recorded run skips the
 * untimed warm-up (recordingWarmup()), whose calls would change the allocator before the
 * first recorded one; labels are unique within a plan (a repeated one gets -2, -3, ...).
 * Callers: the bench drivers (contention.ts, vmmapram.ts, scaling.ts, seeds-*.ts) and
 * src/cli/bench.ts, bench-seeds.ts (which make the plan and print its list); simulateRecorded()
 * also src/cli/sim.ts (`vmalloc test ... simulate=1 record=FILE`).
 *
 * Recording serializes every recorded call of a run under one lock (trace-record.ts), and
 * adds two clock reads and a record per call: a recorded run's times are not a free run's.
 */

import { basename, dirname, join } from 'node:path';
import type { Vmalloc } from '../api/vmalloc.js';
import type { TestParams } from '../test-vmalloc/params.js';
import type { TraceRecorder } from '../test-vmalloc/trace-record.js';
import { type TraceSession, openTraceSession } from '../test-vmalloc/trace-session.js';

/** A trace a bench run wrote. */
export interface RecordedTrace {
  /** What the run was: design, workers, pass, round ("nodes-x2", "global-x1-lockstat"). */
  label: string;
  file: string;
  /** Calls written. */
  calls: number;
}

/** Where each recorded run of one bench command goes (see the module header). */
export class RecordPlan {
  readonly written: RecordedTrace[] = [];
  /** Label by file. */
  private readonly labels = new Map<string, string>();

  /**
   * @param base    the FILE of --record
   * @param onWrite told of each trace once its file is closed (the CLI lists them on stderr)
   */
  constructor(
    readonly base: string,
    private readonly onWrite?: (t: RecordedTrace) => void,
  ) {}

  /** The file of the run `label` (made unique: see the module header). */
  fileFor(label: string): string {
    const clean = label.replace(/[^A-Za-z0-9_.+=-]+/g, '_');
    let file = labelled(this.base, clean);
    for (let k = 2; this.labels.has(file); k++) file = labelled(this.base, `${clean}-${k}`);
    this.labels.set(file, label);
    return file;
  }

  /** `p` recording into the file of `label`. */
  params(p: TestParams, label: string): TestParams {
    return { ...p, record: this.fileFor(label) };
  }

  /** Notes a closed trace (`calls` undefined: the run recorded nothing, not listed). */
  done(p: TestParams, calls: number | undefined): void {
    if (p.record !== '') this.noteFile(p.record, calls);
  }

  /** Notes the closed trace `file` (one fileFor() gave; `calls` undefined: not listed). */
  noteFile(file: string, calls: number | undefined): void {
    if (calls === undefined) return;
    const t: RecordedTrace = { label: this.labels.get(file) ?? file, file, calls };
    this.written.push(t);
    this.onWrite?.(t);
  }
}

/** FILE with `label` before its extension: trace.jsonl -> trace.<label>.jsonl. */
export function labelled(base: string, label: string): string {
  const name = basename(base);
  const dot = name.lastIndexOf('.');
  const named = dot > 0 ? `${name.slice(0, dot)}.${label}${name.slice(dot)}` : `${name}.${label}`;
  return join(dirname(base), named);
}

/** Whether a run warms up: not when it is recorded (see the module header). */
export function recordingWarmup(p: TestParams): boolean {
  return p.record === '';
}

/** The simulator's option that makes each CPU's view a recording one. */
export interface SimViews {
  wrapView?: (vm: Vmalloc, cpu: number) => Vmalloc;
}

/**
 * Runs a simulated run `run` recording into p.record when it is set (views: the option to
 * pass to simulateTestVmalloc()): its result, and the calls written (undefined: not
 * recorded). A run that throws leaves what was written in order, and its error is thrown.
 */
export function simulateRecorded<T>(
  p: TestParams,
  run: (views: SimViews) => T,
): { result: T; traced: number | undefined } {
  if (p.record === '') return { result: run({}), traced: undefined };
  let trace: TraceSession | null = null;
  const recorders: TraceRecorder[] = [];
  let result: T;
  try {
    result = run({
      wrapView(vm: Vmalloc, cpu: number): Vmalloc {
        trace ??= openTraceSession(p, vm, { simulated: true });
        const rec = trace.recorder(cpu);
        recorders.push(rec);
        return rec.wrap(vm);
      },
    });
  } catch (e) {
    try {
      for (const r of recorders) r.flush();
      (trace as TraceSession | null)?.writer.close();
    } catch {
      // the run's error is the one reported
    }
    throw e;
  }
  for (const r of recorders) r.flush();
  return { result, traced: (trace as TraceSession | null)?.close() };
}
