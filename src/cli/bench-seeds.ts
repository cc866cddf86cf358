/**
 * `vmalloc bench seeds`: the seeds' tables reproduced by one command.
 *
 * Holds: the command's flags and help, the run of the row sources (real workers: 2018, 2019,
 * 2024; plugged: the simulated rows and vm_map_ram's 2023 rows), the output (Markdown table,
 * or JSON with --json), the scaling data (--scaling-out FILE, CSV or JSON by extension), and
 * the exit status (1 when a measured claim did not reproduce in direction).
 * Callers: src/cli/bench.ts (dispatch of `bench seeds`).
 */

import { writeFileSync } from 'node:fs';
import { DESIGN_NAMES } from '../designs/registry.js';
import { formatSeeds, seedsJson } from '../bench/seeds-format.js';
import { pluggedRows } from '../bench/seeds-plugs.js';
import { wireSeedPlugs } from '../bench/seeds-wiring.js';
import { rows2024 } from '../bench/seeds-2024.js';
import { ALL_2019_TESTS, rows2018, rows2019, seedParams } from '../bench/seeds-real.js';
import { isMeasured, quickVerdict, type SeedRow } from '../bench/seeds-rows.js';
import { runScaling, scalingCsv, SCALING_WHAT } from '../bench/seeds-scaling.js';
import { INT_MAX, UsageError, intFlag, intListFlag, parseArgs, wordListFlag } from './args.js';
import { recordPlanFor } from './bench-record.js';
import { SCHEMA_VERSION, jsonReport } from './json-report.js';
import { machineLine } from './machine.js';

export const SEEDS_HELP = `Usage: vmalloc bench seeds [options]

The seeds' measurements reproduced in one run: for each claim, the same workload under the old
and the new design (interleaved, pair by pair), the seed's figures and ratio beside ours, where
ours were measured (real workers or simulated), and a verdict computed from the figures:
reproduced (direction, and size within the row's factor), reproduced in direction only (with
the reason), or not reproduced. Rows needing the simulator (issue 11) or vm_map_ram blocks
(issue 10) say so while those are absent.

  2018  the RFC's test_1 and test_2, legacy vs rfc2018 (global beside)
  2019  test_vmalloc.sh performance totals and the randomised all-CPU run, legacy vs global
  2023  vm_map_ram_test, global vs per-CPU block hash (2 workers; 64 simulated CPUs)
  2024  run_test_mask=7 at 1 and 2 workers, global vs nodes (offload2023 beside), lock_stat

Options:
  --quick               CI mode: small loop counts, direction only, under a minute on an idle
                        2-core machine (rows whose figure depends on the machine's load are
                        reported as not run)
  --only LIST           claims to run, from 2018, 2019, 2023, 2024 (default all), or none
                        (with --scaling-out: the scaling data alone)
  --scaling-out FILE    also write allocation cost against live areas (1e3..1e6) for every
                        design to FILE (.json: JSON, otherwise CSV)
  --scaling-sizes LIST  live-area counts of the scaling data (default 1000,10000,100000,1000000)
  --scaling-cap-ms N    time cap per scaling point (default 3000)
  --record FILE         a trace per test_vmalloc run (real and simulated; not the 2018
                        loops), FILE with the run's label added: see 'vmalloc bench --help'
                        (Recording); a recorded run's times are not a free run's
  --json                print the rows as JSON (schemaVersion ${SCHEMA_VERSION}; also the
                        --scaling-out .json file)
  --quiet               no progress lines on stderr
`;

const YEARS = ['2018', '2019', '2023', '2024'] as const;

export async function benchSeeds(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, {
    values: ['only', 'scaling-out', 'scaling-sizes', 'scaling-cap-ms', 'record'],
    booleans: ['quick', 'json', 'quiet', 'help'],
    owner: 'bench seeds',
  });
  if (args.flags.has('help')) {
    process.stdout.write(SEEDS_HELP);
    return 0;
  }
  const extra = args.positional.filter((p) => p !== 'seeds');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}" after bench seeds`);
  const quick = args.flags.has('quick');
  const only =
    args.flags.get('only') === 'none' ? [] : wordListFlag(args, 'only', [...YEARS], YEARS);
  const scalingOut = args.flags.get('scaling-out');
  if (scalingOut === true) throw new UsageError('--scaling-out needs a file name');
  const sizes = intListFlag(
    args,
    'scaling-sizes',
    [1000, 10000, 100000, 1000000],
    2_000_000,
    'at most 2,000,000 live areas',
    false,
  );
  const capMs = intFlag(args, 'scaling-cap-ms', 3000, INT_MAX, 'milliseconds');
  const quiet = args.flags.has('quiet');
  const record = recordPlanFor(args, 'seeds');
  const t0 = Date.now();
  const say = quiet
    ? () => {}
    : (line: string) =>
        process.stderr.write(`  [${((Date.now() - t0) / 1000).toFixed(0)} s] ${line}\n`);
  const started = new Date();
  const o = { quick, say, record };
  const rows: SeedRow[] = [];
  if (only.includes('2018')) rows.push(...rows2018(o));
  if (only.includes('2019')) rows.push(...(await rows2019(o)));
  if (only.includes('2024')) rows.push(...(await rows2024(o)));
  wireSeedPlugs(record);
  rows.push(
    ...(await pluggedRows({
      quick,
      params: (p) => seedParams(p),
      allTestsMask: ALL_2019_TESTS,
      years: only.map(Number),
      say,
    })),
  );
  rows.sort((a, b) => a.year - b.year);
  if (quick) rows.splice(0, rows.length, ...rows.map(quickVerdict));

  let scaling = null;
  if (typeof scalingOut === 'string') {
    const points = runScaling({ sizes, designs: DESIGN_NAMES, capMs, say });
    scaling = { file: scalingOut, what: SCALING_WHAT, points };
    writeFileSync(
      scalingOut,
      scalingOut.endsWith('.json')
        ? jsonReport({ machine: machineLine(), what: SCALING_WHAT, points })
        : scalingCsv(points),
    );
    say(`scaling data written to ${scalingOut}`);
  }

  const failed = rows.filter((r) => isMeasured(r) && r.verdict === 'not reproduced');
  const cmd = ['npx vmalloc bench', ...argv].join(' ');
  if (args.flags.has('json')) {
    process.stdout.write(
      jsonReport({
        command: cmd,
        machine: machineLine(),
        date: started.toISOString(),
        quick,
        elapsedS: (Date.now() - t0) / 1000,
        rows: seedsJson(rows),
        scaling: scaling && { file: scaling.file, what: scaling.what, points: scaling.points },
        ...(record === undefined ? {} : { traces: record.written }),
      }),
    );
  } else {
    process.stdout.write(
      [
        `## bench seeds: ${started.toISOString().slice(0, 10)}`,
        '',
        `- command: \`${cmd}\`${quick ? ' (quick: direction only)' : ''}`,
        `- machine: ${machineLine()}`,
        `- took ${((Date.now() - t0) / 1000).toFixed(0)} s; ratios are old / new (higher: the new design is better), medians of interleaved pairs`,
        ...(record === undefined
          ? []
          : [
              `- recorded (--record ${record.base}): ${record.written.length} traces; the real rows' runs skipped their warm-up and ran every call serialized: their times are not a free run's`,
            ]),
        '',
        rows.length > 0 ? formatSeeds(rows) : '(no claims asked for: --only none)',
        scaling ? `\nScaling data (${scaling.what}): ${scaling.file}` : '',
        '',
      ].join('\n'),
    );
  }
  if (failed.length > 0) {
    process.stderr.write(`bench seeds: not reproduced: ${failed.map((r) => r.id).join(', ')}\n`);
    return 1;
  }
  return 0;
}
