/**
 * Space traces (bench kva --record): a bare VmapSpace's alloc and free calls recorded through
 * TraceRecorder.wrapSpace(), read back, and replayed onto a space of each layout: the same
 * addresses on plain and single-lock spaces; a tampered address is found and located; a
 * space call in a vmalloc trace (and the reverse) is refused with its line.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { VmapSpace } from '../../src/kva/vmap-space.js';
import { readTrace, TraceFormatError } from '../../src/test-vmalloc/trace-file.js';
import { replaySpaceTrace } from '../../src/test-vmalloc/trace-replay-space.js';
import { openSpaceTraceSession } from '../../src/test-vmalloc/trace-session.js';

const dir = mkdtempSync(join(tmpdir(), 'vmalloc-space-trace-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const P = 4096;
const file = join(dir, 'space.jsonl');

/** 300 seeded random-size, random-alignment allocations, half freed as it goes, then all. */
function record(): number {
  const base = new VmapSpace({ start: 2 ** 30, end: 2 ** 30 + 2 ** 28, pageSize: P });
  const session = openSpaceTraceSession(file, base, 'plain', { test: 'space' });
  const rec = session.recorder(0);
  const sp = rec.wrapSpace(base);
  let x = 12345;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % n;
  };
  const live: number[] = [];
  for (let i = 0; i < 300; i++) {
    const a = sp.alloc((1 + rnd(16)) * P, { align: P << rnd(5) });
    assert.ok(a !== null);
    live.push(a);
    if (rnd(2) === 0) sp.free(live.splice(rnd(live.length), 1)[0]!);
  }
  assert.equal(sp.alloc(P, { vstart: 2 ** 30 + 2 ** 27 }) !== null, true); // a window
  for (const a of live) sp.free(a);
  assert.equal(base.busyCount, 1, 'the view changed the space itself');
  rec.flush();
  return session.close();
}

test('a recorded space replays to the same addresses on plain and single-lock spaces', () => {
  const calls = record();
  const trace = readTrace(readFileSync(file, 'utf8'), file);
  assert.equal(trace.calls.length, calls);
  assert.deepEqual(trace.header.space, { start: 2 ** 30, end: 2 ** 30 + 2 ** 28, layout: 'plain' });
  const win = trace.calls.find((c) => c.op === 'space_alloc' && c.vstart === 2 ** 30 + 2 ** 27);
  assert.ok(win !== undefined, 'the window is recorded');
  for (const layout of ['plain', 'single-lock'] as const) {
    const r = replaySpaceTrace(trace, { layout });
    assert.equal(r.divergent, 0, `${layout}: ${JSON.stringify(r.first)}`);
    assert.equal(r.calls, calls);
    assert.ok(r.checked);
  }
  const pooled = replaySpaceTrace(trace, { layout: 'pooled' });
  assert.equal(pooled.calls, calls, 'a pooled space replays every call');
});

test('a tampered address is found at its call', () => {
  record();
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const k = lines.findIndex((l, i) => i > 10 && l.includes('"op":"space_alloc"'));
  const call = JSON.parse(lines[k]!) as { i: number; ret: number };
  lines[k] = JSON.stringify({ ...call, ret: call.ret + P });
  const r = replaySpaceTrace(readTrace(lines.join('\n'), 'tampered'));
  assert.ok(r.first !== null);
  assert.equal(r.first.i, call.i);
  assert.equal(r.first.op, 'space_alloc');
});

test('space calls and vmalloc calls do not mix in one trace', () => {
  record();
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  const bad = [JSON.stringify({ ...header, space: undefined, physical_memory: 4096 }), lines[1]];
  assert.throws(
    () => readTrace(bad.join('\n'), 'x.jsonl'),
    (e: unknown) =>
      e instanceof TraceFormatError &&
      /x\.jsonl: line 2: space_alloc is a space trace/.test(e.message),
  );
  const other = [lines[0], JSON.stringify({ i: 0, cpu: 0, seq: 0, op: 'vmalloc', size: P, ns: 1 })];
  assert.throws(
    () => readTrace(other.join('\n'), 'y.jsonl'),
    /y\.jsonl: line 2: a space trace holds space_alloc and space_free only, got vmalloc/,
  );
});
