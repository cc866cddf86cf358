/**
 * The shared core outside Node's comfort: without a SharedArrayBuffer global (a browser page
 * without cross-origin isolation) the lock table and the buffers work single-threaded and
 * never throw a ReferenceError; src/shared/cpu.ts has no dynamic import, no Node built-in
 * specifier and no top-level await (bundlers, require() from CommonJS).
 * Each platform variant runs in a child process that changes its globals before importing the
 * compiled modules.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { machineCpuCount } from '../../src/shared/cpu.js';

const moduleUrl = (name: string): string =>
  new URL(`../../src/shared/${name}.js`, import.meta.url).href;

/**
 * Runs `body` as an ES module in a child Node after `preamble` (both see `urls`, the compiled
 * modules' URLs by name); returns what the body printed as JSON on its last line.
 */
function runChild(preamble: string, body: string): Record<string, unknown> {
  const urls = Object.fromEntries(
    ['lock', 'buffers', 'cpu'].map((name) => [name, moduleUrl(name)]),
  );
  const script = `${preamble}\nconst urls = ${JSON.stringify(urls)};\n${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `child failed:\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

describe('without SharedArrayBuffer', () => {
  test('LockTable, Lock, LockClass and the buffers work on plain ArrayBuffers', () => {
    const out = runChild(
      'delete globalThis.SharedArrayBuffer;',
      `
      const out = { sabGone: typeof SharedArrayBuffer === 'undefined' };
      const { LockTable, Lock, LockClass, LOCK_WORDS } = await import(urls.lock);
      const { makeFixedBuffer, makeGrowableBuffer, growBuffer, isSharedBuffer } = await import(urls.buffers);
      const { machineCpuCount } = await import(urls.cpu);
      const t = LockTable.create(2, false, 2, 1);
      t.setStats(true);
      const l = new Lock(t, 1, 'a_lock');
      l.lock(0);
      out.owner = l.owner();
      l.unlock();
      out.lockedAfter = l.isLocked();
      out.tryLock = l.tryLock(1);
      l.unlock();
      const c = new LockClass(t, 0, 'rec_lock');
      const rec = new Int32Array(new ArrayBuffer(2 * LOCK_WORDS * 4));
      c.lock(1, rec, LOCK_WORDS);
      out.recOwner = c.owner(rec, LOCK_WORDS);
      c.unlock(rec, LOCK_WORDS);
      out.slotAcq = t.stat(1, 'a_lock').acquisitions;
      out.classAcq = t.classStat(0, 'rec_lock').acquisitions;
      // Contended in one thread (another cpu id holds it): no Atomics.wait on plain memory;
      // the waiter spins until the timeout and says so.
      t.setTimeout(30);
      l.lock(0);
      try { l.lock(1); out.contended = 'taken'; } catch (e) { out.contended = e.code ?? e.name; }
      l.unlock();
      out.freeAgain = !l.isLocked() && l.handoffRequested() === -1;
      const g = makeGrowableBuffer(64, 1024, false);
      growBuffer(g, 512);
      out.grown = g.byteLength;
      const f = makeFixedBuffer(64, false);
      out.fixed = f.byteLength;
      out.isShared = isSharedBuffer(f);
      for (const [k, make] of [
        ['sharedFixed', () => makeFixedBuffer(8, true)],
        ['sharedGrowable', () => makeGrowableBuffer(8, 64, true)],
        ['sharedTable', () => LockTable.create(1, true)],
      ]) {
        try { make(); out[k] = 'made'; } catch (e) { out[k] = e.name + ' ' + e.code; }
      }
      out.cpus = machineCpuCount();
      console.log(JSON.stringify(out));
      `,
    );
    assert.deepEqual(out, {
      sabGone: true,
      owner: 0,
      lockedAfter: false,
      tryLock: true,
      recOwner: 1,
      slotAcq: 2,
      classAcq: 1,
      contended: 'ETIMEDOUT',
      freeAgain: true,
      grown: 512,
      fixed: 64,
      isShared: false,
      // Asking for shared memory where there is none: a VmallocError that says so.
      sharedFixed: 'VmallocError EINVAL',
      sharedGrowable: 'VmallocError EINVAL',
      sharedTable: 'VmallocError EINVAL',
      cpus: out.cpus,
    });
    assert.ok(Number.isInteger(out.cpus) && (out.cpus as number) >= 1);
  });
});

describe('machineCpuCount', () => {
  test('the compiled module has no dynamic import, no Node built-in specifier, no await', () => {
    const src = readFileSync(fileURLToPath(moduleUrl('cpu')), 'utf8');
    assert.ok(!src.includes('import('), 'no import(');
    assert.ok(!src.includes('node:'), 'no node: specifier');
    assert.ok(!/\bawait\b/.test(src), 'no top-level await');
    assert.ok(!/^\s*import\s/m.test(src), 'no static import either');
  });

  test('an integer >= 1: the machine count on Node', () => {
    const n = machineCpuCount();
    assert.ok(Number.isInteger(n) && n >= 1, String(n));
    assert.equal(n, availableParallelism());
  });

  test('navigator.hardwareConcurrency first; 1 when neither it nor getBuiltinModule exist', () => {
    const nav = runChild(
      `Object.defineProperty(globalThis, 'navigator', { value: { hardwareConcurrency: 3 }, configurable: true });`,
      `const { machineCpuCount } = await import(urls.cpu); console.log(JSON.stringify({ n: machineCpuCount() }));`,
    );
    assert.deepEqual(nav, { n: 3 });
    const bare = runChild(
      `delete globalThis.navigator; delete process.getBuiltinModule;`,
      `const { machineCpuCount } = await import(urls.cpu); console.log(JSON.stringify({ n: machineCpuCount() }));`,
    );
    assert.deepEqual(bare, { n: 1 });
  });
});
