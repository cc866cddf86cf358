/**
 * `vmalloc bench vmmapram`: argument handling and output of the vm_map_ram benchmark
 * (src/bench/vmmapram.ts: vm_map_ram_test on 1 and 2 workers, the vmap blocks found through one
 * global hash and through per-CPU hashes).
 * Callers: src/cli/bench.ts (its flags and help text are there, with the other benchmarks').
 */

import { formatVmMapRam, runVmMapRamBench, type HashMode } from '../bench/vmmapram.js';
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
import { stderrProgress } from './run-flags.js';

/** `bench vmmapram` with its parsed flags; `argv` for the report's command line. */
export async function benchVmMapRam(args: ParsedArgs, argv: readonly string[]): Promise<number> {
  const quiet = args.flags.has('quiet');
  const workers = intListFlag(
    args,
    'workers',
    [1, 2],
    MAX_THREADS,
    'a worker is a CPU, and at most 4096 are simulated',
    false,
  );
  const biggest = Math.max(...workers);
  const nrCpus = intFlag(args, 'nr-cpus', biggest, 4096, 'nr_cpus');
  if (nrCpus < biggest)
    throw new UsageError(
      `--nr-cpus ${nrCpus} is below the largest --workers count ${biggest} (a worker is a CPU)`,
    );
  const designs = wordListFlag<VmallocDesign>(args, 'design', ['nodes'], DESIGNS);
  if (designs.length !== 1) throw new UsageError('--design takes one design here');
  const o = {
    loops: intFlag(args, 'loops', 200_000, INT_MAX, 'test_loop_count is an int'),
    lockStatLoops: intFlag(args, 'lock-stat-loops', 200_000, INT_MAX, 'test_loop_count is an int'),
    workers,
    hashes: wordListFlag<HashMode>(args, 'hash', ['global', 'percpu'], ['global', 'percpu']),
    design: designs[0]!,
    nrCpus,
    nrPages: intFlag(args, 'nr-pages', 1, 64, 'vm_map_ram blocks serve at most 64 pages'),
    progress: stderrProgress(quiet),
  };
  const memory = machineMemory();
  const p = defaultParams(1024, nrCpus);
  p.run_test_mask = 1024;
  for (const w of workers) {
    const tooMany = threadBoundError({ ...p, nr_threads: w }, memory, '--workers');
    if (tooMany !== null) throw new UsageError(tooMany);
  }
  const record = recordPlanFor(args, 'vmmapram');
  const started = new Date();
  const result = await runVmMapRamBench({ ...o, record });
  if (args.flags.has('json')) {
    return writeBenchJson(
      started,
      {
        ...result,
      },
      record,
    );
  }
  process.stdout.write(
    [
      `## bench vmmapram: ${started.toISOString().slice(0, 10)}`,
      '',
      `- command: \`${['npx vmalloc bench vmmapram', ...argv.slice(1)].join(' ')}\``,
      `- machine: ${machineLine()}`,
      `- design ${o.design}, nr_cpus ${o.nrCpus}, nr_pages ${o.nrPages}, test_loop_count ${o.loops} (lock statistics: ${o.lockStatLoops}); one vm_map_ram + store + vm_unmap_ram per loop`,
      ...recordedLine(record),
      '',
      formatVmMapRam(result),
      '',
    ].join('\n'),
  );
  return 0;
}
