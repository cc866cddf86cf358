/**
 * The façade where memory cannot be shared: createVmalloc({ shared: false }) in both designs, a
 * page without SharedArrayBuffer (a child process that deletes the global before importing the
 * compiled library), and require() of the compiled entry point from CommonJS.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { attachVmalloc, createVmalloc, VmallocError } from '../../src/index.js';

const entry = new URL('../../src/index.js', import.meta.url);

/** Runs `script` in a child Node (`args` first); returns its last stdout line as JSON. */
function runChild(args: string[], script: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, [...args, '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, `child failed:\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

describe('shared: false', () => {
  for (const design of ['global', 'nodes'] as const) {
    test(`${design}: a private subsystem on plain ArrayBuffers works end to end`, () => {
      const vm = createVmalloc({ design, shared: false, nrCpus: 2, logger: null });
      const a = vm.vmalloc(3 * 4096)!;
      assert.notEqual(a, null);
      vm.write(a + 4090, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
      assert.deepEqual(vm.read(a + 4090, 8), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
      const pages = vm.allocPages(2);
      const m = vm.vmap(pages)!;
      assert.equal(vm.vmallocToPage(m + 4096), pages[1]);
      assert.match(vm.vmallocinfo(), /pages=3 vmalloc/);
      vm.vfree(a);
      vm.vunmap(m);
      vm.purge();
      vm.freePages(pages);
      assert.equal(vm.stats().pagesUsed, 0);
      vm.check();
      assert.ok(!(vm.handle.ctl instanceof SharedArrayBuffer), 'nothing is shared');
      assert.throws(
        () => attachVmalloc(vm.handle, { cpu: 1 }),
        (e: unknown) =>
          e instanceof VmallocError && e.code === 'EINVAL' && /shared: false/.test(e.message),
      );
    });
  }
});

describe('a platform without SharedArrayBuffer', () => {
  test('createVmalloc works on plain buffers; asking for shared memory is a VmallocError', () => {
    const out = runChild(
      ['--input-type=module'],
      `
      delete globalThis.SharedArrayBuffer;
      const { createVmalloc, VmapSpace } = await import(${JSON.stringify(entry.href)});
      const out = { sabGone: typeof SharedArrayBuffer === 'undefined' };
      for (const design of ['global', 'nodes']) {
        const vm = createVmalloc({ design, logger: null });
        const a = vm.vmalloc(8192);
        vm.write(a, new Uint8Array([7, 8, 9]));
        out[design] = Array.from(vm.read(a, 3));
        vm.vfree(a);
        vm.check();
      }
      const s = new VmapSpace({ start: 0, end: 1 << 20 });
      out.space = s.alloc(4096);
      for (const [k, make] of [
        ['vmalloc', () => createVmalloc({ shared: true })],
        ['space', () => new VmapSpace({ start: 0, end: 4096, shared: true })],
        ['concurrent', () => new VmapSpace({ start: 0, end: 4096, concurrent: true })],
      ]) {
        try { make(); out[k + 'Shared'] = 'made'; }
        catch (e) { out[k + 'Shared'] = e.name + ' ' + e.code + ' ' + /shared|SharedArrayBuffer/.test(e.message); }
      }
      try { new VmapSpace({ start: 0, end: 4096, concurrent: true }); }
      catch (e) { out.concurrentMessage = e.message;
      }
      console.log(JSON.stringify(out));
      `,
    );
    assert.deepEqual(out, {
      sabGone: true,
      global: [7, 8, 9],
      nodes: [7, 8, 9],
      space: 0,
      vmallocShared: 'VmallocError EINVAL true',
      spaceShared: 'VmallocError EINVAL true',
      concurrentShared: 'VmallocError EINVAL true',
      concurrentMessage:
        'Cannot create VmapSpace: concurrent: true needs SharedArrayBuffer, which this platform does not have (a browser page must be cross-origin isolated: served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp); leave concurrent off for a single-thread space',
    });
  });
});

describe('CommonJS', () => {
  test('require() of the compiled entry point gives the whole API (no top-level await)', () => {
    // Node 20.19+ loads ES modules from require() without a flag; older 20.x need the flag.
    const flag = process.features.require_module === true ? [] : ['--experimental-require-module'];
    const out = runChild(
      [...flag, '--input-type=commonjs'],
      `
      const m = require(${JSON.stringify(fileURLToPath(entry))});
      const vm = m.createVmalloc({ nrCpus: 1, logger: null });
      const a = vm.vmalloc(4096);
      console.log(JSON.stringify({ fns: typeof m.createVmalloc + typeof m.attachVmalloc,
        addr: typeof a, err: typeof m.VmallocError }));
      `,
    );
    assert.deepEqual(out, { fns: 'functionfunction', addr: 'number', err: 'function' });
  });
});
