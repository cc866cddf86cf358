/**
 * The examples/ folder runs as shipped, importing the package by its name (Node resolves
 * 'vmalloc' to this package through its own exports map), and prints what its comments say.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function run(file: string): string {
  const r = spawnSync(process.execPath, [`examples/${file}`], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  return r.stdout;
}

test('shared-heap-workers: two workers hand ranges of one SharedArrayBuffer to each other', () => {
  assert.equal(
    run('shared-heap-workers.mjs'),
    'producer wrote 2000 messages into ranges of one SharedArrayBuffer\n' +
      'consumer read and freed 2000, all intact: true\n' +
      'live ranges left: 0\n',
  );
});

test('gpu-suballocator: aligned sub-ranges, fragmentation before and after compaction', () => {
  const out = run('gpu-suballocator.mjs');
  const frag = [...out.matchAll(/(\d+) ranges, .* (\d+) free blocks, .* fragmentation ([\d.]+)%/g)];
  assert.equal(frag.length, 2, out);
  const [before, after] = frag.map((m) => ({ ranges: +m[1]!, blocks: +m[2]!, frag: +m[3]! }));
  assert.equal(after!.ranges, before!.ranges); // nothing lost
  assert.ok(after!.blocks < before!.blocks, out);
  assert.ok(after!.frag < before!.frag, out);
  assert.match(out, /every resource intact: true\n$/);
});

test('port-allocator: windows, aligned blocks, lowest-first reuse, a clear error', () => {
  assert.equal(
    run('port-allocator.mjs'),
    'http 80, clients 49152 49153 49154, daemon 1\n' +
      'block 49168-49183\n' +
      'after freeing 49153, the next ephemeral port is 49153\n' +
      'port 80 again: null\n' +
      'ENOENT: Cannot free: addr must be the start of a live area, got 0x3039, which no live area contains (never allocated, or already freed)\n' +
      'ids 1000 1001 1002 1003 1004; live 6\n',
  );
});
