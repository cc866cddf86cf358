/**
 * vm_map_ram and the per-CPU vmap blocks: the bump pointer and power-of-two rounding, the
 * dirty range, a block released (lazily) once fully dirty, the fragmented purge with and
 * without force, vm_unmap_aliases widening the flush range, both block hashes, memory round
 * trips, large counts through the area allocator, vmallocinfo; in both designs (and the
 * three older ones for the round trip).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DESIGN_NAMES, type Vmalloc, type VmallocDesign } from '../../src/index.js';
import type { VmContext } from '../../src/mm/shared-state.js';
import { vmUnmapAliases } from '../../src/mm/vm-map-ram.js';
import { blockInfo } from '../../src/mm/vmap-block-check.js';
import { PAGE, testVm } from '../helpers/vm.js';

const ctxOf = (vm: Vmalloc): VmContext => (vm as unknown as { ctx: VmContext }).ctx;
const info = (vm: Vmalloc, addr: number) => blockInfo(ctxOf(vm).vb, addr)!;
/** Default geometry: CONFIG_NR_CPUS 8192 -> VMAP_BBMAP_BITS 256 (1 MiB blocks). */
const BITS = 256;
const BLOCK = BITS * PAGE;

function make(design: VmallocDesign, hash: 'global' | 'percpu' = 'percpu', extra = {}) {
  return testVm({ design, vmapBlockHash: hash, physicalMemory: 4096 * PAGE, ...extra }).vm;
}

for (const design of ['global', 'nodes'] as VmallocDesign[]) {
  describe(`vm_map_ram blocks [${design}]`, () => {
    test('bump pointer, 3 pages rounded to 4 bits, first fit in this cpu block', () => {
      const vm = make(design);
      const pages = vm.allocPages(8);
      const a = vm.vmMapRam(pages, 1)!;
      assert.equal(a % BLOCK, 0, 'a new block starts at a block boundary');
      const b = vm.vmMapRam(pages, 3)!;
      const c = vm.vmMapRam(pages, 2)!;
      assert.equal(b, a + PAGE);
      assert.equal(c, a + 5 * PAGE, '3 pages took 4 bits');
      const i = info(vm, a);
      assert.deepEqual(i.used, [0, 1, 2, 3, 4, 5, 6]);
      assert.equal(i.free, BITS - 7);
      assert.equal(i.dirty, 0);
      assert.equal(i.onFreeList, true);
      assert.equal(vm.stats().vmapBlocks, 1);
      vm.check();
      // A freed hole is never reused: the pointer only moves on.
      vm.vmUnmapRam(b, 3);
      assert.equal(vm.vmMapRam(pages, 1), a + 7 * PAGE);
      vm.check();
    });

    test('the dirty range widens with each unmap; the pages are unmapped at once', () => {
      const vm = make(design);
      const pages = vm.allocPages(8);
      const a = vm.vmMapRam(pages, 1)!;
      const b = vm.vmMapRam(pages, 3)!;
      const c = vm.vmMapRam(pages, 8)!;
      vm.vmUnmapRam(b, 3);
      let i = info(vm, a);
      assert.equal(i.dirty, 4);
      assert.deepEqual([i.dirtyMin, i.dirtyMax], [1, 5]);
      assert.deepEqual(i.used, [0, 5, 6, 7, 8, 9, 10, 11, 12]);
      assert.throws(() => vm.readU8(b), { code: 'EFAULT' });
      vm.vmUnmapRam(c, 8);
      i = info(vm, a);
      assert.deepEqual([i.dirty, i.dirtyMin, i.dirtyMax], [12, 1, 13]);
      vm.check();
    });

    test('a block whose every page was handed out and returned is released lazily', () => {
      const vm = make(design);
      const pages = vm.allocPages(64);
      const maps: number[] = [];
      for (let k = 0; k < BITS / 64; k++) maps.push(vm.vmMapRam(pages, 64)!);
      assert.equal(info(vm, maps[0]!).onFreeList, false, 'a full block leaves the free list');
      const lazyBefore = vm.lazyPages;
      for (const m of maps.slice(0, -1)) vm.vmUnmapRam(m, 64);
      assert.equal(vm.stats().vmapBlocks, 1);
      vm.vmUnmapRam(maps.at(-1)!, 64);
      const st = vm.stats();
      assert.equal(st.vmapBlocks, 0);
      assert.equal(st.vmapBlocksFreed, 1);
      assert.equal(vm.lazyPages - lazyBefore, BITS, 'the block area waits for a purge');
      assert.match(vm.vmallocinfo(), new RegExp(`${BLOCK} unpurged vm_area`));
      vm.check();
      vm.purge();
      assert.equal(vm.lazyPages, 0);
      vm.check();
    });

    test('vm_unmap_aliases purges a fragmented block only below the quarter threshold', () => {
      const vm = make(design);
      const pages = vm.allocPages(64);
      // Block 1: 240 of 256 pages handed out (16 fresh < 64), all returned.
      const got: [number, number][] = [];
      for (const n of [64, 64, 64, 32, 16]) got.push([vm.vmMapRam(pages, n)!, n]);
      const first = got[0]![0];
      for (const [a, n] of got) vm.vmUnmapRam(a, n);
      let i = info(vm, first);
      assert.deepEqual([i.free, i.dirty], [16, 240]);
      vm.vmUnmapAliases();
      assert.equal(blockInfo(ctxOf(vm).vb, first), null, 'purged: free < VMAP_PURGE_THRESHOLD');
      assert.equal(vm.stats().vmapBlocksPurged, 1);
      // Block 2: one page handed out and returned: 255 fresh pages, kept.
      const one = vm.vmMapRam(pages, 1)!;
      vm.vmUnmapRam(one, 1);
      vm.vmUnmapAliases();
      i = info(vm, one);
      assert.equal(i.free, BITS - 1, 'not purged without force');
      assert.deepEqual([i.dirtyMin, i.dirtyMax], [BITS, 0], 'its dirty range was flushed');
      vm.check();
      // A reclaim (purge after an allocation failure) forces it.
      vm.purge();
      assert.equal(blockInfo(ctxOf(vm).vb, one), null);
      assert.equal(vm.stats().vmapBlocksPurged, 2);
      vm.check();
    });

    test('an allocation failure purges fragmented blocks (force) and retries', () => {
      // A window of 2 blocks: one holds a fragmented block; vmalloc of 1.5 blocks needs both.
      const vm = make(design, 'percpu', { vmallocStart: 0xc90000000000, vmallocSize: 2 * BLOCK });
      const pages = vm.allocPages(1);
      const one = vm.vmMapRam(pages, 1)!;
      vm.vmUnmapRam(one, 1);
      assert.equal(vm.stats().vmapBlocks, 1);
      const big = vm.vmalloc(BLOCK + BLOCK / 2 - PAGE);
      assert.notEqual(big, null, 'the block was purged and the range reused');
      assert.equal(vm.stats().vmapBlocks, 0);
      vm.check();
    });

    test('vm_unmap_aliases widens the flush range over every dirty block', () => {
      const vm = make(design);
      const pages = vm.allocPages(64);
      const keep: number[] = [];
      for (let k = 0; k < BITS / 64; k++) keep.push(vm.vmMapRam(pages, 64)!);
      const second = vm.vmMapRam(pages, 1)!;
      const next = vm.vmMapRam(pages, 1)!;
      vm.vmUnmapRam(keep[1]!, 64); // block 1: dirty [64, 128)
      vm.vmUnmapRam(next, 1); // block 2: dirty [1, 2)
      const flushes = vm.stats().tlbFlushes;
      const r = vmUnmapAliases(ctxOf(vm));
      const lo = Math.min(keep[0]! + 64 * PAGE, second + PAGE);
      const hi = Math.max(keep[0]! + 128 * PAGE, second + 2 * PAGE);
      assert.deepEqual(r, { start: lo, end: hi, flushed: true });
      assert.equal(vm.stats().tlbFlushes, flushes + 1, 'one flush of the widened range');
      assert.deepEqual([info(vm, second).dirtyMin, info(vm, second).dirtyMax], [BITS, 0]);
      const again = vmUnmapAliases(ctxOf(vm));
      assert.equal(again.flushed, false, 'nothing left to flush');
      vm.check();
    });

    for (const hash of ['global', 'percpu'] as const) {
      test(`${hash} hash: blocks are found in their hash, with the kernel's lock class`, () => {
        const vm = make(design, hash, { nrCpus: 4, lockStat: true });
        const pages = vm.allocPages(64);
        const live: number[] = [];
        for (let k = 0; k < 9; k++) live.push(vm.vmMapRam(pages, 64)!);
        for (const a of live) {
          const i = info(vm, a);
          assert.equal(i.hash, hash === 'global' ? 0 : (i.start / BLOCK) % 4);
        }
        for (const a of live) vm.vmUnmapRam(a, 64);
        vm.check();
        const name = hash === 'global' ? 'vmap_blocks.xa_lock' : '&xa->xa_lock#1';
        const cls = vm.lockStats().filter((l) => l.name === name);
        const acq = cls.reduce((s, l) => s + l.acquisitions, 0);
        // 3 blocks inserted, the 2 full ones erased; lookups take no hash lock.
        assert.equal(acq, 5, `${name}: an insert per block and an erase per freed block`);
        assert.match(vm.lockStat(), new RegExp(name.replace(/[&>#.-]/g, '\\$&') + ':'));
        assert.match(vm.lockStat(), /&vb->lock:/);
        const other = hash === 'global' ? '&xa->xa_lock#1' : 'vmap_blocks.xa_lock';
        assert.equal(vm.lockStats().filter((l) => l.name === other).length, 0);
      });
    }

    test('large counts get an area of their own: no guard page, vm_map_ram in vmallocinfo', () => {
      const vm = make(design);
      const pages = vm.allocPages(100);
      const a = vm.vmMapRam(pages, 100)!;
      const line = vm
        .vmallocinfo()
        .split('\n')
        .find((l) => l.includes(`${100 * PAGE} vm_map_ram`));
      assert.ok(line !== undefined, vm.vmallocinfo());
      assert.equal(vm.stats().vmapBlocks, 0);
      const b = vm.vmMapRam(pages, 1)!;
      assert.match(vm.vmallocinfo(), new RegExp(`${BLOCK} vm_map_ram`));
      vm.vmUnmapRam(a, 100);
      vm.vmUnmapRam(b, 1);
      assert.match(vm.vmallocinfo(), new RegExp(`${100 * PAGE} unpurged vm_area`));
      vm.check();
    });
  });
}

describe('vm_map_ram memory', () => {
  for (const design of DESIGN_NAMES) {
    test(`[${design}] writes through a mapping reach the frames; a new mapping reads them back`, () => {
      const vm = make(design);
      for (const n of [1, 3, 64, 65, 200]) {
        const pages = vm.allocPages(n);
        const data = new Uint8Array(n * PAGE);
        for (let k = 0; k < data.length; k++) data[k] = (k * 31 + n) & 0xff;
        const a = vm.vmMapRam(pages, n)!;
        vm.write(a, data);
        vm.check();
        vm.vmUnmapRam(a, n);
        assert.throws(() => vm.readU8(a), { code: 'EFAULT' });
        const b = vm.vmMapRam(pages, n)!;
        assert.deepEqual(vm.read(b, n * PAGE), data, `${n} pages`);
        // The same frames through vmap() too.
        const v = vm.vmap(pages)!;
        assert.equal(vm.readU8(v + n * PAGE - 1), data[n * PAGE - 1]);
        vm.vunmap(v);
        vm.vmUnmapRam(b, n);
        vm.freePages(pages);
      }
      vm.vmUnmapAliases();
      vm.purge();
      vm.check();
      assert.equal(vm.stats().pagesUsed, 0);
    });
  }
});
