/**
 * `vmalloc sim calibrate`'s fit and report: the fit recovers known per-design costs from
 * synthetic one-worker times (and keeps the lock column only when the data need it), the
 * simulator charges a design its own costs, the JSON carries the per-design fields, and a
 * calibration at a handful of loops runs end to end (real workers, fit, held-out validation).
 * No figure of a real run is asserted, only its presence and shape.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type CalibrateOptions,
  RECORD_NS,
  type RealTestTime,
  STEP_NS,
  calibrate,
  fitWeights,
  paramsOf,
} from '../../src/sim/calibrate.js';
import { calibrationJson, formatCalibration } from '../../src/sim/calibrate-report.js';
import {
  type Calibration,
  DEFAULT_CALIBRATION,
  type DesignCost,
  F_CALL,
  costOf,
  parseCalibration,
} from '../../src/sim/cost.js';
import { simulateTestVmalloc } from '../../src/sim/machine.js';

const DESIGNS = ['global', 'nodes'] as const;
type D = (typeof DESIGNS)[number];
const LOCK_COSTS = { acquireNs: 15, transferNs: 90, spinNs: 300, wakeNs: 9000, notifyNs: 800 };
// Tests whose acquisitions per call differ (vm_map_ram_test takes the vmap blocks' locks).
const O: CalibrateOptions = {
  loops: 30,
  repeat: 1,
  designs: [...DESIGNS],
  seed: 3,
  mask: 1 | 8 | 16 | 32 | 64 | 1024,
};
// Shared ns per access, page, byte zeroed.
const ACCESS = 300,
  PAGE = 20,
  BYTE = 0.1;

/** One-worker times made by the model itself with `truth` per design. */
function synthetic(truth: Record<D, DesignCost>): RealTestTime[] {
  return DESIGNS.flatMap((design) => {
    const sim = simulateTestVmalloc({ params: paramsOf(O, design, 1) });
    const w = [truth[design].callNs, ACCESS, STEP_NS, PAGE, BYTE, RECORD_NS];
    return sim.workers[0]!.tests.map((t) => ({
      design,
      test: t.name,
      realNs:
        costOf(w, sim.features[t.index]!) +
        sim.acquires[t.index]! * (LOCK_COSTS.acquireNs + truth[design].lockNs),
    }));
  });
}

const near = (got: number, want: number, what: string): void =>
  assert.ok(Math.abs(got - want) <= 0.01 * want + 0.5, `${what}: ${got}, want ${want}`);

describe('the per-design fit', () => {
  test('recovers each design its own call and lock costs (lock column kept)', () => {
    const truth = { global: { callNs: 700, lockNs: 0 }, nodes: { callNs: 1500, lockNs: 250 } };
    const { calibration, fit, model } = fitWeights(O, synthetic(truth), LOCK_COSTS, 'test');
    assert.equal(model.lockColumn, true, JSON.stringify(model));
    for (const d of DESIGNS) {
      near(calibration.designs[d]!.callNs, truth[d].callNs, `${d} call`);
      near(calibration.designs[d]!.lockNs, truth[d].lockNs, `${d} lock`);
    }
    near(calibration.weights[1]!, ACCESS, 'access');
    near(calibration.weights[3]!, PAGE, 'page');
    near(calibration.weights[F_CALL]!, 1100, 'shared call: the mean of the designs');
    assert.ok(calibration.fitError < 0.001, `fit error ${calibration.fitError}`);
    assert.equal(fit.length, 12);
    assert.equal(calibration.wakeNs, 9000);
  });

  test('leaves the lock column out when the times need none', () => {
    const truth = { global: { callNs: 600, lockNs: 0 }, nodes: { callNs: 2000, lockNs: 0 } };
    const { calibration, model } = fitWeights(O, synthetic(truth), LOCK_COSTS, 'test');
    assert.equal(model.lockColumn, false, JSON.stringify(model));
    for (const d of DESIGNS) {
      near(calibration.designs[d]!.callNs, truth[d].callNs, `${d} call`);
      assert.equal(calibration.designs[d]!.lockNs, 0);
    }
  });
});

describe("a design's own costs in the simulator", () => {
  test('a per-design call cost runs as the shared call weight would', () => {
    const p = paramsOf(O, 'nodes', 2);
    const shared: Calibration = {
      ...DEFAULT_CALIBRATION,
      weights: [900, ...DEFAULT_CALIBRATION.weights.slice(1)],
      designs: {},
    };
    const own: Calibration = {
      ...DEFAULT_CALIBRATION,
      weights: [0, ...DEFAULT_CALIBRATION.weights.slice(1)],
      designs: { nodes: { callNs: 900, lockNs: 0 } },
    };
    const a = simulateTestVmalloc({ params: p, calibration: shared });
    const b = simulateTestVmalloc({ params: p, calibration: own });
    assert.equal(a.elapsedNs, b.elapsedNs);
    assert.deepEqual(a.workers, b.workers);
  });

  test('a lock cost lengthens a one-CPU run by acquisitions x lockNs', () => {
    const p = paramsOf(O, 'global', 1);
    const base: Calibration = { ...DEFAULT_CALIBRATION, designs: {} };
    const locked: Calibration = {
      ...DEFAULT_CALIBRATION,
      designs: { global: { callNs: DEFAULT_CALIBRATION.weights[F_CALL]!, lockNs: 40 } },
    };
    const a = simulateTestVmalloc({ params: p, calibration: base });
    const b = simulateTestVmalloc({ params: p, calibration: locked });
    const acquires = a.acquires.reduce((s, x) => s + x, 0);
    assert.ok(acquires > 0);
    // (Every acquisition pays it; `acquires` counts those inside the tests, nearly all.)
    const extra = b.elapsedNs - a.elapsedNs;
    assert.ok(extra >= 40 * acquires - 1e-6 && extra <= 1.1 * 40 * acquires, `${extra}`);
  });

  test('a calibration file with per-design costs is read and checked', () => {
    const c = parseCalibration(
      JSON.stringify({ ...DEFAULT_CALIBRATION, designs: { nodes: { callNs: 5, lockNs: 1 } } }),
      'c.json',
    );
    assert.deepEqual(c.designs, { nodes: { callNs: 5, lockNs: 1 } });
    const old = parseCalibration('{"weights":[1,2,3,4,5,6],"acquireNs":1,"transferNs":1}', 'o');
    assert.deepEqual(old.designs, {});
    assert.throws(
      () =>
        parseCalibration(
          '{"weights":[1,2,3,4,5,6],"acquireNs":1,"transferNs":1,"designs":{"nope":{"callNs":1,"lockNs":0}}}',
          'o',
        ),
      /o: "designs" names nope, not a design/,
    );
    assert.throws(
      () =>
        parseCalibration(
          '{"weights":[1,2,3,4,5,6],"acquireNs":1,"transferNs":1,"designs":{"nodes":{"callNs":-1,"lockNs":0}}}',
          'o',
        ),
      /o: "designs.nodes" must have "callNs" and "lockNs", numbers >= 0/,
    );
  });
});

describe('sim calibrate end to end', () => {
  test('a tiny calibration: fit on one worker, validation at 1 and 2 held apart, per-design JSON', async () => {
    const r = await calibrate({
      loops: 20,
      repeat: 1,
      designs: [...DESIGNS],
      seed: 1,
      mask: 1 | 8,
      crossCore: { samples: 8, rounds: 10, warm: 4 },
    });
    assert.deepEqual(Object.keys(r.calibration.designs).sort(), ['global', 'nodes']);
    assert.equal(r.fit.length, 4);
    assert.deepEqual(
      r.validation.map((v) => [v.design, v.cpus, v.fitData]),
      [
        ['global', 1, true],
        ['global', 2, false],
        ['nodes', 1, true],
        ['nodes', 2, false],
      ],
    );
    for (const v of r.validation) {
      assert.deepEqual(
        v.tests.map((t) => t.test),
        ['fix_size_alloc_test', 'random_size_alloc_test'],
      );
      // (A real test's time is the kernel's avg usec, whole microseconds: it may read 0.)
      for (const t of v.tests) assert.ok(t.realNs >= 0 && t.simNs > 0, t.test);
    }
    const j = calibrationJson(r) as {
      calibration: { designs: Record<string, { callNs: number; lockNs: number }> };
      fitModel: { lockColumn: boolean };
      fitErrorByDesign: Record<string, { rmsRatio: number }>;
      validation: { tests: { errorRatio: number }[] }[];
      acceptanceHeldOut: { throughputRows: number };
    };
    for (const d of DESIGNS) {
      assert.equal(typeof j.calibration.designs[d]!.callNs, 'number');
      assert.equal(typeof j.calibration.designs[d]!.lockNs, 'number');
      assert.equal(typeof j.fitErrorByDesign[d]!.rmsRatio, 'number');
    }
    assert.equal(typeof j.fitModel.lockColumn, 'boolean');
    assert.equal(j.acceptanceHeldOut.throughputRows, 2);
    assert.equal(typeof j.validation[1]!.tests[0]!.errorRatio, 'number');
    // The --out file (the calibration as JSON) reads back as the same calibration.
    assert.deepEqual(parseCalibration(JSON.stringify(r.calibration), 'out.json'), r.calibration);
    const text = formatCalibration(r);
    assert.match(text, /^- nodes: call [0-9.e+-]+ ns, lock [0-9.e+-]+ ns per acquisition/m);
    assert.match(text, /\| global \| 2 \| held out \| fix_size_alloc_test \|/);
    assert.match(text, /^Held out \(the rows at 2 CPUs and more, never fitted\)/m);
  });
});
