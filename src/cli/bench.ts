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
import {
  formatContentionDetails,
  formatThroughputHead,
  formatThroughputRow,
  runContentionBench,
  type ContentionRow,
} from '../bench/contention.js';
import type { VmallocDesign } from '../mm/config.js';
import { checkMask } from '../test-vmalloc/driver.js';
import { DESIGNS, defaultParams } from '../test-vmalloc/params.js';
import {
  INT_MAX,
  UsageError,
  intFlag,
  intListFlag,
  parseArgs,
  wordListFlag,
  type ParsedArgs,
} from './args.js';
import { jsonReport } from './json-report.js';
import { MAX_THREADS, threadBoundError } from './limits.js';
import { machineLine, machineMemory } from './machine.js';

export const BENCH_HELP = `Usage: vmalloc bench kva [options]
       vmalloc bench contention [options]

bench contention: test_vmalloc's run_test_mask=7 with 1, 2 and 4 workers (threads), for
the 'global' and the 'nodes' design (or those of --design), in one run: tests per second,
scaling ratios, lock_stat (contentions per lock class), and a model of larger machines
calibrated on the measurements (for global and nodes).

  --loops N           test_loop_count of the throughput runs (default 10000: the default run
                      takes about two minutes on 2 cores; raise it for steadier figures)
  --lock-stat-loops N test_loop_count of the lock-statistics runs (default 2500)
  --workers LIST      distinct worker counts (default 1,2,4), each at most what this
                      machine's free memory holds (as vmalloc test's nr_threads)
  --design LIST       designs to compare, from ${DESIGNS.join(', ')}
                      (default global,nodes)
  --nr-cpus N         CPUs of the simulated machine in every run, 1 to 4096 (default 8,
                      raised to the largest worker count; given, at least that count)
  --mask M            run_test_mask, implemented tests only (default 7)
  --json, --quiet     as below

bench kva:

The free-tree core on the VA-only test_vmalloc patterns (tests 1, 2, 4, 8, 16, 32, each
vmalloc reserving a guard page) and the scaling runs, in ns per loop iteration.

Options:
  --cref PATH         also run the C yardstick (make -C ../shared/tools/cref; PATH is its
                      vmalloc_bench) test by test, and report JS/C ratios
  --loops N           loops per test (default 1000000)
  --reps R            repetitions; medians are reported (default 3)
  --mask M            which tests, as test_vmalloc's run_test_mask, 1 to 63 (default 63)
  --scale LIST        distinct scaling B values, or none (default 1000,10000,100000,1000000),
                      each at most what this machine's free memory holds
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

/** Flags each benchmark takes (a flag of the other one is refused, not ignored). */
const BENCH_FLAGS = {
  kva: {
    values: ['cref', 'loops', 'reps', 'mask', 'scale', 'scale-loops', 'heap-pairs'],
    booleans: ['json', 'quiet', 'help'],
  },
  contention: {
    values: ['loops', 'lock-stat-loops', 'workers', 'design', 'nr-cpus', 'mask'],
    booleans: ['json', 'quiet', 'help'],
  },
} as const;

/** Bytes per B of the kva scaling run: two 1-page areas and their slots (about 290 MB at
 * B = 1,000,000, measured; rounded up). */
const SCALE_BYTES_PER_B = 320;
const BASE_BYTES = 96 * 2 ** 20;

async function contention(args: ParsedArgs, argv: readonly string[]): Promise<number> {
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
  const mask = intFlag(args, 'mask', 7, INT_MAX, 'run_test_mask is an int');
  try {
    checkMask(mask);
  } catch (e) {
    throw new UsageError(`--mask: ${(e as Error).message}`);
  }
  const o = {
    // Defaults sized so that the whole default run (3 worker counts x 2 designs x 2 passes, on
    // 2 cores) ends within about two minutes; each line prints as it is measured.
    loops: intFlag(args, 'loops', 10_000, INT_MAX, 'test_loop_count is an int'),
    lockStatLoops: intFlag(args, 'lock-stat-loops', 2_500, INT_MAX, 'test_loop_count is an int'),
    workers,
    designs: wordListFlag<VmallocDesign>(args, 'design', ['global', 'nodes'], DESIGNS),
    nrCpus,
    mask,
    progress: quiet ? undefined : (line: string) => process.stderr.write(`  ${line}\n`),
  };
  // Every run is a test_vmalloc run of that many workers: the same bound as nr_threads.
  const memory = machineMemory();
  const p = defaultParams(mask, nrCpus);
  p.run_test_mask = mask;
  for (const w of workers) {
    const tooMany = threadBoundError({ ...p, nr_threads: w }, memory, '--workers');
    if (tooMany !== null) throw new UsageError(tooMany);
  }
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
  const result = await runContentionBench({ ...o, onRow });
  if (json) {
    process.stdout.write(
      jsonReport({ machine: machineLine(), date: started.toISOString(), ...result }),
    );
    return 0;
  }
  write(formatContentionDetails(result) + '\n');
  return 0;
}

export async function benchCommand(argv: readonly string[]): Promise<number> {
  // The benchmark's own flags: one of the other benchmark's is refused, not ignored.
  const named = argv.find((a): a is keyof typeof BENCH_FLAGS => a === 'kva' || a === 'contention');
  const args = parseArgs(
    argv,
    named
      ? { ...BENCH_FLAGS[named], owner: `bench ${named}` }
      : {
          values: [...new Set([...BENCH_FLAGS.kva.values, ...BENCH_FLAGS.contention.values])],
          booleans: BENCH_FLAGS.kva.booleans,
        },
  );
  const what = args.positional[0];
  if (args.flags.has('help') || what === undefined || what === 'help') {
    process.stdout.write(BENCH_HELP);
    return what === undefined && !args.flags.has('help') ? 1 : 0;
  }
  if (what !== 'kva' && what !== 'contention')
    throw new UsageError(`unknown benchmark "${what}" (the benchmarks are kva, contention)`);
  if (args.positional.length > 1)
    throw new UsageError(`unexpected argument "${args.positional[1]}" after bench ${what}`);
  if (what === 'contention') return contention(args, argv);
  const cref = args.flags.get('cref');
  if (cref !== undefined && (typeof cref !== 'string' || !existsSync(cref))) {
    throw new UsageError(
      `--cref: no file at ${String(cref)} (build it with: make -C ../shared/tools/cref)`,
    );
  }
  const scaleB = intListFlag(args, 'scale', [1000, 10000, 100000, 1000000], INT_MAX, 'an int');
  const memory = machineMemory();
  const maxB = Math.max(1, Math.floor((memory.availableBytes - BASE_BYTES) / SCALE_BYTES_PER_B));
  for (const b of scaleB) {
    if (b > maxB)
      throw new UsageError(
        `--scale ${b} needs about ${((BASE_BYTES + b * SCALE_BYTES_PER_B) / 2 ** 30).toFixed(1)} GiB; ` +
          `this machine has ${(memory.availableBytes / 2 ** 30).toFixed(1)} GiB free; at most ${maxB} here`,
      );
  }
  const quiet = args.flags.has('quiet');
  const opts = {
    // Loop counts size byte tables of random values (Uint8Array): an int, as the kernel's.
    loops: intFlag(args, 'loops', 1_000_000, INT_MAX, 'test_loop_count is an int'),
    reps: intFlag(args, 'reps', 3, 1000, 'medians of at most 1000 repetitions'),
    mask: intFlag(args, 'mask', 63, 63, 'the kva patterns are tests 1, 2, 4, 8, 16 and 32'),
    scaleB,
    scaleLoops: intFlag(args, 'scale-loops', 1_000_000, INT_MAX, 'an int'),
    heapPairs: intFlag(args, 'heap-pairs', 1_000_000, INT_MAX, 'an int'),
    cref: typeof cref === 'string' ? cref : undefined,
    gc: exposeGc(),
    progress: quiet ? undefined : (line: string) => process.stderr.write(`  ${line}\n`),
  };
  const started = new Date();
  const result = runKvaBench(opts);
  if (args.flags.has('json')) {
    process.stdout.write(
      jsonReport({
        machine: machineLine(),
        date: started.toISOString(),
        options: { ...opts, gc: undefined, progress: undefined },
        ...result,
      }),
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
