/**
 * The README's code examples compile under `tsc --strict` against the package's own
 * declarations (imported by name, as a user does) and print exactly what the README says:
 * each ```ts block that imports 'vmalloc' is followed by a "prints:" ```text block holding its
 * whole standard output.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
/** [code, expected output] for each example: a ts block, then "prints:" and a text block. */
const examples = [
  ...readme.matchAll(/```ts\n([\s\S]*?)```\n\nprints:\n\n```text\n([\s\S]*?)```/g),
].map((m) => ({ code: m[1]!, out: m[2]! }));
const allTsBlocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].filter((m) =>
  m[1]!.includes("from 'vmalloc'"),
);

let dir: string;
let compiled: { status: number | null; stdout: string; stderr: string };
before(() => {
  // A consumer's folder: 'vmalloc' resolves to this package through its exports map.
  dir = mkdtempSync(join(tmpdir(), 'vmalloc-readme-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'vmalloc'), 'dir');
  symlinkSync(join(root, 'node_modules', '@types'), join(dir, 'node_modules', '@types'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const files = examples.map((_, i) => `example${i}.ts`);
  examples.forEach((e, i) => writeFileSync(join(dir, files[i]!), e.code));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2024'],
        types: ['node'],
        strict: true,
        outDir: 'out',
      },
      files,
    }),
  );
  compiled = spawnSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir],
    { encoding: 'utf8' },
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('every README example that imports vmalloc says what it prints', () => {
  assert.equal(examples.length, allTsBlocks.length);
  assert.ok(examples.length >= 4, `found ${examples.length}`);
});

test('the README examples compile under tsc --strict', () => {
  assert.equal(compiled.status, 0, compiled.stdout + compiled.stderr);
});

for (const [i, title] of [
  'the range allocator quick start',
  'the vmalloc quick start',
  'the address display',
  'the workers example',
].entries()) {
  test(`${title} prints what the README says`, () => {
    assert.equal(compiled.status, 0, 'did not compile');
    const r = spawnSync(process.execPath, [join(dir, 'out', `example${i}.js`)], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, examples[i]!.out);
  });
}
