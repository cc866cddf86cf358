/**
 * Recovery and the percpu allocator: a cpu stopped at any step of alloc_percpu / free_percpu
 * (populating or depopulating a page, marking or clearing an allocation, making or destroying
 * a chunk, pcpu_get_vm_areas half done) holding pcpu_alloc_mutex leaves nothing the recovery
 * cannot rebuild: check() passes, every other percpu object reads back its bytes in every
 * CPU's copy, and allocation goes on (new chunks included).
 *
 * A "death" in one thread, as in recovery-vmap-block.test.ts: a second instance attached as
 * cpu 1 runs the operation with the step hook throwing at the chosen step (the stack unwinds
 * without undoing anything; only pcpu_alloc_mutex is released, by a finally block), then cpu 1
 * is marked dead in the lock table.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attachVmalloc, createVmalloc, type Vmalloc } from '../../src/index.js';
import { VaFlags } from '../../src/kva/vmap-area.js';
import type { VmContext } from '../../src/mm/shared-state.js';
import {
  STEPS,
  S_PCPU_CLEARED,
  S_PCPU_CLEARING,
  S_PCPU_CREATING,
  S_PCPU_DEPOPULATED,
  S_PCPU_DESTROYING,
  S_PCPU_MAPPING,
  S_PCPU_MARKED,
  S_PCPU_MARKING,
  S_PCPU_POPULATED,
  S_PCPU_UNMAPPING,
  S_PCPU_VMS_BUSY,
  setStepHook,
} from '../../src/shared/step-hook.js';

const NR_CPUS = 4;
const BIG = 32 * 1024; // PCPU_MIN_UNIT_SIZE: four fill a 128 KiB unit

const ctxOf = (vm: Vmalloc): VmContext => (vm as unknown as { ctx: VmContext }).ctx;

class Stopped extends Error {}

/** Busy pcpu_get_vm_areas areas: a half-made or half-destroyed chunk's must not stay. */
function pcpuAreas(vm: Vmalloc): number {
  const ctx = ctxOf(vm);
  ctx.refreshAll();
  let n = 0;
  for (const va of ctx.areas.design.busyIds()) if ((ctx.s.flags(va) & VaFlags.PCPU) !== 0) n++;
  return n;
}

interface Obj {
  ptr: number;
  size: number;
  sig: number;
}

/** An object with a signature at both ends of every CPU's copy. */
function allocSigned(vm: Vmalloc, size: number, sig: number, align = 8): Obj {
  const ptr = vm.allocPercpu(size, align);
  assert.ok(ptr !== null, 'alloc_percpu');
  for (let cpu = 0; cpu < NR_CPUS; cpu++) {
    const at = vm.perCpuPtr(ptr, cpu);
    assert.equal(vm.readU8(at), 0, 'zeroed');
    vm.writeU8(at, (sig + cpu) & 0xff);
    vm.writeU8(at + size - 1, (sig ^ 0x5a ^ cpu) & 0xff);
  }
  return { ptr, size, sig };
}

function assertSigned(vm: Vmalloc, objs: Obj[]): void {
  for (const o of objs)
    for (let cpu = 0; cpu < NR_CPUS; cpu++) {
      const at = vm.perCpuPtr(o.ptr, cpu);
      assert.equal(vm.readU8(at), (o.sig + cpu) & 0xff, `first byte of ${o.ptr} on cpu ${cpu}`);
      assert.equal(vm.readU8(at + o.size - 1), (o.sig ^ 0x5a ^ cpu) & 0xff);
    }
}

/** Runs `op`, stopping it (a throw that undoes nothing) at the nth `step`. */
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

/** cpu 1's objects (into `objs`): enough 32 KiB ones to fill chunk 0 and make two more. */
const fill = (v: Vmalloc, objs: Obj[] = []): Obj[] => {
  for (let k = 0; k < 9; k++) objs.push(allocSigned(v, BIG, 100 + k));
  return objs;
};
/** Frees them all: the last chunk emptied while another is empty is destroyed. */
const freeAll = (v: Vmalloc, objs: Obj[]): void => {
  for (const o of objs) v.freePercpu(o.ptr);
};
/** A 3-page object on pages no one populated yet. */
const fresh = (v: Vmalloc, objs: Obj[]): void => void objs.push(allocSigned(v, 3 * 4096, 77, 4096));
const noObjs = (): Obj[] => [];

const SCENARIOS: {
  step: number;
  /** Told apart from another scenario of the same step. */
  what?: string;
  before: (v: Vmalloc) => Obj[];
  /** Allocates (pushing what it made onto objs), or frees objs. */
  op: (v: Vmalloc, objs: Obj[]) => void;
}[] = [
  { step: S_PCPU_MAPPING, before: noObjs, op: fresh },
  { step: S_PCPU_POPULATED, before: noObjs, op: fresh },
  { step: S_PCPU_MARKED, before: noObjs, op: fresh },
  { step: S_PCPU_CREATING, before: noObjs, op: fill },
  { step: S_PCPU_VMS_BUSY, before: noObjs, op: fill },
  { step: S_PCPU_CLEARED, before: fill, op: freeAll },
  { step: S_PCPU_UNMAPPING, before: fill, op: freeAll },
  { step: S_PCPU_DEPOPULATED, before: fill, op: freeAll },
  { step: S_PCPU_DESTROYING, before: fill, op: freeAll },
  { step: S_PCPU_MARKING, before: noObjs, op: fresh },
  {
    step: S_PCPU_MARKING,
    what: "right after cpu 0's last object, which the half-set bits must not join",
    before: noObjs,
    op: (v, objs) => void objs.push(allocSigned(v, 64, 5, 4)),
  },
  { step: S_PCPU_CLEARING, before: fill, op: freeAll },
];

for (const design of ['nodes', 'global'] as const) {
  describe(`recovery and the percpu allocator (${design})`, () => {
    for (const sc of SCENARIOS) {
      test(`cpu 1 stopped at "${STEPS[sc.step]}"${sc.what ? ` (${sc.what})` : ''}`, () => {
        const vm = createVmalloc({ nrCpus: NR_CPUS, logger: null, design, lockTimeoutMs: 600_000 });
        const mine = [
          allocSigned(vm, 16, 1),
          allocSigned(vm, 4096, 2, 4096),
          allocSigned(vm, 40, 3),
        ];
        const v1 = attachVmalloc(vm.handle, { cpu: 1, logger: null });
        const theirs = sc.before(v1);
        const freeBefore = vm.percpuInfo().freeBytes;
        stopAt(sc.step, () => sc.op(v1, theirs));
        ctxOf(vm).lockTable.markCpuDead(1);
        const report = vm.recover();
        assert.ok(report !== null && report.dead.includes(1));
        vm.check();
        assert.equal(pcpuAreas(vm), vm.percpuInfo().chunks * NR_CPUS, 'pcpu areas of no chunk');
        assertSigned(vm, mine);
        if (sc.step === S_PCPU_MARKING)
          assert.equal(vm.percpuInfo().freeBytes, freeBefore, 'the half-made mark undone');
        // The dead cpu's complete objects stay allocated with their bytes (until freed by
        // address, as a dead cpu's vmalloc areas); what it freed or half made is gone.
        if (sc.before === noObjs) assertSigned(vm, theirs);
        // Allocation goes on: small objects, and big ones through new chunks.
        const more = Array.from({ length: 12 }, (_, k) =>
          allocSigned(vm, k % 3 === 0 ? BIG : 8 + 100 * k, 30 + k),
        );
        vm.check();
        assertSigned(vm, [...mine, ...more]);
        for (const o of [...mine, ...more]) vm.freePercpu(o.ptr);
        vm.check();
        assert.equal(pcpuAreas(vm), vm.percpuInfo().chunks * NR_CPUS);
        // What stays is the dead cpu's own: its objects, and the one whose marking completed.
        const left = vm.percpuInfo().allocations;
        assert.ok(left <= theirs.length + 1, `allocations ${left}`);
        // A mark stopped half-way is undone, a clear stopped half-way finished.
        if (sc.step === S_PCPU_MARKING) {
          assert.equal(left, 0);
          const info = vm.percpuInfo();
          assert.equal(info.freeBytes, info.chunks * info.unitSize, 'every unit free');
        }
        if (sc.step === S_PCPU_CLEARING) assert.equal(left, theirs.length - 1);
        if (sc.before === noObjs) {
          for (const o of theirs) vm.freePercpu(o.ptr);
          vm.check();
          assert.ok(vm.percpuInfo().allocations <= 1);
        }
      });
    }
  });
}
