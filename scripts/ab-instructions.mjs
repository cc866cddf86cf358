// Instructions per vmalloc + vfree pair of one or more builds, counted by valgrind: a
// load-independent yardstick for a machine whose clock swings with its neighbours' load.
//
//   node scripts/ab-instructions.mjs <dir> [<dir> ...] [--pattern P] [--design D] [--n N]
//
// Patterns (the vmalloc + vfree pairs of test_vmalloc's tests, on the public API):
//   page      vmalloc(4 KiB), vfree                                    (fix_size_alloc_test)
//   fixK      vmalloc(K pages), vfree                                  (nr_pages=K)
//   random    vmalloc(1..100 pages), one byte written, vfree           (random_size_alloc_test)
//   align     vmalloc(5 pages, align 32 KiB, zeroed), vfree            (fix_align_alloc_test)
//   ralign    vmalloc(1..10 pages, align 2^0..2^22, zeroed), vfree     (random_size_align_alloc_test)
//
// Each directory is a checkout with a compiled dist/ (npm run build). For each build the
// pattern runs twice under `valgrind --tool=cachegrind --cache-sim=no` (node --single-threaded,
// so the JIT compiles on the counted thread, in the same order each time), at N/4 and at N
// pairs; the difference over 3N/4 pairs is the steady state per pair, start-up and
// compilation cancelled. The figures repeat to within about 1% between runs, whatever the
// machine's load. Needs valgrind (Debian: apt-get install valgrind); a run takes ~20 s per
// 10,000 pairs. Instructions are not time (memory stalls, atomics' fences cost cycles, not
// instructions): use them to find work added, and time (scripts/ab-vmalloc.mjs,
// scripts/compare-builds.mjs) to judge speed.

import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const pattern = opt('pattern', 'page');
const design = opt('design', '');
const n = Number(opt('n', '40000'));
const dirs = args;
if (dirs.length === 0 || !(n >= 100) || !/^(page|fix\d+|random|align|ralign)$/.test(pattern)) {
  process.stderr.write(
    'usage: node scripts/ab-instructions.mjs <dir> [<dir> ...] [--pattern page|fixK|random|align|ralign] [--design D] [--n N>=100]\n',
  );
  process.exit(2);
}
if (spawnSync('valgrind', ['--version']).status !== 0) {
  process.stderr.write('valgrind is not installed (Debian: apt-get install valgrind)\n');
  process.exit(2);
}

// The measured program: one build, one pattern, `count` pairs (pure JS, no imports but the build).
const program = `
const [dir, pattern, design, count] = process.argv.slice(1);
const { createVmalloc } = await import(new URL('dist/src/index.js', 'file://' + dir + '/').href);
const vm = createVmalloc({ logger: null, ...(design ? { design } : {}) });
const N = Number(count);
let x = 2463534242;
const rnd = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
if (pattern === 'page') for (let i = 0; i < N; i++) vm.vfree(vm.vmalloc(4096));
else if (pattern.startsWith('fix')) {
  const size = Number(pattern.slice(3)) * 4096;
  for (let i = 0; i < N; i++) vm.vfree(vm.vmalloc(size));
} else if (pattern === 'random')
  for (let i = 0; i < N; i++) {
    const p = vm.vmalloc(((rnd() % 100) + 1) * 4096);
    vm.writeU8(p, 1);
    vm.vfree(p);
  }
else if (pattern === 'align') {
  const o = { align: 32768, zero: true };
  for (let i = 0; i < N; i++) vm.vfree(vm.vmalloc(5 * 4096, o));
} else {
  const opts = [];
  for (let k = 0; k < 23; k++) opts.push({ align: 2 ** k, zero: true });
  for (let i = 0; i < N; i++) {
    const r = rnd() & 255;
    vm.vfree(vm.vmalloc(((r % 10) + 1) * 4096, opts[r % 23]));
  }
}
`;

function instructions(dir, count) {
  const r = spawnSync(
    'valgrind',
    [
      '--tool=cachegrind',
      '--cache-sim=no',
      '--cachegrind-out-file=/dev/null',
      '--smc-check=all',
      process.execPath,
      '--single-threaded',
      '--input-type=module',
      '-e',
      program,
      '--',
      dir,
      pattern,
      design,
      String(count),
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  const m = /I\s+refs:\s+([\d,]+)/.exec(r.stderr);
  if (r.status !== 0 || m === null) {
    process.stderr.write(r.stderr.split('\n').slice(-20).join('\n'));
    throw new Error(`valgrind run of ${dir} failed (status ${r.status})`);
  }
  return Number(m[1].replaceAll(',', ''));
}

const rows = [];
for (const d of dirs) {
  const dir = resolve(d);
  process.stderr.write(
    `${dir}: ${pattern}${design ? ` (${design})` : ''} at ${n / 4} and ${n} pairs...\n`,
  );
  const small = instructions(dir, n / 4);
  const big = instructions(dir, n);
  rows.push({ dir, perPair: (big - small) / ((3 * n) / 4) });
}
const first = rows[0].perPair;
console.log(
  `| build | instructions per pair (${pattern}${design ? `, ${design}` : ''}) | vs first |`,
);
console.log('|---|---:|---:|');
for (const r of rows)
  console.log(`| ${r.dir} | ${Math.round(r.perPair)} | ${(r.perPair / first).toFixed(3)} |`);
