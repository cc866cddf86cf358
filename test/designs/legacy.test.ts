/**
 * The 'legacy' design (<= 5.1): against a brute-force model of its policy (the gap walk with
 * free_vmap_cache's rules, lazily freed areas kept in the busy list until a purge, a
 * synchronous purge above lazy_max_pages(), newest first), checked after every operation;
 * LegacySpace's misuse checks; the checker catching broken legacy invariants; test_vmalloc in
 * one worker.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VmallocError, createVmalloc, type Vmalloc } from '../../src/index.js';
import { LEGACY_LAZY_FREE, LegacyDesign } from '../../src/designs/legacy.js';
import { LegacySpace } from '../../src/kva/legacy-space.js';
import { runWorker } from '../../src/test-vmalloc/driver.js';
import { applyParams, defaultParams } from '../../src/test-vmalloc/params.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';
import { Rng, testSeed } from '../helpers/rng.js';
import { PAGE, snapshot } from '../helpers/vm.js';
import { LegacyModel } from './legacy-model.js';

function legacyOf(vm: Vmalloc): LegacyDesign {
  const d = vm.areas.design;
  assert.ok(d instanceof LegacyDesign);
  return d;
}

describe('the legacy design against a brute-force model of its policy', () => {
  for (const variant of [
    {
      name: 'vmalloc window of 512 pages (failures, purge and retry)',
      size: 512 * PAGE,
      page: PAGE,
    },
    { name: '16 KiB pages, default window (drains above lazy_max_pages)', size: 0, page: 4 * PAGE },
  ]) {
    test(`same address for every vmalloc, same cache, check() after every op: ${variant.name}`, () => {
      const seed = testSeed(`legacy model (${variant.name})`);
      const rng = new Rng(seed);
      const vm = createVmalloc({
        design: 'legacy',
        nrCpus: 1,
        logger: null,
        checkEveryOp: true,
        pageSize: variant.page,
        ...(variant.size > 0 ? { vmallocSize: variant.size } : {}),
      });
      const d = legacyOf(vm);
      assert.equal(vm.stats().busyAreas, 0);
      const P = variant.page;
      const model = new LegacyModel(P, vm.lazyMaxPages);
      const vstart = vm.config.vmallocStart;
      const vend = vm.config.vmallocEnd;
      const live: number[] = [];
      let fails = 0;
      let cached = 0;
      let prevPurges = 0;
      const ops = variant.size > 0 ? 1500 : 1200;
      for (let op = 0; op < ops; op++) {
        const k = rng.below(100);
        if (k < 52 || live.length === 0) {
          // Mostly repeated small requests (the cache's good case), some large or aligned ones.
          const pages = rng.chance(0.8) ? rng.range(1, 4) : rng.range(1, 60);
          const align = rng.chance(0.75) ? 1 : rng.pick([P, 4 * P, 16 * P]);
          const before = model.cacheState().area;
          const want = model.alloc((pages + 1) * P, align, vstart, vend);
          const got = vm.vmalloc(pages * P, align === 1 ? undefined : { align });
          assert.equal(got ?? -1, want, `op ${op}: vmalloc(${pages} pages, align ${align})`);
          if (got === null) fails++;
          else live.push(got);
          if (got !== null && before !== null && got >= before.end) cached++;
        } else if (k < 97 || variant.size === 0) {
          const addr = live.splice(rng.below(live.length), 1)[0]!;
          model.free(addr);
          vm.vfree(addr);
        } else {
          model.purge();
          vm.purge();
        }
        assert.deepEqual(d.cacheState(), model.cacheState(), `op ${op}: free_vmap_cache`);
        assert.equal(vm.lazyPages, model.lazyPages, `op ${op}: vmap_lazy_nr`);
        assert.equal(d.lazyCount, model.purgeList.length, `op ${op}: lazy areas`);
        prevPurges = vm.stats().purges;
      }
      const st = vm.stats();
      console.log(
        `  ${ops} ops: ${fails} failed vmallocs, ${cached} placed after the cached area, ${prevPurges} purges (${st.drains} drains)`,
      );
      assert.ok(cached > 100, 'the cache served many requests');
      assert.ok(st.purges > 0, 'purges ran');
      if (variant.size === 0) assert.ok(st.drains > 0, 'frees went past lazy_max_pages()');
      if (variant.size > 0) {
        assert.ok(fails > 0, 'the small window ran out of space');
        assert.ok(st.allocRetries > fails, 'searches that failed, purged and then succeeded');
      }
      for (const a of live) {
        model.free(a);
        vm.vfree(a);
      }
      vm.purge();
      model.purge();
      vm.check();
      const end = vm.stats();
      assert.equal(end.busyAreas, 0);
      assert.equal(end.lazyAreas, 0);
      assert.equal(end.lazyPages, 0);
      assert.equal(end.pagesUsed, 0);
      assert.equal(model.areas.length, 0);
    });
  }
});

describe('lazily freed areas stay in the busy tree until a purge', () => {
  test('their range is not reused, vfree of them is refused, a purge releases them', () => {
    const vm = createVmalloc({ design: 'legacy', nrCpus: 1, logger: null, checkEveryOp: true });
    const d = legacyOf(vm);
    const a = vm.vmalloc(2 * PAGE)!;
    const b = vm.vmalloc(PAGE)!;
    vm.vfree(a);
    assert.equal(vm.stats().lazyAreas, 1);
    assert.equal(vm.stats().busyAreas, 1);
    assert.match(vm.vmallocinfo(), /unpurged vm_area/);
    // c moves the cache up with a stricter alignment; e (align 1, more permissive) then
    // searches from the bottom, where a's range is still occupied: the walk steps over it.
    const c = vm.vmalloc(2 * PAGE, { align: 16 * PAGE })!;
    const e = vm.vmalloc(2 * PAGE)!;
    assert.ok(e > b, 'the lazily freed range is skipped');
    const before = snapshot(vm);
    for (const bad of [a, a + PAGE]) {
      assert.throws(
        () => vm.vfree(bad),
        (err: unknown) =>
          err instanceof VmallocError &&
          err.code === 'ENOENT' &&
          /nonexistent vm area/.test(err.message),
      );
      assert.equal(snapshot(vm), before, 'nothing changed after the refused vfree');
    }
    assert.throws(() => vm.vfree(b + PAGE), /lies inside the vm area/);
    assert.equal(snapshot(vm), before);
    assert.equal(d.cacheState().area?.start, e);
    vm.purge();
    assert.equal(vm.stats().lazyAreas, 0);
    // The purge erased a, which lay below the cache: the cache is dropped, the next search
    // starts from the bottom.
    assert.equal(d.cacheState().area, null);
    const f = vm.vmalloc(PAGE, { align: PAGE })!;
    assert.equal(f, a, 'a from-the-bottom search finds the purged range');
    for (const x of [b, c, e, f]) vm.vfree(x);
    vm.purge();
    vm.check();
    assert.equal(vm.stats().busyAreas, 0);
  });

  test('the purge frees newest first: the cache moves below each freed area in that order', () => {
    const vm = createVmalloc({ design: 'legacy', nrCpus: 1, logger: null });
    const d = legacyOf(vm);
    const x = [0, 1, 2, 3].map(() => vm.vmalloc(PAGE)!);
    vm.vfree(x[1]!);
    vm.vfree(x[3]!);
    vm.vfree(x[2]!);
    assert.equal(d.cacheState().area?.start, x[3], 'lazy frees leave the cache alone');
    vm.purge();
    // Purge order x2, x3, x1: x2 moves the cache to x1, x3 (above it) does not, x1 to x0.
    assert.equal(d.cacheState().area?.start, x[0]);
    vm.vfree(x[0]!);
    vm.purge();
    assert.equal(d.cacheState().area, null);
  });
});

describe('the checker catches broken legacy invariants', () => {
  function fresh(): { vm: Vmalloc; d: LegacyDesign; areas: number[] } {
    const vm = createVmalloc({ design: 'legacy', nrCpus: 1, logger: null });
    const areas = [1, 2, 3, 4].map((n) => vm.vmalloc(n * PAGE)!);
    vm.vfree(areas[1]!);
    vm.check();
    return { vm, d: legacyOf(vm), areas };
  }
  const s = (vm: Vmalloc) => vm.areas.s;
  const idAt = (vm: Vmalloc, addr: number): number =>
    vm.areas.design
      .busyIds()
      .concat(vm.areas.design.lazyIds())
      .find((x) => s(vm).start(x) === addr)!;

  test('a lazy flag without the purge list, and a purge-list area without the flag', () => {
    let { vm, areas } = fresh();
    const v = idAt(vm, areas[2]!);
    s(vm).setFlags(v, s(vm).flags(v) | LEGACY_LAZY_FREE);
    assert.throws(() => vm.check(), /not on the purge list|lazy count|vmap_lazy_nr/);
    ({ vm, areas } = fresh());
    const w = idAt(vm, areas[1]!);
    s(vm).setFlags(w, s(vm).flags(w) & ~LEGACY_LAZY_FREE);
    assert.throws(() => vm.check(), /purge list: .* is not a LAZY_FREE area/);
  });

  test('a cache hole size smaller than a gap below the cached area', () => {
    const { vm, d, areas } = fresh();
    vm.purge(); // areas[1] is now a 3-page gap; the purge moved the cache below it
    vm.check();
    // Point the cache back at the top area while claiming no hole below it (the head's spare
    // slots, legacy-walk.ts: flags = free_vmap_cache, end = cached_hole_size).
    const h = (d as unknown as { head: number }).head;
    s(vm).i[(h << 4) + 11] = idAt(vm, areas[3]!);
    s(vm).f[(h << 3) + 1] = 0;
    assert.throws(() => vm.check(), /below free_vmap_cache .* is longer than cached_hole_size/);
    s(vm).f[(h << 3) + 1] = 3 * PAGE; // the gap's length: legal again
    vm.check();
  });
});

describe('LegacySpace: misuse throws and changes nothing', () => {
  const S = 2 ** 40;
  const E = S + 1024 * PAGE;
  function state(sp: LegacySpace): string {
    sp.check();
    return JSON.stringify({ busy: sp.busyAreas(), cache: sp.cache() });
  }
  test('bad size, align, window, free address', () => {
    const sp = new LegacySpace({ start: S, end: E });
    const a = sp.alloc(4 * PAGE, { align: 1 })!;
    sp.alloc(PAGE);
    sp.free(a); // a hole below the cache: cached_hole_size stays 0, the cache moves down
    const before = state(sp);
    const cases: [() => unknown, string, RegExp][] = [
      [() => sp.alloc(0), 'EINVAL', /size must be positive/],
      [() => sp.alloc(PAGE + 1), 'EINVAL', /multiple of the page size/],
      [() => sp.alloc(E - S + PAGE), 'EINVAL', /not exceed the size of the space/],
      [() => sp.alloc(PAGE, { align: 3 }), 'EINVAL', /align must be a power of two/],
      [() => sp.alloc(PAGE, { vstart: S - PAGE }), 'EINVAL', /vstart must lie within/],
      [() => sp.alloc(PAGE, { vend: E + PAGE }), 'EINVAL', /vend must lie within/],
      [
        () => sp.alloc(PAGE, { vstart: S + PAGE, vend: S + PAGE }),
        'EINVAL',
        /vstart must be below vend/,
      ],
      [() => sp.alloc(PAGE, null as unknown as object), 'EINVAL', /options must be an object/],
      [() => sp.free(a), 'ENOENT', /no live area contains/],
      [() => sp.free(a + 4 * PAGE + 1), 'ENOENT', /lies inside the area/],
      [() => sp.free(1.5), 'EINVAL', /addr must be an integer/],
    ];
    for (const [fn, code, msg] of cases) {
      assert.throws(
        fn,
        (e: unknown) => e instanceof VmallocError && e.code === code && msg.test(e.message),
      );
      assert.equal(state(sp), before, `unchanged after ${fn.toString()}`);
    }
    assert.throws(() => new LegacySpace({ start: 0, end: E }), /start must lie within/);
    assert.throws(() => new LegacySpace({ start: S, end: S }), /end must lie within/);
    assert.throws(() => new LegacySpace({ start: S, end: E, pageSize: 3 }), /pageSize/);
  });

  test('a failed search is not misuse: null, and the cache records the request', () => {
    const sp = new LegacySpace({ start: S, end: E });
    sp.alloc(512 * PAGE);
    assert.equal(sp.alloc(513 * PAGE, { align: 2 * PAGE }), null);
    assert.deepEqual(sp.cache(), {
      area: { start: S, end: S + 512 * PAGE },
      holeSize: 0,
      vstart: S,
      align: 2 * PAGE,
    });
    sp.check();
  });
});

describe('test_vmalloc with design=legacy, one worker', () => {
  test("every test the other designs pass passes (align_shift_alloc_test fails, as in 4.19's walk too)", () => {
    const warnings: string[] = [];
    const vm = createVmalloc({
      design: 'legacy',
      nrCpus: 2,
      logger: { warn: (m) => warnings.push(m) },
    });
    const p = defaultParams(IMPLEMENTED_MASK, 2);
    p.seed = 42;
    applyParams(p, ['test_loop_count=150', 'design=legacy']);
    assert.equal(p.design, 'legacy');
    const r = runWorker(vm, p, 0);
    assert.deepEqual(
      r.tests.map((t) => [t.name, t.passed, t.failed, t.xfailed]),
      [
        ['fix_size_alloc_test', 1, 0, 0],
        ['full_fit_alloc_test', 1, 0, 0],
        ['long_busy_list_alloc_test', 1, 0, 0],
        ['random_size_alloc_test', 1, 0, 0],
        ['fix_align_alloc_test', 1, 0, 0],
        ['random_size_align_alloc_test', 1, 0, 0],
        ['align_shift_alloc_test', 0, 0, 1],
        // No pcpu_get_vm_areas() here: skipped and passed, as with CONFIG_NEED_PER_CPU_KM.
        ['pcpu_alloc_test', 1, 0, 0],
        ['kvfree_rcu_1_arg_vmalloc_test', 1, 0, 0],
        ['kvfree_rcu_2_arg_vmalloc_test', 1, 0, 0],
        ['vm_map_ram_test', 1, 0, 0],
      ],
    );
    assert.ok(
      warnings.includes(
        'vmap allocation for size 8192 failed: use vmalloc=<size> to increase size',
      ),
      "4.19's failure warning",
    );
    vm.check();
    const st = vm.stats();
    // vm_map_ram_test leaves its last vmap block (no live mapping) until a purge.
    assert.equal(st.busyAreas, st.vmapBlocks, 'every area but vmap blocks was freed');
    assert.equal(st.pagesUsed, 0, 'every page was freed');
    assert.ok(st.purges >= 1, 'full_fit_alloc_test frees more than lazy_max_pages()');
    vm.purge();
    vm.check();
    assert.equal(vm.stats().lazyAreas, 0);
    assert.equal(vm.stats().freeBlocks, 0, 'no free tree');
  });
});
