/**
 * `--record FILE` (or `record=FILE`) on the bench commands: the flag checked before any run,
 * and the plan that names each run's trace (src/bench/record-plan.ts).
 *
 * Holds: RECORD_HELP, benchRecordArgs() (record=FILE words turned into --record=FILE, so
 * both spellings of `vmalloc test` work), recordPlanFor() (the plan, or a UsageError: a
 * path no trace can be written to), and what the reports say of a recorded run
 * (recordedLine(), traces()).
 * Invariant: a refused --record is refused before the first run, in one line.
 * Callers: src/cli/bench.ts, src/cli/bench-seeds.ts, src/cli/bench-space.ts.
 */

import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { RecordPlan, type RecordedTrace } from '../bench/record-plan.js';
import { UsageError, type ParsedArgs } from './args.js';
import { jsonReport } from './json-report.js';
import { machineLine } from './machine.js';

export const RECORD_HELP = `Recording (bench contention, vmmapram, scaling, seeds, kva, space):

  --record FILE       (or record=FILE) write every allocator call of each run to a trace of
                      its own: FILE with the run's label before its extension
                      (trace.jsonl -> trace.nodes-x2.jsonl, trace.nodes-x2-lockstat.jsonl),
                      each listed on stderr as it is written (and under "traces" with
                      --json); 'vmalloc replay FILE' replays one on any design
  A recorded run does not warm up (its trace starts from a fresh allocator, so a replay on
  its design returns its addresses), and its calls run one at a time under the trace lock,
  each with two clock reads and a record: its times are a serialized run's, not a free one's,
  and are not comparable with unrecorded figures. Simulated runs (scaling, the seeds'
  simulated rows) keep their virtual times; only their wall time grows. bench seeds records
  its test_vmalloc runs, not the 2018 RFC loops.
  bench kva records below the API: after every timed run, each pattern and scaling run runs
  once more, untimed, into a space trace (a bare VmapSpace's space_alloc / space_free), so
  its figures are unrecorded runs'; 'vmalloc replay FILE layout=plain|single-lock|pooled'
  replays one on a VmapSpace of that layout. Every call is a line (about 100 bytes): give
  small --loops / --scale.
  bench space records the same way, after its timed runs: each mode at each worker count
  runs once more, untimed, with the first repetition's seed and no warm-up, its real
  workers' calls serialized under the trace lock, each with the worker's cpu (1, 2) and a
  global order: one trace per space (single-lock-x2, pooled-x2, ...; the separate run's
  two spaces a trace each, separate-x2-space1 and -space2), 2 * (live + pairs) calls a
  worker; 'vmalloc replay FILE' on its layout attaches a view per cpu and gives back the
  same addresses. Give small --pairs / --live. The lock-bounce counts are not recorded.
`;

/** The words with record=FILE spelled --record=FILE. */
export function benchRecordArgs(argv: readonly string[]): string[] {
  return argv.map((a) => (a.startsWith('record=') ? `--${a}` : a));
}

/**
 * The plan of --record for benchmark `what` (undefined without --record): each trace is
 * listed on stderr as it is written. Every benchmark records now (bench space since its
 * space traces): `_what`, the benchmark, is where one that could not would be refused.
 * @throws UsageError for a FILE no trace can be written next to (no such directory, not
 *   writable, a directory itself, standard output).
 */
export function recordPlanFor(args: ParsedArgs, _what: string): RecordPlan | undefined {
  const v = args.flags.get('record');
  if (v === undefined) return undefined;
  const file = String(v);
  const fail = (why: string): never => {
    throw new UsageError(`--record ${file}: ${why}`);
  };
  if (file === '-') fail('the traces are files, one per run: give a file name, not -');
  if (file.endsWith('/')) fail('give a file name (each run writes FILE with its label added)');
  let isDir = false;
  try {
    isDir = statSync(file).isDirectory();
  } catch {
    // no such file yet: the usual case
  }
  if (isDir) fail('is a directory; give a file name (each run writes FILE with its label added)');
  const dir = dirname(resolve(file));
  let dirOk = false;
  try {
    dirOk = statSync(dir).isDirectory();
  } catch {
    fail(`no directory ${dir} to write the traces in`);
  }
  if (!dirOk) fail(`${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    fail(`cannot write in ${dir} (permission denied)`);
  }
  return new RecordPlan(file, (t) =>
    process.stderr.write(`record: ${t.calls} calls written to ${t.file} (${t.label})\n`),
  );
}

/** The report's line on a recorded run's times (none when not recorded). */
export function recordedLine(record: RecordPlan | undefined): string[] {
  return record === undefined
    ? []
    : [
        `- recorded (--record ${record.base}): no warm-up, every call serialized under the trace lock: these times are not a free run's`,
      ];
}

/** The traces a recorded run wrote, for its JSON (nothing when it was not recorded). */
export function traces(record: RecordPlan | undefined): { traces?: RecordedTrace[] } {
  return record === undefined ? {} : { traces: record.written };
}

/**
 * Prints a bench command's `--json`: the machine, when the run started, `body`, then the
 * traces a recorded run wrote. Returns the exit status (0).
 */
export function writeBenchJson(
  started: Date,
  body: Record<string, unknown>,
  record: RecordPlan | undefined,
): 0 {
  process.stdout.write(
    jsonReport({ machine: machineLine(), date: started.toISOString(), ...body, ...traces(record) }),
  );
  return 0;
}
