/**
 * The README's quick start runs as written (against the built package) and prints what its
 * comments say.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('the README quick start runs and behaves as its comments say', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'a ts code block');
  const entry = join(root, 'dist/src/index.js');
  const code = block[1]!.replace("from 'vmalloc'", `from ${JSON.stringify(entry)}`);
  const dir = mkdtempSync(join(tmpdir(), 'vmalloc-readme-'));
  const file = join(dir, 'quickstart.mjs');
  writeFileSync(file, code);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^EINVAL Cannot alloc: size must be a multiple of the page size \(4096\), got 1000$/m,
  );
});
