/**
 * `vmalloc test`: test_vmalloc.sh for this library.
 *
 * Holds: argument handling (modes, key=value parameters with the script's validation, flags),
 * the progress indicator, and the output (the kernel's Summary lines, or JSON).
 * Callers: src/cli/main.ts.
 */

import {
  checkMask,
  summaryLines,
  unexpectedFailures,
  type Progress,
} from '../test-vmalloc/driver.js';
import { TEST_VMALLOC_VERSION, XFAIL_TESTS } from '../test-vmalloc/kernel-version.js';
import { jsonReport } from './json-report.js';
import { runTestVmalloc } from '../test-vmalloc/run.js';
import {
  MODES,
  PARAM_HELP,
  ParamError,
  applyParams,
  defaultParams,
  modeWords,
  policyLine,
  policyOptions,
  type TestMode,
  type TestParams,
} from '../test-vmalloc/params.js';
import { IMPLEMENTED_MASK, TEST_CASES } from '../test-vmalloc/tests.js';
import { resolveConfig } from '../mm/config.js';
import { UsageError } from './args.js';
import { threadBoundError } from './limits.js';
import { clockFromCpuinfo, machineMemory, nodeCpuCount } from './machine.js';
import { simulatedTest } from './sim.js';
import { simulatedMask } from '../sim/workload.js';

export function testHelp(): string {
  const params = (Object.keys(PARAM_HELP) as (keyof TestParams)[])
    .map((k) => `  ${k.padEnd(22)} ${PARAM_HELP[k]}`)
    .join('\n');
  const tests = TEST_CASES.map(
    (t) =>
      `  id: ${String(t.bit).padEnd(5)} name: ${t.name}${t.run ? '' : '  (not implemented yet)'}${XFAIL_TESTS.has(t.name) ? '  (expected to fail: xfail)' : ''}`,
  ).join('\n');
  return `Usage: vmalloc test [performance|stress|smoke] [key=value ...] [options]

Runs the kernel's test_vmalloc suite on this library and prints the lines of
${TEST_VMALLOC_VERSION}: "Summary: <test> passed: N failed: N xfailed: N repeat: N
loops: N avg: N usec" per worker and test, then "All test took worker<i>=<n> cycles"
(the worker's time at the clock rate /proc/cpuinfo gives, shown on stderr). A test the
kernel expects to fail (xfail) counts as xfailed when it fails. The exit status is 1 when
any test failed unexpectedly (an xfailed one does not count), else 0.

Modes (test_vmalloc.sh):
  performance            ${MODES.performance}
  smoke                  ${MODES.smoke}
  stress                 ${MODES.stress}
With no mode the defaults run: every implemented test, one worker, ${(1_000_000).toLocaleString('en-US')} loops.
Parameters given after a mode override it.

Parameters (as test_vmalloc.sh and the module take them: each one once, every value a
number greater than zero, a bool 1, an int within its type; nr_threads at most 4096, as
a worker is a CPU, and at most what this machine's free memory holds: a Node isolate per
worker besides the simulated memory):
${params}

Tests (run_test_mask bits):
${tests}

Options:
  --json                 print the results as JSON instead of the kernel's lines
  --vmallocinfo          print /proc/vmallocinfo after the run
  --check                verify every invariant after every operation (slow)
  --check=N              verify every invariant after every N-th operation (N >= 1)
  --quiet                no progress or configuration lines on stderr
  --help                 this text
`;
}

const FLAGS = ['--json', '--vmallocinfo', '--check', '--quiet', '--help'];

/** What `vmalloc load-vmallocinfo FILE` adds to a test run (src/cli/load-vmallocinfo.ts). */
export interface LoadedLayout {
  file: string;
  text: string;
  /** Parameters applied before the mode and the user's (a short run by default). */
  defaults: readonly string[];
}

export async function testCommand(argv: readonly string[], layout?: LoadedLayout): Promise<number> {
  const who = layout === undefined ? 'vmalloc test' : 'vmalloc load-vmallocinfo';
  const flags = new Set<string>();
  const words: string[] = [];
  let checkEvery = 0;
  let mode: TestMode | undefined;
  for (const [k, raw] of argv.entries()) {
    if (raw.startsWith('-')) {
      let arg = raw === '-h' ? '--help' : raw;
      const every = /^--check=(.*)$/.exec(arg);
      if (every !== null) {
        // An N-th operation check: a positive integer, written as one.
        if (!/^[1-9][0-9]{0,9}$/.test(every[1]!) || Number(every[1]) > 2 ** 31 - 1)
          throw new UsageError(
            `--check=N: N must be a positive integer (check after every N-th operation), got "${every[1]}"`,
          );
        checkEvery = Number(every[1]);
        arg = '--check';
      } else if (arg === '--check') checkEvery = 1;
      if (!FLAGS.includes(arg))
        throw new UsageError(`unknown option ${raw} (the options are ${FLAGS.join(', ')})`);
      if (flags.has(arg)) throw new UsageError(`option ${arg} is given twice`);
      flags.add(arg);
    } else if (
      k === 0 &&
      !raw.includes('=') &&
      !Object.prototype.hasOwnProperty.call(PARAM_HELP, raw)
    ) {
      if (!Object.prototype.hasOwnProperty.call(MODES, raw))
        throw new UsageError(
          `unknown mode "${raw}" (the modes are ${Object.keys(MODES).join(', ')}; parameters are key=value)`,
        );
      mode = raw as TestMode;
    } else {
      words.push(raw);
    }
  }
  if (flags.has('--help')) {
    process.stdout.write(testHelp());
    return 0;
  }
  const numCpus = nodeCpuCount();
  const params = defaultParams(IMPLEMENTED_MASK, numCpus);
  try {
    if (layout !== undefined) applyParams(params, layout.defaults);
    if (mode) applyParams(params, modeWords(mode, numCpus));
    applyParams(params, words); // after the mode: its words override the mode's
    // A simulated run defaults to the tests the simulator runs (a mask given is checked).
    const maskGiven = [...(mode ? modeWords(mode, numCpus) : []), ...words].some((w) =>
      w.startsWith('run_test_mask='),
    );
    if (params.simulate && !maskGiven) params.run_test_mask = simulatedMask();
    checkMask(params.run_test_mask);
    runPolicy(params); // a policy createVmalloc refuses is refused here, before anything runs
  } catch (e) {
    if (e instanceof ParamError) process.stderr.write(`${e.message}\n`);
    else process.stderr.write(`${who}: ${(e as Error).message}\n`);
    return 1;
  }
  if (params.simulate && layout !== undefined) {
    process.stderr.write(`${who}: simulate=1 does not load a layout: run on real workers\n`);
    return 1;
  }
  if (params.simulate) {
    // A simulated machine: one thread, virtual time (src/sim); no worker isolates to bound.
    if (!flags.has('--quiet'))
      process.stderr.write(
        `test_vmalloc: simulated machine of ${Math.max(params.nr_cpus, params.nr_threads)} CPUs, design=${params.design} nr_threads=${params.nr_threads} run_test_mask=${params.run_test_mask} test_loop_count=${params.test_loop_count} seed=${params.seed}; times are virtual\n` +
          `test_vmalloc: policy ${runPolicy(params)}\n`,
      );
    try {
      return simulatedTest(params, flags.has('--json'));
    } catch (e) {
      process.stderr.write(`vmalloc test: ${(e as Error).message}\n`);
      return 1;
    }
  }
  // Checked once every parameter is in: the memory grows with nr_threads, nr_cpus, the mask
  // and nr_pages.
  const tooMany = threadBoundError(params, machineMemory());
  if (tooMany !== null) {
    process.stderr.write(`${who}: ${tooMany}\n`);
    return 1;
  }
  const quiet = flags.has('--quiet');
  const json = flags.has('--json');
  const say = (line: string): void => {
    if (!quiet) process.stderr.write(line);
  };
  say(
    `test_vmalloc: design=${params.design} nr_cpus=${Math.max(params.nr_cpus, params.nr_threads)} nr_threads=${params.nr_threads} ` +
      `run_test_mask=${params.run_test_mask} test_loop_count=${params.test_loop_count} test_repeat_count=${params.test_repeat_count} ` +
      `sequential_test_order=${Number(params.sequential_test_order)} nr_pages=${params.nr_pages} seed=${params.seed}\n` +
      `test_vmalloc: policy ${runPolicy(params)}\n`,
  );
  if (params.nr_threads > params.nr_cpus) {
    say(
      `test_vmalloc: ${params.nr_threads} workers on a machine of ${params.nr_cpus} CPUs: simulating ${params.nr_threads} CPUs (a worker is a CPU)\n`,
    );
  }
  const progress = quiet ? undefined : progressPrinter();
  const started = Date.now();
  let run;
  try {
    run = await runTestVmalloc({
      params,
      checkEveryOp: checkEvery,
      logger: { warn: (m) => process.stderr.write(`${m}\n`) },
      progress: progress?.update,
      lockStatFromStart: params.lock_stat,
      ...(layout === undefined ? {} : { vmallocinfo: layout.text }),
    });
  } catch (e) {
    progress?.done();
    process.stderr.write(`${who}: ${(e as Error).message}\n`);
    return 1;
  }
  progress?.done();
  const { vm, workers } = run;
  if (run.imported !== undefined && layout !== undefined) {
    const i = run.imported;
    say(
      `load-vmallocinfo: ${layout.file}: ${i.busy} busy areas, ${i.lazy} unpurged ranges, ${i.pages} pages; addresses ${i.addresses}\n`,
    );
    // Said even with --quiet: the layout is not the machine's as it was.
    for (const w of i.warnings) process.stderr.write(`load-vmallocinfo: warning: ${w}\n`);
  }
  if (run.traced !== undefined) say(`record: ${run.traced} calls written to ${params.record}\n`);
  const clock = clockFromCpuinfo();
  say(`test_vmalloc: cycles at ${clock.source}\n`);
  if (json) {
    process.stdout.write(
      jsonReport({
        params,
        version: TEST_VMALLOC_VERSION,
        clockMhz: clock.mhz,
        nrCpus: run.nrCpus,
        elapsedMs: Date.now() - started,
        workers,
        stats: vm.stats(),
        lockStat: params.lock_stat ? vm.lockStats() : undefined,
        vmallocinfo: flags.has('--vmallocinfo') ? vm.vmallocinfo() : undefined,
        imported:
          run.imported === undefined
            ? undefined
            : {
                file: layout?.file,
                addresses: run.imported.addresses,
                dense: run.imported.dense,
                busy: run.imported.busy,
                lazy: run.imported.lazy,
                pages: run.imported.pages,
                warnings: run.imported.warnings,
              },
      }),
    );
  } else {
    process.stdout.write(summaryLines(workers, params, clock).join('\n') + '\n');
    if (params.lock_stat) process.stdout.write('\n' + vm.lockStat());
    if (flags.has('--vmallocinfo')) process.stdout.write(vm.vmallocinfo());
  }
  // The kernel's module prints and unloads; here a test that failed unexpectedly fails the run.
  return unexpectedFailures(workers) > 0 ? 1 : 0;
}

/**
 * The run's policy with every knob resolved (the design's defaults filled in), or the
 * refusal of a bad one (createVmalloc's message), checked before the run starts.
 */
function runPolicy(params: TestParams): string {
  // (A CPU count beyond createVmalloc's 4096 is refused later, with the machine's bound.)
  const cpus = Math.min(Math.max(params.nr_cpus, params.nr_threads), 4096);
  return policyLine(
    resolveConfig({ design: params.design, nrCpus: cpus, ...policyOptions(params) }),
  );
}

/** A one-line progress indicator on stderr, shown once a run has lasted two seconds. */
function progressPrinter(): { update: (p: Progress) => void; done: () => void } {
  const tty = process.stderr.isTTY === true;
  const start = Date.now();
  let last = 0;
  let shown = false;
  return {
    update(p: Progress): void {
      const now = Date.now();
      if (now - start < 2000 || now - last < (tty ? 500 : 5000)) return;
      last = now;
      shown = true;
      const line = `[${((now - start) / 1000).toFixed(0)}s] worker${p.worker}: ${p.test} repeat ${p.repeat}${p.loops ? `, ${p.loops.toLocaleString('en-US')} loops` : ''}`;
      process.stderr.write(tty ? `\r${line.padEnd(79)}` : `${line}\n`);
    },
    done(): void {
      if (shown && tty) process.stderr.write('\r' + ' '.repeat(79) + '\r');
    },
  };
}
