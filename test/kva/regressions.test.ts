/**
 * Named regression tests: sequences that once failed a property test or a review, kept so the
 * failure cannot come back unnoticed.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmapSpace } from '../../src/index.js';

test('regression: vend equal to a space end of 2^53 is accepted (property huge-align)', () => {
  // Found by the huge-align property run: vend = 2^53 was rejected as "not a safe integer".
  const sp = new VmapSpace({ start: 2 ** 52, end: 2 ** 53, pageSize: 4096 });
  assert.equal(sp.alloc(4096, { vend: 2 ** 53 }), 2 ** 52);
  assert.equal(sp.alloc(4096, { vstart: 2 ** 53 - 4096, vend: 2 ** 53 }), 2 ** 53 - 4096);
  sp.check();
});

test('regression: both-sided merge with the grown next block unlinked before prev grows', () => {
  // The ordering of mm/vmalloc.c: growing prev first would leave a stale subtree max after the
  // erase's rotations. Build a tree where next has two children, so its erase rotates.
  const sp = new VmapSpace({ start: 0, end: 4096 * 64, pageSize: 4096 });
  const areas = Array.from({ length: 64 }, () => sp.alloc(4096)!);
  for (let i = 0; i < 64; i += 2) sp.free(areas[i]!);
  sp.check();
  for (let i = 1; i < 64; i += 2) {
    sp.free(areas[i]!);
    sp.check();
  }
  assert.equal(sp.freeCount, 1);
});

test('regression: no-edge split inserts the left part below the split block', () => {
  const sp = new VmapSpace({ start: 0, end: 4096 * 1024, pageSize: 4096 });
  for (let i = 0; i < 200; i++) {
    assert.equal(sp.alloc(4096, { vstart: 4096 * (1023 - i * 5) - 4096 * 3 }) !== null, true);
    sp.check();
  }
});
