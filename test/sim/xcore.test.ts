/**
 * The cross-core microbenchmarks run on two real workers and give finite positive figures
 * (a handful of samples: what they measure is not asserted, only that they measure; no
 * wall-clock bound), and the report lists each figure.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatCrossCore, measureCrossCore } from '../../src/sim/xcore.js';

describe('cross-core costs', () => {
  test('two workers measure a transfer, a wake, a notify, the spin budget, a lock pair', async () => {
    const x = await measureCrossCore({ samples: 8, rounds: 10, warm: 4 });
    for (const k of ['transferNs', 'wakeNs', 'notifyNs', 'spinNs', 'acquireNs'] as const)
      assert.ok(Number.isFinite(x[k]) && x[k] > 0, `${k}: ${x[k]}`);
    assert.equal(x.figures.length, 5);
    // (A figure without a sample, every wake discarded on a loaded machine, is the built-in one.)
    for (const f of x.figures) assert.ok(f.samples >= 0 && f.medianNs >= f.lowNs, f.name);
    assert.match(formatCrossCore(x), /\| wake \(release to sleeper running\) \| [0-9.]+ \|/);
  });
});
