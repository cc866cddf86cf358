/**
 * Misused parameters of `vmalloc test` and `vmalloc bench`: each is refused before anything
 * starts, with exit status 1 and one line on stderr naming the parameter, the rule and the
 * value (no stack trace, nothing on stdout). And the nr_threads bound: its computation on
 * given machines (maxThreadsFor, threadBoundError), and the CLI refusing more workers than
 * any machine holds.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MAX_THREADS, maxThreadsFor, threadBoundError } from '../../src/cli/limits.js';
import { DESIGN_NAMES } from '../../src/designs/registry.js';
import { defaultParams, type TestParams } from '../../src/test-vmalloc/params.js';
import { runMemoryFor, WORKER_THREAD_BYTES } from '../../src/test-vmalloc/run.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const GiB = 2 ** 30;

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI and checks the refusal's shape; returns its one line. */
function refused(args: string[], line: RegExp): string {
  const r = run(...args);
  const what = args.join(' ');
  assert.equal(r.status, 1, `${what}: exit status (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: no stack trace`);
  // Nothing started: the configuration line of a run never came.
  assert.doesNotMatch(r.stderr, /test_vmalloc: design=/, `${what}: no run`);
  assert.match(lines[0]!, line, what);
  return lines[0]!;
}

const params = (over: Partial<TestParams> = {}): TestParams => ({
  ...defaultParams(IMPLEMENTED_MASK, 2),
  ...over,
});

describe('vmalloc test: parameters the kernel would clamp or modprobe refuse', () => {
  const E = 'Error: key or value is not correct:';
  test('ints beyond their type (run_test_mask and nr_pages above 2^31 - 1, ...)', () => {
    refused(
      ['test', 'run_test_mask=2147483648'],
      new RegExp(
        `^${E} run_test_mask 2147483648 \\(run_test_mask is an int: at most 2147483647\\)$`,
      ),
    );
    refused(
      ['test', 'nr_pages=2147483648'],
      new RegExp(`^${E} nr_pages 2147483648 \\(nr_pages is an int: at most 2147483647\\)$`),
    );
    refused(
      ['test', 'test_loop_count=99999999999999999999'],
      /^Error: key or value is not correct: test_loop_count 99999999999999999999 \(test_loop_count is an int: at most 2147483647\)$/,
    );
    refused(
      ['test', 'test_repeat_count=2147483648'],
      /test_repeat_count 2147483648 \(test_repeat_count is an int: at most 2147483647\)$/,
    );
    refused(
      ['test', 'nr_threads=65536'],
      /nr_threads 65536 \(nr_threads is at most 65535, USHRT_MAX\)$/,
    );
    refused(['test', 'seed=4294967296'], /seed 4294967296 \(seed is a u32: at most 4294967295\)$/);
    refused(['test', 'nr_cpus=4097'], /nr_cpus 4097 \(nr_cpus is at most 4096\)$/);
  });

  test('bools take 1 (use_huge=2, sequential_test_order=7, lock_stat=3)', () => {
    for (const [key, value] of [
      ['use_huge', '2'],
      ['sequential_test_order', '7'],
      ['lock_stat', '3'],
    ] as const) {
      refused(
        ['test', `${key}=${value}`],
        new RegExp(
          `^${E} ${key} ${value} \\(${key} is a bool: 1 turns it on, leaving it out keeps it off\\)$`,
        ),
      );
    }
  });

  test("the script's rule: a decimal number above 0", () => {
    for (const v of ['0', '-5', 'abc', '0x10', '1.5', '']) {
      refused(
        ['test', `test_loop_count=${v}`],
        new RegExp(
          `^${E} test_loop_count${v === '' ? '' : ` ${v}`} \\(the value must be a decimal number above 0\\)$`,
        ),
      );
    }
    refused(['test', 'use_huge=0'], /use_huge 0 \(the value must be a decimal number above 0\)$/);
  });

  test('design= lists the valid values', () => {
    refused(
      ['test', 'design=solaris'],
      new RegExp(`^${E} design solaris \\(design is one of ${DESIGN_NAMES.join(', ')}\\)$`),
    );
  });

  test('a parameter given twice', () => {
    refused(
      ['test', 'nr_pages=2', 'test_loop_count=10', 'nr_pages=3'],
      new RegExp(`^${E} nr_pages 3 \\(nr_pages is given twice: nr_pages=2 and nr_pages=3\\)$`),
    );
    // After a mode, a parameter overrides the mode's: not a duplicate.
    const ok = run('test', 'smoke', 'test_loop_count=5', 'run_test_mask=1', 'nr_cpus=1', '--quiet');
    assert.equal(ok.status, 0, ok.stderr);
  });

  test('an unknown parameter lists the known ones', () => {
    const line = refused(
      ['test', 'nr_thread=2'],
      new RegExp(`^${E} nr_thread 2 \\(unknown parameter; the parameters are `),
    );
    for (const k of ['nr_threads', 'run_test_mask', 'use_huge', 'design', 'seed', 'lock_stat'])
      assert.match(line, new RegExp(`\\b${k}\\b`));
    refused(
      ['test', 'nr_pages'],
      new RegExp(`^${E} nr_pages \\(a parameter is given as nr_pages=value\\)$`),
    );
    refused(['test', 'smoke', 'stress'], /stress \(unknown parameter; a mode comes first, once; /);
    refused(
      ['test', 'fast'],
      /^vmalloc: unknown mode "fast" \(the modes are performance, smoke, stress; /,
    );
  });

  test('options: unknown (listing the known ones) or given twice', () => {
    refused(
      ['test', '--jsn'],
      /^vmalloc: unknown option --jsn \(the options are --json, --vmallocinfo, --check, --quiet, --help\)/,
    );
    refused(['test', '--quiet', '--quiet'], /^vmalloc: option --quiet is given twice/);
    refused(
      ['frob'],
      /^vmalloc: unknown command "frob" \(the commands are test, bench, sim, report, replay, load-vmallocinfo, help\)/,
    );
  });

  test('a simulated run with a test the simulator does not run yet', () => {
    refused(
      ['test', 'simulate=1', 'run_test_mask=128', '--quiet'],
      /^vmalloc test: run_test_mask=128: the simulator does not run pcpu_alloc_test yet/,
    );
  });
});

describe('nr_threads: bounded by what the machine holds', () => {
  test('maxThreadsFor is the last count whose run fits', () => {
    for (const gib of [1, 2, 6, 24, 64]) {
      for (const p of [params(), params({ run_test_mask: 1 }), params({ nr_cpus: 4096 })]) {
        const k = maxThreadsFor(p, gib * GiB);
        assert.ok(k >= 1 && k < MAX_THREADS, `${gib} GiB: ${k}`);
        if (k > 1) assert.ok(runMemoryFor({ ...p, nr_threads: k }) <= gib * GiB);
        assert.ok(
          runMemoryFor({ ...p, nr_threads: k + 1 }) > gib * GiB,
          `${gib} GiB: ${k} + 1 fits`,
        );
      }
    }
    // Every worker costs its isolate at least: twice the memory, about twice the workers.
    const k6 = maxThreadsFor(params(), 6 * GiB);
    const k12 = maxThreadsFor(params(), 12 * GiB);
    assert.ok(k12 - k6 >= Math.floor((6 * GiB) / WORKER_THREAD_BYTES) - 1, `${k6} ${k12}`);
    // One worker runs in the main thread: never refused, however small the machine.
    assert.equal(maxThreadsFor(params(), 1), 1);
    assert.equal(maxThreadsFor(params(), 2 ** 50), MAX_THREADS);
  });

  test('the refusal says what the run needs, what the machine has, and the most it runs', () => {
    const memory = { availableBytes: 6 * GiB, totalBytes: 8 * GiB };
    const p = params({ nr_threads: 1000 });
    const k = maxThreadsFor(p, memory.availableBytes);
    const need = (runMemoryFor(p) / GiB).toFixed(1);
    assert.equal(
      threadBoundError(p, memory),
      `nr_threads=1000 needs about ${need} GiB; this machine has 6.0 GiB free (8.0 GiB in all); at most ${k} here`,
    );
    assert.ok(runMemoryFor(p) > 6 * GiB && k < 1000);
    assert.equal(threadBoundError(params({ nr_threads: k }), memory), null);
    assert.equal(
      threadBoundError(params({ nr_threads: 1 }), { availableBytes: 1, totalBytes: 1 }),
      null,
    );
  });

  test('the CLI refuses more workers than the machine holds, before starting any', () => {
    const line = refused(
      ['test', 'nr_threads=65535', 'test_loop_count=10'],
      /^vmalloc test: nr_threads=65535 needs about ([\d.]+) GiB; this machine has ([\d.]+) GiB free \(([\d.]+) GiB in all\); at most (\d+) here$/,
    );
    const [, need, free, , most] =
      /needs about ([\d.]+) GiB; this machine has ([\d.]+) GiB free \(([\d.]+) GiB in all\); at most (\d+) here/.exec(
        line,
      )!;
    assert.ok(Number(need) > Number(free));
    assert.ok(Number(most) >= 1 && Number(most) <= MAX_THREADS);
    // The bound also holds after a mode (stress sets nr_threads=$NUM_CPUS, overridden here).
    refused(['test', 'stress', 'nr_threads=65535'], /^vmalloc test: nr_threads=65535 needs about /);
  });
});

describe('vmalloc bench: flags', () => {
  test('--workers: distinct counts from 1 to 4096', () => {
    refused(
      ['bench', 'contention', '--workers', '2,2'],
      /^vmalloc: --workers: 2 is listed twice in 2,2;/,
    );
    refused(
      ['bench', 'contention', '--workers', '1,0'],
      /^vmalloc: --workers: each value must be an integer from 1 to 4096 \(a worker is a CPU, and at most 4096 are simulated\), got "0" in 1,0;/,
    );
    refused(
      ['bench', 'contention', '--workers', '1,,2'],
      /^vmalloc: --workers: each value .* got "" in 1,,2;/,
    );
    refused(
      ['bench', 'contention', '--workers', 'none'],
      /^vmalloc: --workers needs at least one value, got none;/,
    );
    refused(['bench', 'contention', '--workers', '1,4097'], /got "4097" in 1,4097;/);
  });

  // 4096 workers need more than 192 GiB (their isolates alone): refused where that is not free.
  const holds4096 = os.freemem() > MAX_THREADS * WORKER_THREAD_BYTES;
  test(
    '--workers: within the machine',
    { skip: holds4096 && 'this machine holds 4096 workers' },
    () => {
      refused(
        ['bench', 'contention', '--workers', '1,4096'],
        /^vmalloc: --workers=4096 needs about [\d.]+ GiB; this machine has [\d.]+ GiB free \([\d.]+ GiB in all\); at most \d+ here;/,
      );
    },
  );

  test('--design lists the valid values; --nr-cpus and --mask', () => {
    refused(
      ['bench', 'contention', '--design', 'solaris'],
      new RegExp(
        `^vmalloc: --design: each value is one of ${DESIGN_NAMES.join(', ')}, got "solaris" in solaris;`,
      ),
    );
    refused(
      ['bench', 'contention', '--design', 'nodes,nodes'],
      /^vmalloc: --design: nodes is listed twice/,
    );
    refused(
      ['bench', 'contention', '--workers', '4', '--nr-cpus', '2'],
      /^vmalloc: --nr-cpus 2 is below the largest --workers count 4 \(a worker is a CPU\);/,
    );
    refused(
      ['bench', 'contention', '--nr-cpus', '5000'],
      /^vmalloc: --nr-cpus must be an integer from 1 to 4096 \(nr_cpus\), got 5000;/,
    );
    refused(
      ['bench', 'kva', '--mask', '64'],
      /^vmalloc: --mask must be an integer from 1 to 63 \(the kva patterns are tests 1, 2, 4, 8, 16 and 32\), got 64;/,
    );
  });

  test('counts within an int; --heap-pairs, --loops, --scale', () => {
    refused(
      ['bench', 'kva', '--heap-pairs', '0'],
      /^vmalloc: --heap-pairs must be an integer from 1 to 2147483647 \(an int\), got 0;/,
    );
    refused(
      ['bench', 'kva', '--loops', '1e12'],
      /^vmalloc: --loops must be an integer from 1 to 2147483647 \(test_loop_count is an int\), got 1e12;/,
    );
    refused(
      ['bench', 'contention', '--lock-stat-loops', '2147483648'],
      /^vmalloc: --lock-stat-loops must be an integer from 1 to 2147483647/,
    );
    refused(['bench', 'kva', '--reps', '-1'], /^vmalloc: --reps must be an integer from 1 to 1000/);
    refused(['bench', 'kva', '--loops'], /^vmalloc: --loops needs a value;/);
    refused(
      ['bench', 'kva', '--scale', '1000,1000'],
      /^vmalloc: --scale: 1000 is listed twice in 1000,1000;/,
    );
    refused(
      ['bench', 'kva', '--scale', '2000000000'],
      /^vmalloc: --scale 2000000000 needs about [\d.]+ GiB; this machine has [\d.]+ GiB free; at most \d+ here;/,
    );
  });

  test('unknown, repeated, or of the other benchmark', () => {
    refused(
      ['bench', 'kva', '--workers', '2'],
      /^vmalloc: unknown option --workers for bench kva \(the options are --cref, --loops, --reps, --mask, --scale, --scale-loops, --heap-pairs, --record, --json, --quiet, --help\);/,
    );
    refused(
      ['bench', 'contention', '--cref', 'x'],
      /^vmalloc: unknown option --cref for bench contention \(the options are --loops, /,
    );
    refused(
      ['bench', 'kva', '--loops', '5', '--loops=6'],
      /^vmalloc: option --loops is given twice;/,
    );
    refused(['bench', 'kva', '--json=1'], /^vmalloc: --json takes no value, got --json=1;/);
    refused(['bench', 'kva', 'extra'], /^vmalloc: unexpected argument "extra" after bench kva;/);
    refused(
      ['bench', 'nothing'],
      /^vmalloc: unknown benchmark "nothing" \(the benchmarks are kva, contention, vmmapram, scaling, space, seeds\);/,
    );
  });
});
