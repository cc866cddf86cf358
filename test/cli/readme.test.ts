/**
 * The README's code examples run as written (against the built package): the range
 * allocator's prints what its comment says, the vmalloc one behaves as its comments say, the
 * workers one starts real workers over one allocator and prints what its comments say.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```(?:ts|js)\n([\s\S]*?)```/g)]
  .map((m) => m[1]!)
  .filter((b) => b.includes("from 'vmalloc'"));

function runBlock(
  code: string,
  extra = '',
): { status: number | null; stdout: string; stderr: string } {
  const entry = join(root, 'dist/src/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'vmalloc-readme-'));
  const file = join(dir, 'example.mjs');
  writeFileSync(file, code.replace("from 'vmalloc'", `from ${JSON.stringify(entry)}`) + extra);
  return spawnSync(process.execPath, [file], { encoding: 'utf8' });
}

test('the README has its examples', () => {
  assert.equal(blocks.length, 3);
});

test('the range allocator quick start runs and prints what its comment says', () => {
  const r = runBlock(blocks[0]!);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^EINVAL Cannot alloc: size must be a multiple of the page size \(4096\), got 1000$/m,
  );
});

test('the vmalloc quick start runs and behaves as its comments say', () => {
  const r = runBlock(
    blocks[1]!
      .replace('vm.vmallocinfo();', 'console.log(vm.vmallocinfo().trimEnd());')
      .replace('vm.lazyPages; //', 'console.log(vm.lazyPages); //'),
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    r.stdout,
    '0xffffc90000000000-0xffffc90000004000   16384 my_driver_init+0x2a/0x90 pages=3 vmalloc N0=3\n4\n',
  );
});

test('the workers example runs three real workers over one allocator', () => {
  const r = runBlock(
    blocks[2]!.replace(
      'vm.lockStat(); //',
      'console.log(/free_vmap_area_lock/.test(vm.lockStat()), vm.check() === undefined); //',
    ),
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "[ 'hello', 'hello', 'hello' ]\n1\ntrue true\n");
});
