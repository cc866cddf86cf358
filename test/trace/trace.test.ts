/**
 * Trace record and replay: a real two-worker run recorded and replayed on its own design
 * gives the same addresses, on another design it runs and reports; the file's form (header,
 * dense order, per-cpu sequences); a tampered trace's divergence is found and located; a
 * one-worker run, a run on a loaded layout and a kvfree_rcu run replay too.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { applyParams, defaultParams, type TestParams } from '../../src/test-vmalloc/params.js';
import { runTestVmalloc } from '../../src/test-vmalloc/run.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';
import { readTrace } from '../../src/test-vmalloc/trace-file.js';
import { formatReplay, replayTrace } from '../../src/test-vmalloc/trace-replay.js';
import { WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';

const dir = mkdtempSync(join(tmpdir(), 'vmalloc-trace-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function params(words: string[]): TestParams {
  const p = defaultParams(IMPLEMENTED_MASK, 2);
  p.seed = 11;
  applyParams(p, words);
  return p;
}

/** Every test but full_fit and long_busy_list (long set-ups), with vm_map_ram and percpu. */
const MASK = 1 | 8 | 16 | 32 | 64 | 128 | 1024;

describe('a recorded two-worker run', () => {
  const file = join(dir, 'two.jsonl');
  test(
    'record=: a header, then every call once, in a dense global order, from both cpus',
    { timeout: WORKER_TEST_TIMEOUT_MS },
    async () => {
      const p = params([
        'nr_threads=2',
        `run_test_mask=${MASK}`,
        'test_loop_count=300',
        'nr_pcpu_objects=300',
        `record=${file}`,
      ]);
      const run = await runTestVmalloc({ params: p, logger: null });
      for (const w of run.workers) for (const t of w.tests) assert.equal(t.failed, 0, t.name);
      const trace = readTrace(readFileSync(file, 'utf8'), file);
      assert.equal(run.traced, trace.calls.length);
      const h = trace.header;
      assert.equal(h.schemaVersion, 1);
      assert.equal(h.design, 'nodes');
      assert.equal(h.nr_cpus, 2);
      assert.equal(h.page_size, 4096);
      assert.equal(h.params['run_test_mask'], MASK);
      assert.equal(h.params['record'], undefined, 'the file name is not a parameter of the run');
      const seq = [0, 0];
      const ops = new Set<string>();
      for (const c of trace.calls) {
        assert.equal(c.seq, seq[c.cpu]!++, `call ${c.i}: cpu ${c.cpu}'s sequence`);
        ops.add(c.op);
      }
      assert.ok(seq[0]! > 1000 && seq[1]! > 1000, `both cpus recorded: ${seq.join(', ')}`);
      for (const op of [
        'vmalloc',
        'vfree',
        'vm_map_ram',
        'vm_unmap_ram',
        'alloc_percpu',
        'free_percpu',
        'alloc_pages',
        'free_pages',
      ])
        assert.ok(ops.has(op), `${op} recorded (${[...ops].join(', ')})`);
      const align = trace.calls.find(
        (c) => c.op === 'vmalloc' && c.caller === 'fix_align_alloc_test [test_vmalloc]',
      );
      assert.ok(align !== undefined, 'fix_align_alloc_test is recorded with its caller');
      assert.equal(align.align, 32768, 'and its alignment');
      assert.equal(align.zero, 1, 'and __GFP_ZERO');
      assert.ok(typeof align.ret === 'number' && align.ret % 32768 === 0);
    },
  );

  test('replayed on its own design: the same addresses, the same outcomes', () => {
    const trace = readTrace(readFileSync(file, 'utf8'), file);
    const r = replayTrace(trace);
    assert.equal(r.first, null, formatReplay(r));
    assert.equal(r.divergent, 0);
    assert.equal(r.calls, trace.calls.length);
    assert.ok(r.checked);
    assert.match(formatReplay(r), /divergence: none/);
  });

  test('replayed on another design: it runs, frees what it allocated, and reports', () => {
    const trace = readTrace(readFileSync(file, 'utf8'), file);
    const r = replayTrace(trace, { design: 'global' });
    assert.equal(r.design, 'global');
    assert.equal(r.traceDesign, 'nodes');
    assert.ok(r.kinds.find((k) => k.op === 'vmalloc')!.calls > 0);
    // Every free found its area: nothing failed here that succeeded in the trace.
    for (const k of r.kinds) assert.equal(k.failedWhereTraceSucceeded, 0, k.op);
    assert.ok(r.checked);
    // The 2018 design has no percpu allocator: those calls fail here, and the report says so.
    const legacy = replayTrace(trace, { design: 'legacy' });
    const percpu = legacy.kinds.find((k) => k.op === 'alloc_percpu')!;
    assert.equal(percpu.failedWhereTraceSucceeded, percpu.calls);
    assert.ok(legacy.divergent >= percpu.calls);
    assert.match(formatReplay(legacy), /first at call \d+ \(cpu \d [a-z_]+\): expected /);
  });

  test('a tampered trace: the divergence is counted and the first one located', () => {
    const lines = readFileSync(file, 'utf8').split('\n');
    const k = lines.findIndex((l, i) => i > 0 && l.includes('"op":"vmalloc"'));
    const call = JSON.parse(lines[k]!) as { i: number; ret: number };
    call.ret += 4096 * 1024; // an address the replay will not return
    lines[k] = JSON.stringify(call);
    const trace = readTrace(lines.join('\n'));
    const r = replayTrace(trace);
    assert.ok(r.divergent >= 1);
    assert.equal(r.kinds.find((x) => x.op === 'vmalloc')!.differentAddress, 1);
    assert.equal(r.first?.i, call.i);
    assert.equal(r.first?.op, 'vmalloc');
    // The free of that allocation still freed the replay's area: nothing failed after it.
    for (const x of r.kinds) assert.equal(x.failedWhereTraceSucceeded, 0, x.op);
  });
});

test('a one-worker run, full_fit and long_busy_list included, replays exactly', async () => {
  const file = join(dir, 'one.jsonl');
  const p = params(['run_test_mask=7', 'test_loop_count=50', `record=${file}`, 'design=global']);
  const run = await runTestVmalloc({ params: p, logger: null });
  assert.ok(run.traced! > 30000, `calls: ${run.traced}`);
  const r = replayTrace(readTrace(readFileSync(file, 'utf8')));
  assert.equal(r.design, 'global');
  assert.equal(r.divergent, 0, formatReplay(r));
});

test('a run on a loaded layout: the trace carries the layout, the replay loads it', async () => {
  const file = join(dir, 'layout.jsonl');
  const text = readFileSync(
    new URL('../../../test/fixtures/vmallocinfo-plain.txt', import.meta.url),
    'utf8',
  );
  const p = params(['run_test_mask=9', 'test_loop_count=200', `record=${file}`]);
  await runTestVmalloc({ params: p, logger: null, vmallocinfo: text });
  const trace = readTrace(readFileSync(file, 'utf8'));
  assert.equal(trace.header.vmallocinfo, text);
  const r = replayTrace(trace);
  assert.equal(r.divergent, 0, formatReplay(r));
});

test('kvfree_rcu calls replay without waiting on cpus that cannot run', async () => {
  const file = join(dir, 'rcu.jsonl');
  const p = params(['run_test_mask=256', 'test_loop_count=500', `record=${file}`]);
  await runTestVmalloc({ params: p, logger: null });
  const trace = readTrace(readFileSync(file, 'utf8'));
  assert.ok(trace.calls.some((c) => c.op === 'kvfree_rcu'));
  const r = replayTrace(trace, { nrCpus: 4 });
  assert.equal(r.calls, trace.calls.length);
  assert.ok(r.checked);
});

test('readTrace refuses what is not a trace, naming the line', () => {
  assert.throws(() => readTrace('{"type":"other"}\n'), /line 1: not a vmalloc trace/);
  const header = readFileSync(join(dir, 'two.jsonl'), 'utf8').split('\n')[0]!;
  assert.throws(
    () =>
      readTrace(
        `${header}\n{"i":0,"cpu":0,"seq":0,"op":"vmalloc","size":4096,"ret":null,"ns":1}\n{"i":5}\n`,
      ),
    /line 3: unknown op undefined/,
  );
  assert.throws(
    () => readTrace(`${header}\n{"i":1,"cpu":0,"seq":0,"op":"purge","ns":1}\n`),
    /line 2: calls must be in order: expected "i":0, got 1/,
  );
  assert.throws(() => readTrace(`${header}\nnot json\n`), /line 2: not JSON/);
  writeFileSync(join(dir, 'bad.jsonl'), `${header}\nnot json\n`);
});
