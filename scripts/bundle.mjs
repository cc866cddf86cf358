// Bundles the compiled library (dist/src/index.js) with esbuild, after `tsc`:
//   dist/browser/vmalloc.mjs      ESM for browsers (import it, or bundle it again)
//   dist/browser/vmalloc.iife.js  a classic <script>: defines the global `vmalloc`
//   dist/cjs/vmalloc.cjs          CommonJS, the "require" path of the exports map
// Each bundle must hold no Node built-in: the browser builds fail if one is imported (the
// browser platform cannot resolve node:*), and the metafile check below also covers CommonJS.
import { build } from 'esbuild';

const common = {
  entryPoints: ['dist/src/index.js'],
  bundle: true,
  target: 'es2022',
  logLevel: 'warning',
  legalComments: 'none',
  metafile: true,
};
const outputs = [
  { format: 'esm', platform: 'browser', outfile: 'dist/browser/vmalloc.mjs' },
  {
    format: 'iife',
    platform: 'browser',
    outfile: 'dist/browser/vmalloc.iife.js',
    globalName: 'vmalloc',
  },
  {
    format: 'cjs',
    platform: 'neutral',
    outfile: 'dist/cjs/vmalloc.cjs',
    mainFields: ['module', 'main'],
  },
];
for (const o of outputs) {
  const r = await build({ ...common, ...o });
  for (const out of Object.values(r.metafile.outputs)) {
    const builtins = out.imports.filter((i) => i.external).map((i) => i.path);
    if (builtins.length > 0) {
      console.error(`bundle: ${o.outfile} imports ${builtins.join(', ')}; the library must not`);
      process.exit(1);
    }
  }
}
