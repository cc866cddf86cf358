/**
 * Replays operation traces written by the C yardstick (test/fixtures/cref-traces) and requires
 * the same result for every operation: the address of every allocation (including those with
 * a large alignment, which depend on the red-black tree's shape), and ok/err of every free.
 */

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { VmallocError, VmapSpace } from '../../src/index.js';

const dir = new URL('../../../test/fixtures/cref-traces/', import.meta.url);

function replay(text: string, file: string): { ops: number; adjusted: number } {
  let sp: VmapSpace | undefined;
  let start = 0;
  let end = 0;
  let ops = 0;
  let adjusted = 0;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (line.startsWith('# space ')) {
      const [, , s, e] = line.split(/\s+/);
      start = Number(s);
      end = Number(e);
      sp = new VmapSpace({ start, end, pageSize: 4096 });
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const hash = line.indexOf('#');
    const want = line
      .slice(hash)
      .replace(/^#\s*->\s*/, '')
      .trim();
    const t = line.slice(0, hash).trim().split(/\s+/);
    assert.ok(sp, `${file}: no "# space" header before line ${n + 1}`);
    let got: string;
    if (t[0] === 'a') {
      const size = Number(t[1]);
      const align = Number(t[2]);
      const vstart = Math.max(Number(t[3]), start);
      const vend = Math.min(Number(t[4]), end);
      try {
        const a = sp.alloc(size, { align, vstart, vend });
        got = a === null ? '-1' : String(a);
      } catch (e) {
        if (!(e instanceof VmallocError) || e.code !== 'EINVAL') throw e;
        got = '-1';
      }
      if (align > 4096) adjusted++;
    } else {
      try {
        sp.free(Number(t[1]));
        got = 'ok';
      } catch (e) {
        if (!(e instanceof VmallocError)) throw e;
        got = 'err';
      }
    }
    assert.equal(got, want, `${file} line ${n + 1}: "${line}"`);
    ops++;
  }
  sp!.check();
  return { ops, adjusted };
}

const files = readdirSync(dir).filter((f) => f.endsWith('.trace.gz'));

test('trace fixtures are present', () => {
  assert.ok(files.length >= 5, `expected the C traces in ${dir.pathname}`);
});

for (const f of files) {
  test(`replay of the C yardstick's trace ${f} gives identical results`, () => {
    const text = gunzipSync(readFileSync(new URL(f, dir))).toString('utf8');
    const r = replay(text, f);
    assert.ok(r.ops >= 5000, `${r.ops} operations replayed`);
    assert.ok(r.adjusted > 100, `${r.adjusted} allocations with align above the page size`);
  });
}
