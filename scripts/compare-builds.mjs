// Paired comparison of two builds of this repository on the same machine, in one run.
//
//   node scripts/compare-builds.mjs <before-dir> <after-dir> [--pairs N] [--only kva,perf,contention]
//
// Each directory is a checkout with a compiled dist/ (npm run build). Every pair runs the
// same command once per build, alternating which goes first, so slow drift in the machine's
// load hits both sides alike. Per metric the table gives each side's median and the median of
// the per-pair ratios after/before (for times, < 1 is faster; for throughput, > 1 is faster).
// Progress goes to stderr, the Markdown table to stdout.

import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const COMMANDS = {
  kva: {
    args: ['bench', 'kva'],
    unit: 'ns/iter (lower is better)',
    parse(out) {
      const m = {};
      for (const line of out.split('\n')) {
        let r = /^\| \d+ \| (\w+) \| [^|]+\| ([\d.]+) \[/.exec(line);
        if (r) m[r[1]] = Number(r[2]);
        r = /^\| (\d+) \| \d+ \| ([\d.]+) \| ([\d.]+) \|$/.exec(line);
        if (r) {
          m[`scaling B=${r[1]} steady`] = Number(r[2]);
          m[`scaling B=${r[1]} mixed-align`] = Number(r[3]);
        }
      }
      return m;
    },
  },
  perf: {
    args: ['test', 'performance'],
    unit: 'avg usec (lower is better)',
    parse(out) {
      const m = {};
      for (const r of out.matchAll(/^Summary: (\w+) passed: (\d+) .* avg: (\d+) usec$/gm)) {
        if (Number(r[2]) > 0) m[r[1]] = Number(r[3]);
      }
      return m;
    },
  },
  contention: {
    args: ['bench', 'contention', '--workers', '1,2'],
    unit: 'tests/s (higher is better)',
    parse(out) {
      const m = {};
      for (const r of out.matchAll(/^\s+(\w+) x(\d+): ([\d.]+) tests\/s/gm)) {
        m[`${r[1]} x${r[2]}`] = Number(r[3]);
      }
      return m;
    },
  },
};

const argv = process.argv.slice(2);
const dirs = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
if (dirs.length !== 2) {
  process.stderr.write(
    'usage: node scripts/compare-builds.mjs <before-dir> <after-dir> [--pairs N] [--only kva,perf,contention]\n',
  );
  process.exit(1);
}
const flag = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? dflt : argv[i + 1];
};
const pairs = Number(flag('pairs', '3'));
if (!Number.isInteger(pairs) || pairs < 1 || pairs > 100) {
  process.stderr.write(
    `compare-builds: --pairs must be an integer from 1 to 100, got ${flag('pairs')}\n`,
  );
  process.exit(1);
}
const only = flag('only', Object.keys(COMMANDS).join(',')).split(',');
const [before, after] = dirs.map((d) => resolve(d));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
};

function run(dir, args) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(dir, 'dist/src/cli/main.js'), ...args], {
    cwd: dir,
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`${dir}: ${args.join(' ')} failed:\n${r.stderr}`);
  process.stderr.write(`  ${dir} ${args.join(' ')}: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  return r.stdout + r.stderr;
}

for (const name of only) {
  const cmd = COMMANDS[name];
  if (!cmd) throw new Error(`unknown command ${name}`);
  const samples = { before: [], after: [] };
  for (let p = 0; p < pairs; p++) {
    process.stderr.write(`${name}: pair ${p + 1}/${pairs}\n`);
    const order = p % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    for (const side of order) {
      samples[side].push(cmd.parse(run(side === 'before' ? before : after, cmd.args)));
    }
  }
  process.stdout.write(
    `\n#### \`npx vmalloc ${cmd.args.join(' ')}\`: ${cmd.unit}, ${pairs} pairs\n\n` +
      '| metric | before (median) | after (median) | after / before (median of pairs) |\n' +
      '|---|---:|---:|---:|\n',
  );
  for (const key of Object.keys(samples.before[0])) {
    const b = samples.before.map((m) => m[key]);
    const a = samples.after.map((m) => m[key]);
    if (a.some((x) => x === undefined)) continue;
    const ratios = a.map((x, i) => x / b[i]);
    process.stdout.write(
      `| ${key} | ${median(b)} | ${median(a)} | ${median(ratios).toFixed(3)} |\n`,
    );
  }
}
