/**
 * `vmalloc bench <what>`: the benchmark commands.
 *
 * Holds: argument handling and output of `bench kva` (more benchmarks join here).
 * Callers: src/cli/main.ts.
 */

import { existsSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { formatKvaBench, runKvaBench } from '../bench/kva.js';
import { formatContention, runContentionBench } from '../bench/contention.js';
import type { VmallocDesign } from '../mm/config.js';
import { UsageError, intFlag, intListFlag, parseArgs, type ParsedArgs } from './args.js';
import { machineLine } from './machine.js';

export const BENCH_HELP = `Usage: vmalloc bench kva [options]
       vmalloc bench contention [options]

bench contention: test_vmalloc's run_test_mask=7 with 1, 2, 4 and 8 workers (threads), for
the 'global' and the 'nodes' design, in one run: tests per second, scaling ratios, lock_stat
(contentions per lock class), and a model of larger machines calibrated on the measurements.

  --loops N           test_loop_count of the throughput runs (default 200000)
  --lock-stat-loops N test_loop_count of the lock-statistics runs (default 50000)
  --workers LIST      worker counts (default 1,2,4,8)
  --nr-cpus N         CPUs of the simulated machine in every run (default 8)
  --mask M            run_test_mask (default 7)
  --json, --quiet     as below

bench kva:

The free-tree core on the VA-only test_vmalloc patterns (tests 1, 2, 4, 8, 16, 32, each
vmalloc reserving a guard page) and the scaling runs, in ns per loop iteration.

Options:
  --cref PATH         also run the C yardstick (make -C ../shared/tools/cref; PATH is its
                      vmalloc_bench) test by test, and report JS/C ratios
  --loops N           loops per test (default 1000000)
  --reps R            repetitions; medians are reported (default 3)
  --mask M            which tests, as test_vmalloc's run_test_mask (default 63)
  --scale LIST        scaling B values, or none (default 1000,10000,100000,1000000)
  --scale-loops N     loops per scaling run (default 1000000)
  --heap-pairs N      alloc/free pairs of the heap check (default 1000000)
  --json              print the results as JSON
  --quiet             no progress lines on stderr
`;

/** A gc() function without restarting Node with --expose-gc. */
function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

async function contention(args: ParsedArgs, argv: readonly string[]): Promise<number> {
  const quiet = args.flags.has('quiet');
  const o = {
    loops: intFlag(args, 'loops', 200_000),
    lockStatLoops: intFlag(args, 'lock-stat-loops', 50_000),
    workers: intListFlag(args, 'workers', [1, 2, 4, 8]),
    designs: ['global', 'nodes'] as VmallocDesign[],
    nrCpus: intFlag(args, 'nr-cpus', 8),
    mask: intFlag(args, 'mask', 7),
    progress: quiet ? undefined : (line: string) => process.stderr.write(`  ${line}\n`),
  };
  if (o.workers.length === 0) throw new UsageError('--workers needs at least one count');
  if (o.workers.some((w) => w > o.nrCpus)) o.nrCpus = Math.max(...o.workers);
  const started = new Date();
  const result = await runContentionBench(o);
  if (args.flags.has('json')) {
    process.stdout.write(
      JSON.stringify({ machine: machineLine(), date: started.toISOString(), ...result }, null, 2) +
        '\n',
    );
    return 0;
  }
  process.stdout.write(
    [
      `## bench contention: ${started.toISOString().slice(0, 10)}`,
      '',
      `- command: \`${['npx vmalloc bench contention', ...argv.slice(1)].join(' ')}\``,
      `- machine: ${machineLine()}`,
      `- test_loop_count ${o.loops} (lock statistics: ${o.lockStatLoops}), nr_cpus ${o.nrCpus}, run_test_mask ${o.mask}; workers beyond the machine's CPUs are oversubscribed`,
      '',
      formatContention(result),
      '',
    ].join('\n'),
  );
  return 0;
}

export async function benchCommand(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, {
    values: [
      'cref',
      'loops',
      'reps',
      'mask',
      'scale',
      'scale-loops',
      'heap-pairs',
      'lock-stat-loops',
      'workers',
      'nr-cpus',
    ],
    booleans: ['json', 'quiet', 'help'],
  });
  const what = args.positional[0];
  if (args.flags.has('help') || what === undefined || what === 'help') {
    process.stdout.write(BENCH_HELP);
    return what === undefined && !args.flags.has('help') ? 1 : 0;
  }
  if (what === 'contention') return contention(args, argv);
  if (what !== 'kva')
    throw new UsageError(`unknown benchmark "${what}" (available: kva, contention)`);
  if (args.positional.length > 1)
    throw new UsageError(`unexpected argument "${args.positional[1]}"`);
  const cref = args.flags.get('cref');
  if (cref !== undefined && (typeof cref !== 'string' || !existsSync(cref))) {
    throw new UsageError(
      `--cref: no file at ${String(cref)} (build it with: make -C ../shared/tools/cref)`,
    );
  }
  const quiet = args.flags.has('quiet');
  const opts = {
    loops: intFlag(args, 'loops', 1_000_000),
    reps: intFlag(args, 'reps', 3),
    mask: intFlag(args, 'mask', 63),
    scaleB: intListFlag(args, 'scale', [1000, 10000, 100000, 1000000]),
    scaleLoops: intFlag(args, 'scale-loops', 1_000_000),
    heapPairs: intFlag(args, 'heap-pairs', 1_000_000),
    cref: typeof cref === 'string' ? cref : undefined,
    gc: exposeGc(),
    progress: quiet ? undefined : (line: string) => process.stderr.write(`  ${line}\n`),
  };
  const started = new Date();
  const result = runKvaBench(opts);
  if (args.flags.has('json')) {
    process.stdout.write(
      JSON.stringify(
        {
          machine: machineLine(),
          date: started.toISOString(),
          options: { ...opts, gc: undefined, progress: undefined },
          ...result,
        },
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  const cmd = ['npx vmalloc bench kva', ...argv.slice(1)].join(' ');
  process.stdout.write(
    [
      `## bench kva: ${started.toISOString().slice(0, 10)}`,
      '',
      `- command: \`${cmd}\``,
      `- machine: ${machineLine()}`,
      `- loops ${opts.loops} per test, ${opts.reps} repetitions; scaling loops ${opts.scaleLoops}`,
      '',
      formatKvaBench(result, opts.cref !== undefined),
      '',
    ].join('\n'),
  );
  return 0;
}
