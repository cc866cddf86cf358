#!/usr/bin/env node
/**
 * The `vmalloc` command line: dispatches to the subcommands.
 *
 * Holds: the top-level usage text and error handling (a usage error is one line on stderr
 * and exit status 1).
 * Callers: the `bin` entry of package.json.
 */

import { readFileSync } from 'node:fs';
import { VmallocError } from '../errors.js';
import { UsageError } from './args.js';
import { BENCH_HELP, benchCommand } from './bench.js';
import { LOAD_VMALLOCINFO_HELP, loadVmallocinfoCommand } from './load-vmallocinfo.js';
import { REPLAY_HELP, replayCommand } from './replay.js';
import { REPORT_HELP, reportCommand } from './report.js';
import { SIM_HELP, simCommand } from './sim.js';
import { testCommand, testHelp } from './test.js';

const HELP = `Usage: vmalloc <command> [arguments]

Commands:
  test [mode] [key=value ...]
                        the kernel's test_vmalloc suite (modes: performance, stress, smoke)
  bench kva [options]   the free-tree core on the VA-only test_vmalloc patterns, optionally
                        beside the C yardstick (--cref PATH)
  bench contention      test_vmalloc with 1-8 workers, design global vs nodes, lock_stat
  bench vmmapram        vm_map_ram_test, one global block hash vs per-CPU hashes, lock_stat
  bench scaling         a simulated machine of 1 to 256 CPUs, global vs nodes, beside the seed
  sim calibrate         fit the simulator's cost model here and validate it on real workers
  bench seeds           the seeds' measurements, old design vs new, with verdicts (--quick)
  report [test ...] [bench scaling ...] [--out FILE]
                        one self-contained HTML report: the address-space map, per-test
                        times per design, scaling curves, lock_stat, the parameters
  replay TRACE [design=NAME] [nr_cpus=N] [--strict]
                        replay a trace written with record=TRACE on any design, and report
                        where its addresses, failures and times diverge
  load-vmallocinfo FILE [test args...]
                        build the layout of a /proc/vmallocinfo, then run test_vmalloc on it
  help [command]        this text, or a command's own
  --version             the package's version

Run 'vmalloc <command> --help' for a command's options.
`;

async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      if (rest[0] === 'bench') process.stdout.write(BENCH_HELP);
      else if (rest[0] === 'test') process.stdout.write(testHelp());
      else if (rest[0] === 'sim') process.stdout.write(SIM_HELP);
      else if (rest[0] === 'report') process.stdout.write(REPORT_HELP);
      else if (rest[0] === 'replay') process.stdout.write(REPLAY_HELP);
      else if (rest[0] === 'load-vmallocinfo') process.stdout.write(LOAD_VMALLOCINFO_HELP);
      else process.stdout.write(HELP);
      return cmd === undefined ? 1 : 0;
    case '--version':
    case '-v':
    case 'version': {
      // dist/src/cli/main.js -> the package root's package.json (shipped in every tarball).
      const pkg = JSON.parse(
        readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
      ) as { version: string };
      process.stdout.write(`${pkg.version}\n`);
      return 0;
    }
    case 'bench':
      return await benchCommand(rest);
    case 'test':
      return await testCommand(rest);
    case 'sim':
      return await simCommand(rest);
    case 'report':
      return await reportCommand(rest);
    case 'replay':
      return await replayCommand(rest);
    case 'load-vmallocinfo':
      return await loadVmallocinfoCommand(rest);
    default:
      throw new UsageError(
        `unknown command "${cmd}" (the commands are test, bench, sim, report, replay, load-vmallocinfo, help)`,
      );
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError || err instanceof VmallocError) {
    // One line: what was refused and why; no stack trace.
    process.stderr.write(`vmalloc: ${err.message}; run 'vmalloc help' for usage\n`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
