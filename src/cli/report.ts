/**
 * `vmalloc report`: runs a test_vmalloc run (on several designs) and a simulated scaling run,
 * and writes one self-contained HTML report of them (src/report/).
 *
 * Holds: REPORT_HELP, the argument handling (the report's own options anywhere; `test ...`
 * takes what `vmalloc test` takes, `bench scaling ...` what that benchmark takes), and
 * reportCommand().
 * Callers: src/cli/main.ts.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import type { VmallocDesign } from '../mm/config.js';
import type { ScalingOptions } from '../bench/scaling.js';
import { collectReport, type ReportData } from '../report/collect.js';
import { renderReport } from '../report/html.js';
import { syntheticReport } from '../report/synthetic.js';
import { checkMask } from '../test-vmalloc/driver.js';
import {
  DESIGNS,
  MODES,
  applyParams,
  defaultParams,
  modeWords,
  type TestMode,
  type TestParams,
} from '../test-vmalloc/params.js';
import { IMPLEMENTED_MASK } from '../test-vmalloc/tests.js';
import {
  INT_MAX,
  UsageError,
  intFlag,
  intListFlag,
  parseArgs,
  wordListFlag,
  type ParsedArgs,
} from './args.js';
import { threadBoundError } from './limits.js';
import { machineLine, machineMemory, nodeCpuCount } from './machine.js';
import { maskFlag, stderrProgress } from './run-flags.js';
import { loadCalibration } from './sim.js';

/** The test run when none is given: small (about a minute for the five designs), two workers. */
export const DEFAULT_TEST_WORDS = ['run_test_mask=7', 'nr_threads=2', 'test_loop_count=10000'];
const DEFAULT_DESIGNS: VmallocDesign[] = ['global', 'nodes', 'legacy', 'rfc2018', 'offload2023'];
const DEFAULT_SCALING_CPUS = [1, 2, 4, 8, 16, 32, 64];
const DEFAULT_SCALING_LOOPS = 500;
/**
 * fix_size_alloc_test alone: long_busy_list_alloc_test keeps 15,000 areas per simulated CPU,
 * which makes a 64-CPU simulation take minutes; fix_size already shows the lock contention.
 */
const DEFAULT_SCALING_MASK = 1;

export const REPORT_HELP = `Usage: vmalloc report [test [mode] [key=value ...]] [bench scaling [options]] [options]

Runs test_vmalloc on each design and a simulated scaling run, and writes one self-contained
HTML file (open it in any browser; it fetches nothing): the address space at the end of
each design's run (busy, free, lazily freed and pooled areas, vm_map_ram blocks; zoom from
the whole window down to pages; coloured by vmap node), the free-block size histogram,
per-test times per design, the scaling curves, lock_stat, and the run's parameters.

  test [mode] [key=value ...]
                        the test run, as 'vmalloc test' takes it (default:
                        ${DEFAULT_TEST_WORDS.join(' ')}); lock_stat is always
                        collected; design=X runs on X alone
  bench scaling [--cpus LIST] [--design LIST] [--loops N] [--mask M] [--seed S]
                [--calibration FILE]
                        the scaling run, as 'vmalloc bench scaling' takes it (default here:
                        --cpus ${DEFAULT_SCALING_CPUS.join(',')} --loops ${DEFAULT_SCALING_LOOPS} --mask ${DEFAULT_SCALING_MASK})

Options:
  --out FILE            where to write the report (default report.html)
  --designs LIST        the designs the test runs on
                        (default ${DEFAULT_DESIGNS.join(',')})
  --no-scaling          no scaling run
  --synthetic-areas N   no test and no scaling run: the map of N live areas reserved in a
                        'nodes' subsystem of 8 CPUs (1 to 16 pages each, one in eight of the
                        areas made freed again), to see and measure a large space
  --quiet               no progress lines on stderr
  --help                this text
`;

/** The report's own options; they may appear anywhere on the line. */
const OWN_VALUES = ['out', 'designs', 'synthetic-areas'];
const OWN_BOOLEANS = ['no-scaling', 'quiet', 'help'];
const SCALING_SPEC = {
  values: ['cpus', 'design', 'loops', 'mask', 'seed', 'calibration'],
  booleans: [],
  owner: 'report bench scaling',
};

interface Split {
  own: string[];
  test: string[] | null;
  scaling: string[] | null;
}

/** Sorts the words into the report's options, the test's words and the scaling's. */
function split(argv: readonly string[]): Split {
  const out: Split = { own: [], test: null, scaling: null };
  let seg: string[] | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.startsWith('--') ? a.slice(2).split('=')[0]! : a === '-h' ? 'help' : '';
    if (OWN_BOOLEANS.includes(name)) {
      out.own.push(`--${name}${a.includes('=') ? a.slice(a.indexOf('=')) : ''}`);
    } else if (OWN_VALUES.includes(name)) {
      out.own.push(a);
      if (!a.includes('=') && i + 1 < argv.length) out.own.push(argv[++i]!);
    } else if (a === 'test' && out.test === null && seg === null) {
      seg = out.test = [];
    } else if (a === 'bench' && out.scaling === null) {
      if (argv[i + 1] !== 'scaling')
        throw new UsageError(
          `report runs 'bench scaling' only, got "bench ${argv[i + 1] ?? ''}" (see 'vmalloc report --help')`,
        );
      i++;
      seg = out.scaling = [];
    } else if (seg === null) {
      throw new UsageError(
        `report: unexpected "${a}" (give 'test ...' or 'bench scaling ...' first; the options are --${[...OWN_VALUES, ...OWN_BOOLEANS].join(', --')})`,
      );
    } else {
      seg.push(a);
    }
  }
  return out;
}

function testParams(words: readonly string[]): TestParams {
  const numCpus = nodeCpuCount();
  const params = defaultParams(IMPLEMENTED_MASK, numCpus);
  let rest = [...words];
  const first = rest[0];
  if (first !== undefined && !first.includes('=') && !first.startsWith('-')) {
    if (!Object.prototype.hasOwnProperty.call(MODES, first))
      throw new UsageError(
        `report test: unknown mode "${first}" (the modes are ${Object.keys(MODES).join(', ')}; parameters are key=value)`,
      );
    applyParams(params, modeWords(first as TestMode, numCpus));
    rest = rest.slice(1);
  }
  const flag = rest.find((w) => w.startsWith('-'));
  if (flag !== undefined)
    throw new UsageError(
      `report test: unknown option ${flag} (the report's options are listed by 'vmalloc report --help')`,
    );
  try {
    applyParams(params, rest);
    checkMask(params.run_test_mask);
  } catch (e) {
    throw new UsageError(`report test: ${(e as Error).message}`);
  }
  if (params.simulate)
    throw new UsageError(
      "report test: simulate=1 is not taken here (the report's test run uses real workers); the simulated machines are the 'bench scaling' part",
    );
  const tooMany = threadBoundError(params, machineMemory());
  if (tooMany !== null) throw new UsageError(`report test: ${tooMany}`);
  return params;
}

function scalingOptions(words: readonly string[], quiet: boolean): ScalingOptions {
  const args = parseArgs(words, SCALING_SPEC);
  if (args.positional.length > 0)
    throw new UsageError(`report bench scaling: unexpected "${args.positional[0]}"`);
  const mask = maskFlag(args, DEFAULT_SCALING_MASK);
  const cal = args.flags.get('calibration');
  return {
    cpus: intListFlag(args, 'cpus', DEFAULT_SCALING_CPUS, 512, 'at most 512 simulated CPUs', false),
    designs: wordListFlag<VmallocDesign>(args, 'design', ['global', 'nodes'], DESIGNS),
    loops: intFlag(args, 'loops', DEFAULT_SCALING_LOOPS, INT_MAX, 'test_loop_count is an int'),
    mask,
    seed: intFlag(args, 'seed', 1, 0xffffffff, 'a u32'),
    calibration: loadCalibration(typeof cal === 'string' ? cal : undefined),
    progress: stderrProgress(quiet),
  };
}

function version(): string {
  const pkg = JSON.parse(
    readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  return pkg.version;
}

export async function reportCommand(argv: readonly string[]): Promise<number> {
  const parts = split(argv);
  const own: ParsedArgs = parseArgs(parts.own, {
    values: OWN_VALUES,
    booleans: OWN_BOOLEANS,
    owner: 'report',
  });
  if (own.flags.has('help')) {
    process.stdout.write(REPORT_HELP);
    return 0;
  }
  const quiet = own.flags.has('quiet');
  const outFlag = own.flags.get('out');
  const out = typeof outFlag === 'string' ? outFlag : 'report.html';
  if (!/\.html?$/i.test(out)) throw new UsageError(`--out must name an .html file, got "${out}"`);
  const command = ['vmalloc report', ...argv].join(' ');
  let data: ReportData;
  if (own.flags.has('synthetic-areas')) {
    if (parts.test !== null || parts.scaling !== null || own.flags.has('designs'))
      throw new UsageError(
        '--synthetic-areas draws a synthetic layout alone: it takes no test, bench scaling or --designs',
      );
    const areas = intFlag(own, 'synthetic-areas', 0, 4_000_000, 'at most 4,000,000 areas');
    if (!quiet) process.stderr.write(`report: reserving ${areas.toLocaleString('en-US')} areas\n`);
    data = syntheticReport(
      { areas, design: 'nodes', nrCpus: 8, seed: 1 },
      command,
      machineLine(),
      version(),
    );
  } else {
    const params = testParams(parts.test ?? DEFAULT_TEST_WORDS);
    const designGiven = (parts.test ?? []).some((w) => w.startsWith('design='));
    if (designGiven && own.flags.has('designs'))
      throw new UsageError('give the designs either as design= or as --designs, not both');
    const designs = designGiven
      ? [params.design]
      : wordListFlag<VmallocDesign>(own, 'designs', DEFAULT_DESIGNS, DESIGNS);
    const scaling = own.flags.has('no-scaling') ? null : scalingOptions(parts.scaling ?? [], quiet);
    if (own.flags.has('no-scaling') && parts.scaling !== null)
      throw new UsageError('--no-scaling and bench scaling contradict each other');
    data = await collectReport({
      params,
      designs,
      scaling,
      command,
      machine: machineLine(),
      version: version(),
      progress: quiet ? undefined : (line) => process.stderr.write(`report: ${line}\n`),
    });
  }
  const html = renderReport(data);
  writeFileSync(out, html);
  if (!quiet)
    process.stderr.write(
      `report: wrote ${out} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB); open it in a browser\n`,
    );
  return 0;
}
