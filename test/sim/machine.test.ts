/**
 * Simulated test_vmalloc runs on the real allocator: deterministic for a seed and calibration,
 * consistent after every virtual operation (checked mode), clean after a purge; a one-CPU
 * simulation makes the calls a one-worker run makes; both designs.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createVmalloc } from '../../src/index.js';
import { RECORD_NS, STEP_NS, fitWeights, paramsOf } from '../../src/sim/calibrate.js';
import { DEFAULT_CALIBRATION, costOf, nnls, parseCalibration } from '../../src/sim/cost.js';
import { simulateTestVmalloc } from '../../src/sim/machine.js';
import { simMaskFor } from '../../src/sim/workload.js';
import { runWorker } from '../../src/test-vmalloc/driver.js';
import { defaultParams, type TestParams } from '../../src/test-vmalloc/params.js';
import { physicalMemoryFor } from '../../src/test-vmalloc/run.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';

const DESIGNS = ['global', 'nodes'] as const;

function params(design: 'global' | 'nodes', cpus: number, loops: number, mask: number): TestParams {
  const p = defaultParams(IMPLEMENTED_MASK, cpus);
  Object.assign(p, {
    design,
    nr_threads: cpus,
    nr_cpus: cpus,
    test_loop_count: loops,
    run_test_mask: mask,
    seed: 7,
  });
  return p;
}

describe('simulated test_vmalloc', () => {
  for (const design of DESIGNS) {
    test(`${design}: the same seed and calibration give identical virtual results`, () => {
      const p = params(design, 4, 100, 1 | 8 | 16);
      const a = simulateTestVmalloc({ params: p });
      const b = simulateTestVmalloc({ params: p });
      assert.deepEqual(a.workers, b.workers);
      assert.deepEqual(a.lockStats, b.lockStats);
      assert.equal(a.elapsedNs, b.elapsedNs);
      assert.ok(a.elapsedNs > 0);
      const c = simulateTestVmalloc({ params: { ...p, seed: 8 } });
      assert.notDeepEqual(c.workers, a.workers, 'another seed, another run');
      // The workers' lock model (the validation's) is as deterministic.
      const w1 = simulateTestVmalloc({ params: p, locks: 'workers' });
      const w2 = simulateTestVmalloc({ params: p, locks: 'workers' });
      assert.deepEqual(w1.workers, w2.workers);
      assert.deepEqual(w1.lockStats, w2.lockStats);
      assert.equal(w1.elapsedNs, w2.elapsedNs);
    });

    test(`${design}: check() after every virtual operation passes; clean after purge`, () => {
      const p = params(design, 3, 20, 1 | 8 | 16 | 32 | 64);
      const r = simulateTestVmalloc({ params: p, checkEveryOp: true });
      assert.equal(r.workers.length, 3);
      for (const w of r.workers)
        assert.deepEqual(
          w.tests.map((t) => t.passed + t.failed + t.xfailed),
          [1, 1, 1, 1, 1],
        );
      r.vm.check();
      const st = r.vm.stats();
      assert.equal(st.busyAreas, 0, 'every area was freed');
      assert.equal(st.pagesUsed, 0, 'every page was freed');
      r.vm.purge();
      r.vm.check();
      assert.equal(r.vm.stats().freeBlocks, 1, 'after a purge one free block spans the space');
    });

    test(`${design}: one simulated CPU makes the calls one real worker makes`, () => {
      const p = params(design, 1, 50, 127 & ~2);
      const sim = simulateTestVmalloc({ params: p });
      const vm = createVmalloc({
        design,
        nrCpus: 1,
        physicalMemory: physicalMemoryFor(p, 1),
        logger: null,
      });
      const real = runWorker(vm, p, 0);
      assert.deepEqual(
        sim.workers[0]!.tests.map((t) => [t.name, t.passed, t.failed]),
        real.tests.map((t) => [t.name, t.passed, t.failed]),
      );
      assert.deepEqual(sim.workers[0]!.order, real.order);
      assert.deepEqual(sim.vm.stats(), vm.stats());
      assert.equal(sim.spinShare, 0, 'one CPU never spins');
    });
  }

  test('more CPUs on the global design contend for free_vmap_area_lock', () => {
    const r = simulateTestVmalloc({ params: params('global', 8, 200, 1) });
    const busy = r.lockStats.find((s) => s.name === 'free_vmap_area_lock')!;
    assert.ok(busy.contentions > 0);
    assert.ok(r.spinShare > 0 && r.spinShare < 1);
  });
});

describe('the simulated machine holds', () => {
  test('full_fit_alloc_test is left out where its pages exceed the 4 GiB (N x fls(N) > 64)', () => {
    assert.deepEqual(simMaskFor(7, 8), { mask: 7, dropped: null }); // 8 x 4 = 32
    assert.deepEqual(simMaskFor(7, 16).mask, 5); // 16 x 5 = 80
    assert.match(
      simMaskFor(7, 64).dropped!,
      /full_fit_alloc_test left out at 64 CPUs: its 14 x 8192/,
    );
    assert.deepEqual(simMaskFor(1024, 512), { mask: 1024, dropped: null });
  });
});

describe('cost model', () => {
  test('nnls recovers non-negative weights and clamps a negative one to 0', () => {
    const a = [
      [1, 0],
      [0, 1],
      [1, 1],
    ];
    const x = nnls(a, [2, 3, 5]);
    assert.ok(Math.abs(x[0]! - 2) < 1e-9 && Math.abs(x[1]! - 3) < 1e-9);
    const y = nnls(a, [-1, 3, 2]);
    assert.equal(y[0], 0);
    assert.ok(y[1]! > 0);
  });

  test('a calibration file is checked', () => {
    const ok = parseCalibration(JSON.stringify(DEFAULT_CALIBRATION), 'x.json');
    assert.deepEqual(ok.weights, DEFAULT_CALIBRATION.weights);
    assert.throws(
      () => parseCalibration('{"weights":[1,2],"acquireNs":1,"transferNs":1}', 'x.json'),
      /x.json: "weights" must be 6 numbers >= 0/,
    );
    assert.throws(() => parseCalibration('nope', 'x.json'), /x.json: not JSON/);
    // A file from before the workers' lock costs were measured: the default's are used.
    const old = parseCalibration('{"weights":[1,2,3,4,5,6],"acquireNs":1,"transferNs":1}', 'o');
    assert.equal(old.wakeNs, DEFAULT_CALIBRATION.wakeNs);
    assert.throws(
      () =>
        parseCalibration('{"weights":[1,2,3,4,5,6],"acquireNs":1,"transferNs":1,"wakeNs":-1}', 'o'),
      /o: "wakeNs" must be a number >= 0/,
    );
  });

  test('the fit recovers the weights that made the times (step and record fixed)', () => {
    const truth = [700, 300, STEP_NS, 20, 0.1, RECORD_NS];
    const o = { loops: 30, repeat: 1, designs: [...DESIGNS], seed: 3, mask: 1 | 8 | 16 | 32 | 64 };
    const lockCosts = { acquireNs: 15, transferNs: 90, spinNs: 300, wakeNs: 9000, notifyNs: 800 };
    const real = DESIGNS.flatMap((design) => {
      const sim = simulateTestVmalloc({ params: paramsOf(o, design, 1) });
      return sim.workers[0]!.tests.map((t) => ({
        design,
        test: t.name,
        realNs: costOf(truth, sim.features[t.index]!) + sim.acquires[t.index]! * 15,
      }));
    });
    const { calibration, fit } = fitWeights(o, real, lockCosts, 'test');
    calibration.weights.forEach((w, k) =>
      assert.ok(Math.abs(w - truth[k]!) <= 0.01 * truth[k]! + 1e-6, `weight ${k}: ${w}`),
    );
    assert.ok(calibration.fitError < 0.001);
    assert.equal(fit.length, real.length);
    assert.equal(calibration.wakeNs, 9000);
  });
});
