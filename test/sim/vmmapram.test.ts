/**
 * vm_map_ram_test on the simulated machine: one simulated CPU makes the calls one real worker
 * makes; the per-block locks (vb->lock, a class of locks inside records) and the block hash
 * locks are events the machine sees; a checked run stays consistent and ends clean; the global
 * block hash is contended where the per-CPU hashes are not (seed 002's direction).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createVmalloc } from '../../src/index.js';
import { simulateTestVmalloc } from '../../src/sim/machine.js';
import { runWorker } from '../../src/test-vmalloc/driver.js';
import { defaultParams, type TestParams } from '../../src/test-vmalloc/params.js';
import { physicalMemoryFor } from '../../src/test-vmalloc/run.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';

const VM_MAP_RAM_TEST = 1024;

function params(cpus: number, loops: number, hash: 'global' | 'percpu'): TestParams {
  const p = defaultParams(IMPLEMENTED_MASK, cpus);
  Object.assign(p, {
    design: 'global',
    nr_threads: cpus,
    nr_cpus: cpus,
    test_loop_count: loops,
    run_test_mask: VM_MAP_RAM_TEST,
    seed: 11,
    vmap_block_hash: hash,
  });
  return p;
}

const classOf = (r: ReturnType<typeof simulateTestVmalloc>, name: string) =>
  r.lockStats.filter((s) => s.name === name);

describe('simulated vm_map_ram_test', () => {
  test('one simulated CPU makes the calls one real worker makes', () => {
    const p = params(1, 600, 'percpu');
    const sim = simulateTestVmalloc({ params: p });
    const vm = createVmalloc({
      design: 'global',
      nrCpus: 1,
      physicalMemory: physicalMemoryFor(p, 1),
      logger: null,
    });
    const real = runWorker(vm, p, 0);
    assert.deepEqual(
      sim.workers[0]!.tests.map((t) => [t.name, t.passed, t.failed]),
      real.tests.map((t) => [t.name, t.passed, t.failed]),
    );
    assert.deepEqual(sim.vm.stats(), vm.stats());
  });

  test('vb->lock is seen: one class entry, three acquisitions per map and unmap', () => {
    const loops = 300;
    const r = simulateTestVmalloc({ params: params(4, loops, 'percpu') });
    const vb = classOf(r, '&vb->lock');
    assert.equal(vb.length, 1, 'the blocks fold into one class entry');
    // vb_alloc takes the block lock once (a new block's first map takes none), vm_unmap_ram
    // twice (the lookup, then the dirty count).
    const maps = 4 * loops;
    assert.ok(vb[0]!.acquisitions >= 3 * maps - 4 * 8, `${vb[0]!.acquisitions}`);
    assert.ok(vb[0]!.acquisitions <= 3 * maps, `${vb[0]!.acquisitions}`);
    // The per-CPU hash locks: taken to insert and to erase a block.
    const xa = classOf(r, '&xa->xa_lock#1');
    assert.ok(xa.reduce((a, s) => a + s.acquisitions, 0) > 0);
    const again = simulateTestVmalloc({ params: params(4, loops, 'percpu') });
    assert.deepEqual(again.lockStats, r.lockStats, 'deterministic');
    assert.equal(again.elapsedNs, r.elapsedNs);
  });

  test('check() after every virtual operation passes; clean after purge', () => {
    for (const hash of ['global', 'percpu'] as const) {
      const r = simulateTestVmalloc({ params: params(3, 300, hash), checkEveryOp: true });
      for (const w of r.workers)
        assert.deepEqual(
          w.tests.map((t) => t.passed),
          [1],
        );
      r.vm.vmUnmapAliases();
      r.vm.purge();
      r.vm.check();
      const st = r.vm.stats();
      assert.equal(st.busyAreas, 0, `${hash}: every block went`);
      assert.equal(st.freeBlocks, 1, `${hash}: one free block spans the space`);
    }
  });

  test('64 CPUs: the global block hash is contended, the per-CPU hashes far less', () => {
    const g = simulateTestVmalloc({ params: params(64, 512, 'global') });
    const p = simulateTestVmalloc({ params: params(64, 512, 'percpu') });
    const gx = classOf(g, 'vmap_blocks.xa_lock')[0]!;
    const px = classOf(p, '&xa->xa_lock#1').reduce((a, s) => a + s.contentions, 0);
    assert.ok(gx.contentions > 0, 'CPUs meet on the one hash lock');
    assert.ok(gx.contentions > 4 * px, `global ${gx.contentions} vs per-CPU ${px}`);
  });
});
