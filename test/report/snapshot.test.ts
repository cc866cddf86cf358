/**
 * vm.snapshot() against a known layout, in every design: the busy areas with their kind,
 * caller and node, the lazily freed area, a vm_map_ram block, free blocks that tile the window
 * with the rest, the nodes design's pooled areas; and the report's compact encoding of it
 * decodes back to the same ranges.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DESIGN_NAMES,
  SNAPSHOT_SCHEMA_VERSION,
  createVmalloc,
  type VmallocSnapshot,
} from '../../src/index.js';
import { decodeColumns, encodeSnapshot } from '../../src/report/encode.js';

const PAGE = 4096;

/** Every range of the snapshot clipped to the window, sorted: they must tile it exactly. */
function assertTilesWindow(snap: VmallocSnapshot): void {
  const { start, end } = snap.window;
  const all = [...snap.busy, ...snap.free, ...snap.lazy, ...snap.pooled, ...snap.other]
    .map((r) => ({ s: Math.max(start, r.start), e: Math.min(end, r.start + r.size) }))
    .filter((r) => r.e > r.s)
    .sort((a, b) => a.s - b.s);
  let at = start;
  for (const r of all) {
    assert.equal(
      r.s,
      at,
      `a gap or an overlap at 0x${at.toString(16)} (next range at 0x${r.s.toString(16)})`,
    );
    at = r.e;
  }
  // rfc2018's free list ends at VMALLOC_END itself (inclusive in the kernel): the window's last
  // byte is in no range there.
  assert.ok(
    at === end || (snap.design === 'rfc2018' && at === end - 1),
    `the ranges reach the window end (0x${at.toString(16)})`,
  );
}

for (const design of DESIGN_NAMES) {
  describe(`snapshot, design ${design}`, () => {
    test('a known layout: busy, lazy, reserved, vm_map_ram, free', () => {
      const vm = createVmalloc({ design, nrCpus: 4, logger: null });
      const a = vm.vmalloc(1 * PAGE, { caller: 'a_init+0x1/0x10' })!;
      const b = vm.vmalloc(2 * PAGE, { caller: 'b_init+0x2/0x20' })!;
      const c = vm.vmalloc(4 * PAGE, { caller: 'c_init+0x3/0x30' })!;
      const r = vm.getVmArea(3 * PAGE, 0, { caller: 'reserve+0x4/0x40' })!;
      const pages = vm.allocPages(2);
      const m = vm.vmMapRam(pages, 2)!;
      vm.vfree(b);
      const snap = vm.snapshot();
      assert.equal(snap.schemaVersion, SNAPSHOT_SCHEMA_VERSION);
      assert.equal(snap.design, design);
      assert.equal(snap.pageSize, PAGE);
      assert.deepEqual(snap.window, { start: vm.vmallocStart, end: vm.vmallocEnd + 1 });
      assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap, 'plain JSON-able data');

      const busyAt = (addr: number) => snap.busy.find((x) => x.start === addr);
      for (const [addr, pagesOf, caller] of [
        [a, 1, 'a_init+0x1/0x10'],
        [c, 4, 'c_init+0x3/0x30'],
      ] as const) {
        const x = busyAt(addr);
        assert.ok(x, `busy area at 0x${addr.toString(16)}`);
        assert.equal(x.size, (pagesOf + 1) * PAGE, 'the size includes the guard page');
        assert.equal(x.kind, 'vmalloc');
        assert.equal(x.caller, caller);
        assert.equal(x.nrPages, pagesOf);
        assert.equal(x.node, design === 'nodes' ? vm.addrToNodeId(addr) : x.node);
        if (design === 'global' || design === 'legacy' || design === 'rfc2018')
          assert.equal(x.node, -1, 'no nodes in this design');
      }
      assert.equal(busyAt(r.addr)?.kind, 'reserved');
      assert.equal(busyAt(r.addr)?.caller, 'reserve+0x4/0x40');
      assert.equal(busyAt(b), undefined, 'b is not busy');
      const lazyB = snap.lazy.find((x) => x.start === b);
      assert.ok(lazyB, 'b waits on the lazy list');
      assert.equal(lazyB.size, 3 * PAGE);
      if (design === 'nodes') assert.ok(lazyB.node >= 0 && lazyB.node < snap.nrNodes);

      // vm_map_ram of 2 pages comes from a vmap block of this cpu.
      assert.equal(snap.vmapBlocks.length, 1);
      const blk = snap.vmapBlocks[0]!;
      assert.ok(m >= blk.start && m < blk.start + blk.size, 'the mapping lies in the block');
      assert.equal(blk.cpu, 0);
      assert.equal(blk.used, 2);
      assert.equal(busyAt(blk.start)?.kind, 'vmap_block');

      for (const list of [snap.busy, snap.free, snap.lazy, snap.pooled, snap.other])
        for (let k = 1; k < list.length; k++)
          assert.ok(list[k - 1]!.start < list[k]!.start, 'sorted');
      assertTilesWindow(snap);
      vm.check();
    });

    test('the encoded map decodes back to the ranges in the window', () => {
      const vm = createVmalloc({ design, nrCpus: 4, logger: null });
      const kept: number[] = [];
      for (let k = 0; k < 50; k++) {
        const p = vm.vmalloc((1 + (k % 5)) * PAGE)!;
        if (k % 3 === 0) vm.vfree(p);
        else kept.push(p);
      }
      const snap = vm.snapshot();
      const enc = encodeSnapshot(snap);
      assert.equal(enc.classes.busy.count, snap.busy.length);
      const cols = decodeColumns(enc.classes.busy);
      const w0 = snap.window.start;
      snap.busy.forEach((x, k) => {
        assert.equal(w0 + cols[0]![k]! * PAGE, x.start);
        assert.equal(cols[1]![k]! * PAGE, x.size);
        assert.equal(cols[2]![k]! - 1, x.node);
        assert.equal(enc.kinds[cols[3]![k]!], x.kind);
        assert.equal(enc.callers[cols[4]![k]!], x.caller);
      });
      const lazy = decodeColumns(enc.classes.lazy);
      assert.deepEqual(
        lazy[0]!.map((s) => w0 + s * PAGE),
        snap.lazy.map((x) => x.start),
      );
    });
  });
}

test('snapshot, design nodes: pooled areas appear after a drain, each in its node', () => {
  // Free one-page areas until the lazy backlog passes lazy_max_pages() and a drain purges:
  // the drain pools them in the node of the cpu that allocated them (cpu 0: node 0).
  const vm = createVmalloc({ design: 'nodes', nrCpus: 2, logger: null });
  while (vm.stats().purges === 0) vm.vfree(vm.vmalloc(PAGE));
  const snap = vm.snapshot();
  assert.ok(snap.pooled.length > 0, 'some areas are pooled');
  for (const x of snap.pooled) {
    assert.equal(x.size, 2 * PAGE);
    assert.equal(x.node, 0);
  }
  assert.equal(snap.pooled.length, vm.shrinker.count());
  assertTilesWindow(snap);
});
