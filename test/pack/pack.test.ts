/**
 * The package as a user gets it: `npm pack` of the built tree, the tarball installed into a
 * fresh folder (offline: the package has no dependencies), then imported from an ES module, from
 * CommonJS and from a TypeScript file compiled with --strict against the shipped declarations.
 * Also checks what ships: LICENSE, the docs the README links to (every relative link resolves
 * inside the installed package), source maps that carry their sources, and `vmalloc --version`.
 * Runs after `npm run build` (npm test does it first), so packing runs no script.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const version = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
).version;

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('the packed tarball, installed in a fresh folder', () => {
  let dir: string;
  let pkg: string;
  let shipped: string[];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vmalloc-pack-'));
    const packed = JSON.parse(
      run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root),
    ) as { filename: string; files: { path: string }[] }[];
    shipped = packed[0]!.files.map((f) => f.path);
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    run(
      'npm',
      [
        'install',
        '--offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        `./${packed[0]!.filename}`,
      ],
      dir,
    );
    pkg = join(dir, 'node_modules', 'vmalloc');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('ships the library, its bundles, LICENSE and docs, and no tests', () => {
    for (const f of [
      'LICENSE',
      'README.md',
      'CHANGELOG.md',
      'BENCHMARKS.md',
      'package.json',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/cjs/vmalloc.cjs',
      'dist/browser/vmalloc.mjs',
      'dist/browser/vmalloc.iife.js',
      'dist/src/cli/main.js',
    ])
      assert.ok(shipped.includes(f), `${f} is shipped`);
    assert.deepEqual(
      shipped.filter((f) => f.startsWith('dist/test') || f.startsWith('src/')),
      [],
    );
  });

  test('imports from an ES module', () => {
    writeFileSync(
      join(dir, 'esm.mjs'),
      `import { VmapSpace, createVmalloc, VmallocError } from 'vmalloc';
const s = new VmapSpace({ start: 0, end: 2 ** 20 });
const vm = createVmalloc({ nrCpus: 1, logger: null });
let code = '';
try { s.free(4096); } catch (e) { code = e instanceof VmallocError ? e.code : 'other'; }
console.log(JSON.stringify([s.alloc(8192), s.alloc(4096), typeof vm.vmalloc(4096), code]));`,
    );
    assert.equal(run(process.execPath, ['esm.mjs'], dir), '[0,8192,"number","ENOENT"]\n');
  });

  test('requires from CommonJS (the exports map gives the CommonJS build)', () => {
    writeFileSync(
      join(dir, 'cjs.cjs'),
      `const { VmapSpace, VmallocError } = require('vmalloc');
const s = new VmapSpace({ start: 0, end: 2 ** 20 });
let code = '';
try { s.alloc(1); } catch (e) { code = e instanceof VmallocError ? e.code : 'other'; }
console.log(JSON.stringify([s.alloc(4096, { align: 65536 }), code, require.resolve('vmalloc').endsWith('vmalloc.cjs')]));`,
    );
    // No warning about loading an ES module through require(): stderr stays empty.
    const r = spawnSync(process.execPath, ['cjs.cjs'], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '[0,"EINVAL",true]\n');
    assert.equal(r.stderr, '');
  });

  test('type-checks from a strict TypeScript file (declarations checked too)', () => {
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2024', 'DOM'],
          types: [],
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          outDir: 'out',
        },
        files: ['strict.ts'],
      }),
    );
    writeFileSync(
      join(dir, 'strict.ts'),
      `import { VmapSpace, createVmalloc, VmallocError, type AllocOptions, type VmapSpaceHandle } from 'vmalloc';
const s = new VmapSpace({ start: 0, end: 2 ** 20, pageSize: 4096 });
const opts: AllocOptions = { align: 16384 };
const a: number | null = s.alloc(4096, opts);
const h: VmapSpaceHandle = s.handle;
const vm = createVmalloc({ nrCpus: 1, logger: null });
const p = vm.vmalloc(4096);
if (p !== null) vm.vfree(p);
const e: VmallocError | null = null;
console.log(a, h.kind, e);
`,
    );
    run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], dir);
    assert.equal(run(process.execPath, ['out/strict.js'], dir), '0 VmapSpace null\n');
  });

  test('npx vmalloc --version prints the package version', () => {
    assert.equal(run(join(dir, 'node_modules/.bin/vmalloc'), ['--version'], dir), `${version}\n`);
  });

  test('every relative link of the shipped README resolves inside the package', () => {
    const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)]
      .map((m) => m[1]!)
      .filter((l) => !/^[a-z]+:/.test(l));
    assert.ok(links.length > 0);
    for (const l of links) assert.ok(existsSync(join(pkg, l)), `README links ${l}, not shipped`);
  });

  test('source maps carry their sources (none points at an unshipped file)', () => {
    const maps = readdirSync(join(pkg, 'dist'), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.map'));
    assert.ok(maps.length > 0);
    for (const m of maps) {
      const map = JSON.parse(readFileSync(join(pkg, 'dist', m), 'utf8')) as {
        sources: string[];
        sourcesContent?: (string | null)[];
      };
      const content = map.sourcesContent ?? [];
      assert.equal(content.length, map.sources.length, `${m}: sourcesContent`);
      map.sources.forEach((s, i) =>
        assert.ok(
          typeof content[i] === 'string' || existsSync(join(pkg, 'dist', dirname(m), s)),
          `${m}: ${s}`,
        ),
      );
    }
  });
});
