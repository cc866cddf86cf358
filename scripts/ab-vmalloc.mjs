// Two builds of this repository on one-page vmalloc + vfree, in one process, interleaved.
//
//   node scripts/ab-vmalloc.mjs <dir-A> <dir-B> [design]      (N=300000 R=7 in the environment)
//
// Each directory is a checkout with a compiled dist/ (npm run build). Both builds are loaded
// side by side (two module graphs); rounds alternate which goes first, the first round is the
// JIT's and is dropped. Figures are CPU time of this process per pair (user + system), which
// a loaded shared machine inflates less than the wall clock; the ratio is B/A per round, and
// its median (< 1: B is faster).

const [A, B] = process.argv.slice(2, 4);
if (A === undefined || B === undefined) {
  process.stderr.write('usage: node scripts/ab-vmalloc.mjs <dir-A> <dir-B> [design]\n');
  process.exit(1);
}
const design = process.argv[4] ?? 'global';
const N = Number(process.env.N ?? 300000);
const R = Number(process.env.R ?? 7);
const make = async (dir) =>
  (
    await import(
      `${new URL(`file://${dir.startsWith('/') ? dir : `${process.cwd()}/${dir}`}/`).href}dist/src/index.js`
    )
  ).createVmalloc({
    logger: null,
    design,
  });
const vms = { A: await make(A), B: await make(B) };
const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};
const res = { A: [], B: [] };
for (let r = 0; r < R; r++)
  for (const k of r % 2 ? ['B', 'A'] : ['A', 'B']) {
    const vm = vms[k];
    const t0 = cpuNs();
    for (let i = 0; i < N; i++) vm.vfree(vm.vmalloc(4096));
    if (r > 0) res[k].push((cpuNs() - t0) / N);
  }
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const ratios = res.A.map((a, i) => res.B[i] / a);
console.log(
  `${design}: A ${median(res.A).toFixed(0)} ns, B ${median(res.B).toFixed(0)} ns per pair; ` +
    `B/A median ${median(ratios).toFixed(3)} [${ratios.map((x) => x.toFixed(2)).join(' ')}]`,
);
