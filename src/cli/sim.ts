/**
 * `vmalloc sim calibrate` and the simulated runs of `vmalloc test ... simulate=1`.
 *
 * Holds: the calibration file (read from VMALLOC_SIM_CALIBRATION or --calibration, else the
 * built-in default; written by `sim calibrate --out`), simCalibrate() and simulatedTest() (the
 * kernel's lines in virtual time, lock_stat in virtual time and the spinning share per class).
 * Callers: src/cli/main.ts, src/cli/test.ts.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { simulateRecorded } from '../bench/record-plan.js';
import { formatLockStat } from '../shared/lock-stat.js';
import { DEFAULT_CALIBRATION, parseCalibration, type Calibration } from '../sim/cost.js';
import { calibrate } from '../sim/calibrate.js';
import { calibrationJson, formatCalibration } from '../sim/calibrate-report.js';
import { simulateTestVmalloc, type SimResult } from '../sim/machine.js';
import { summaryLines } from '../test-vmalloc/driver.js';
import { DESIGNS, type TestParams } from '../test-vmalloc/params.js';
import { simulatedMask } from '../sim/workload.js';
import type { VmallocDesign } from '../mm/config.js';
import { INT_MAX, UsageError, intFlag, intListFlag, parseArgs, wordListFlag } from './args.js';
import { jsonReport } from './json-report.js';
import { machineLine } from './machine.js';
import { stderrProgress } from './run-flags.js';

export const SIM_HELP = `Usage: vmalloc sim calibrate [options]

Measures this machine's cross-core costs on two workers (a cache-line transfer, the wake of
a sleeping lock waiter, the releaser's notify, the real lock's spin budget, a free lock's
lock + unlock), fits the simulator's cost model (ns per access, page, byte zeroed, shared by
the designs; per design a fixed cost per allocator call, and per lock acquisition when
leaving one test out shows it helps; tree step and record merged fixed) to real one-worker
test_vmalloc runs on this machine only (least squares over the tests, weighed by their real
time), prints the fit's error per test, then validates without refitting: the simulator at 1
and 2 CPUs against real runs of 1 and 2 workers (loops per second and each test's time;
acquisitions, contentions, con-bounces, mean hold and wait per busy lock class; the rows of
two or more workers are held out of the fit) and says which of the acceptance points hold. Run it with both cores idle: the real two-worker
runs need them. Simulated runs: vmalloc test ... nr_threads=N simulate=1.

Options:
  --loops N        test_loop_count of every run (default 2000)
  --cpus LIST      machine sizes validated, real workers against simulated CPUs (default 1,2)
  --repeat R       real runs per configuration; medians are used (default 3)
  --design LIST    designs (default global,nodes)
  --seed S         the runs' seed (default 1)
  --out FILE       write the calibration there as JSON (use it with
                   VMALLOC_SIM_CALIBRATION=FILE or bench scaling --calibration FILE)
  --json           print the report as JSON
  --quiet          no progress lines on stderr
`;

/** The calibration a simulated run uses: `path`, else $VMALLOC_SIM_CALIBRATION, else the default. */
export function loadCalibration(path?: string): Calibration {
  const p = path ?? process.env['VMALLOC_SIM_CALIBRATION'];
  if (p === undefined || p === '') return DEFAULT_CALIBRATION;
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read the calibration ${p}: ${(e as Error).message}`);
  }
  try {
    return parseCalibration(text, p);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export async function simCommand(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, {
    values: ['loops', 'repeat', 'design', 'seed', 'out', 'cpus'],
    booleans: ['json', 'quiet', 'help'],
    owner: 'sim calibrate',
  });
  const what = args.positional[0];
  if (args.flags.has('help') || what === undefined || what === 'help') {
    process.stdout.write(SIM_HELP);
    return what === undefined && !args.flags.has('help') ? 1 : 0;
  }
  if (what !== 'calibrate')
    throw new UsageError(`unknown sim command "${what}" (the commands are calibrate)`);
  if (args.positional.length > 1)
    throw new UsageError(`unexpected argument "${args.positional[1]}" after sim calibrate`);
  const quiet = args.flags.has('quiet');
  const o = {
    loops: intFlag(args, 'loops', 2000, INT_MAX, 'test_loop_count is an int'),
    repeat: intFlag(args, 'repeat', 3, 100, 'at most 100 repetitions'),
    designs: wordListFlag<VmallocDesign>(args, 'design', ['global', 'nodes'], DESIGNS),
    seed: intFlag(args, 'seed', 1, 0xffffffff, 'a u32'),
    cpus: intListFlag(args, 'cpus', [1, 2], 512, 'simulated CPUs', false),
    // The tests the simulator runs (a real run of the others would have no simulated twin).
    mask: simulatedMask(),
    progress: stderrProgress(quiet),
  };
  const report = await calibrate(o);
  const out = args.flags.get('out');
  if (typeof out === 'string')
    writeFileSync(out, JSON.stringify(report.calibration, null, 2) + '\n');
  if (args.flags.has('json')) {
    process.stdout.write(jsonReport({ machine: machineLine(), ...calibrationJson(report) }));
    return 0;
  }
  process.stdout.write(
    [
      `## sim calibrate: ${new Date().toISOString().slice(0, 10)}`,
      '',
      `- command: \`${['npx vmalloc sim', ...argv].join(' ')}\``,
      `- machine: ${machineLine()}`,
      `- test_loop_count ${o.loops}, ${o.repeat} real runs per configuration (medians), seed ${o.seed}, nr_cpus = workers, validated at ${o.cpus.join(', ')} CPU(s)`,
      '',
      formatCalibration(report),
      typeof out === 'string' ? `calibration written to ${out}\n` : '',
    ].join('\n'),
  );
  return 0;
}

/** The spinning share per lock class, as perf's share of cycles in the spinlock slowpath. */
export function spinLines(r: SimResult): string[] {
  const lines = [
    `virtual CPU time spinning: ${(r.spinShare * 100).toFixed(1)}% of ${r.workers.length} CPUs' time (native_queued_spin_lock_slowpath's share in perf)`,
  ];
  for (const s of r.spin) lines.push(`  ${s.name.padEnd(28)} ${(s.spinShare * 100).toFixed(2)}%`);
  return lines;
}

/** `vmalloc test ... simulate=1`: the kernel's lines in virtual time. */
export function simulatedTest(params: TestParams, json: boolean): number {
  // record=: each simulated CPU's view records; the order is the order the machine ran them.
  const { result: r, traced } = simulateRecorded(params, (views) =>
    simulateTestVmalloc({ params, calibration: loadCalibration(), ...views }),
  );
  if (traced !== undefined)
    process.stderr.write(`record: ${traced} calls written to ${params.record}\n`);
  if (json) {
    // (jsonReport: schemaVersion, and lock_stat's times under unit-suffixed names)
    process.stdout.write(
      jsonReport({
        params,
        nrCpus: r.nrCpus,
        virtualElapsedNs: r.elapsedNs,
        workers: r.workers,
        spinShareRatio: r.spinShare,
        spin: r.spin.map((s) => ({ name: s.name, spinNs: s.spinNs, spinShareRatio: s.spinShare })),
        lockStat: params.lock_stat ? r.lockStats : undefined,
        stats: r.vm.stats(),
      }),
    );
    return 0;
  }
  process.stdout.write(summaryLines(r.workers, params).join('\n') + '\n');
  if (params.lock_stat) process.stdout.write('\n' + formatLockStat(r.lockStats));
  process.stdout.write('\n' + spinLines(r).join('\n') + '\n');
  return 0;
}
