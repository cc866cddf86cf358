/**
 * `vmalloc bench scaling`: argument handling and output of the simulated-machine benchmark
 * (src/bench/scaling.ts): its --policy and --calibration flags, the Markdown report and the
 * JSON (the cost model's weights named in ns: weightsNs).
 * Callers: src/cli/bench.ts (its flags and help text are there, with the other benchmarks').
 */

import {
  DEFAULT_POLICY,
  SEED_2023,
  formatScaling,
  formatVmMapRamScaling,
  parsePolicy,
  runScalingBench,
  runVmMapRamScaling,
  type Policy,
} from '../bench/scaling.js';
import type { VmallocDesign } from '../mm/config.js';
import type { Calibration } from '../sim/cost.js';
import { checkMask } from '../test-vmalloc/driver.js';
import { DESIGNS } from '../test-vmalloc/params.js';
import {
  INT_MAX,
  UsageError,
  intFlag,
  intListFlag,
  wordListFlag,
  type ParsedArgs,
} from './args.js';
import { recordPlanFor, writeBenchJson } from './bench-record.js';
import { machineLine } from './machine.js';
import { loadCalibration } from './sim.js';

/** bench scaling's designs by default. */
const SCALING_DESIGNS: VmallocDesign[] = ['legacy', 'rfc2018', 'global', 'offload2023', 'nodes'];

/** --policy LIST: comma-separated policies, each `default` or key=value words joined by '+'. */
function policiesFlag(args: ParsedArgs): Policy[] {
  const v = args.flags.get('policy');
  if (typeof v !== 'string') return [DEFAULT_POLICY];
  const seen = new Set<string>();
  return v.split(',').map((text) => {
    if (seen.has(text)) throw new UsageError(`--policy: "${text}" is given twice`);
    seen.add(text);
    try {
      return parsePolicy(text);
    } catch (e) {
      throw new UsageError(`--policy: ${(e as Error).message}`);
    }
  });
}

/** A cost model as the JSON reports name it: weightsNs are ns per unit of each feature. */
function calibrationJson(c: Calibration): Record<string, unknown> {
  const { weights, ...rest } = c;
  return { ...rest, weightsNs: weights };
}

/** `bench scaling` with its parsed flags; `argv` for the report's command line. */
export async function benchScaling(args: ParsedArgs, argv: readonly string[]): Promise<number> {
  const quiet = args.flags.has('quiet');
  const mask = intFlag(args, 'mask', 1, INT_MAX, 'run_test_mask is an int');
  try {
    checkMask(mask);
  } catch (e) {
    throw new UsageError(`--mask: ${(e as Error).message}`);
  }
  const cal = args.flags.get('calibration');
  const o = {
    cpus: intListFlag(
      args,
      'cpus',
      [1, 2, 4, 8, 16, 32, 64, 128, 256],
      512,
      'at most 512 simulated CPUs',
      false,
    ),
    designs: wordListFlag<VmallocDesign>(args, 'design', SCALING_DESIGNS, DESIGNS),
    loops: intFlag(args, 'loops', 2000, INT_MAX, 'test_loop_count is an int'),
    mask,
    seed: intFlag(args, 'seed', 1, 0xffffffff, 'a u32'),
    calibration: loadCalibration(typeof cal === 'string' ? cal : undefined),
    policies: policiesFlag(args),
    vmMapRamLoops: intFlag(args, 'vmmapram-loops', 2048, INT_MAX, 'test_loop_count is an int'),
    progress: quiet ? undefined : (line: string) => process.stderr.write(`  ${line}\n`),
  };
  const record = recordPlanFor(args, 'scaling');
  const started = new Date();
  const rows = runScalingBench({ ...o, record });
  // The vm_map_ram table at the seed's size, when the sizes asked for include it.
  const vmr = o.cpus.includes(SEED_2023.cpus)
    ? runVmMapRamScaling({
        cpus: SEED_2023.cpus,
        loops: o.vmMapRamLoops,
        seed: o.seed,
        calibration: o.calibration,
        progress: o.progress,
        record,
      })
    : [];
  if (args.flags.has('json')) {
    return writeBenchJson(
      started,
      {
        // The cost model with its unit named (a calibration file calls them weights).
        options: { ...o, progress: undefined, calibration: calibrationJson(o.calibration) },
        rows,
        vmMapRam: vmr,
      },
      record,
    );
  }
  process.stdout.write(
    [
      `## bench scaling: ${started.toISOString().slice(0, 10)}`,
      '',
      `- command: \`${['npx vmalloc bench scaling', ...argv.slice(1)].join(' ')}\``,
      `- simulated on: ${machineLine()}`,
      `- run_test_mask ${o.mask}, test_loop_count ${o.loops}, seed ${o.seed}, nr_threads = nr_cpus = CPUs; calibration: ${o.calibration.source}`,
      ...(record === undefined
        ? []
        : [
            `- recorded (--record ${record.base}): ${record.written.length} traces; virtual times as unrecorded, wall times grow`,
          ]),
      '',
      formatScaling(rows, o),
      vmr.length > 0 ? formatVmMapRamScaling(vmr, o.vmMapRamLoops) : '',
    ].join('\n'),
  );
  return 0;
}
