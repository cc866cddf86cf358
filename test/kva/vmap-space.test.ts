/**
 * Unit tests of VmapSpace: each fit type, each merge case, windows, large alignments,
 * exhaustion, the bad-input table, and ending clean.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VmallocError, VmapSpace } from '../../src/index.js';

const P = 4096;

/** A space of n pages from 0, checked after every step by the helpers below. */
function space(pages: number, start = 0): VmapSpace {
  return new VmapSpace({ start, end: start + pages * P, pageSize: P });
}

function free(sp: VmapSpace): [number, number][] {
  sp.check();
  return [...sp.freeBlocks()].map((b) => [b.start / P, b.end / P]);
}

function busy(sp: VmapSpace): [number, number][] {
  return [...sp.busyAreas()].map((b) => [b.start / P, b.end / P]);
}

describe('fit types (classify_va_fit_type)', () => {
  test('full fit: the block is used whole and disappears', () => {
    const sp = space(16);
    assert.equal(sp.alloc(16 * P), 0);
    assert.deepEqual(free(sp), []);
    assert.equal(sp.freeCount, 0);
  });

  test('left edge: the block keeps its end, its start moves up', () => {
    const sp = space(16);
    assert.equal(sp.alloc(P), 0);
    assert.deepEqual(free(sp), [[1, 16]]);
  });

  test('right edge: the block keeps its start, its end moves down', () => {
    const sp = space(16);
    assert.equal(sp.alloc(P, { vstart: 15 * P }), 15 * P);
    assert.deepEqual(free(sp), [[0, 15]]);
  });

  test('no edge: the block splits in two around the area', () => {
    const sp = space(16);
    assert.equal(sp.alloc(2 * P, { vstart: 4 * P }), 4 * P);
    assert.deepEqual(free(sp), [
      [0, 4],
      [6, 16],
    ]);
    assert.deepEqual(busy(sp), [[4, 6]]);
  });

  test('no edge from alignment: the address rounds up inside the block', () => {
    const sp = space(64);
    sp.alloc(P); // [0, 1)
    assert.equal(sp.alloc(P, { align: 8 * P }), 8 * P);
    assert.deepEqual(free(sp), [
      [1, 8],
      [9, 64],
    ]);
  });
});

describe('merge on free (merge_or_add_vmap_area)', () => {
  function threeAreas(): { sp: VmapSpace; a: number; b: number; c: number } {
    const sp = space(16);
    const a = sp.alloc(P)!;
    const b = sp.alloc(P)!;
    const c = sp.alloc(P)!;
    assert.deepEqual(busy(sp), [
      [0, 1],
      [1, 2],
      [2, 3],
    ]);
    return { sp, a, b, c };
  }

  test('no neighbour free: the range is linked on its own', () => {
    const { sp, b } = threeAreas();
    sp.free(b);
    assert.deepEqual(free(sp), [
      [1, 2],
      [3, 16],
    ]);
  });

  test('merge with the next block only', () => {
    const { sp, c } = threeAreas();
    sp.free(c);
    assert.deepEqual(free(sp), [[2, 16]]);
  });

  test('merge with the previous block only', () => {
    const { sp, a, b } = threeAreas();
    sp.free(a);
    assert.deepEqual(free(sp), [
      [0, 1],
      [3, 16],
    ]);
    sp.free(b);
    assert.deepEqual(free(sp), [
      [0, 2],
      [3, 16],
    ]);
  });

  test('merge with both neighbours: three blocks become one', () => {
    const { sp, a, b, c } = threeAreas();
    sp.free(a);
    sp.free(c);
    assert.deepEqual(free(sp), [
      [0, 1],
      [2, 16],
    ]);
    sp.free(b);
    assert.deepEqual(free(sp), [[0, 16]]);
  });

  test('many interleaved frees coalesce fully in any order', () => {
    const sp = space(512);
    const areas = Array.from({ length: 256 }, () => sp.alloc(2 * P)!);
    // Free odd ones, then even ones from the top down: every merge shape occurs.
    for (let i = 1; i < areas.length; i += 2) sp.free(areas[i]!);
    sp.check();
    for (let i = areas.length - 2; i >= 0; i -= 2) sp.free(areas[i]!);
    assert.deepEqual(free(sp), [[0, 512]]);
  });
});

describe('windows and alignment', () => {
  test('vstart inside a free block: the area starts at vstart', () => {
    const sp = space(100);
    assert.equal(sp.alloc(3 * P, { vstart: 37 * P }), 37 * P);
    assert.equal(sp.alloc(3 * P, { vstart: 37 * P }), 40 * P);
    assert.equal(sp.alloc(P), 0, 'a later request without vstart takes the lowest address');
  });

  test('vend is checked after the lowest block is chosen', () => {
    const sp = space(100);
    sp.alloc(10 * P);
    assert.equal(sp.alloc(5 * P, { vend: 14 * P }), null, '[10, 15) would pass vend');
    assert.equal(sp.alloc(4 * P, { vend: 14 * P }), 10 * P);
  });

  test('an exact window with a large alignment still finds the block (no inflated search)', () => {
    const sp = space(64);
    // Leave only page 32 free.
    const a = sp.alloc(32 * P)!;
    sp.alloc(P, { vstart: 32 * P });
    sp.alloc(31 * P, { vstart: 33 * P });
    assert.equal(sp.alloc(P), null);
    sp.free(32 * P);
    assert.deepEqual(free(sp), [[32, 33]]);
    assert.equal(sp.alloc(P, { align: 32 * P, vstart: 32 * P, vend: 33 * P }), 32 * P);
    assert.equal(a, 0);
  });

  test('alignments up to 2^52', () => {
    const sp = new VmapSpace({ start: 1, end: 2 ** 53, pageSize: P });
    assert.equal(sp.alloc(P, { align: 2 ** 52 }), 2 ** 52);
    assert.equal(sp.alloc(P, { align: 2 ** 51 }), 2 ** 51);
    assert.equal(sp.alloc(P, { align: 2 ** 52 }), null, 'the only 2^52-aligned address is taken');
    assert.equal(sp.alloc(P, { align: 2 ** 53 }), null);
    assert.equal(sp.alloc(P, { align: 2 ** 60 }), null);
    sp.check();
    sp.free(2 ** 52);
    sp.free(2 ** 51);
    assert.deepEqual([...sp.freeBlocks()], [{ start: 1, end: 2 ** 53 }]);
  });

  test('byte granules (pageSize 1) for offset allocation', () => {
    const sp = new VmapSpace({ start: 0, end: 1000, pageSize: 1 });
    assert.equal(sp.alloc(10), 0);
    assert.equal(sp.alloc(7, { align: 16 }), 16);
    assert.equal(sp.alloc(6), 10);
    assert.equal(sp.alloc(1), 23);
    sp.check();
  });
});

describe('exhaustion', () => {
  test('a full space returns null and stays intact', () => {
    const sp = space(4);
    const got = [sp.alloc(P), sp.alloc(P), sp.alloc(2 * P)];
    assert.deepEqual(got, [0, P, 2 * P]);
    assert.equal(sp.alloc(P), null);
    assert.equal(sp.alloc(P, { align: 2 * P }), null);
    sp.check();
    sp.free(P);
    assert.equal(sp.alloc(2 * P), null, 'a one-page hole does not hold two pages');
    assert.equal(sp.alloc(P), P);
    sp.check();
  });

  test('the record ceiling makes alloc return null, not corrupt', () => {
    const sp = new VmapSpace({ start: 0, end: 1 << 20, pageSize: 1, maxRecords: 8 });
    const got: number[] = [];
    for (let i = 0; i < 10; i++) {
      const a = sp.alloc(1, { vstart: i * 2 });
      if (a !== null) got.push(a);
    }
    assert.ok(got.length >= 2 && got.length < 10, `some allocations failed (${got.length} made)`);
    sp.check();
    for (const a of got) sp.free(a);
    sp.check();
    assert.equal(sp.freeCount, 1);
  });

  test('the record store grows past its first capacity', () => {
    const sp = space(20000);
    const areas: number[] = [];
    for (let i = 0; i < 5000; i++) areas.push(sp.alloc(P, { vstart: i * 3 * P })!);
    assert.equal(sp.busyCount, 5000);
    sp.check();
    for (const a of areas) sp.free(a);
    assert.deepEqual(free(sp), [[0, 20000]]);
  });
});

describe('bad input: VmallocError, named argument and rule, state unchanged', () => {
  const rows: [string, (sp: VmapSpace) => unknown, string, RegExp][] = [
    ['size 0', (sp) => sp.alloc(0), 'EINVAL', /size must be positive/],
    [
      'size not a page multiple',
      (sp) => sp.alloc(100),
      'EINVAL',
      /size must be a multiple of the page size \(4096\)/,
    ],
    ['negative size', (sp) => sp.alloc(-P), 'EINVAL', /size must be positive/],
    ['fractional size', (sp) => sp.alloc(4096.5), 'EINVAL', /size must be an integer/],
    ['NaN size', (sp) => sp.alloc(NaN), 'EINVAL', /size must be a finite number/],
    ['Infinity size', (sp) => sp.alloc(Infinity), 'EINVAL', /size must be a finite number/],
    ['size beyond 2^53', (sp) => sp.alloc(2 ** 54), 'EINVAL', /size must not exceed 2\^53 - 1/],
    [
      'size beyond the space',
      (sp) => sp.alloc(32 * P),
      'EINVAL',
      /size must not exceed the size of the space/,
    ],
    [
      'string size',
      (sp) => sp.alloc('4096' as unknown as number),
      'EINVAL',
      /size must be a number, got "4096"/,
    ],
    [
      'bigint size',
      (sp) => sp.alloc(4096n as unknown as number),
      'EINVAL',
      /size must be a number/,
    ],
    [
      'undefined size',
      (sp) => sp.alloc(undefined as unknown as number),
      'EINVAL',
      /size must be a number/,
    ],
    ['align 0', (sp) => sp.alloc(P, { align: 0 }), 'EINVAL', /align must be a power of two >= 1/],
    ['align 3', (sp) => sp.alloc(P, { align: 3 }), 'EINVAL', /align must be a power of two/],
    [
      'negative align',
      (sp) => sp.alloc(P, { align: -4096 }),
      'EINVAL',
      /align must be a power of two/,
    ],
    [
      'fractional align',
      (sp) => sp.alloc(P, { align: 0.5 }),
      'EINVAL',
      /align must be a power of two/,
    ],
    ['NaN align', (sp) => sp.alloc(P, { align: NaN }), 'EINVAL', /align must be a power of two/],
    [
      'string align',
      (sp) => sp.alloc(P, { align: '8' as unknown as number }),
      'EINVAL',
      /align must be a number/,
    ],
    [
      'vstart below the space',
      (sp) => sp.alloc(P, { vstart: -1 }),
      'EINVAL',
      /vstart must lie within the space/,
    ],
    [
      'vstart at the end',
      (sp) => sp.alloc(P, { vstart: 16 * P }),
      'EINVAL',
      /vstart must lie within the space/,
    ],
    [
      'fractional vstart',
      (sp) => sp.alloc(P, { vstart: 1.5 }),
      'EINVAL',
      /vstart must be an integer/,
    ],
    [
      'vend beyond the space',
      (sp) => sp.alloc(P, { vend: 17 * P }),
      'EINVAL',
      /vend must lie within the space/,
    ],
    [
      'vend at the start',
      (sp) => sp.alloc(P, { vend: 0 }),
      'EINVAL',
      /vend must lie within the space/,
    ],
    [
      'vstart >= vend',
      (sp) => sp.alloc(P, { vstart: 8 * P, vend: 8 * P }),
      'EINVAL',
      /vstart must be below vend/,
    ],
    [
      'options not an object',
      (sp) => sp.alloc(P, 5 as unknown as object),
      'EINVAL',
      /options must be an object/,
    ],
    [
      'null options',
      (sp) => sp.alloc(P, null as unknown as object),
      'EINVAL',
      /options must be an object/,
    ],
    ['free of an unknown address', (sp) => sp.free(12 * P), 'ENOENT', /no live area contains/],
    [
      'free of an interior address',
      (sp) => sp.free(P + 1),
      'ENOENT',
      /lies inside the area \[0x1000, 0x3000\)/,
    ],
    [
      'free of a string',
      (sp) => sp.free('0' as unknown as number),
      'EINVAL',
      /addr must be a number/,
    ],
    ['free of NaN', (sp) => sp.free(NaN), 'EINVAL', /addr must be a finite number/],
    ['free of a fraction', (sp) => sp.free(0.5), 'EINVAL', /addr must be an integer/],
  ];

  for (const [name, call, code, message] of rows) {
    test(name, () => {
      const sp = space(16);
      sp.alloc(P); // [0, 1)
      sp.alloc(2 * P); // [1, 3)
      const before = { free: free(sp), busy: busy(sp), stats: sp.stats() };
      assert.throws(
        () => call(sp),
        (e: unknown) => {
          assert.ok(e instanceof VmallocError, 'a VmallocError');
          assert.equal(e.code, code);
          assert.match(e.message, message);
          assert.match(e.message, /^Cannot (alloc|free)/);
          return true;
        },
      );
      assert.deepEqual(
        { free: free(sp), busy: busy(sp), stats: sp.stats() },
        before,
        'state unchanged',
      );
    });
  }

  test('double free', () => {
    const sp = space(16);
    const a = sp.alloc(P)!;
    sp.free(a);
    assert.throws(() => sp.free(a), { code: 'ENOENT', message: /already freed/ });
    assert.deepEqual(free(sp), [[0, 16]]);
  });

  test('constructor arguments', () => {
    const bad: [unknown, RegExp][] = [
      [undefined, /options must be an object with start and end/],
      [{ start: 0 }, /end must be a number/],
      [{ start: 10, end: 10 }, /end must lie within \(start, 2\^53\]/],
      [{ start: -1, end: 10 }, /start must lie within \[0, 2\^53\)/],
      [{ start: 0, end: 2 ** 54 }, /end must/],
      [{ start: 0, end: 10, pageSize: 3 }, /pageSize must be a power of two/],
      [{ start: '0', end: 10 }, /start must be a number/],
    ];
    for (const [opts, message] of bad) {
      assert.throws(
        () => new VmapSpace(opts as never),
        (e: unknown) => e instanceof VmallocError && e.code === 'EINVAL' && message.test(e.message),
      );
    }
  });
});

describe('introspection and ending clean', () => {
  test('find by containment, stats, iteration in address order', () => {
    const sp = space(64);
    const a = sp.alloc(4 * P)!;
    const b = sp.alloc(2 * P, { vstart: 10 * P })!;
    assert.deepEqual(sp.find(a + 3 * P + 5), { start: 0, end: 4 * P });
    assert.deepEqual(sp.find(b), { start: 10 * P, end: 12 * P });
    assert.equal(sp.find(5 * P), null);
    assert.deepEqual(busy(sp), [
      [0, 4],
      [10, 12],
    ]);
    const st = sp.stats();
    assert.equal(st.busyCount, 2);
    assert.equal(st.busyBytes, 6 * P);
    assert.equal(st.freeCount, 2);
    assert.equal(st.freeBytes, 58 * P);
    assert.equal(st.largestFree, 52 * P);
    assert.equal(st.size, 64 * P);
  });

  test('after freeing everything one block spans the space and the whole space can be allocated', () => {
    const sp = space(1000, 2 ** 40);
    const got: number[] = [];
    for (let i = 0; i < 150; i++)
      got.push(sp.alloc(((i % 7) + 1) * P, { align: i % 3 === 0 ? 4 * P : 1 })!);
    for (let i = 0; i < got.length; i += 2) sp.free(got[i]!);
    for (let i = got.length - 1; i >= 1; i -= 2) sp.free(got[i]!);
    assert.deepEqual([...sp.freeBlocks()], [{ start: 2 ** 40, end: 2 ** 40 + 1000 * P }]);
    assert.equal(sp.alloc(1000 * P), 2 ** 40);
    sp.check();
  });

  test('plain ArrayBuffer storage (shared: false) behaves the same', () => {
    const sp = new VmapSpace({ start: 0, end: 64 * P, pageSize: P, shared: false });
    const a = sp.alloc(P, { vstart: 8 * P })!;
    assert.equal(a, 8 * P);
    assert.equal(sp.alloc(3 * P), 0);
    sp.free(a);
    sp.check();
    assert.equal(sp.freeCount, 1);
  });
});
