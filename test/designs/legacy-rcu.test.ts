/**
 * The 'legacy' design's records freed after a grace period (4.19's kfree_rcu() in
 * __free_vmap_area()): a purge leaves its records queued on the purging cpu's RCU callback
 * list, neither busy, lazy nor free, and check() holds; a cpu that makes no call holds them;
 * once the grace period is over they come back RCU_BLIMIT per quiescent state, or all of them
 * above RCU_QHIMARK; detach frees what is ready; check() catches a broken list; rfc2018 keeps
 * its immediate frees. A second Vmalloc attached in this thread plays the cpu that makes no
 * call (as in test/mm/rcu.test.ts).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attachVmalloc, createVmalloc, type Vmalloc } from '../../src/index.js';
import { LegacyDesign } from '../../src/designs/legacy.js';
import { I_LINK, RCU_BLIMIT, RCU_QHIMARK } from '../../src/designs/legacy-rcu.js';
import { PAGE } from '../helpers/vm.js';

function make(design: 'legacy' | 'rfc2018' = 'legacy', nrCpus = 2): Vmalloc {
  return createVmalloc({ design, nrCpus, logger: null, physicalMemory: 256 * 2 ** 20 });
}

function legacyOf(vm: Vmalloc): LegacyDesign {
  const d = vm.areas.design;
  assert.ok(d instanceof LegacyDesign);
  return d;
}

/** Allocates and frees `n` one-page areas (lazily: they wait for a purge). */
function churn(vm: Vmalloc, n: number): void {
  const a: number[] = [];
  for (let i = 0; i < n; i++) a.push(vm.vmalloc(PAGE)!);
  for (const p of a) vm.vfree(p);
}

describe('legacy: purged records come back after a grace period', () => {
  test('a purge leaves N records queued; a grace period returns them, RCU_BLIMIT at a time', () => {
    const vm = make();
    const d = legacyOf(vm);
    const other = attachVmalloc(vm.handle, { cpu: 1, logger: null });
    const base = vm.stats().vmapAreaRecords;
    const n = 3 * RCU_BLIMIT + 4;
    churn(vm, n);
    assert.equal(d.lazyCount, n);
    vm.purge();
    let st = vm.stats();
    assert.equal(d.rcu.pending, n, 'every purged record waits (cpu 1 holds the grace period)');
    assert.equal(st.lazyAreas, 0);
    assert.equal(st.busyAreas, 0);
    assert.equal(st.vmapAreaRecords, base + n, 'queued records are live in the store');
    vm.check();
    for (let i = 0; i < 5; i++) vm.vfree(vm.vmalloc(PAGE)); // cpu 0 passes states
    assert.equal(d.rcu.pending, n, 'nothing freed before cpu 1 passed a state');
    vm.check();
    other.rcuQuiescent();
    assert.equal(d.rcu.pending, n, 'freed on their own cpu, not by the other one');
    vm.rcuQuiescent(); // the grace period completes here, and the first batch runs
    assert.equal(d.rcu.pending, n - RCU_BLIMIT);
    vm.check();
    vm.rcuQuiescent();
    vm.rcuQuiescent();
    assert.equal(d.rcu.pending, n - 3 * RCU_BLIMIT);
    vm.rcuQuiescent();
    assert.equal(d.rcu.pending, 0);
    st = vm.stats();
    // The 5 areas of the loop above are lazy, their records live; the rest came back.
    assert.equal(st.vmapAreaRecords, base + 5);
    vm.check();
    other.detach();
  });

  test('two purges under one held grace period: two segments, freed in order', () => {
    const vm = make();
    const d = legacyOf(vm);
    const other = attachVmalloc(vm.handle, { cpu: 1, logger: null });
    churn(vm, 4);
    vm.purge();
    churn(vm, 3);
    vm.purge();
    assert.equal(d.rcu.pending, 7);
    vm.check();
    other.rcuQuiescent();
    vm.rcuQuiescent(); // the first grace period ends; the second (asked for later) starts
    assert.ok(d.rcu.pending < 7);
    vm.check();
    other.rcuQuiescent();
    vm.rcuQuiescent();
    assert.equal(d.rcu.pending, 0);
    vm.check();
    other.detach();
  });

  test('above RCU_QHIMARK queued records, one batch frees every ready one', () => {
    // 8 cpus: lazy_max_pages() is 32768, so no drain purges before the explicit one.
    const vm = make('legacy', 8);
    const d = legacyOf(vm);
    const other = attachVmalloc(vm.handle, { cpu: 1, logger: null });
    churn(vm, RCU_QHIMARK + 100);
    assert.equal(vm.stats().purges, 0);
    vm.purge();
    assert.equal(d.rcu.pending, RCU_QHIMARK + 100);
    vm.check();
    other.rcuQuiescent();
    vm.rcuQuiescent();
    assert.equal(d.rcu.pending, 0);
    vm.check();
    other.detach();
  });

  test('alone, the purge call itself ends the grace period and runs the first batch', () => {
    const vm = make();
    const d = legacyOf(vm);
    churn(vm, RCU_BLIMIT + 2);
    vm.purge();
    assert.equal(d.rcu.pending, 2);
    vm.check();
    vm.vfree(vm.vmalloc(PAGE));
    assert.equal(d.rcu.pending, 0);
  });

  test('detach frees what is ready; a grace period still held keeps the rest queued', () => {
    const vm = make();
    const d = legacyOf(vm);
    const other = attachVmalloc(vm.handle, { cpu: 1, logger: null });
    churn(other, 2 * RCU_BLIMIT + 1);
    other.purge(); // queued on cpu 1's list; cpu 0 holds the grace period
    assert.equal(d.rcu.pending, 2 * RCU_BLIMIT + 1);
    vm.rcuQuiescent();
    other.detach(); // its quiescent state ends the grace period; every ready record is freed
    assert.equal(d.rcu.pending, 0);
    vm.check();
    const third = attachVmalloc(vm.handle, { cpu: 1, logger: null });
    churn(third, 3);
    third.purge();
    third.detach(); // cpu 0 has passed no state: the records wait for cpu 1's next holder
    assert.equal(d.rcu.pending, 3);
    vm.check();
    vm.rcuQuiescent();
    const again = attachVmalloc(vm.handle, { cpu: 1, logger: null });
    again.rcuQuiescent();
    assert.equal(d.rcu.pending, 0);
    again.detach();
    vm.check();
  });

  test('check() catches a broken callback list', () => {
    const vm = make();
    const d = legacyOf(vm);
    const other = attachVmalloc(vm.handle, { cpu: 1, logger: null });
    churn(vm, 3);
    vm.purge();
    const ids = d.rcu.check(new Set());
    assert.equal(ids.length, 3);
    const i = vm.areas.s.i;
    const saved = i[(ids[1]! << 4) + I_LINK]!;
    i[(ids[1]! << 4) + I_LINK] = ids[0]!; // a cycle
    assert.throws(() => vm.check(), /queued twice/);
    i[(ids[1]! << 4) + I_LINK] = saved;
    vm.check();
    other.detach();
  });

  test('rfc2018 frees its records at once (the RFC replaced kfree_rcu())', () => {
    const vm = make('rfc2018');
    assert.equal(vm.areas.design.rcuDue, undefined);
    assert.equal(vm.areas.design.invokeRcu, undefined);
  });
});
