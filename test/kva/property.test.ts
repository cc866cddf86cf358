/**
 * Model-based property tests of VmapSpace: seeded random operations, each compared with the
 * brute-force model (test/helpers/free-model.ts), and check() after every operation in the
 * checked runs. The seed is printed; VMALLOC_SEED=<seed> replays a run. A failure prints the
 * last operations, which go into regressions.test.ts.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmallocError, VmapSpace } from '../../src/index.js';
import { FreeModel } from '../helpers/free-model.js';
import { Rng, testSeed } from '../helpers/rng.js';

interface Config {
  name: string;
  start: number;
  end: number;
  pageSize: number;
  /** Largest request, in pages. */
  maxPages: number;
  /** Alignments are 2^k pages-independent bytes with k in [0, maxAlignShift]. */
  maxAlignShift: number;
  /** Keep about this many areas live. */
  targetLive: number;
  ops: number;
  /** check() after every operation (else every 97 operations and at the end). */
  checkEvery: boolean;
}

const CONFIGS: Config[] = [
  // Kernel-like: 4 KiB pages high in the address space, alignments up to 4 MiB.
  {
    name: 'vmalloc',
    start: 2 ** 40,
    end: 2 ** 40 + 2 ** 30,
    pageSize: 4096,
    maxPages: 64,
    maxAlignShift: 22,
    targetLive: 200,
    ops: 70_000,
    checkEvery: false,
  },
  // Byte granules in a small space: dense fragmentation, every fit and merge case often.
  {
    name: 'bytes',
    start: 0,
    end: 20_000,
    pageSize: 1,
    maxPages: 200,
    maxAlignShift: 8,
    targetLive: 120,
    ops: 70_000,
    checkEvery: false,
  },
  // Huge alignments in a space reaching 2^53.
  {
    name: 'huge-align',
    start: 2 ** 52,
    end: 2 ** 53,
    pageSize: 4096,
    maxPages: 2 ** 20,
    maxAlignShift: 52,
    targetLive: 60,
    ops: 40_000,
    checkEvery: false,
  },
  // Small, fully checked after every operation.
  {
    name: 'checked',
    start: 4096,
    end: 4096 + 4096 * 2000,
    pageSize: 4096,
    maxPages: 40,
    maxAlignShift: 18,
    targetLive: 40,
    ops: 50_000,
    checkEvery: true,
  },
];

type Op = string;

function runConfig(cfg: Config, seed: number): { ops: number; allocs: number; adjusted: number } {
  const rng = new Rng(seed);
  const sp = new VmapSpace({ start: cfg.start, end: cfg.end, pageSize: cfg.pageSize });
  const model = new FreeModel(cfg.start, cfg.end);
  const log: Op[] = [];
  let allocs = 0;
  let adjusted = 0;
  const fail = (msg: string): never => {
    assert.fail(
      `${cfg.name} seed ${seed}, op ${log.length}: ${msg}\nlast operations:\n  ${log.slice(-25).join('\n  ')}`,
    );
  };

  for (let i = 0; i < cfg.ops; i++) {
    const live = model.busy.size;
    const r = rng.float();
    if (r < 0.02) {
      // Misuse: must throw EINVAL / ENOENT and change nothing.
      const before = JSON.stringify([...sp.freeBlocks()]);
      const kind = rng.below(4);
      try {
        if (kind === 0) sp.alloc(cfg.pageSize === 1 ? 0 : rng.range(1, cfg.pageSize - 1));
        else if (kind === 1) sp.alloc(cfg.pageSize, { align: 3 });
        else if (kind === 2) sp.alloc(cfg.pageSize, { vstart: cfg.end });
        else sp.free(cfg.end + 1);
        fail(`misuse ${kind} did not throw`);
      } catch (e) {
        if (!(e instanceof VmallocError)) throw e;
        log.push(`misuse ${kind} -> ${e.code}`);
      }
      if (JSON.stringify([...sp.freeBlocks()]) !== before) fail(`misuse ${kind} changed the state`);
    } else if (live > 0 && (r < 0.45 || live > cfg.targetLive * 1.5) && r >= 0.02) {
      // Free a live area (sometimes try its interior or a double free first).
      const starts = [...model.busy.keys()];
      const at = rng.pick(starts);
      const end = model.busy.get(at)!;
      if (end - at > 1 && rng.chance(0.05)) {
        const interior = at + Math.max(1, Math.floor((end - at) / 2));
        assert.throws(() => sp.free(interior), { code: 'ENOENT' });
        log.push(`free interior ${interior} -> ENOENT`);
      }
      sp.free(at);
      model.release(at);
      log.push(`free ${at}`);
      if (rng.chance(0.03)) {
        assert.throws(() => sp.free(at), { code: 'ENOENT' });
        log.push(`free ${at} again -> ENOENT`);
      }
    } else {
      // Allocate.
      const pages = rng.chance(0.8)
        ? rng.range(1, Math.min(cfg.maxPages, 16))
        : rng.range(1, cfg.maxPages);
      const size = pages * cfg.pageSize;
      const shift = rng.chance(0.6)
        ? rng.below(Math.min(cfg.maxAlignShift, 12) + 1)
        : rng.below(cfg.maxAlignShift + 1);
      const align = 2 ** shift;
      let vstart = cfg.start;
      let vend = cfg.end;
      const w = rng.float();
      if (w < 0.2) {
        vstart = cfg.start + rng.below(cfg.end - cfg.start);
      } else if (w < 0.3) {
        vend = cfg.start + 1 + rng.below(cfg.end - cfg.start);
      } else if (w < 0.38) {
        vstart = cfg.start + rng.below(cfg.end - cfg.start);
        vend = vstart + 1 + rng.below(cfg.end - vstart);
      } else if (w < 0.42) {
        // An exact window: vend - vstart == size.
        vstart = FreeModel.alignUp(cfg.start + rng.below(cfg.end - cfg.start), align);
        vend = vstart + size;
        if (vend > cfg.end || vstart >= cfg.end) {
          vstart = cfg.start;
          vend = cfg.end;
        }
      }
      if (size > cfg.end - cfg.start) continue;
      const got = sp.alloc(size, { align, vstart, vend });
      allocs++;
      const desc = `alloc ${size} align ${align} [${vstart}, ${vend}) -> ${got}`;
      log.push(desc);
      const lowest = model.lowestFit(size, align, vstart, vend);
      const adjust = align > cfg.pageSize && vend - vstart !== size;
      if (!adjust) {
        if ((got ?? -1) !== lowest) fail(`${desc}: expected ${lowest === -1 ? null : lowest}`);
      } else {
        adjusted++;
        const big = model.firstBigEnough(size, align, vstart, size + align - 1);
        if (got === null) {
          if (!(lowest === -1 || big === -1 || big + size > vend))
            fail(`${desc}: null, but block at ${big} fits`);
        } else {
          if (got % align !== 0 || got < vstart || got + size > vend)
            fail(`${desc}: violates the request`);
          if (!model.isFree(got, size)) fail(`${desc}: not free in the model`);
          if (got < lowest) fail(`${desc}: below the lowest fit ${lowest}`);
          if (big !== -1 && got > big)
            fail(`${desc}: above the first block of size+align-1 (${big})`);
        }
      }
      if (got !== null) model.take(got, size);
    }
    if (cfg.checkEvery || i % 97 === 0) {
      sp.check();
      if (sp.busyCount !== model.busy.size)
        fail(`busyCount ${sp.busyCount} != model ${model.busy.size}`);
      if (sp.freeCount !== model.free.length)
        fail(`freeCount ${sp.freeCount} != model ${model.free.length}`);
      const largest = model.free.reduce((m, b) => Math.max(m, b.end - b.start), 0);
      if (sp.largestFree !== largest) fail(`largestFree ${sp.largestFree} != model ${largest}`);
    }
    if (i % 1009 === 0 && model.busy.size > 0) {
      const [s0, e0] = [...model.busy][0]!;
      const probe = s0 + Math.floor((e0 - s0) / 3);
      assert.deepEqual(sp.find(probe), { start: s0, end: e0 });
    }
  }
  // Every scenario ends clean: free everything, then one block spans the space.
  for (const at of [...model.busy.keys()]) sp.free(at);
  sp.check();
  assert.deepEqual([...sp.freeBlocks()], [{ start: cfg.start, end: cfg.end }]);
  assert.equal(sp.alloc(cfg.end - cfg.start), cfg.start);
  return { ops: cfg.ops, allocs, adjusted };
}

for (const cfg of CONFIGS) {
  test(`property: VmapSpace matches the brute-force model (${cfg.name}, ${cfg.ops} ops${cfg.checkEvery ? ', check() after each' : ''})`, () => {
    const seed = testSeed(`property ${cfg.name}`);
    const r = runConfig(cfg, seed);
    assert.ok(r.allocs > cfg.ops / 3, 'enough allocations were exercised');
    if (cfg.maxAlignShift > 12) assert.ok(r.adjusted > 0, 'large alignments were exercised');
  });
}
