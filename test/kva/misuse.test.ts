/**
 * Every misuse of VmapSpace, as a battery of bad values per argument: the constructor's options
 * and each method's arguments. Each must throw VmallocError with the expected code and a
 * message naming the call, the argument and the rule, and leave the space exactly as it was
 * (free blocks, busy areas, stats(), check()). The battery runs on an ordinary space, a space
 * ending at 2^53 and a concurrent one (whose checks must come before the lock).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VmallocError, VmapSpace, type VmapSpaceOptions } from '../../src/index.js';

const P = 4096;
const TOP = 2 ** 53;

/** Values that are not integers of any use, whatever the argument. */
const NOT_INTEGERS: unknown[] = [
  NaN,
  Infinity,
  -Infinity,
  1.5,
  -0.5,
  '4096',
  '',
  true,
  false,
  null,
  Symbol('x'),
  4096n,
  {},
  [4096],
  () => 4096,
];

/** How a value reads in a test name. */
function named(v: unknown): string {
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${String(v)}]`;
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return Object.is(v, -0) ? '-0' : String(v);
}

function throwsCode(fn: () => unknown, message: RegExp, code = 'EINVAL'): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VmallocError, `a VmallocError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

describe('constructor options: every bad value refused with EINVAL naming the option', () => {
  const base = { start: P, end: 2 ** 40, pageSize: P };
  const rows: [keyof VmapSpaceOptions, unknown[], unknown[]][] = [
    ['start', [undefined, -1, -P, TOP, TOP + 2, 2 ** 60, ...NOT_INTEGERS], [0, -0, 1, 2 ** 40 - P]],
    [
      'end',
      [undefined, 0, P, P + 1, TOP + 2, 2 ** 54, ...NOT_INTEGERS],
      [2 * P, TOP, TOP - 1, 2 ** 40 + 7],
    ],
    [
      'pageSize',
      [0, -0, -P, 3, 4097, 0.5, 2 ** 31, 2 ** 40, ...NOT_INTEGERS],
      [undefined, 1, 2, P, 2 ** 30],
    ],
    ['shared', [0, 1, 'true', null, Symbol('x'), 1n, {}], [undefined, true, false]],
    ['concurrent', [0, 1, 'yes', null, Symbol('x'), 1n, {}], [undefined, true, false]],
    [
      'maxRecords',
      [0, -0, -1, 2, 3, 5, 2 ** 26 + 1, 2 ** 40, ...NOT_INTEGERS],
      [undefined, 6, 7, 1000],
    ],
    [
      'lockTimeoutMs',
      [0, -0, -1, 2 ** 31, 2 ** 40, ...NOT_INTEGERS],
      [undefined, 1, 10_000, 2 ** 31 - 1],
    ],
  ];
  for (const [option, bad, good] of rows) {
    test(`${option}: ${bad.length} bad values refused, ${good.length} good ones accepted`, () => {
      for (const value of bad) {
        const opts = { ...base, [option]: value };
        if (value === undefined) delete (opts as Record<string, unknown>)[option];
        const rule =
          option === 'end' && value === P + 1
            ? /Cannot create VmapSpace: the space \[start, end\) must hold at least one page/
            : new RegExp(`^Cannot create VmapSpace: ${option} must `);
        assert.throws(
          () => new VmapSpace(opts as VmapSpaceOptions),
          (e: unknown) => e instanceof VmallocError && e.code === 'EINVAL' && rule.test(e.message),
          `${option}: ${named(value)}`,
        );
      }
      for (const value of good) {
        const opts = { ...base, [option]: value } as VmapSpaceOptions;
        if (option === 'start') opts.pageSize = 1;
        const sp = new VmapSpace(opts);
        assert.ok(Object.is(sp.start, (opts.start as number) + 0), 'a start of -0 reads as 0');
        assert.notEqual(
          sp.alloc(sp.pageSize),
          null,
          `${option}: ${named(value)} gives a usable space`,
        );
        sp.check();
      }
    });
  }

  test('a space smaller than one page is refused at construction, not at the first alloc', () => {
    throwsCode(
      () => new VmapSpace({ start: 0, end: 100, pageSize: P }),
      /^Cannot create VmapSpace: the space \[start, end\) must hold at least one page \(pageSize 4096\): end - start, got 100$/,
    );
    throwsCode(
      () => new VmapSpace({ start: TOP - 100, end: TOP, pageSize: P }),
      /at least one page/,
    );
    const one = new VmapSpace({ start: 0, end: P, pageSize: P });
    assert.equal(one.alloc(P), 0);
    const top = new VmapSpace({ start: TOP - P, end: TOP, pageSize: P });
    assert.equal(top.alloc(P), TOP - P);
  });

  test('the options bag itself: required, an object, only known keys', () => {
    throwsCode(
      () => new VmapSpace(undefined as never),
      /options must be an object with start and end/,
    );
    for (const v of [null, 5, 'x', Symbol('x'), true, 1n])
      throwsCode(
        () => new VmapSpace(v as never),
        /^Cannot create VmapSpace: options must be an object/,
      );
    throwsCode(
      () => new VmapSpace({ start: 0, end: P, pagesize: 1 } as never),
      /^Cannot create VmapSpace: options may hold only start, end, pageSize, shared, maxRecords, concurrent, lockTimeoutMs, fit, pools, got "pagesize"$/,
    );
  });

  test('concurrent: true without shared memory', () => {
    throwsCode(
      () => new VmapSpace({ start: 0, end: 2 ** 20, shared: false, concurrent: true }),
      /^Cannot create VmapSpace: concurrent must be false when shared is false/,
    );
  });

  test('the largest maxRecords (2^26) makes a working space', () => {
    const sp = new VmapSpace({ start: 0, end: 2 ** 30, maxRecords: 2 ** 26 });
    assert.equal(sp.alloc(P), 0);
    sp.check();
  });
});

/** Everything observable about a space (and check() passes). */
function snapshot(sp: VmapSpace): string {
  sp.check();
  return JSON.stringify({
    free: [...sp.freeBlocks()],
    busy: [...sp.busyAreas()],
    stats: sp.stats(),
  });
}

interface Fixture {
  name: string;
  make(): VmapSpace;
}

const FIXTURES: Fixture[] = [
  { name: 'a space at 2^40', make: () => new VmapSpace({ start: 2 ** 40, end: 2 ** 40 + 64 * P }) },
  { name: 'a space ending at 2^53', make: () => new VmapSpace({ start: TOP - 64 * P, end: TOP }) },
  {
    name: 'a concurrent space',
    make: () => new VmapSpace({ start: 2 ** 40, end: 2 ** 40 + 64 * P, concurrent: true }),
  },
];

/** Three busy areas: [s, s+1p), [s+1p, s+3p), [s+8p, s+9p) (in pages from the start). */
function populated(fx: Fixture): VmapSpace {
  const sp = fx.make();
  sp.alloc(P);
  sp.alloc(2 * P);
  sp.alloc(P, { vstart: sp.start + 8 * P });
  return sp;
}

/** [name, call, code, message] rows for a space `sp` made by populated(). */
function misuses(sp: VmapSpace): [string, () => unknown, string, RegExp][] {
  const { start: s, end: e } = sp;
  const rows: [string, () => unknown, string, RegExp][] = [];
  const sizeRule = /^Cannot alloc: size must /;
  for (const v of [...NOT_INTEGERS, undefined, 0, -0, -P, P + 1, P / 2, e - s + P, TOP, TOP + 2])
    rows.push([`alloc(size ${named(v)})`, () => sp.alloc(v as number), 'EINVAL', sizeRule]);
  for (const v of [...NOT_INTEGERS, 0, -0, 3, 6, -P, 0.5, 2 ** 53 + 2, 2 ** 31 - 1])
    rows.push([
      `alloc(P, { align: ${named(v)} })`,
      () => sp.alloc(P, { align: v as number }),
      'EINVAL',
      /^Cannot alloc: align must /,
    ]);
  for (const v of [...NOT_INTEGERS, s - 1, -1, e, e + 1, TOP, TOP + 2])
    rows.push([
      `alloc(P, { vstart: ${named(v)} })`,
      () => sp.alloc(P, { vstart: v as number }),
      'EINVAL',
      /^Cannot alloc: vstart must /,
    ]);
  // e + 1 is e itself when e is 2^53 (the sum rounds): a legal vend, so left out there.
  for (const v of [...NOT_INTEGERS, s, s - 1, -1, e + 1, TOP + 2, 2 ** 60].filter((v) => v !== e))
    rows.push([
      `alloc(P, { vend: ${named(v)} })`,
      () => sp.alloc(P, { vend: v as number }),
      'EINVAL',
      /^Cannot alloc: vend must /,
    ]);
  rows.push([
    'alloc(P, { vstart > vend })',
    () => sp.alloc(P, { vstart: s + 9 * P, vend: s + 8 * P }),
    'EINVAL',
    /^Cannot alloc: vstart must be below vend, got vstart 0x[0-9a-f]+ and vend 0x[0-9a-f]+$/,
  ]);
  rows.push([
    'alloc(P, { vstart == vend })',
    () => sp.alloc(P, { vstart: s + 8 * P, vend: s + 8 * P }),
    'EINVAL',
    /^Cannot alloc: vstart must be below vend/,
  ]);
  for (const v of [null, 5, 'x', Symbol('x'), true, () => ({})])
    rows.push([
      `alloc(P, ${named(v)})`,
      () => sp.alloc(P, v as object),
      'EINVAL',
      /^Cannot alloc: options must be an object/,
    ]);
  for (const v of [...NOT_INTEGERS, undefined, -1, -P, TOP, TOP + 2, 2 ** 60])
    rows.push([
      `free(${named(v)})`,
      () => sp.free(v as number),
      'EINVAL',
      /^Cannot free: addr must /,
    ]);
  for (const v of [s + 4 * P, s - P, e, e + P, 0, TOP - 1])
    if (v >= 0 && v < TOP && !(v >= s && v < s + 3 * P) && v !== s + 8 * P)
      rows.push([`free(unknown ${v})`, () => sp.free(v), 'ENOENT', /no live area contains/]);
  rows.push([`free(interior)`, () => sp.free(s + 2 * P), 'ENOENT', /lies inside the area/]);
  rows.push([`free(interior byte)`, () => sp.free(s + 1), 'ENOENT', /lies inside the area/]);
  for (const v of [...NOT_INTEGERS, undefined, -1, TOP, TOP + 2])
    rows.push([
      `find(${named(v)})`,
      () => sp.find(v as number),
      'EINVAL',
      /^Cannot find: addr must /,
    ]);
  return rows;
}

for (const fx of FIXTURES) {
  test(`every misuse of ${fx.name}: the code, the argument and the rule; nothing changes`, () => {
    const sp = populated(fx);
    const before = snapshot(sp);
    const rows = misuses(sp);
    assert.ok(rows.length > 100, `${rows.length} misuses`);
    for (const [name, call, code, message] of rows) {
      assert.throws(
        call,
        (e: unknown) => {
          assert.ok(e instanceof VmallocError, `${name}: a VmallocError, got ${String(e)}`);
          assert.equal(e.code, code, `${name}: ${e.message}`);
          assert.match(e.message, message, name);
          return true;
        },
        name,
      );
      assert.equal(snapshot(sp), before, `${name} changed the space`);
    }
    // And the space still works: free everything, then one block spans it.
    for (const a of [...sp.busyAreas()]) sp.free(a.start);
    assert.deepEqual([...sp.freeBlocks()], [{ start: sp.start, end: sp.end }]);
    assert.equal(sp.alloc(sp.size), sp.start);
  });
}

test('double free: ENOENT, and the space is unchanged', () => {
  for (const fx of FIXTURES) {
    const sp = populated(fx);
    const a = sp.alloc(P, { vstart: sp.start + 20 * P })!;
    sp.free(a);
    const before = snapshot(sp);
    throwsCode(
      () => sp.free(a),
      /^Cannot free: addr must be the start of a live area, got 0x[0-9a-f]+, which no live area contains \(never allocated, or already freed\)$/,
      'ENOENT',
    );
    assert.equal(snapshot(sp), before);
  }
});

test('find of an address outside the space is null, not an error (no area holds it)', () => {
  const sp = populated(FIXTURES[0]!);
  assert.equal(sp.find(0), null);
  assert.equal(sp.find(TOP - 1), null);
  assert.deepEqual(sp.find(sp.start + 2 * P + 5), { start: sp.start + P, end: sp.start + 3 * P });
});

test('windows that are legal but too small or badly placed give null, not a throw', () => {
  const sp = new VmapSpace({ start: 0, end: 64 * P });
  // The first alloc takes the spare record a split may need (records + 1), null or not.
  sp.free(sp.alloc(P)!);
  const before = snapshot(sp);
  assert.equal(sp.alloc(2 * P, { vstart: 0, vend: P }), null, 'window smaller than the size');
  assert.equal(sp.alloc(P, { vstart: 63 * P + 1 }), null, 'the last page starts below vstart');
  assert.equal(sp.alloc(P, { align: 2 ** 60, vstart: 1 }), null, 'no aligned address in the space');
  assert.equal(snapshot(sp), before);
});
