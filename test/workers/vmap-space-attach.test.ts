/**
 * VmapSpace.attach() refuses everything that is not the handle of a concurrent space, and bad
 * attach options, with EINVAL naming `handle` (or the field of it) or `cpu` and the rule; the
 * space it was given stays as it was. A real handle, structured-cloned as postMessage would
 * send it, still attaches. (In this thread: attach checks do not need a worker.)
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmallocError, VmapSpace, createVmalloc, type VmapSpaceHandle } from '../../src/index.js';

const P = 4096;

function concurrentSpace(): VmapSpace {
  const sp = new VmapSpace({ start: 2 ** 40, end: 2 ** 40 + 256 * P, concurrent: true });
  sp.alloc(3 * P);
  sp.alloc(P, { vstart: 2 ** 40 + 16 * P });
  return sp;
}

function snapshot(sp: VmapSpace): string {
  sp.check();
  return JSON.stringify({ free: [...sp.freeBlocks()], busy: [...sp.busyAreas()], s: sp.stats() });
}

function refused(handle: unknown, options: unknown, message: RegExp, what: string): void {
  assert.throws(
    () => VmapSpace.attach(handle as VmapSpaceHandle, options as { cpu?: number }),
    (e: unknown) => {
      assert.ok(e instanceof VmallocError, `${what}: a VmallocError, got ${String(e)}`);
      assert.equal(e.code, 'EINVAL', `${what}: ${e.message}`);
      assert.match(e.message, /^Cannot attach VmapSpace: /, what);
      assert.match(e.message, message, what);
      return true;
    },
    what,
  );
}

/** A copy of `handle` with `path` (a field, or store.field) set to `value`. */
function forged(handle: VmapSpaceHandle, path: string, value: unknown): unknown {
  const [a, b] = path.split('.') as [string, string | undefined];
  if (b === undefined) return { ...handle, [a]: value };
  return { ...handle, store: { ...handle.store, [b]: value } };
}

test('attach: not a handle at all', () => {
  for (const v of [null, undefined, 0, 'VmapSpace', true, Symbol('h'), 1n, [], () => ({}), {}])
    refused(v, {}, /handle must be the handle of a VmapSpace \(space\.handle\)/, String(typeof v));
  refused({ kind: 'vmapspace' }, {}, /handle must be the handle of a VmapSpace .*kind/, 'kind');
});

test("attach: a Vmalloc's handle", () => {
  const vm = createVmalloc({ nrCpus: 1 });
  refused(vm.handle, {}, /got the handle of a Vmalloc \(attach that with attachVmalloc\)/, 'vm');
});

test('attach: the handle of a space created without concurrent, or with shared: false', () => {
  for (const opts of [{}, { shared: true }, { shared: false }]) {
    const sp = new VmapSpace({ start: 0, end: 64 * P, ...opts });
    refused(
      sp.handle,
      {},
      /handle must be the handle of a space created with concurrent: true/,
      JSON.stringify(opts),
    );
  }
});

test('attach: a plain object shaped like a handle, with fresh buffers of the right sizes', () => {
  const real = concurrentSpace().handle;
  const fake = {
    kind: 'VmapSpace',
    start: real.start,
    end: real.end,
    pageSize: real.pageSize,
    ctl: new SharedArrayBuffer(real.ctl.byteLength),
    stat: new SharedArrayBuffer(real.stat.byteLength),
    locks: new SharedArrayBuffer(real.locks!.byteLength),
    store: {
      ...real.store,
      meta: new SharedArrayBuffer(real.store.meta.byteLength),
      records: new SharedArrayBuffer(64 * 1024, {
        maxByteLength: 64 * real.store.maxRecords,
      } as never),
      freeIds: new SharedArrayBuffer(4 * 1024, {
        maxByteLength: 4 * real.store.maxRecords,
      } as never),
    },
  };
  refused(
    fake,
    {},
    /handle\.ctl must be the control block of a VmapSpace \(magic word 0x566d5370\), got a buffer whose magic word is 0x0/,
    'fake',
  );
});

test('attach: a real handle with one field of the wrong type or size', () => {
  const sp = concurrentSpace();
  const before = snapshot(sp);
  const h = sp.handle;
  const rows: [string, unknown, RegExp][] = [
    ['ctl', new ArrayBuffer(16), /handle\.ctl must be a SharedArrayBuffer of 32 bytes/],
    ['ctl', new Int32Array(new SharedArrayBuffer(16)), /handle\.ctl must be a SharedArrayBuffer/],
    [
      'ctl',
      new SharedArrayBuffer(8),
      /handle\.ctl must be a SharedArrayBuffer of 32 bytes, .*got 8/,
    ],
    ['ctl', null, /handle\.ctl must be a SharedArrayBuffer/],
    ['ctl', 16, /handle\.ctl must be a SharedArrayBuffer/],
    ['stat', new SharedArrayBuffer(8), /handle\.stat must be a SharedArrayBuffer of 32 bytes/],
    ['stat', new SharedArrayBuffer(64), /handle\.stat must be a SharedArrayBuffer of 32 bytes/],
    ['locks', new ArrayBuffer(h.locks!.byteLength), /handle\.locks must be a SharedArrayBuffer/],
    ['locks', new SharedArrayBuffer(4), /handle\.locks must be a SharedArrayBuffer of \d+ bytes/],
    ['locks', undefined, /handle\.locks must be a SharedArrayBuffer/],
    ['store', null, /handle\.store must be the record store of a VmapSpace/],
    ['store', 'store', /handle\.store must be the record store of a VmapSpace/],
    ['store.recordBytes', 32, /handle\.store\.recordBytes must be 64, got 32/],
    ['store.maxRecords', 3, /handle\.store\.maxRecords must be from 6 to 2\^26, got 3/],
    ['store.maxRecords', '8', /handle\.store\.maxRecords must be a number/],
    ['store.pcpu', new SharedArrayBuffer(8), /handle\.store\.pcpu must be null/],
    [
      'store.meta',
      new ArrayBuffer(16),
      /handle\.store\.meta must be a SharedArrayBuffer of 128 bytes/,
    ],
    [
      'store.records',
      new SharedArrayBuffer(64 * 1024),
      /handle\.store\.records must be a growable SharedArrayBuffer/,
    ],
    ['store.records', new ArrayBuffer(64), /handle\.store\.records must be a SharedArrayBuffer/],
    [
      'store.freeIds',
      h.store.records,
      /handle\.store\.freeIds must be a growable SharedArrayBuffer of at most maxRecords \* 4 bytes/,
    ],
    [
      'start',
      h.start + P,
      /handle\.start must be the start the space was created with \(1099511627776\)/,
    ],
    ['start', '0', /handle\.start must be the start the space was created with/],
    ['end', h.end - P, /handle\.end must be the end the space was created with/],
    [
      'pageSize',
      1,
      /handle\.pageSize must be the pageSize the space was created with \(4096\), got 1/,
    ],
    ['kind', 'Vmalloc', /got the handle of a Vmalloc/],
  ];
  for (const [path, value, message] of rows) refused(forged(h, path, value), {}, message, path);
  // The ctl of a space that is not concurrent (its magic word is right, its locks null).
  const other = new VmapSpace({ start: 0, end: 64 * P });
  refused({ ...h, ctl: new SharedArrayBuffer(32) }, {}, /magic word is 0x0/, 'blank ctl');
  refused({ ...h, locks: other.handle.locks }, {}, /concurrent: true/, 'locks null');
  assert.equal(snapshot(sp), before, 'the space is unchanged');
});

test('attach: bad options and bad cpu', () => {
  const sp = concurrentSpace();
  const before = snapshot(sp);
  for (const v of [null, 5, 'cpu', Symbol('o'), true])
    refused(sp.handle, v, /^Cannot attach VmapSpace: options must be an object/, String(typeof v));
  for (const cpu of [-1, 65536, 2 ** 40, 1.5, NaN, Infinity, '1', true, null, Symbol('c'), 1n, {}])
    refused(sp.handle, { cpu }, /^Cannot attach VmapSpace: cpu must /, `cpu ${typeof cpu}`);
  assert.equal(snapshot(sp), before, 'the space is unchanged');
});

test('attach: a real handle, structured-cloned as postMessage sends it, attaches and shares', () => {
  const sp = concurrentSpace();
  for (const [handle, options] of [
    [structuredClone(sp.handle), { cpu: 65535 }],
    [{ ...sp.handle }, undefined],
    [sp.handle, {}],
  ] as const) {
    const other = VmapSpace.attach(handle, options);
    const a = other.alloc(2 * P)!;
    assert.deepEqual(sp.find(a), { start: a, end: a + 2 * P }, 'seen by the creator');
    sp.free(a);
    assert.equal(other.find(a), null, 'and its free seen by the attached one');
    other.check();
  }
});
