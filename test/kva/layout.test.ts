/**
 * The hot kva modules keep their own copies of the record layout constants (V8 folds a
 * module's own constants but loads imported ones at every use). This test keeps the copies
 * equal to the layout that vmap-area.ts defines.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as layout from '../../src/kva/vmap-area.js';

const HOT = [
  'kva/rbtree.js',
  'kva/rb-list.js',
  'kva/free-tree.js',
  'kva/busy-tree.js',
  'kva/space-pools.js',
  'designs/node-pools.js',
];
const dir = new URL('../../src/', import.meta.url);

test('layout constants copied into the hot modules match vmap-area.ts', () => {
  const exported = layout as unknown as Record<string, unknown>;
  for (const file of HOT) {
    const src = readFileSync(new URL(file, dir), 'utf8');
    const found = [...src.matchAll(/\b((?:F|I)_[A-Z]+|RB_(?:RED|BLACK)) = (\d+)/g)];
    assert.ok(found.length > 0, `${file} declares layout constants`);
    for (const [, name, value] of found) {
      assert.equal(
        Number(value),
        exported[name!],
        `${file}: ${name} = ${value}, vmap-area.ts says ${String(exported[name!])}`,
      );
    }
  }
});

test("VmapSpace's copies of its hot control and statistics words match vmap-space-handle.ts", async () => {
  const handle = (await import('../../src/kva/vmap-space-handle.js')) as unknown as Record<
    string,
    unknown
  >;
  for (const file of ['kva/vmap-space.js', 'kva/space-pools-slow.js']) {
    const src = readFileSync(new URL(file, dir), 'utf8');
    const found = [...src.matchAll(/\b((?:C|S)_[A-Z_]+) = (\d+)/g)];
    assert.ok(found.length >= 2, `${file} declares its hot words`);
    for (const [, name, value] of found)
      assert.equal(Number(value), handle[name!], `${file}: ${name} = ${value}`);
  }
});

test("space-pools.ts's copies of the pools buffer's layout match space-pools-layout.ts", async () => {
  const layout = (await import('../../src/kva/space-pools-layout.js')) as unknown as Record<
    string,
    unknown
  >;
  const src = readFileSync(new URL('kva/space-pools.js', dir), 'utf8');
  const found = [...src.matchAll(/\bconst ((?:K|SHARD|ZONE)_?[A-Z_]*) = (\d+)/g)];
  assert.ok(found.length >= 10, 'space-pools.ts declares its layout words');
  for (const [, name, value] of found)
    assert.equal(Number(value), layout[name!], `space-pools.ts: ${name} = ${value}`);
});
