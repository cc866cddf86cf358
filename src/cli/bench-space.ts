/**
 * `vmalloc bench space`: argument handling and output of the shared-space benchmark
 * (src/bench/space.ts): single-lock against pooled VmapSpace, 1 and 2 workers, one run;
 * with --record, each run once more, untimed, into space traces (src/bench/space-record.ts).
 * Callers: src/cli/bench.ts (which has refused a bad --record FILE before calling).
 */

import { formatSpaceBench, runSpaceBench } from '../bench/space.js';
import { recordSpace } from '../bench/space-record.js';
import { INT_MAX, intFlag, type ParsedArgs } from './args.js';
import { recordPlanFor, writeBenchJson } from './bench-record.js';
import { machineLine } from './machine.js';

export const SPACE_FLAGS = {
  values: ['pairs', 'reps', 'live'],
  booleans: ['json', 'quiet', 'help'],
} as const;

export const SPACE_HELP = `bench space: one VmapSpace shared by 1 and 2 workers (threads), each doing random-size
(1 to 16 pages) alloc/free pairs over a ring of live ranges, one in 64 kept for good (at most
512 a worker): the single-lock space (concurrent: true) against the pooled one (pools: true),
in one run; at 2 workers also the same workload on a pooled space per worker (separate: the
machine's ceiling at that moment). Prints alloc+free pairs per second, ns per pair on one
worker, the load average, and the ratios (pooled 2 workers / 1 worker, pooled / single-lock at
2 workers, and separate 2 workers / pooled 1 worker beside them), medians over repetitions.

  --pairs N           timed alloc+free pairs per worker and run (default 500000)
  --reps R            repetitions, modes alternating (default 5)
  --live N            ranges each worker keeps live (default 1024)
  --record FILE       each run once more, untimed, with its workers, into a space trace per
                      space (see Recording)
  --json, --quiet     as below
`;

const WORKERS = [1, 2];

export async function benchSpace(args: ParsedArgs, argv: readonly string[]): Promise<number> {
  const o = {
    pairs: intFlag(args, 'pairs', 500_000, INT_MAX, 'an int'),
    reps: intFlag(args, 'reps', 5, 1000, 'medians of at most 1000 repetitions'),
    live: intFlag(args, 'live', 1024, 1 << 20, 'at most 2^20 ranges a worker'),
    workers: WORKERS,
    maxPages: 16,
    progress: args.flags.has('quiet')
      ? undefined
      : (line: string) => process.stderr.write(`  ${line}\n`),
  };
  const record = recordPlanFor(args, 'space');
  const started = new Date();
  const result = await runSpaceBench(o);
  // After every timed run: the recorded runs are untimed (space-record.ts).
  if (record !== undefined) await recordSpace(o, record);
  if (args.flags.has('json')) {
    const options = { ...o, progress: undefined };
    return writeBenchJson(
      started,
      {
        options,
        ...result,
      },
      record,
    );
  }
  process.stdout.write(
    [
      `## bench space: ${started.toISOString().slice(0, 10)}`,
      '',
      `- command: \`${['npx vmalloc bench space', ...argv.slice(1)].join(' ')}\``,
      `- machine: ${machineLine()}`,
      `- ${o.pairs} timed pairs per worker, ${o.live} live ranges per worker, ${o.reps} repetitions`,
      ...(record === undefined
        ? []
        : [
            `- recorded (--record ${record.base}): ${record.written.length} space traces of untimed runs made after the timed ones`,
          ]),
      '',
      formatSpaceBench(result, WORKERS),
      '',
    ].join('\n'),
  );
  return 0;
}
