/**
 * `vmalloc bench <what>`: the benchmark commands.
 *
 * Holds: the help text and flags of every benchmark, the dispatch, and the argument handling
 * and output of `bench kva` (`contention`, `vmmapram`, `scaling`, `space` and `seeds` have
 * modules of their own; --record: bench-record.ts).
 * Callers: src/cli/main.ts.
 */

import { existsSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { formatKvaBench, runKvaBench } from '../bench/kva.js';
import { recordKva } from '../bench/kva-record.js';
import { POLICY_KEYS } from '../bench/scaling.js';
import { SPACE_FLAGS, SPACE_HELP, benchSpace } from './bench-space.js';
import { DESIGNS } from '../test-vmalloc/params.js';
import { INT_MAX, UsageError, intFlag, intListFlag, parseArgs } from './args.js';
import { benchContention } from './bench-contention.js';
import { benchSeeds } from './bench-seeds.js';
import { RECORD_HELP, benchRecordArgs, recordPlanFor, writeBenchJson } from './bench-record.js';
import { benchScaling } from './bench-scaling.js';
import { benchVmMapRam } from './bench-vmmapram.js';
import { machineLine, machineMemory } from './machine.js';
import { stderrProgress } from './run-flags.js';

export const BENCH_HELP = `Usage: vmalloc bench kva [options]
       vmalloc bench contention [options]
       vmalloc bench vmmapram [options]
       vmalloc bench scaling [options]
       vmalloc bench space [options]
       vmalloc bench seeds [options]   (its own help: vmalloc bench seeds --help)

bench vmmapram: test_vmalloc's vm_map_ram_test with 1 and 2 workers (threads), the vmap
blocks found through one global hash (vmap_blocks.xa_lock, before seed 002) and through
per-CPU hashes (&xa->xa_lock#1, after), in one run: maps per second and the hash lock's
lock_stat (con-bounces, contentions), beside the seed's 862,689 -> 10,333.

  --loops N           test_loop_count of the throughput runs (default 200000)
  --lock-stat-loops N test_loop_count of the lock-statistics runs (default 200000)
  --workers LIST      distinct worker counts (default 1,2)
  --hash LIST         hash modes, from global, percpu (default global,percpu)
  --design D          the design, one of ${DESIGNS.join(', ')} (default nodes)
  --nr-cpus N         CPUs of the simulated machine (and of per-CPU hashes), 1 to 4096
                      (default: the largest worker count)
  --nr-pages N        nr_pages: pages per mapping, 1 to 64 (default 1, as the seed's test)
  --record FILE       a trace per run (see Recording, at the end)
  --json, --quiet     as below

bench scaling: test_vmalloc on a simulated machine (src/sim: the real allocator, virtual time
from a calibrated cost model and a queued-spinlock model) of 1, 2, 4, ... 256 CPUs, the five
designs: virtual time, loops per second, global's time over each design's, the share of CPU
time spent spinning (perf's native_queued_spin_lock_slowpath), beside the seed's figures;
with 64 in --cpus, vm_map_ram_test at 64 CPUs with the global and per-CPU block hash.

  --cpus LIST         machine sizes (default 1,2,4,8,16,32,64,128,256), each 1 to 512
  --design LIST       designs (default legacy,rfc2018,global,offload2023,nodes)
  --policy LIST       policies to run each design under, side by side: default, or
                      key=value words joined by + (keys: ${POLICY_KEYS.join(', ')}),
                      e.g. --policy default,nr_vmap_nodes=1 (default: default)
  --vmmapram-loops N  vm_map_ram_test loops per CPU of the 64-CPU block hash table
                      (default 2048)
  --loops N           test_loop_count (default 2000)
  --mask M            run_test_mask (default 1: fix_size_alloc_test); tests 1-7 and 11
                      run simulated; full_fit_alloc_test (2) is left out where it does not
                      fit (it holds 2 * fls(N) * 8192 pages per CPU, 28 GiB at 64 CPUs,
                      beyond the 4 GiB of simulated memory), and the report says so
  --seed S            the runs' seed (default 1)
  --calibration FILE  the cost model (default: $VMALLOC_SIM_CALIBRATION, else the built-in one)
  --record FILE       a trace per simulated run (see Recording, at the end)
  --json, --quiet     as below

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
  --record FILE       a trace per run (see Recording, at the end)
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
  --record FILE       each run once more, untimed, into a space trace (see Recording)
  --json              print the results as JSON
  --quiet             no progress lines on stderr

${SPACE_HELP}
${RECORD_HELP}`;

/** A gc() function without restarting Node with --expose-gc. */
function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Flags each benchmark takes (a flag of the other one is refused, not ignored). */
const BENCH_FLAGS = {
  kva: {
    values: ['cref', 'loops', 'reps', 'mask', 'scale', 'scale-loops', 'heap-pairs', 'record'],
    booleans: ['json', 'quiet', 'help'],
  },
  contention: {
    values: ['loops', 'lock-stat-loops', 'workers', 'design', 'nr-cpus', 'mask', 'record'],
    booleans: ['json', 'quiet', 'help'],
  },
  vmmapram: {
    values: [
      'loops',
      'lock-stat-loops',
      'workers',
      'hash',
      'design',
      'nr-cpus',
      'nr-pages',
      'record',
    ],
    booleans: ['json', 'quiet', 'help'],
  },
  scaling: {
    values: [
      'cpus',
      'design',
      'loops',
      'mask',
      'seed',
      'calibration',
      'policy',
      'vmmapram-loops',
      'record',
    ],
    booleans: ['json', 'quiet', 'help'],
  },
  // --record is refused with the reason (bench-record.ts), not as an unknown option.
  space: { values: [...SPACE_FLAGS.values, 'record'], booleans: SPACE_FLAGS.booleans },
} as const;

/** The benchmarks with flags of their own (bench seeds parses its own: bench-seeds.ts). */
const BENCH_NAMES = Object.keys(BENCH_FLAGS) as (keyof typeof BENCH_FLAGS)[];
const isBenchName = (a: string): a is keyof typeof BENCH_FLAGS =>
  (BENCH_NAMES as string[]).includes(a);

/** Bytes per B of the kva scaling run: two 1-page areas and their slots (about 290 MB at
 * B = 1,000,000, measured; rounded up). */
const SCALE_BYTES_PER_B = 320;
const BASE_BYTES = 96 * 2 ** 20;

export async function benchCommand(given: readonly string[]): Promise<number> {
  const argv = benchRecordArgs(given);
  if (argv[0] === 'seeds') return benchSeeds(argv); // its own flags and help: bench-seeds.ts
  // The benchmark's own flags: one of the other benchmark's is refused, not ignored.
  const named = argv.find(isBenchName);
  const args = parseArgs(
    argv,
    named
      ? { ...BENCH_FLAGS[named], owner: `bench ${named}` }
      : {
          values: [
            ...new Set([
              ...BENCH_FLAGS.kva.values,
              ...BENCH_FLAGS.contention.values,
              ...BENCH_FLAGS.vmmapram.values,
              ...BENCH_FLAGS.scaling.values,
              ...BENCH_FLAGS.space.values,
            ]),
          ],
          booleans: BENCH_FLAGS.kva.booleans,
        },
  );
  const what = args.positional[0];
  if (args.flags.has('help') || what === undefined || what === 'help') {
    process.stdout.write(BENCH_HELP);
    return what === undefined && !args.flags.has('help') ? 1 : 0;
  }
  if (!isBenchName(what))
    throw new UsageError(
      `unknown benchmark "${what}" (the benchmarks are ${[...BENCH_NAMES, 'seeds'].join(', ')})`,
    );
  if (args.positional.length > 1)
    throw new UsageError(`unexpected argument "${args.positional[1]}" after bench ${what}`);
  recordPlanFor(args, what); // a FILE no trace can be written to: refused here, before any run
  if (what === 'contention') return benchContention(args, argv);
  if (what === 'vmmapram') return benchVmMapRam(args, argv);
  if (what === 'scaling') return benchScaling(args, argv);
  if (what === 'space') return benchSpace(args, argv);
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
    progress: stderrProgress(quiet),
  };
  const record = recordPlanFor(args, 'kva');
  const started = new Date();
  const result = runKvaBench(opts);
  // After every timed run: the recorded runs are untimed (kva-record.ts).
  if (record !== undefined) recordKva(opts, record);
  if (args.flags.has('json')) {
    return writeBenchJson(
      started,
      {
        options: { ...opts, gc: undefined, progress: undefined },
        ...result,
      },
      record,
    );
  }
  const cmd = ['npx vmalloc bench kva', ...argv.slice(1)].join(' ');
  process.stdout.write(
    [
      `## bench kva: ${started.toISOString().slice(0, 10)}`,
      '',
      `- command: \`${cmd}\``,
      `- machine: ${machineLine()}`,
      `- loops ${opts.loops} per test, ${opts.reps} repetitions; scaling loops ${opts.scaleLoops}`,
      ...(record === undefined
        ? []
        : [
            `- recorded (--record ${record.base}): ${record.written.length} space traces of untimed runs made after the timed ones`,
          ]),
      '',
      formatKvaBench(result, opts.cref !== undefined),
      '',
    ].join('\n'),
  );
  return 0;
}
