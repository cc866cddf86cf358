/**
 * `vmalloc bench contention`: argument handling and output of the lock-contention benchmark
 * (src/bench/contention.ts: test_vmalloc on 1, 2 and 4 workers per design, lock_stat, and the
 * model of larger machines); the throughput lines print as they are measured.
 * Callers: src/cli/bench.ts (its flags and help text are there, with the other benchmarks').
 */

import {
  formatContentionDetails,
  formatThroughputHead,
  formatThroughputRow,
  runContentionBench,
  type ContentionRow,
} from '../bench/contention.js';
import type { VmallocDesign } from '../mm/config.js';
import { DESIGNS, defaultParams } from '../test-vmalloc/params.js';
import {
  INT_MAX,
  UsageError,
  intFlag,
  intListFlag,
  wordListFlag,
  type ParsedArgs,
} from './args.js';
import { recordPlanFor, recordedLine, writeBenchJson } from './bench-record.js';
import { MAX_THREADS, threadBoundError } from './limits.js';
import { machineLine, machineMemory } from './machine.js';
import { maskFlag, stderrProgress } from './run-flags.js';

/** `bench contention` with its parsed flags; `argv` for the report's command line. */
export async function benchContention(args: ParsedArgs, argv: readonly string[]): Promise<number> {
  const quiet = args.flags.has('quiet');
  const workers = intListFlag(
    args,
    'workers',
    // 8 workers on 2 cores would double the run again for an oversubscribed figure: ask for it.
    [1, 2, 4],
    MAX_THREADS,
    'a worker is a CPU, and at most 4096 are simulated',
    false,
  );
  const biggest = Math.max(...workers);
  const givenCpus = args.flags.has('nr-cpus');
  const nrCpus = intFlag(args, 'nr-cpus', Math.max(8, biggest), 4096, 'nr_cpus');
  if (givenCpus && nrCpus < biggest)
    throw new UsageError(
      `--nr-cpus ${nrCpus} is below the largest --workers count ${biggest} (a worker is a CPU)`,
    );
  const mask = maskFlag(args, 7);
  const o = {
    // Defaults sized so that the whole default run (3 worker counts x 2 designs x 2 passes, on
    // 2 cores) ends within about two minutes; each line prints as it is measured.
    loops: intFlag(args, 'loops', 10_000, INT_MAX, 'test_loop_count is an int'),
    lockStatLoops: intFlag(args, 'lock-stat-loops', 2_500, INT_MAX, 'test_loop_count is an int'),
    workers,
    designs: wordListFlag<VmallocDesign>(args, 'design', ['global', 'nodes'], DESIGNS),
    nrCpus,
    mask,
    progress: stderrProgress(quiet),
  };
  // Every run is a test_vmalloc run of that many workers: the same bound as nr_threads.
  const memory = machineMemory();
  const p = defaultParams(mask, nrCpus);
  p.run_test_mask = mask;
  for (const w of workers) {
    const tooMany = threadBoundError({ ...p, nr_threads: w }, memory, '--workers');
    if (tooMany !== null) throw new UsageError(tooMany);
  }
  const record = recordPlanFor(args, 'contention');
  const started = new Date();
  const json = args.flags.has('json');
  // Text: the header and each throughput line go out as soon as they are measured (a line once
  // every design of that worker count has run); the derived tables follow at the end.
  const write = (text: string) => process.stdout.write(text + '\n');
  if (!json) {
    write(
      [
        `## bench contention: ${started.toISOString().slice(0, 10)}`,
        '',
        `- command: \`${['npx vmalloc bench contention', ...argv.slice(1)].join(' ')}\``,
        `- machine: ${machineLine()}`,
        `- test_loop_count ${o.loops} (lock statistics: ${o.lockStatLoops}), nr_cpus ${o.nrCpus}, run_test_mask ${o.mask}; workers beyond the machine's CPUs are oversubscribed`,
        ...recordedLine(record),
        '',
        formatThroughputHead(o.mask),
      ].join('\n'),
    );
  }
  const onRow = (rows: readonly ContentionRow[]): void => {
    const w = rows[rows.length - 1]!.workers;
    if (!json && rows.filter((r) => r.workers === w).length === o.designs.length)
      write(formatThroughputRow(rows, workers, w));
  };
  const result = await runContentionBench({ ...o, onRow, record });
  if (json) {
    return writeBenchJson(
      started,
      {
        ...result,
      },
      record,
    );
  }
  write(formatContentionDetails(result) + '\n');
  return 0;
}
