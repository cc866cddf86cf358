/**
 * The top of the address space: spaces, windows and alignments at and near 2^53, where a sum
 * of two doubles rounds (2^53 + 1 rounds to 2^53). Each named case failed before the free-tree
 * search and clip compared `start <= end - size` instead of `start + size <= end`; the property
 * test compares random requests near the top with an exact BigInt model.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VmapSpace } from '../../src/index.js';
import { Rng, testSeed } from '../helpers/rng.js';

const TOP = 2 ** 53;

/** Checks the space and gives its free blocks and busy areas as [start, end] pairs. */
function state(sp: VmapSpace): { free: number[][]; busy: number[][] } {
  sp.check();
  return {
    free: [...sp.freeBlocks()].map((b) => [b.start, b.end]),
    busy: [...sp.busyAreas()].map((b) => [b.start, b.end]),
  };
}

describe('requests that would end past 2^53 are refused (null), not rounded into the space', () => {
  test('alloc(1, { align: 2 }) after alloc(3) in [2^53 - 4, 2^53), pageSize 1', () => {
    const sp = new VmapSpace({ start: TOP - 4, end: TOP, pageSize: 1 });
    assert.equal(sp.alloc(3), TOP - 4);
    // The next even address is 2^53, the end of the space: nothing fits.
    assert.equal(sp.alloc(1, { align: 2 }), null);
    assert.deepEqual(state(sp), { free: [[TOP - 1, TOP]], busy: [[TOP - 4, TOP - 1]] });
    assert.equal(sp.alloc(1), TOP - 1, 'the last byte is still there without the alignment');
    assert.equal(sp.busyBytes, 4);
    sp.check();
  });

  test('vstart + size = 2^53 + 1: a 3-byte request at 2^53 - 2', () => {
    const sp = new VmapSpace({ start: TOP - 4, end: TOP, pageSize: 1 });
    assert.equal(sp.alloc(3, { vstart: TOP - 2 }), null);
    assert.equal(sp.alloc(3, { vstart: TOP - 2, vend: TOP }), null);
    assert.deepEqual(state(sp), { free: [[TOP - 4, TOP]], busy: [] });
    assert.equal(sp.alloc(2, { vstart: TOP - 2 }), TOP - 2);
    assert.deepEqual(state(sp), { free: [[TOP - 4, TOP - 2]], busy: [[TOP - 2, TOP]] });
  });

  test('align 2^52 in a space that starts just above 2^52', () => {
    const sp = new VmapSpace({ start: 2 ** 52 + 1, end: TOP, pageSize: 1 });
    assert.equal(sp.alloc(1, { align: 2 ** 52 }), null);
    assert.equal(sp.alloc(1, { align: 2 ** 53 }), null);
    assert.equal(sp.alloc(1, { align: 2 ** 60 }), null);
    assert.deepEqual(state(sp), { free: [[2 ** 52 + 1, TOP]], busy: [] });
    assert.equal(sp.alloc(1, { align: 2 ** 51 }), 2 ** 52 + 2 ** 51);
  });

  test('the one-byte space [2^53 - 1, 2^53)', () => {
    const sp = new VmapSpace({ start: TOP - 1, end: TOP, pageSize: 1 });
    assert.equal(sp.alloc(1, { align: 2 }), null);
    assert.equal(sp.alloc(1, { vstart: TOP - 1, vend: TOP }), TOP - 1);
    assert.equal(sp.alloc(1), null);
    assert.deepEqual(state(sp), { free: [], busy: [[TOP - 1, TOP]] });
    sp.free(TOP - 1);
    assert.deepEqual(state(sp), { free: [[TOP - 1, TOP]], busy: [] });
  });

  test('windows at 2^53 - 1 and 2^53 in [0, 2^53)', () => {
    const sp = new VmapSpace({ start: 0, end: TOP, pageSize: 1 });
    assert.equal(sp.alloc(2, { vstart: TOP - 1 }), null);
    assert.equal(sp.alloc(1, { vstart: TOP - 1, align: 2 }), null);
    assert.equal(sp.alloc(1, { vstart: TOP - 1 }), TOP - 1);
    assert.equal(sp.alloc(1, { vstart: TOP - 3, align: 4 }), null);
    assert.equal(sp.alloc(2, { vstart: TOP - 3 }), TOP - 3);
    assert.equal(sp.alloc(1, { vstart: TOP - 3 }), null, '[2^53 - 3, 2^53) is all busy');
    assert.equal(sp.alloc(1, { vend: 1 }), 0);
    assert.equal(sp.alloc(2 ** 52 - 2, { align: 2 ** 52 }), null, 'would end at 2^53 - 1');
    assert.equal(sp.alloc(2 ** 52 - 3, { align: 2 ** 52 }), 2 ** 52);
    assert.deepEqual(state(sp).busy, [
      [0, 1],
      [2 ** 52, TOP - 3],
      [TOP - 3, TOP - 1],
      [TOP - 1, TOP],
    ]);
    assert.equal(sp.largestFree, 2 ** 52 - 1);
  });

  test('the whole of [0, 2^53) in one request, and back', () => {
    const sp = new VmapSpace({ start: 0, end: TOP, pageSize: 4096 });
    assert.equal(sp.alloc(TOP), 0);
    assert.equal(sp.alloc(4096), null);
    assert.deepEqual(state(sp), { free: [], busy: [[0, TOP]] });
    sp.free(0);
    assert.deepEqual(state(sp), { free: [[0, TOP]], busy: [] });
  });
});

/**
 * An exact model in BigInt: free intervals sorted and coalesced, live areas by start. Nothing
 * here rounds, so it is the yardstick for the double arithmetic near 2^53.
 */
class ExactModel {
  free: [bigint, bigint][];
  busy = new Map<bigint, bigint>();

  constructor(start: number, end: number) {
    this.free = [[BigInt(start), BigInt(end)]];
  }

  private static at(b: [bigint, bigint], size: bigint, align: bigint, vstart: bigint): bigint {
    const lo = b[0] > vstart ? b[0] : vstart;
    const a = ((lo + align - 1n) / align) * align;
    return a + size <= b[1] ? a : -1n;
  }

  /** The lowest address that satisfies the request, or -1. */
  lowest(size: bigint, align: bigint, vstart: bigint, vend: bigint): bigint {
    for (const b of this.free) {
      const a = ExactModel.at(b, size, align, vstart);
      if (a >= 0n && a + size <= vend) return a;
    }
    return -1n;
  }

  /** The kernel's inflated search: the first block at least `length` long that holds it. */
  firstBigEnough(size: bigint, align: bigint, vstart: bigint, length: bigint): bigint {
    for (const b of this.free) {
      if (b[1] - b[0] < length) continue;
      const a = ExactModel.at(b, size, align, vstart);
      if (a >= 0n) return a;
    }
    return -1n;
  }

  take(a: bigint, size: bigint): void {
    const i = this.free.findIndex((b) => b[0] <= a && a + size <= b[1]);
    assert.ok(i >= 0, `model: [${a}, ${a + size}) is not free`);
    const [s, e] = this.free[i]!;
    const parts: [bigint, bigint][] = [];
    if (s < a) parts.push([s, a]);
    if (a + size < e) parts.push([a + size, e]);
    this.free.splice(i, 1, ...parts);
    this.busy.set(a, a + size);
  }

  release(a: bigint): void {
    const e = this.busy.get(a)!;
    this.busy.delete(a);
    this.free.push([a, e]);
    this.free.sort((x, y) => (x[0] < y[0] ? -1 : 1));
    const merged: [bigint, bigint][] = [];
    for (const b of this.free) {
      const last = merged[merged.length - 1];
      if (last !== undefined && last[1] === b[0]) last[1] = b[1];
      else merged.push([b[0], b[1]]);
    }
    this.free = merged;
  }
}

interface TopConfig {
  name: string;
  start: number;
  end: number;
  pageSize: number;
  /** Largest request, in pages. */
  maxPages: number;
  /** vstart is drawn from [end - reach, end) most of the time. */
  reach: number;
}

const TOP_CONFIGS: TopConfig[] = [
  { name: 'bytes below 2^53', start: TOP - 4096, end: TOP, pageSize: 1, maxPages: 40, reach: 64 },
  { name: 'pairs below 2^53', start: TOP - 2048, end: TOP, pageSize: 2, maxPages: 20, reach: 64 },
  { name: 'the whole space, bytes', start: 0, end: TOP, pageSize: 1, maxPages: 9, reach: 128 },
  {
    name: 'across 2^52, bytes',
    start: 2 ** 52 - 2048,
    end: 2 ** 52 + 2048,
    pageSize: 1,
    maxPages: 30,
    reach: 4096,
  },
];

function runTop(cfg: TopConfig, seed: number, ops: number): number {
  const rng = new Rng(seed);
  const sp = new VmapSpace({ start: cfg.start, end: cfg.end, pageSize: cfg.pageSize });
  const model = new ExactModel(cfg.start, cfg.end);
  const log: string[] = [];
  const fail = (msg: string): never =>
    assert.fail(
      `${cfg.name}, seed ${seed} (replay with VMALLOC_SEED=${seed}), op ${log.length}: ${msg}\n  ${log.slice(-20).join('\n  ')}`,
    );
  let made = 0;
  for (let i = 0; i < ops; i++) {
    if (model.busy.size > 0 && rng.chance(0.4)) {
      const a = rng.pick([...model.busy.keys()]);
      log.push(`free ${a}`);
      sp.free(Number(a));
      model.release(a);
    } else {
      const size = rng.range(1, cfg.maxPages) * cfg.pageSize;
      // Alignments: small ones, and 2^50 .. 2^55 around the top of the space.
      const align = 2 ** (rng.chance(0.7) ? rng.below(8) : 48 + rng.below(8));
      let vstart = cfg.start;
      let vend = cfg.end;
      if (rng.chance(0.6)) vstart = Math.max(cfg.start, cfg.end - 1 - rng.below(cfg.reach));
      if (rng.chance(0.2)) vend = vstart + 1 + rng.below(cfg.end - vstart);
      const desc = `alloc(${size}, { align: 2^${Math.log2(align)}, vstart: ${vstart}, vend: ${vend} })`;
      let got: number | null = null;
      try {
        got = sp.alloc(size, { align, vstart, vend });
      } catch (e) {
        fail(`${desc} threw ${String(e)}`);
      }
      log.push(`${desc} -> ${got}`);
      const [S, A, VS, VE] = [BigInt(size), BigInt(align), BigInt(vstart), BigInt(vend)];
      const lowest = model.lowest(S, A, VS, VE);
      if (align <= cfg.pageSize || vend - vstart === size) {
        if (BigInt(got ?? -1) !== lowest) fail(`${desc} gave ${got}, the model ${lowest}`);
      } else if (got === null) {
        const big = model.firstBigEnough(S, A, VS, S + A - 1n);
        if (lowest !== -1n && big !== -1n && big + S <= VE) fail(`${desc}: null, block at ${big}`);
      } else {
        const g = BigInt(got);
        if (g % A !== 0n || g < VS || g + S > VE || g < lowest) fail(`${desc} breaks the request`);
      }
      if (got !== null) {
        model.take(BigInt(got), S);
        made++;
      }
    }
    const st = state(sp);
    const want = model.free.map(([s, e]) => [Number(s), Number(e)]);
    if (JSON.stringify(st.free) !== JSON.stringify(want))
      fail(`free blocks ${JSON.stringify(st.free)}, the model ${JSON.stringify(want)}`);
    let busyBytes = 0n;
    for (const [s, e] of model.busy) busyBytes += e - s;
    if (BigInt(sp.busyBytes) !== busyBytes) fail(`busyBytes ${sp.busyBytes}, model ${busyBytes}`);
  }
  for (const a of [...model.busy.keys()]) sp.free(Number(a));
  assert.deepEqual(state(sp), { free: [[cfg.start, cfg.end]], busy: [] });
  return made;
}

for (const cfg of TOP_CONFIGS) {
  test(`property: near the top of the space, VmapSpace matches an exact BigInt model (${cfg.name})`, () => {
    const seed = testSeed(`top of space ${cfg.name}`);
    const made = runTop(cfg, seed, 3000);
    assert.ok(made > 300, `enough allocations succeeded (${made})`);
  });
}
