/**
 * The 'offload2023' design, case by case: nr_nodes and node_size (v2 9/9), the fetch of a
 * block and its margins, the quarter-of-node_size limit (alignment included), requests
 * outside the vmalloc window, frees to the node encoded in the flags, lazy placement, the
 * return of a block freed whole (at a purge and on the error path), fill_in_progress, one
 * node behaving as the global design, and check() catching broken invariants.
 * Several CPUs are several attached instances in this one thread.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attachVmalloc, createVmalloc, type Vmalloc } from '../../src/index.js';
import type { Offload2023Design } from '../../src/designs/offload2023.js';
import {
  N_FILL,
  N_MARGIN_HEAD,
  offloadNodeSize,
  offloadNrNodes,
} from '../../src/designs/offload2023-node.js';
import { rbListFirst } from '../../src/kva/rb-list.js';
import { PAGE } from '../helpers/vm.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** `nrCpus` CPUs, one instance each (the creator is cpu 0), and the design. */
function machine(
  nrCpus: number,
  options: { vmallocSize?: number; pageSize?: number } = {},
): { cpus: Vmalloc[]; vm: Vmalloc; d: Offload2023Design } {
  const vm = createVmalloc({ design: 'offload2023', nrCpus, logger: null, ...options });
  const cpus = [vm];
  for (let c = 1; c < nrCpus; c++) cpus.push(attachVmalloc(vm.handle, { cpu: c, logger: null }));
  return { cpus, vm, d: vm.areas.design as Offload2023Design };
}

/** A reservation of `pages` pages in all (guard page included), from `vm`'s cpu. */
function reserve(vm: Vmalloc, pages: number): number {
  const a = vm.getVmArea((pages - 1) * PAGE);
  assert.ok(a !== null);
  return a.addr;
}

const blocksOf = (d: Offload2023Design, n: number): { start: number; end: number }[] =>
  d.describe(0).nodes[n]!.blocks;
const heapOf = (d: Offload2023Design, n: number): { start: number; end: number }[] =>
  d.describe(0).nodes[n]!.free;

describe('offload2023: nodes and node_size (v2 9/9)', () => {
  test('two CPUs per node; node_size = min(64 KiB << fls(nr_cpus), 4 MiB), 1 with one node', () => {
    const table = [1, 2, 3, 4, 6, 8, 16, 32, 64, 600].map((c) => [
      c,
      offloadNrNodes(c),
      offloadNodeSize(c),
    ]);
    assert.deepEqual(table, [
      [1, 1, 1],
      [2, 1, 1],
      [3, 1, 1],
      [4, 2, 512 * KiB],
      [6, 3, 512 * KiB],
      [8, 4, 1 * MiB],
      [16, 8, 2 * MiB],
      [32, 16, 4 * MiB],
      [64, 32, 4 * MiB],
      [600, 255, 4 * MiB],
    ]);
  });

  test('one node (2 CPUs): no node heap serves, the addresses and vmallocinfo are the global design', () => {
    const run = (design: 'global' | 'offload2023'): string => {
      const vm = createVmalloc({ design, nrCpus: 2, logger: null });
      const cpu1 = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      const a = [
        vm.vmalloc(PAGE)!,
        cpu1.vmalloc(3 * PAGE)!,
        vm.vmalloc(PAGE, { align: 16 * PAGE })!,
      ];
      cpu1.vfree(a[1]);
      a.push(vm.vmalloc(2 * PAGE)!);
      vm.vfree(a[0]);
      vm.purge();
      a.push(cpu1.vmalloc(PAGE)!);
      vm.check();
      if (design === 'offload2023') {
        assert.equal(vm.stats().poolHits + vm.stats().poolMisses, 0, 'no node request at all');
        assert.deepEqual((vm.areas.design as Offload2023Design).blockCounts(), {
          fetched: 0,
          returned: 0,
        });
      }
      return vm.vmallocinfo();
    };
    assert.equal(run('offload2023'), run('global'));
  });
});

describe('offload2023: the node heaps', () => {
  test('a miss fetches node_size from the global heap, keeps a page on each side, serves from it', () => {
    const { cpus, vm, d } = machine(4);
    const base = vm.config.vmallocStart;
    const ns = 512 * KiB;
    const a0 = cpus[0]!.vmalloc(PAGE)!; // node 0: fetches [base, base + ns)
    assert.equal(a0, base + PAGE, 'the first page of the block is a margin');
    const a1 = cpus[1]!.vmalloc(PAGE)!; // node 1: fetches the next block
    assert.equal(a1, base + ns + PAGE);
    const a2 = cpus[2]!.vmalloc(PAGE)!; // cpu 2 % 2 nodes: node 0's heap, no fetch
    assert.equal(a2, base + 3 * PAGE);
    assert.deepEqual(d.blockCounts(), { fetched: 2, returned: 0 });
    assert.deepEqual(blocksOf(d, 0), [{ start: base, end: base + ns }]);
    assert.deepEqual(heapOf(d, 0), [{ start: base + 5 * PAGE, end: base + ns - PAGE }]);
    assert.deepEqual(heapOf(d, 1), [{ start: base + ns + 3 * PAGE, end: base + 2 * ns - PAGE }]);
    assert.deepEqual(d.describe(0).global[0], { start: vm.config.spaceStart, end: base });
    assert.equal(d.describe(0).global[1]!.start, base + 2 * ns, 'the global heap lost two blocks');
    // The areas carry their node: encode_vn_id(n) = (n + 1) << 8.
    const s = d.s;
    const flagsOf = (addr: number): number => s.flags(vm.areas.find(0, addr));
    assert.deepEqual(
      [a0, a1, a2].map((a) => d.decodeVnId(flagsOf(a))),
      [0, 1, 0],
    );
    assert.equal(flagsOf(a1) >> 8, 2);
    const st = vm.stats();
    assert.equal(st.poolHits, 3);
    assert.equal(st.freeBlocks, 4, 'two global blocks and one range in each node heap');
    vm.check();
  });

  test('a request above a quarter of node_size, alignment included, goes to the global heap', () => {
    const { vm, d } = machine(4);
    const base = vm.config.vmallocStart;
    const ns = 512 * KiB;
    const quarter = ns / 4 / PAGE; // 32 pages
    const inNode = reserve(vm, quarter);
    assert.equal(inNode, base + PAGE, 'exactly a quarter: a node request');
    const outside = reserve(vm, quarter + 1);
    assert.equal(outside, base + ns, 'the lowest global fit, after the block');
    // 2 pages + an alignment of 30 pages' worth rounded to a power of two (128 KiB): 34 pages.
    const aligned = vm.vmalloc(PAGE, { align: 128 * KiB })!;
    assert.equal(aligned % (128 * KiB), 0);
    assert.ok(aligned >= base + ns, 'size + align > node_size / 4: global');
    const small = vm.vmalloc(PAGE, { align: 64 * KiB })!;
    assert.ok(small > base && small < base + ns && small % (64 * KiB) === 0, 'within the quarter');
    const tag = (addr: number): number => d.decodeVnId(d.s.flags(vm.areas.find(0, addr)));
    assert.deepEqual([inNode, outside, aligned, small].map(tag), [0, -1, -1, 0]);
    assert.equal(d.blockCounts().fetched, 1);
    vm.check();
  });

  test('a request for another window than the vmalloc one goes to the global heap', () => {
    const { vm, d } = machine(4);
    const cfg = vm.config;
    const vstart = cfg.vmallocStart + 64 * PAGE;
    const va = vm.areas.alloc(0, 2 * PAGE, 1, vstart, cfg.vmallocEnd, 0);
    assert.equal(d.s.start(va), vstart);
    assert.equal(d.decodeVnId(d.s.flags(va)), -1);
    assert.deepEqual(d.blockCounts(), { fetched: 0, returned: 0 });
    assert.equal(vm.stats().poolHits + vm.stats().poolMisses, 0);
    vm.check();
    assert.equal(vm.areas.findUnlink(0, vstart, false), va);
    vm.areas.freeNow(0, va);
    vm.check();
    assert.equal(vm.stats().freeBlocks, 1);
  });

  test('frees go to the node encoded in the flags; a block freed whole goes back at the purge', () => {
    const { cpus, vm, d } = machine(4);
    const base = vm.config.vmallocStart;
    const ns = 512 * KiB;
    const a = [cpus[1]!.vmalloc(PAGE)!, cpus[1]!.vmalloc(2 * PAGE)!, cpus[1]!.vmalloc(PAGE)!];
    assert.equal(a[0], base + PAGE, 'node 1 fetched the first block');
    // Freed from cpu 0 (node 0): the lazy ranges and then the heap are node 1's.
    cpus[0]!.vfree(a[1]);
    cpus[0]!.vfree(a[0]);
    const nodes = d.describe(0).nodes;
    assert.deepEqual(nodes[0]!.lazy, []);
    assert.deepEqual(nodes[1]!.lazy, [{ start: base + PAGE, end: base + 6 * PAGE }], 'merged');
    vm.purge();
    assert.deepEqual(heapOf(d, 1), [
      { start: base + PAGE, end: base + 6 * PAGE },
      { start: base + 8 * PAGE, end: base + ns - PAGE },
    ]);
    assert.deepEqual(heapOf(d, 0), []);
    assert.deepEqual(d.blockCounts(), { fetched: 1, returned: 0 }, 'partly freed: it stays');
    vm.check();
    cpus[2]!.vfree(a[2]);
    vm.purge();
    assert.deepEqual(d.blockCounts(), { fetched: 1, returned: 1 });
    assert.deepEqual(blocksOf(d, 1), []);
    assert.deepEqual(heapOf(d, 1), []);
    assert.equal(vm.stats().freeBlocks, 1, 'the block merged back with the global heap');
    vm.check();
  });

  test('a block crossing a zone: busy areas by address, lazy ones by the encoded node', () => {
    const { cpus, vm, d } = machine(4);
    const base = vm.config.vmallocStart;
    const ns = 512 * KiB;
    assert.equal(d.addrToNodeId(base), 0);
    assert.equal(d.addrToNodeId(base + ns), 1);
    const big = reserve(vm, 40); // global: [base, base + 40 pages)
    assert.equal(big, base);
    // Node 1's block is [base + 40 pages, base + ns + 40 pages): mostly in node 0's zone.
    const a = cpus[1]!.vmalloc(PAGE)!;
    assert.equal(a, base + 41 * PAGE);
    const nodes = d.describe(0).nodes;
    assert.deepEqual(nodes[0]!.busy, [
      { start: base, end: base + 40 * PAGE },
      { start: a, end: a + 2 * PAGE },
    ]);
    assert.deepEqual(nodes[1]!.busy, []);
    assert.equal(vm.findVmArea(a + PAGE - 1)?.addr, a, 'found from its own zone');
    cpus[1]!.vfree(a);
    vm.removeVmArea(big);
    const after = d.describe(0).nodes;
    assert.deepEqual(after[1]!.lazy, [{ start: a, end: a + 2 * PAGE }], 'lazy by the flags');
    assert.deepEqual(after[0]!.lazy, [{ start: base, end: base + 40 * PAGE }], 'lazy by address');
    vm.check();
    vm.purge();
    assert.equal(vm.stats().freeBlocks, 1);
    vm.check();
  });

  test('the error path: a node area freed at once goes back to its heap, whole blocks on', () => {
    const { vm, d } = machine(4);
    const cfg = vm.config;
    const va = vm.areas.alloc(0, 2 * PAGE, 1, cfg.vmallocStart, cfg.vmallocEnd, 0);
    const start = d.s.start(va);
    assert.equal(d.decodeVnId(d.s.flags(va)), 0);
    const other = vm.areas.alloc(0, 2 * PAGE, 1, cfg.vmallocStart, cfg.vmallocEnd, 0);
    for (const [x, returned] of [
      [va, 0],
      [other, 1],
    ] as const) {
      assert.equal(vm.areas.findUnlink(0, d.s.start(x), false), x);
      vm.areas.freeNow(0, x);
      assert.equal(d.blockCounts().returned, returned);
      vm.check();
    }
    assert.deepEqual(blocksOf(d, 0), []);
    assert.equal(vm.stats().freeBlocks, 1);
    assert.equal(start, cfg.vmallocStart + PAGE);
  });

  test('fill_in_progress: while another CPU fetches for the node, a miss goes to the global heap', () => {
    const { vm, d } = machine(4);
    const flag = d.nodeBase(0) + N_FILL;
    d.ctl[flag] = 1; // as if another CPU of node 0 were fetching
    assert.throws(() => vm.check(), { code: 'EINVARIANT', message: /fetch is in progress/ });
    const misses = vm.stats().poolMisses;
    const a = vm.areas.alloc(0, 2 * PAGE, 1, vm.config.vmallocStart, vm.config.vmallocEnd, 0);
    assert.equal(vm.stats().poolMisses, misses + 1);
    assert.equal(d.decodeVnId(d.s.flags(a)), -1, 'not tagged: it came from the global heap');
    assert.deepEqual(d.blockCounts(), { fetched: 0, returned: 0 });
    d.ctl[flag] = 0;
    vm.check();
    assert.equal(vm.vmalloc(PAGE), vm.config.vmallocStart + 3 * PAGE, 'now node 0 fetches');
    assert.equal(d.blockCounts().fetched, 1);
    vm.check();
  });

  test('a node that cannot fetch (no node_size block left) falls back to the global heap', () => {
    // A window of 100 pages holds no 128-page block.
    const { vm, d } = machine(4, { vmallocSize: 100 * PAGE });
    const a = vm.vmalloc(PAGE)!;
    assert.equal(a, vm.config.vmallocStart);
    assert.equal(vm.stats().poolMisses, 1);
    assert.equal(d.blockCounts().fetched, 0);
    vm.check();
  });
});

describe('offload2023: check() finds broken invariants', () => {
  test('a moved margin, an area tagged with the wrong node, a heap range outside its block', () => {
    const { cpus, vm, d } = machine(4);
    const a = cpus[0]!.vmalloc(PAGE)!;
    cpus[1]!.vmalloc(PAGE);
    vm.check();
    const s = d.s;
    const broken = (change: () => void, undo: () => void, message: RegExp): void => {
      change();
      assert.throws(() => vm.check(), { code: 'EINVARIANT', message });
      undo();
      vm.check();
    };
    const margin = rbListFirst(s, d.ctl[d.nodeBase(0) + N_MARGIN_HEAD]!);
    const [ms, me] = [s.start(margin), s.end(margin)];
    broken(
      () => s.setRange(margin, ms, me - PAGE / 2),
      () => s.setRange(margin, ms, me),
      /not the first and last page of a 524288-byte block/,
    );
    const va = vm.areas.find(0, a);
    const flags = s.flags(va);
    broken(
      () => s.setFlags(va, d.encodeVnId(1)),
      () => s.setFlags(va, flags),
      /not inside one of node 1's block interiors/,
    );
    broken(
      () => s.setFlags(va, 0),
      () => s.setFlags(va, flags),
      /has no node but lies in node 0's block/,
    );
  });
});
