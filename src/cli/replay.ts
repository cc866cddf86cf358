/**
 * `vmalloc replay TRACE [design=...] [nr_cpus=...] [--strict] [--json]`: a recorded trace
 * replayed against any design, with its divergence; a space trace (bench kva, bench space) against any
 * VmapSpace layout (layout=...).
 *
 * Holds: the help text and the command: reads and checks the trace (a bad file is a usage
 * error naming the line), replays it (src/test-vmalloc/trace-replay.ts) and prints the
 * report. Exit status: 0 when the replay ran; with --strict, 1 when any call diverged.
 * Callers: src/cli/main.ts.
 */

import { readFileSync } from 'node:fs';
import { DESIGNS } from '../test-vmalloc/params.js';
import {
  SPACE_LAYOUTS,
  type SpaceLayout,
  TraceFormatError,
  readTrace,
} from '../test-vmalloc/trace-file.js';
import { replaySpaceTrace } from '../test-vmalloc/trace-replay-space.js';
import { ReplayError, formatReplay, replayTrace } from '../test-vmalloc/trace-replay.js';
import type { VmallocDesign } from '../mm/config.js';
import { UsageError, parseArgs } from './args.js';
import { jsonReport } from './json-report.js';

export const REPLAY_HELP = `Usage: vmalloc replay TRACE [design=NAME] [nr_cpus=N] [--strict] [--json]
       vmalloc replay SPACE-TRACE [layout=NAME] [--strict] [--json]

Replays a trace written by 'vmalloc test ... record=TRACE' (or load-vmallocinfo, a
simulated run, or one run of 'vmalloc bench contention|vmmapram|scaling|seeds --record FILE'):
every recorded call, in the recorded order, each on a view of the cpu that made it (one
thread, one attached view per cpu), on a fresh allocator of the chosen design with the run's
policy knobs (nr_vmap_nodes= ...) and machine (CPUs, memory, page size, block hash), the
trace's layout loaded first when it has one. An address the trace frees is the one the
replay returned for the same allocation, so a replay on another design frees the right areas.

  design=NAME    ${DESIGNS.join(', ')} (default: the trace's)
  nr_cpus=N      CPUs of the replaying machine (default: the trace's; at least its highest
                 cpu + 1)
  layout=NAME    a space trace's ('bench kva|space --record': a bare VmapSpace's alloc and free):
                 the space to replay it on, ${SPACE_LAYOUTS.join(', ')} (default: the trace's,
                 plain); single-lock takes the space's lock per call, pooled serves pooled
                 sizes from its pools (addresses may then differ from a plain space's)
  --strict       exit 1 when any call diverged
  --json         print the report as JSON
  --no-check     skip the invariant check at the end

It prints, per operation: calls, allocations that returned another address ("other addr"),
calls that failed here where the trace's succeeded ("failed here") and the reverse
("ok here"), frees skipped because their allocation failed here, and the time per call here
and in the trace; then the first divergence (call number, expected, got). A replay on the
trace's own design returns the same addresses: recording serializes the calls, so the
recorded order is the order they changed the allocator in (kvfree_rcu's deferred frees are
the exception: they run when grace periods end, which a replay does not reproduce).
Exit status: 0 when the replay ran (1 with --strict and a divergence); 1 for a usage error.
`;

export async function replayCommand(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, {
    values: [],
    booleans: ['strict', 'json', 'no-check', 'help'],
    owner: 'replay',
  });
  if (args.flags.has('help')) {
    process.stdout.write(REPLAY_HELP);
    return 0;
  }
  const [file, ...words] = args.positional;
  if (file === undefined) throw new UsageError('replay needs a trace file: vmalloc replay TRACE');
  let design: VmallocDesign | undefined;
  let nrCpus: number | undefined;
  let layout: SpaceLayout | undefined;
  for (const w of words) {
    const m = /^(design|nr_cpus|layout)=(.*)$/.exec(w);
    if (m === null)
      throw new UsageError(
        `unexpected argument "${w}" (replay takes design=NAME, nr_cpus=N and, for a space trace, layout=NAME)`,
      );
    if (m[1] === 'layout') {
      if (layout !== undefined) throw new UsageError('layout= is given twice');
      if (!(SPACE_LAYOUTS as readonly string[]).includes(m[2]!))
        throw new UsageError(`layout is one of ${SPACE_LAYOUTS.join(', ')}, got "${m[2]}"`);
      layout = m[2] as SpaceLayout;
    } else if (m[1] === 'design') {
      if (design !== undefined) throw new UsageError('design= is given twice');
      if (!(DESIGNS as readonly string[]).includes(m[2]!))
        throw new UsageError(`design is one of ${DESIGNS.join(', ')}, got "${m[2]}"`);
      design = m[2] as VmallocDesign;
    } else {
      if (nrCpus !== undefined) throw new UsageError('nr_cpus= is given twice');
      if (!/^[1-9][0-9]{0,3}$/.test(m[2]!) || Number(m[2]) > 4096)
        throw new UsageError(`nr_cpus must be an integer from 1 to 4096, got "${m[2]}"`);
      nrCpus = Number(m[2]);
    }
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let trace;
  try {
    trace = readTrace(text, file);
  } catch (e) {
    if (e instanceof TraceFormatError) throw new UsageError(e.message);
    throw e;
  }
  const space = trace.header.space !== undefined;
  if (space && (design !== undefined || nrCpus !== undefined))
    throw new UsageError(
      `${file} is a space trace (bench kva or space: a bare VmapSpace): it replays on a layout=${SPACE_LAYOUTS.join('|')}, not a design= or nr_cpus=`,
    );
  if (!space && layout !== undefined)
    throw new UsageError(
      `${file} is a vmalloc trace: it replays on a design=NAME; layout= is for space traces (bench kva|space --record)`,
    );
  let report;
  try {
    report = space
      ? replaySpaceTrace(trace, {
          ...(layout === undefined ? {} : { layout }),
          check: !args.flags.has('no-check'),
        })
      : replayTrace(trace, {
          ...(design === undefined ? {} : { design }),
          ...(nrCpus === undefined ? {} : { nrCpus }),
          check: !args.flags.has('no-check'),
        });
  } catch (e) {
    if (e instanceof ReplayError) throw new UsageError(e.message);
    throw e;
  }
  if (args.flags.has('json')) process.stdout.write(jsonReport({ replay: report }));
  else process.stdout.write(formatReplay(report));
  return args.flags.has('strict') && report.divergent > 0 ? 1 : 0;
}
