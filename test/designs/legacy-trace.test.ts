/**
 * Replays operation traces written by the C yardstick's legacy model
 * (test/fixtures/cref-traces/legacy, from ../shared/tools/cref's `gentrace --legacy`) against
 * LegacySpace and requires the same result for every operation: the address of every
 * allocation (the walk with free_vmap_cache decides it, so a single wrong cache rule shows as
 * a different address sooner or later), and ok/err of every free.
 */

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { VmallocError } from '../../src/index.js';
import { LegacySpace } from '../../src/kva/legacy-space.js';

const dir = new URL('../../../test/fixtures/cref-traces/legacy/', import.meta.url);

interface Replayed {
  ops: number;
  /** Allocations that the cache sent past a lower gap that would have held them. */
  notLowest: number;
  cacheHits: number;
}

/** The lowest address >= vstart, aligned, whose range fits a gap of `busy` below vend. */
function lowestFit(
  busy: { start: number; end: number }[],
  size: number,
  align: number,
  vstart: number,
  vend: number,
): number {
  let from = vstart;
  for (const b of [...busy, { start: Infinity, end: Infinity }]) {
    const a = Math.ceil(Math.max(from, vstart) / align) * align;
    if (a + size <= Math.min(b.start, vend)) return a;
    from = Math.max(from, b.end);
  }
  return -1;
}

function replay(text: string, file: string): Replayed {
  let sp: LegacySpace | undefined;
  let start = 0;
  let end = 0;
  const r: Replayed = { ops: 0, notLowest: 0, cacheHits: 0 };
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (line.startsWith('# space ')) {
      const [, , s, e] = line.split(/\s+/);
      start = Number(s);
      end = Number(e);
      sp = new LegacySpace({ start, end, pageSize: 4096 });
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
      // The C model clamps the window to the space (the kernel never passes one outside it).
      const vstart = Math.max(Number(t[3]), start);
      const vend = Math.min(Number(t[4]), end);
      const before = sp.cache();
      let lowest = -1;
      if (r.ops % 7 === 0) lowest = lowestFit(sp.busyAreas(), size, align, vstart, vend);
      try {
        const a = sp.alloc(size, { align, vstart, vend });
        got = a === null ? '-1' : String(a);
        if (a !== null && lowest >= 0 && a !== lowest) r.notLowest++;
        if (a !== null && before.area !== null && a >= before.area.end) r.cacheHits++;
      } catch (e) {
        if (!(e instanceof VmallocError) || e.code !== 'EINVAL') throw e;
        got = '-1';
      }
    } else {
      try {
        sp.free(Number(t[1]));
        got = 'ok';
      } catch (e) {
        if (!(e instanceof VmallocError) || e.code !== 'ENOENT') throw e;
        got = 'err';
      }
    }
    assert.equal(got, want, `${file} line ${n + 1}: "${line}"`);
    r.ops++;
    if (r.ops % 64 === 0) sp.check();
  }
  sp!.check();
  return r;
}

const files = readdirSync(dir).filter((f) => f.endsWith('.trace.gz'));
/** Summed over the replays above (node:test runs a file's tests in order). */
let notLowestTotal = 0;

test('legacy trace fixtures are present', () => {
  assert.ok(files.length >= 5, `expected the C legacy traces in ${dir.pathname}`);
});

for (const f of files) {
  test(`replay of the C yardstick's legacy trace ${f} gives identical results`, () => {
    const text = gunzipSync(readFileSync(new URL(f, dir))).toString('utf8');
    const r = replay(text, f);
    notLowestTotal += r.notLowest;
    console.log(`  ${f}: ${r.ops} ops, ${r.notLowest} sampled allocations above the lowest fit`);
    assert.ok(r.ops >= 4000, `${r.ops} operations replayed`);
    // The traces must exercise the cache: results that a first fit would not give.
    assert.ok(r.cacheHits > 50, `${r.cacheHits} allocations placed after the cached area`);
  });
}

test('the cache sent some allocations above the lowest fit (next fit, not first fit)', () => {
  assert.ok(notLowestTotal > 0, `${notLowestTotal} sampled allocations above the lowest fit`);
});
