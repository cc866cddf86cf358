/**
 * The 'offload2023' design against a brute-force model of its policy (./offload2023-model.ts):
 * seeded random reservations, vmallocs (some aligned above a page), frees and purges from
 * several CPUs, in a checked run (check() after every operation); after every operation the
 * result, the counters (node hit, fetch, retry) and every heap, block, busy and lazy list
 * must match the model; the run ends clean.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attachVmalloc, createVmalloc, type Vmalloc } from '../../src/index.js';
import type { Offload2023Design } from '../../src/designs/offload2023.js';
import { Rng, testSeed } from '../helpers/rng.js';
import { OffloadModel, type Iv, type Observed } from './offload2023-model.js';

interface Live {
  addr: number;
  /** reserved bytes, guard page included */
  size: number;
  how: 'vmalloc' | 'getVmArea';
}

function design(vm: Vmalloc): Offload2023Design {
  const d = vm.areas.design;
  assert.equal(d.name, 'offload2023');
  return d as Offload2023Design;
}

const sorted = (ivs: Iv[]): Iv[] =>
  ivs.map((r) => ({ start: r.start, end: r.end })).sort((a, b) => a.start - b.start);

/** Every list of the design equals the model's. */
function sameState(vm: Vmalloc, m: OffloadModel, step: number): void {
  const d = design(vm).describe(0);
  const at = `after step ${step}`;
  assert.deepEqual(d.global, sorted(m.global.ivs), `global heap ${at}`);
  for (const node of d.nodes) {
    const n = node.node;
    const mn = m.nodes[n]!;
    assert.deepEqual(node.free, sorted(mn.heap.ivs), `node ${n} heap ${at}`);
    const blocks = [...mn.blocks].sort((a, b) => a - b);
    assert.deepEqual(
      node.blocks,
      blocks.map((b) => ({ start: b, end: b + m.c.nodeSize })),
      `node ${n} blocks ${at}`,
    );
    const busy = [...m.busy]
      .filter(([start]) => m.addrToNode(start) === n)
      .map(([start, b]) => ({ start, end: b.end }));
    assert.deepEqual(node.busy, sorted(busy), `node ${n} busy ${at}`);
    assert.deepEqual(node.lazy, sorted(m.lazy[n]!), `node ${n} lazy ${at}`);
  }
  assert.equal(vm.lazyPages, m.lazyPages, `vmap_lazy_nr ${at}`);
  assert.deepEqual(
    design(vm).blockCounts(),
    { fetched: m.fetched, returned: m.returned },
    `blocks fetched and returned ${at}`,
  );
}

function run(
  name: string,
  nrCpus: number,
  pageSize: number,
  pages: number,
  steps: number,
  purgeChance: number,
) {
  const seed = testSeed(name);
  const rng = new Rng(seed);
  const vm = createVmalloc({
    design: 'offload2023',
    nrCpus,
    pageSize,
    vmallocSize: pages * pageSize,
    checkEveryOp: true,
    logger: null,
  });
  const d = design(vm);
  const P = pageSize;
  const cfg = vm.config;
  const m = new OffloadModel({
    pageSize: P,
    nrNodes: d.nrNodes,
    nodeSize: d.nodeSize,
    spaceStart: cfg.spaceStart,
    spaceEnd: cfg.spaceEnd,
    vmallocStart: cfg.vmallocStart,
    vmallocEnd: cfg.vmallocEnd,
    lazyMaxPages: cfg.lazyMaxPages,
  });
  // Several CPUs per node: cpu and cpu + nrNodes share one.
  const cpuIds = [0, 1, 2, Math.min(d.nrNodes, nrCpus - 1), nrCpus - 1];
  const cpus = new Map<number, Vmalloc>([[0, vm]]);
  for (const c of cpuIds)
    if (!cpus.has(c)) cpus.set(c, attachVmalloc(vm.handle, { cpu: c, logger: null }));
  const quarterPages = Math.floor(d.nodeSize / 4 / P);
  const live: Live[] = [];
  let failures = 0;
  let filling = true;
  /** One allocation from `cpu`, checked against the model: false when it failed. */
  const allocate = (cpu: number): boolean => {
    const inst = cpus.get(cpu)!;
    const before = vm.stats();
    const counts = d.blockCounts();
    let addr: number | null;
    let size: number;
    let align = 1;
    let how: Live['how'];
    if (rng.chance(0.5)) {
      // Reservations around the quarter of node_size (the node's limit).
      size = rng.range(1, quarterPages + 4) * P;
      addr = inst.getVmArea(size)?.addr ?? null;
      how = 'getVmArea';
    } else {
      size = rng.range(1, Math.max(1, quarterPages >> 1)) * P;
      if (rng.chance(0.3)) align = P * 2 ** rng.range(1, 4);
      addr = inst.vmalloc(size, { align });
      how = 'vmalloc';
    }
    const after = vm.stats();
    const o: Observed = {
      addr,
      hit: after.poolHits > before.poolHits,
      fetched: d.blockCounts().fetched > counts.fetched,
      retries: after.allocRetries - before.allocRetries,
    };
    m.alloc(cpu, size + P, align, o);
    if (addr === null) failures++;
    else live.push({ addr, size: size + P, how });
    return addr !== null;
  };
  const release = (cpu: number, k: number): void => {
    const inst = cpus.get(cpu)!;
    const a = live[k]!;
    live.splice(k, 1);
    if (a.how === 'vmalloc') inst.vfree(a.addr);
    else inst.removeVmArea(a.addr);
    m.free(a.addr);
  };
  let step = 0;
  for (; step < steps; step++) {
    const cpu = rng.pick(cpuIds);
    const r = rng.float();
    // Phases that mostly allocate (until the window runs full) and mostly free (until few
    // areas are left).
    if (live.length < 8) filling = true;
    if (r < (filling ? 0.8 : 0.2) || live.length === 0) {
      if (!allocate(cpu)) filling = false;
    } else if (r < 1 - purgeChance) {
      release(cpu, rng.below(live.length));
    } else {
      cpus.get(cpu)!.purge();
      m.purge();
    }
    sameState(vm, m, step);
  }
  // The end: fill the window, then free everything without a purge (a backlog of the whole
  // window, past lazy_max_pages() when the window is larger), then purge: one free block
  // spans the space again and no node holds a block.
  while (allocate(rng.pick(cpuIds))) sameState(vm, m, step++);
  while (live.length > 0) {
    release(rng.pick(cpuIds), rng.below(live.length));
    sameState(vm, m, step++);
  }
  vm.purge();
  m.purge();
  sameState(vm, m, step);
  vm.check();
  const st = vm.stats();
  assert.equal(st.busyAreas, 0);
  assert.equal(st.lazyAreas, 0);
  assert.equal(st.freeBlocks, 1, 'one free block spans the space again');
  assert.equal(st.pagesUsed, 0);
  const { fetched, returned } = d.blockCounts();
  assert.equal(fetched, returned, 'every fetched block went back');
  // The run exercised what it is about.
  assert.ok(fetched > 5, `blocks fetched: ${fetched}`);
  assert.ok(st.poolHits > 0 && st.purges > 0, 'node hits and purges happened');
  console.log(`${name}: ${fetched} blocks fetched, ${st.purges} purges, ${st.drains} drains`);
  assert.ok(failures > 0 && st.allocRetries > 0, 'the window ran full at least once');
  if (cfg.vmallocEnd - cfg.vmallocStart > cfg.lazyMaxPages * P)
    assert.ok(st.drains > 0, 'the lazy backlog passed lazy_max_pages()');
}

describe('offload2023 against a brute-force model of its policy', () => {
  test('4 CPUs (2 nodes of 512 KiB blocks), 4 KiB pages, a 4 MiB window', () => {
    run('offload2023 model, 4 cpus', 4, 4096, 1024, 1500, 0.03);
  });

  test('16 CPUs (8 nodes of 2 MiB blocks), 64 KiB pages, drains above lazy_max_pages()', () => {
    // lazy_max_pages() = fls(16) * 32 MiB / 64 KiB = 2560 pages: a 4096-page window holds
    // both a full lazy backlog (drains) and, at times, no room left (purge and retry).
    run('offload2023 model, 16 cpus', 16, 65536, 4096, 1200, 0.002);
  });
});
