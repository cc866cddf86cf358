/**
 * `vmalloc replay TRACE [design=...] [nr_cpus=...] [--strict] [--json]`: a recorded trace
 * replayed against any design, with its divergence.
 *
 * Holds: the help text and the command: reads and checks the trace (a bad file is a usage
 * error naming the line), replays it (src/test-vmalloc/trace-replay.ts) and prints the
 * report. Exit status: 0 when the replay ran; with --strict, 1 when any call diverged.
 * Callers: src/cli/main.ts.
 */

import { readFileSync } from 'node:fs';
import { DESIGNS } from '../test-vmalloc/params.js';
import { TraceFormatError, readTrace } from '../test-vmalloc/trace-file.js';
import { ReplayError, formatReplay, replayTrace } from '../test-vmalloc/trace-replay.js';
import type { VmallocDesign } from '../mm/config.js';
import { UsageError, parseArgs } from './args.js';
import { jsonReport } from './json-report.js';

export const REPLAY_HELP = `Usage: vmalloc replay TRACE [design=NAME] [nr_cpus=N] [--strict] [--json]

Replays a trace written by 'vmalloc test ... record=TRACE' (or load-vmallocinfo, or a
simulated run): every recorded call, in the recorded order, each on a view of the cpu that
made it (one thread, one attached view per cpu), on a fresh allocator of the chosen design
(the trace's layout loaded first when it has one). An address the trace frees is the one the
replay returned for the same allocation, so a replay on another design frees the right areas.

  design=NAME    ${DESIGNS.join(', ')} (default: the trace's)
  nr_cpus=N      CPUs of the replaying machine (default: the trace's; at least its highest
                 cpu + 1)
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
  for (const w of words) {
    const m = /^(design|nr_cpus)=(.*)$/.exec(w);
    if (m === null)
      throw new UsageError(`unexpected argument "${w}" (replay takes design=NAME and nr_cpus=N)`);
    if (m[1] === 'design') {
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
  let report;
  try {
    report = replayTrace(trace, {
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
