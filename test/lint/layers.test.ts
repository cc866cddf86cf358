/**
 * The `layers` ESLint plugin (eslint-rules/layers.js): imports in src/ run down the layers
 * shared <- kva <- designs <- mm <- api <- tools (test-vmalloc <- sim <- bench <- cli), never in a
 * circle, and the core layers import no Node built-in. Run through ESLint's Node API on a small
 * project that the test writes to a temporary folder (so no fixture is compiled by tsc or
 * linted with the repository), and the wiring of the rules in eslint.config.js.
 */

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ESLint, Linter } from 'eslint';
import tseslint from 'typescript-eslint';

/** The repository: the nearest folder above this file that holds eslint-rules/layers.js. */
function repoRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'eslint-rules', 'layers.js'))) return dir;
    if (dirname(dir) === dir) throw new Error('eslint-rules/layers.js not found above the test');
  }
}

const ROOT = repoRoot();
const CHAIN = 'imports must run down the layers shared <- kva <- designs <- mm <- api <- tools';

async function loadPlugin(): Promise<ESLint.Plugin> {
  const mod = (await import(pathToFileURL(join(ROOT, 'eslint-rules', 'layers.js')).href)) as {
    default: ESLint.Plugin;
  };
  return mod.default;
}

function writeTree(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
}

function layersConfig(plugin: ESLint.Plugin, files = ['src/**/*.ts']): Linter.Config[] {
  return [
    {
      files,
      languageOptions: { parser: tseslint.parser as Linter.Parser },
      plugins: { layers: plugin },
      rules: { 'layers/direction': 'error', 'layers/no-cycle': 'error' },
    },
  ];
}

interface Found {
  rule: string;
  message: string;
  line: number;
}

/** Lints src/**\/*.ts of `dir` as ESLint would from `dir`; the layers messages per file. */
async function lintTree(dir: string, plugin: ESLint.Plugin): Promise<Map<string, Found[]>> {
  const eslint = new ESLint({
    cwd: dir,
    overrideConfigFile: true,
    overrideConfig: layersConfig(plugin),
  });
  const byFile = new Map<string, Found[]>();
  for (const r of await eslint.lintFiles(['src/**/*.ts'])) {
    const rel = r.filePath
      .slice(dir.length + 1)
      .split(/[\\/]/)
      .join('/');
    byFile.set(
      rel,
      r.messages.map((m) => ({ rule: m.ruleId ?? '(none)', message: m.message, line: m.line })),
    );
  }
  return byFile;
}

/**
 * One small project with a file or two per case. Cases do not touch one another: no file of
 * one case imports a file of another, except for the allowed downward chain, which no one
 * imports back.
 */
const TREE: Record<string, string> = {
  // an allowed downward chain through every layer and every tools folder
  'src/errors.ts': 'export class E extends Error {}\n',
  'src/debug.ts': "import { E } from './errors.js';\nexport const fail = (): E => new E('x');\n",
  'src/shared/util.ts':
    "import { fail } from '../debug.js';\nexport const one = 1;\nexport { fail };\n",
  'src/kva/tree.ts': "import { one } from '../shared/util.js';\nexport const two = one + 1;\n",
  'src/designs/design.ts': [
    "import { two } from '../kva/tree.js';",
    "import type { E } from '../errors.js';",
    'export const three = two + 1;',
    'export type Err = E;',
    '',
  ].join('\n'),
  'src/designs/types.ts': 'export interface Thing {\n  n: number;\n}\n',
  'src/mm/vmalloc.ts':
    "import { three } from '../designs/design.js';\nexport const four = three + 1;\n",
  'src/api/vm.ts': "export * from '../mm/vmalloc.js';\n",
  'src/index.ts':
    "export { four } from './api/vm.js';\nexport type { Err } from './designs/design.js';\n",
  'src/test-vmalloc/run.ts': [
    "import { writeFileSync } from 'node:fs';",
    "import { four } from '../index.js';",
    "export const run = (): void => writeFileSync('out', String(four));",
    '',
  ].join('\n'),
  'src/bench/kva.ts': [
    "import os from 'os';",
    "import { run } from '../test-vmalloc/run.js';",
    'export const bench = (): number => (run(), os.cpus().length);',
    '',
  ].join('\n'),
  'src/cli/main.ts': [
    "import { Worker } from 'worker_threads';",
    "import { bench } from '../bench/kva.js';",
    "import { run } from '../test-vmalloc/run.js';",
    'export const main = (): unknown => (run(), bench(), Worker);',
    '',
  ].join('\n'),

  // upward imports
  'src/kva/up.ts': "import { four } from '../mm/vmalloc.js';\nexport const five = four + 1;\n",
  'src/shared/up-type.ts':
    "import type { Thing } from '../designs/types.js';\nexport type T = Thing;\n",
  'src/test-vmalloc/up-tools.ts':
    "import { bench } from '../bench/kva.js';\nexport const b = bench;\n",
  'src/designs/up-dynamic.ts':
    "export const load = (): Promise<unknown> => import('../api/vm.js');\n",
  'src/mm/up-import-type.ts': "export type V = typeof import('../api/vm.js');\n",

  // a run-time cycle of two files in one layer
  'src/mm/ping.ts':
    "import { pong } from './pong.js';\nexport const ping = (): number => pong() + 1;\n",
  'src/mm/pong.ts':
    "import { ping } from './ping.js';\nexport const pong = (): number => ping() - 1;\n",
  // a cycle of type-only imports (erased at compile time)
  'src/designs/left.ts':
    "import type { R } from './right.js';\nexport interface L {\n  r?: R;\n}\n",
  'src/designs/right.ts':
    "import type { L } from './left.js';\nexport interface R {\n  l?: L;\n}\n",
  // `import { type X }` still loads the module under verbatimModuleSyntax: a run-time cycle
  'src/kva/inline-a.ts': "import { type B } from './inline-b.js';\nexport type A = B;\n",
  'src/kva/inline-b.ts': "import { type A } from './inline-a.js';\nexport type B = A;\n",
  // a file that imports itself
  'src/shared/self.ts': "import * as me from './self.js';\nexport const x = 1;\nexport { me };\n",
  // a cycle of three files, with the import that starts it on line 2
  'src/api/c1.ts': "// one\nimport './c2.js';\n",
  'src/api/c2.ts': "export * from './c3.js';\n",
  'src/api/c3.ts': "export const c3 = 3;\nimport './c1.js';\n",

  // Node built-ins in the core
  'src/shared/os.ts': "import { cpus } from 'node:os';\nexport const n = cpus().length;\n",
  'src/kva/fs.ts': "import { readFileSync } from 'fs';\nexport const read = readFileSync;\n",
  'src/mm/worker.ts': "import type { Worker } from 'worker_threads';\nexport type W = Worker;\n",
  'src/api/promises.ts': "export { readFile } from 'fs/promises';\n",
  // ... dynamic too (bundlers follow it, guarded or not) ...
  'src/shared/guarded.ts': [
    'export const os =',
    "  typeof globalThis.process === 'object' ? await import('node:os') : undefined;",
    '',
  ].join('\n'),

  // ... but asking Node for one at run time is no import
  'src/shared/get-builtin.ts':
    "export const os = globalThis.process?.getBuiltinModule?.('node:os');\n",

  // a file in no layer
  'src/nodes/old.ts': "import { one } from '../shared/util.js';\nexport const old = one;\n",
  // targets that do not exist (being moved): not the rules' business
  'src/designs/moving.ts': [
    "import { gone } from './gone.js';",
    "import { later } from '../mm/later.js';",
    "export * from '../cli/elsewhere.js';",
    'export const g = gone + later;',
    '',
  ].join('\n'),
  // a package name that is not a built-in: not the rules' business either
  'src/kva/pkg.ts': "import { x } from 'some-package';\nexport const y = x;\n",
};

describe('layers', () => {
  let dir = '';
  let found = new Map<string, Found[]>();
  let plugin: ESLint.Plugin;

  before(async () => {
    plugin = await loadPlugin();
    dir = mkdtempSync(join(tmpdir(), 'layers-'));
    writeTree(dir, TREE);
    found = await lintTree(dir, plugin);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const messages = (file: string, rule?: string): string[] => {
    const list = found.get(file);
    assert.ok(list, `${file} was linted`);
    return list.filter((m) => rule === undefined || m.rule === rule).map((m) => m.message);
  };

  test('every file of the tree was linted', () => {
    assert.deepEqual([...found.keys()].sort(), Object.keys(TREE).sort());
  });

  test('downward imports, through every layer and every tools folder, pass', () => {
    for (const file of [
      'src/errors.ts',
      'src/debug.ts',
      'src/shared/util.ts',
      'src/kva/tree.ts',
      'src/designs/design.ts',
      'src/designs/types.ts',
      'src/mm/vmalloc.ts',
      'src/api/vm.ts',
      'src/index.ts',
      'src/test-vmalloc/run.ts',
      'src/bench/kva.ts',
      'src/cli/main.ts',
    ]) {
      assert.deepEqual(messages(file), [], file);
    }
  });

  test('an upward import fails, naming both files and their layers', () => {
    assert.deepEqual(messages('src/kva/up.ts'), [
      `src/kva/up.ts (kva) imports src/mm/vmalloc.ts (mm): ${CHAIN}`,
    ]);
    assert.equal(found.get('src/kva/up.ts')?.[0]?.rule, 'layers/direction');
  });

  test('a type-only upward import fails too (it still couples the layers)', () => {
    assert.deepEqual(messages('src/shared/up-type.ts'), [
      `src/shared/up-type.ts (shared) imports src/designs/types.ts (designs): ${CHAIN}`,
    ]);
    assert.deepEqual(messages('src/mm/up-import-type.ts'), [
      `src/mm/up-import-type.ts (mm) imports src/api/vm.ts (api): ${CHAIN}`,
    ]);
  });

  test('a dynamic upward import fails', () => {
    assert.deepEqual(messages('src/designs/up-dynamic.ts'), [
      `src/designs/up-dynamic.ts (designs) imports src/api/vm.ts (api): ${CHAIN}`,
    ]);
  });

  test('in tools, test-vmalloc may not import bench', () => {
    assert.deepEqual(messages('src/test-vmalloc/up-tools.ts'), [
      'src/test-vmalloc/up-tools.ts (tools: test-vmalloc) imports src/bench/kva.ts (tools: bench): ' +
        `${CHAIN} (within tools: test-vmalloc <- sim <- bench <- report <- cli)`,
    ]);
  });

  test('a cycle of two files in one layer fails on both files, naming both', () => {
    const ping = messages('src/mm/ping.ts', 'layers/no-cycle');
    const pong = messages('src/mm/pong.ts', 'layers/no-cycle');
    assert.equal(ping.length, 1);
    assert.equal(pong.length, 1);
    assert.match(
      ping[0] ?? '',
      /^src\/mm\/ping\.ts \(mm\) is in an import cycle: src\/mm\/ping\.ts \(mm\) -> src\/mm\/pong\.ts \(mm\) -> src\/mm\/ping\.ts \(mm\)\. /,
    );
    assert.match(
      pong[0] ?? '',
      /^src\/mm\/pong\.ts \(mm\) is in an import cycle: src\/mm\/pong\.ts \(mm\) -> src\/mm\/ping\.ts \(mm\) -> src\/mm\/pong\.ts \(mm\)\. /,
    );
    assert.deepEqual(messages('src/mm/ping.ts', 'layers/direction'), []);
  });

  test('a cycle of type-only imports passes', () => {
    assert.deepEqual(messages('src/designs/left.ts'), []);
    assert.deepEqual(messages('src/designs/right.ts'), []);
  });

  test('`import { type X }` (the module is still loaded) counts for cycles', () => {
    assert.equal(messages('src/kva/inline-a.ts', 'layers/no-cycle').length, 1);
    assert.equal(messages('src/kva/inline-b.ts', 'layers/no-cycle').length, 1);
  });

  test('a file that imports itself is a cycle', () => {
    const [m, ...rest] = messages('src/shared/self.ts');
    assert.deepEqual(rest, []);
    assert.match(
      m ?? '',
      /import cycle: src\/shared\/self\.ts \(shared\) -> src\/shared\/self\.ts/,
    );
  });

  test('a longer cycle is reported on each of its files, at the import that starts it', () => {
    for (const [file, path] of [
      ['src/api/c1.ts', 'c1 c2 c3 c1'],
      ['src/api/c2.ts', 'c2 c3 c1 c2'],
      ['src/api/c3.ts', 'c3 c1 c2 c3'],
    ] as const) {
      const shown = path
        .split(' ')
        .map((n) => `src/api/${n}.ts (api)`)
        .join(' -> ');
      assert.deepEqual(
        messages(file, 'layers/no-cycle').map((m) => m.includes(`import cycle: ${shown}.`)),
        [true],
        file,
      );
    }
    assert.equal(found.get('src/api/c1.ts')?.[0]?.line, 2);
    assert.equal(found.get('src/api/c3.ts')?.[0]?.line, 2);
  });

  test('a Node built-in in a core layer fails: static, type-only or dynamic, node: or bare', () => {
    for (const [file, layer, name] of [
      ['src/shared/os.ts', 'shared', 'node:os'],
      ['src/kva/fs.ts', 'kva', 'fs'],
      ['src/mm/worker.ts', 'mm', 'worker_threads'],
      ['src/api/promises.ts', 'api', 'fs/promises'],
      ['src/shared/guarded.ts', 'shared', 'node:os'],
    ] as const) {
      const list = messages(file);
      assert.equal(list.length, 1, file);
      assert.ok(
        list[0]?.startsWith(`${file} (${layer}) imports the Node built-in '${name}': `),
        list[0],
      );
    }
  });

  test('a Node built-in in tools passes; process.getBuiltinModule() in the core is no import', () => {
    assert.deepEqual(messages('src/test-vmalloc/run.ts'), []);
    assert.deepEqual(messages('src/bench/kva.ts'), []);
    assert.deepEqual(messages('src/cli/main.ts'), []);
    assert.deepEqual(messages('src/shared/get-builtin.ts'), []);
  });

  test('a file in no layer fails: put it in a layer', () => {
    const list = messages('src/nodes/old.ts');
    assert.equal(list.length, 1);
    assert.ok(list[0]?.startsWith('src/nodes/old.ts is in no layer: put it in a layer ('), list[0]);
  });

  test('imports of missing files and of packages are skipped', () => {
    assert.deepEqual(messages('src/designs/moving.ts'), []);
    assert.deepEqual(messages('src/kva/pkg.ts'), []);
  });
});

describe('layers, finding src/ and following the files', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'layers-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('src/ is found above the linted file when ESLint runs from elsewhere', async () => {
    const plugin = await loadPlugin();
    writeTree(dir, {
      'src/kva/a.ts': "import { b } from '../mm/b.js';\nexport const a = b;\n",
      'src/mm/b.ts': "import { a } from '../kva/a.js';\nexport const b = 1;\nexport { a };\n",
    });
    // cwd holds no src/ of its own: the rule has to walk up from the file
    const linter = new Linter({ cwd: tmpdir() });
    const text = "import { b } from '../mm/b.js';\nexport const a = b;\n";
    const result = linter.verify(text, layersConfig(plugin, ['**/*.ts']), {
      filename: join(dir, 'src', 'kva', 'a.ts'),
    });
    assert.deepEqual(result.map((m) => m.ruleId).sort(), ['layers/direction', 'layers/no-cycle']);
    assert.ok(result.some((m) => m.message.startsWith('src/kva/a.ts (kva) imports src/mm/b.ts')));
  });

  test('a cycle made after a lint run is seen by a later run, and one undone is forgotten', async () => {
    const plugin = await loadPlugin();
    const tree = join(dir, 'later');
    writeTree(tree, {
      'src/mm/x.ts': 'export const x = 1;\n',
      'src/mm/y.ts': "import { x } from './x.js';\nexport const y = x;\n",
    });
    const cycles = async (): Promise<string[]> =>
      [...(await lintTree(tree, plugin))]
        .filter(([, list]) => list.some((m) => m.rule === 'layers/no-cycle'))
        .map(([file]) => file)
        .sort();
    assert.deepEqual(await cycles(), []);
    // the cached graph is re-validated at most once a second
    await new Promise((r) => setTimeout(r, 1100));
    writeTree(tree, { 'src/mm/x.ts': "import { y } from './y.js';\nexport const x = y;\n" });
    assert.deepEqual(await cycles(), ['src/mm/x.ts', 'src/mm/y.ts']);
    await new Promise((r) => setTimeout(r, 1100));
    rmSync(join(tree, 'src', 'mm', 'y.ts'));
    assert.deepEqual(await cycles(), []);
  });
});

describe('layers in eslint.config.js', () => {
  test('both rules are errors for every file of src/, and off outside it', async () => {
    const eslint = new ESLint({ cwd: ROOT });
    for (const file of ['src/index.ts', 'src/designs/any.ts', 'src/cli/deep/er.ts']) {
      const config = (await eslint.calculateConfigForFile(join(ROOT, file))) as Linter.Config;
      assert.deepEqual(config.rules?.['layers/direction'], [2], file);
      assert.deepEqual(config.rules?.['layers/no-cycle'], [2], file);
    }
    const outside = (await eslint.calculateConfigForFile(
      join(ROOT, 'test', 'lint', 'layers.test.ts'),
    )) as Linter.Config;
    assert.equal(outside.rules?.['layers/direction'], undefined);
  });
});
