/**
 * Recovery and the vmap blocks of vm_map_ram: a lock inside a block record (vb->lock) held by a
 * dead cpu is released by the recovery, and a survivor waiting on it recovers (EOWNERDEAD)
 * and goes on; a cpu stopped at any step of vm_map_ram / vm_unmap_ram / the fragmented purge
 * leaves nothing the recovery cannot rebuild: check() passes, the other cpu's mappings read
 * back, and mapping and unmapping go on.
 *
 * A "death" in one thread: a second instance attached as cpu 1 runs the operation with the
 * step hook throwing at the chosen step (the stack unwinds without releasing what the
 * operation holds, as a terminated worker leaves it, but for the locks released in finally
 * blocks), then cpu 1 is marked dead.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attachVmalloc, createVmalloc, type Vmalloc } from '../../src/index.js';
import type { VmContext } from '../../src/mm/shared-state.js';
import { W_LOCK } from '../../src/mm/vmap-block-layout.js';
import {
  STEPS,
  S_RAM_COUNTED,
  S_RAM_UNLINKED,
  S_RAM_UNMAPPED,
  S_VB_CARVED,
  S_VB_CLEARED,
  S_VB_DIRTY,
  S_VB_HASHED,
  S_VB_PURGED,
  S_VB_UNHASHED,
  setStepHook,
} from '../../src/shared/step-hook.js';

const ctxOf = (vm: Vmalloc): VmContext => (vm as unknown as { ctx: VmContext }).ctx;

class Stopped extends Error {}

interface Mapping {
  addr: number;
  n: number;
  pfns: Int32Array;
  sig: number;
}

function mapSigned(vm: Vmalloc, n: number, sig: number): Mapping {
  const pfns = vm.allocPages(n);
  const addr = vm.vmMapRam(pfns, n);
  assert.ok(addr !== null);
  vm.writeU8(addr, sig);
  vm.writeU8(addr + n * vm.pageSize - 1, sig ^ 0x5a);
  return { addr, n, pfns, sig };
}

function assertSigned(vm: Vmalloc, maps: Mapping[]): void {
  for (const m of maps) {
    assert.equal(vm.readU8(m.addr), m.sig, `first byte of ${m.addr}`);
    assert.equal(vm.readU8(m.addr + m.n * vm.pageSize - 1), m.sig ^ 0x5a);
  }
}

/** Runs `op` on `victim`, stopping it (a throw that releases nothing) at the nth `step`. */
function stopAt(step: number, op: () => void, nth = 1): void {
  let hits = 0;
  setStepHook((s) => {
    if (s === step && ++hits === nth) throw new Stopped(STEPS[step]);
  });
  try {
    assert.throws(op, Stopped, `the operation reached "${STEPS[step]}"`);
  } finally {
    setStepHook(null);
  }
}

/** What cpu 1 does before it is stopped, and the operation stopped at the step. */
const SCENARIOS: {
  step: number;
  /** Told apart from another scenario of the same step. */
  what?: string;
  before: (v: Vmalloc) => Mapping[];
  op: (v: Vmalloc, maps: Mapping[]) => void;
  nth?: number;
}[] = [
  { step: S_VB_HASHED, before: () => [], op: (v) => void mapSigned(v, 3, 1) },
  { step: S_VB_CARVED, before: (v) => [mapSigned(v, 2, 1)], op: (v) => void mapSigned(v, 3, 2) },
  { step: S_RAM_COUNTED, before: (v) => [mapSigned(v, 2, 1)], op: (v) => void mapSigned(v, 5, 2) },
  {
    step: S_RAM_COUNTED,
    what: 'a large mapping',
    before: () => [],
    op: (v) => void mapSigned(v, 70, 2),
  },
  {
    step: S_VB_CLEARED,
    before: (v) => [mapSigned(v, 4, 1), mapSigned(v, 2, 2)],
    op: (v, m) => v.vmUnmapRam(m[0]!.addr, 4),
  },
  {
    step: S_RAM_UNMAPPED,
    before: (v) => [mapSigned(v, 4, 1), mapSigned(v, 2, 2)],
    op: (v, m) => v.vmUnmapRam(m[0]!.addr, 4),
  },
  {
    step: S_VB_DIRTY,
    before: (v) => [mapSigned(v, 4, 1), mapSigned(v, 2, 2)],
    op: (v, m) => v.vmUnmapRam(m[0]!.addr, 4),
  },
  {
    // A whole block of 8-page mappings, all unmapped: the last unmap frees the block.
    step: S_VB_UNHASHED,
    before: (v) => Array.from({ length: 32 }, (_, k) => mapSigned(v, 8, k)),
    op: (v, m) => {
      for (const x of m) v.vmUnmapRam(x.addr, 8);
    },
  },
  {
    step: S_RAM_UNLINKED,
    before: (v) => [mapSigned(v, 70, 1)],
    op: (v, m) => v.vmUnmapRam(m[0]!.addr, 70),
  },
  {
    step: S_VB_PURGED,
    before: (v) => {
      const m = mapSigned(v, 4, 1);
      v.vmUnmapRam(m.addr, 4);
      return [];
    },
    op: (v) => v.purge(),
  },
];

for (const design of ['nodes', 'global'] as const) {
  describe(`recovery and the vmap blocks (${design})`, () => {
    test('a vb->lock held by a dead cpu: the waiter recovers and goes on', () => {
      // Long enough that a wait for the timeout would fail the test, not pass it slowly.
      const vm = createVmalloc({ nrCpus: 4, logger: null, design, lockTimeoutMs: 600_000 });
      const ctx = ctxOf(vm);
      const a = mapSigned(vm, 3, 11);
      const b = mapSigned(vm, 2, 12);
      const vb = ctx.vb;
      const id = vb.lockBlockOf(a.addr);
      assert.ok(id !== 0);
      vb.unlockBlock(id);
      // Cpu 1 (never attached) takes the lock of cpu 0's block, then dies.
      vb.blockLock.lock(1, vb.arena.i, vb.at(id) + W_LOCK);
      vm.markCpuDead(1);
      const c = mapSigned(vm, 4, 13); // carves from that block: EOWNERDEAD, recovery, retry
      assert.equal(vb.blockLock.owner(vb.arena.i, vb.at(id) + W_LOCK), -1, 'released');
      vm.check();
      assertSigned(vm, [a, b, c]);
      vm.vmUnmapRam(a.addr, 3);
      // Unmapping meets a dead holder too: recovered, and the unmap happens once.
      vb.blockLock.lock(1, vb.arena.i, vb.at(id) + W_LOCK);
      vm.vmUnmapRam(b.addr, 2);
      assert.throws(() => vm.vmUnmapRam(b.addr, 2), { code: 'ENOENT' });
      vm.check();
      assertSigned(vm, [c]);
      vm.vmUnmapRam(c.addr, 4);
      for (const m of [a, b, c]) vm.freePages(m.pfns);
      vm.vmUnmapAliases();
      vm.purge();
      vm.check();
      assert.equal(vm.stats().busyAreas, 0);
    });

    for (const sc of SCENARIOS) {
      test(`cpu 1 stopped at "${STEPS[sc.step]}"${sc.what ? ` (${sc.what})` : ''}`, () => {
        const vm = createVmalloc({ nrCpus: 4, logger: null, design, lockTimeoutMs: 600_000 });
        const mine = [mapSigned(vm, 3, 21), mapSigned(vm, 8, 22), mapSigned(vm, 66, 23)];
        const v1 = attachVmalloc(vm.handle, { cpu: 1, logger: null });
        const theirs = sc.before(v1);
        stopAt(sc.step, () => sc.op(v1, theirs), sc.nth);
        // (markCpuDead refuses a cpu attached in this thread: mark it in the lock table, as a
        // watched worker's exit does.)
        ctxOf(vm).lockTable.markCpuDead(1);
        const report = vm.recover();
        assert.ok(report !== null && report.dead.includes(1));
        vm.check();
        assertSigned(vm, mine);
        // The dead cpu's complete mappings that its stopped call did not touch stay.
        for (const m of theirs) {
          if (vm.vmallocToPage(m.addr) !== null) assert.equal(vm.readU8(m.addr), m.sig);
        }
        // Mapping goes on, on this cpu's blocks and past the dead cpu's.
        const more = Array.from({ length: 40 }, (_, k) => mapSigned(vm, 1 + (k % 8), 30 + k));
        vm.check();
        assertSigned(vm, [...mine, ...more]);
        for (const m of [...mine, ...more]) {
          vm.vmUnmapRam(m.addr, m.n);
          vm.freePages(m.pfns);
        }
        vm.vmUnmapAliases();
        vm.check();
      });
    }
  });
}
