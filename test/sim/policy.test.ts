/**
 * Policies (the kernel tunables the seeds argue about, as createVmalloc options and test
 * parameters): each changes what it should, deterministically on the simulated machine:
 * nr_vmap_nodes=1 is one node (no pools, one busy lock); the zone size deals addresses to
 * nodes; the lazy threshold sets when purges happen; the pool limit and the decay bound and
 * drain the pools. The parameters reach createVmalloc and the run's header.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createVmalloc } from '../../src/index.js';
import { simulateTestVmalloc, type SimResult } from '../../src/sim/machine.js';
import {
  applyParams,
  defaultParams,
  policyLine,
  policyOptions,
  type TestParams,
} from '../../src/test-vmalloc/params.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';

const PAGE = 4096;

function sim(design: TestParams['design'], cpus: number, words: string[], mask = 1 | 8): SimResult {
  const p = defaultParams(IMPLEMENTED_MASK, cpus);
  Object.assign(p, {
    design,
    nr_threads: cpus,
    nr_cpus: cpus,
    test_loop_count: 400,
    run_test_mask: mask,
    seed: 5,
  });
  applyParams(p, words);
  return simulateTestVmalloc({ params: p });
}

const slots = (r: SimResult, name: string): number =>
  r.lockStats.filter((s) => s.name === name).length;

describe('policies', () => {
  test('nr_vmap_nodes=1: the nodes design runs as one node (no pools, one busy lock)', () => {
    const one = sim('nodes', 8, ['nr_vmap_nodes=1']);
    const many = sim('nodes', 8, []);
    assert.equal(one.vm.config.nrVmapNodes, 1);
    assert.equal(one.vm.vmapNodes().length, 1);
    assert.equal(slots(one, '&vn->busy.lock'), 1);
    assert.equal(slots(many, '&vn->busy.lock'), 8);
    assert.equal(one.vm.stats().poolHits, 0, 'node_alloc() serves nothing with one node');
    assert.ok(many.vm.stats().poolHits > 0);
    assert.ok(one.elapsedNs > many.elapsedNs, 'one node serializes the CPUs again');
    const again = sim('nodes', 8, ['nr_vmap_nodes=1']);
    assert.equal(again.elapsedNs, one.elapsedNs, 'deterministic');
    assert.deepEqual(again.lockStats, one.lockStats);
  });

  test('nr_vmap_nodes and vmap_zone_size: addresses are dealt to nodes by zone', () => {
    const vm = createVmalloc({
      design: 'nodes',
      nrCpus: 4,
      nrVmapNodes: 3,
      vmapZoneSize: 64 * PAGE,
      physicalMemory: 256 * PAGE,
      logger: null,
    });
    assert.equal(vm.vmapNodes().length, 3);
    const start = vm.config.vmallocStart;
    // Zones of 64 pages, dealt round-robin: consecutive zones go to consecutive nodes.
    const first = vm.addrToNodeId(start);
    for (let zone = 0; zone < 6; zone++) {
      const addr = start + zone * 64 * PAGE;
      assert.equal(vm.addrToNodeId(addr), (first + zone) % 3, `zone ${zone}`);
      assert.equal(vm.addrToNodeId(addr + 63 * PAGE), (first + zone) % 3, `end of zone ${zone}`);
    }
    // offload2023: the zone is node_size, also the block a node fetches.
    const off = createVmalloc({
      design: 'offload2023',
      nrCpus: 8,
      nrVmapNodes: 2,
      vmapZoneSize: 256 * PAGE,
      physicalMemory: 256 * PAGE,
      logger: null,
    });
    assert.equal(off.config.vmapZoneSize, 256 * PAGE);
    const p = off.vmalloc(PAGE);
    assert.ok(p !== null);
    off.vfree(p);
    off.check();
  });

  test('lazy_max_pages: a lower threshold purges more often', () => {
    const low = sim('global', 4, ['lazy_max_pages=512']);
    const high = sim('global', 4, ['lazy_max_pages=65536']);
    const dflt = sim('global', 4, []);
    assert.equal(low.vm.lazyMaxPages, 512);
    assert.equal(dflt.vm.lazyMaxPages, 3 * 8192, 'fls(4) * 32 MiB / 4 KiB');
    const purges = (r: SimResult) => r.vm.stats().purges;
    assert.ok(purges(low) > purges(dflt), `${purges(low)} vs ${purges(dflt)}`);
    assert.ok(purges(dflt) >= purges(high), `${purges(dflt)} vs ${purges(high)}`);
    // The backlog never passes the threshold by more than a purge's worth at once.
    assert.ok(low.vm.stats().lazyPages <= 512 + 4 * 101);
  });

  test('vmap_pool_limit and vmap_pool_decay bound and drain the pools', () => {
    const free = sim('nodes', 4, [], 8);
    const limited = sim('nodes', 4, ['vmap_pool_limit=1'], 8);
    const drained = sim('nodes', 4, ['vmap_pool_decay=100'], 8);
    const st = (r: SimResult) => r.vm.stats();
    assert.ok(st(free).poolRefills > 0);
    assert.ok(st(limited).poolRefills < st(free).poolRefills);
    for (const n of limited.vm.vmapNodes())
      for (const pool of n.pools) assert.ok(pool.count <= 1, `node ${n.node}: ${pool.count}`);
    assert.ok(st(drained).decayed > st(free).decayed);
    // No pool at all.
    const off = createVmalloc({
      design: 'nodes',
      nrCpus: 4,
      vmapPoolLimit: 0,
      physicalMemory: 256 * PAGE,
      logger: null,
    });
    const a = off.vmalloc(PAGE);
    assert.ok(a !== null);
    off.vfree(a);
    off.purge();
    assert.equal(off.stats().poolRefills, 0);
  });

  test('the parameters become createVmalloc options, and the header shows them resolved', () => {
    const p = defaultParams(IMPLEMENTED_MASK, 64);
    applyParams(p, [
      'nr_vmap_nodes=4',
      'vmap_zone_size=131072',
      'vmap_pool_limit=9',
      'vmap_pool_decay=50',
      'lazy_max_pages=1000',
      'vmap_block_hash=global',
    ]);
    assert.deepEqual(policyOptions(p), {
      vmapBlockHash: 'global',
      nrVmapNodes: 4,
      vmapZoneSize: 131072,
      vmapPoolLimit: 9,
      vmapPoolDecay: 0.5,
      lazyMaxPages: 1000,
    });
    const vm = createVmalloc({ nrCpus: 64, physicalMemory: 256 * PAGE, logger: null });
    assert.equal(
      policyLine(vm.config),
      'nr_vmap_nodes=64 vmap_zone_size=65536 vmap_pool_limit=none vmap_pool_decay=25% lazy_max_pages=57344 vmap_block_hash=percpu',
    );
    assert.throws(() => applyParams(defaultParams(1, 1), ['vmap_block_hash=xarray']), {
      message: /vmap_block_hash is global or percpu/,
    });
  });
});
