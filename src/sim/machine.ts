/**
 * A simulated run of test_vmalloc: N virtual CPUs, each an attached view (cpu id 0..N-1) of
 * one allocator in this thread, running the real allocator code one operation at a time in
 * virtual-time order, with the machine of engine.ts turning the recorded lock events and work
 * into virtual time.
 *
 * Holds: simulateTestVmalloc() (makes the allocator and the views, runs the machine, returns
 * the driver's WorkerResults in virtual time, lock_stat in virtual time, spinning per lock
 * class, the cost features per test for the calibration) and the recorder that links the
 * allocator's hook (src/shared/sim-hook.ts) to the machine.
 * Invariant: nothing here reads a wall clock: a run is a function of the parameters (seed
 * included) and the calibration. Only one simulated run is in progress per thread (the hook
 * is a module variable); it is cleared when the run ends, even by an exception.
 * Callers: the CLI (`vmalloc test ... simulate=1`), src/sim/calibrate.ts, src/bench/scaling.ts,
 * tests.
 *
 * The approximation: an operation (one vmalloc, vfree, read or write) runs atomically, at the
 * virtual time it starts, on the allocator's state as every operation started before it left
 * it; its lock events are then replayed in virtual time against the other CPUs'. So an
 * operation's effects appear at its start rather than when it takes each lock. The allocator
 * stays consistent (no operation sees another half done) and the locks' queueing, hold times
 * and hand-overs are modelled; what is lost is only the order in which two overlapping
 * operations see each other's effects (which of two CPUs got the lower address, whose purge
 * took whose lazy areas), which changes no cost by more than one operation's work. A trylock
 * always succeeds in the real code here (one thread); see lock-model.ts for how it is replayed.
 */

import { attachVmalloc, createVmalloc, type Vmalloc } from '../api/vmalloc.js';
import { declareParts } from '../mm/shared-state.js';
import { addStat } from '../shared/lock-stat.js';
import {
  type SimRecorder,
  WORK,
  W_BYTES,
  W_PAGES,
  W_RECORDS,
  W_STEPS,
  setSimRecorder,
} from '../shared/sim-hook.js';
import type { WorkerResult } from '../test-vmalloc/driver.js';
import { policyOptions, type TestParams } from '../test-vmalloc/params.js';
import { physicalMemoryFor } from '../test-vmalloc/run.js';
import { TEST_CASES } from '../test-vmalloc/tests.js';
import {
  type Calibration,
  DEFAULT_CALIBRATION,
  F_ACCESS,
  F_BYTE,
  F_CALL,
  F_PAGE,
  F_RECORD,
  F_STEP,
  NR_FEATURES,
  designCost,
} from './cost.js';
import {
  EV_ACQ,
  EV_REL,
  EV_TOUCH,
  EV_TRY,
  type LockModel,
  Machine,
  type VirtualLockStat,
} from './engine.js';
import { ACCESS, checkSimMask, cpuWorkload } from './workload.js';

export interface SimOptions {
  params: TestParams;
  calibration?: Calibration;
  /** Check every invariant after every virtual operation (slow; for tests). */
  checkEveryOp?: boolean;
  /** The view a CPU's workload calls (record=: a recording view of `vm`). @defaultValue vm */
  wrapView?: (vm: Vmalloc, cpu: number) => Vmalloc;
  /**
   * The locks modelled: the kernel's (queued spinlocks that spin; what a simulated kernel
   * runs) or this project's worker locks (spin, then sleep in Atomics.wait: what real workers
   * run, for the validation against them). @defaultValue 'kernel'
   */
  locks?: 'kernel' | 'workers';
}

export interface LockClassSpin {
  name: string;
  /** Share of the CPUs' virtual time spent spinning for this class (0..1). */
  spinShare: number;
  spinNs: number;
}

export interface SimResult {
  vm: Vmalloc;
  nrCpus: number;
  workers: WorkerResult[];
  /** Virtual ns from the start to the last CPU's end. */
  elapsedNs: number;
  /** Virtual lock_stat, one per lock slot (class names repeat for per-node locks). */
  lockStats: VirtualLockStat[];
  /** Spinning per lock class, biggest first. */
  spin: LockClassSpin[];
  /** Share of the CPUs' virtual time spent spinning, all classes. */
  spinShare: number;
  /** Virtual CPU time: the sum over CPUs of their run's length (ns). */
  cpuNs: number;
  /** Cost features summed per test (table index), for the calibration; plus lock acquisitions. */
  features: Float64Array[];
  acquires: Float64Array;
  /** Operations run (calls and accesses). */
  ops: number;
}

/** The names of the subsystem's locks by slot, and whether each is a mutex. */
function lockModels(vm: Vmalloc): LockModel[] {
  return declareParts(vm.config)
    .layout.locks()
    .map((l) => ({ name: l.name, mutex: l.name === 'vmap_purge_lock' }));
}

/** The names of the subsystem's classes of locks inside records (vb->lock), by class index. */
function classNames(vm: Vmalloc): readonly string[] {
  return declareParts(vm.config).layout.classes();
}

/**
 * The machine's lock statistics with the instances of each class of record locks (one per
 * vmap block ever made) folded into one entry per class, after the table's slots: lock_stat
 * lists a class once, and a run may make thousands of blocks.
 */
function foldInstances(
  stats: VirtualLockStat[],
  slots: number,
  classOf: readonly number[],
): VirtualLockStat[] {
  const out = stats.slice(0, slots);
  const byClass = new Map<number, VirtualLockStat>();
  for (let l = slots; l < stats.length; l++) {
    const s = stats[l]!;
    const k = classOf[l - slots]!;
    const a = byClass.get(k);
    if (a === undefined) {
      byClass.set(k, { ...s });
      continue;
    }
    addStat(a, s);
    a.spinNs += s.spinNs;
    a.sleepNs += s.sleepNs;
    a.tryFailures += s.tryFailures;
    a.wakes += s.wakes;
  }
  for (const k of [...byClass.keys()].sort((x, y) => x - y)) out.push(byClass.get(k)!);
  return out;
}

/** Runs test_vmalloc on a simulated machine of max(nr_cpus, nr_threads) CPUs, nr_threads of them working. */
export function simulateTestVmalloc(o: SimOptions): SimResult {
  const params = o.params;
  checkSimMask(params.run_test_mask);
  const cal = o.calibration ?? DEFAULT_CALIBRATION;
  const w = cal.weights;
  // The design's own fixed costs: per call (in place of w[call]) and per lock acquisition.
  const dc = designCost(cal, params.design);
  const callNs = dc.callNs;
  const lockNs = dc.lockNs;
  const n = params.nr_threads;
  const nrCpus = Math.max(params.nr_cpus, n);
  const vm0 = createVmalloc({
    design: params.design,
    nrCpus,
    physicalMemory: physicalMemoryFor(params, nrCpus),
    checkEveryOp: o.checkEveryOp === true,
    logger: null,
    ...policyOptions(params),
  });
  const views: Vmalloc[] = [vm0];
  for (let c = 1; c < n; c++) views.push(attachVmalloc(vm0.handle, { cpu: c, logger: null }));
  const machine = new Machine(n, lockModels(vm0), {
    acquireNs: cal.acquireNs,
    transferNs: cal.transferNs,
    ...(o.locks === 'workers'
      ? { futex: { spinNs: cal.spinNs, wakeNs: cal.wakeNs, notifyNs: cal.notifyNs } }
      : {}),
  });
  const locksBuffer = vm0.handle.locks;
  const slots = machine.locks.length;
  const classes = classNames(vm0);
  // A record lock's machine id, by class and word: class * 2^32 + at (exact in a double).
  const instance = new Map<number, number>();
  const classOf: number[] = [];
  const lockOf = (classIndex: number, at: number): number => {
    const key = classIndex * 2 ** 32 + at;
    let id = instance.get(key);
    if (id === undefined) {
      id = machine.addLock({ name: classes[classIndex] ?? `class ${classIndex}`, mutex: false });
      instance.set(key, id);
      classOf.push(classIndex);
    }
    return id;
  };
  const features = TEST_CASES.map(() => new Float64Array(NR_FEATURES));
  const acquires = new Float64Array(TEST_CASES.length);
  const testOf = new Int32Array(n).fill(-1);
  // WORK as it was at the last event of the operation being recorded.
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0;
  let cur = 0; // the CPU being recorded
  let lines = 0; // tree nodes visited since the last event (set by workSince)
  const workSince = (): number => {
    const d0 = WORK[W_STEPS]! - s0;
    const d1 = WORK[W_PAGES]! - s1;
    const d2 = WORK[W_BYTES]! - s2;
    const d3 = WORK[W_RECORDS]! - s3;
    s0 += d0;
    s1 += d1;
    s2 += d2;
    s3 += d3;
    lines = d0;
    const t = testOf[cur]!;
    if (t >= 0) {
      const f = features[t]!;
      f[F_STEP] = f[F_STEP]! + d0;
      f[F_PAGE] = f[F_PAGE]! + d1;
      f[F_BYTE] = f[F_BYTE]! + d2;
      f[F_RECORD] = f[F_RECORD]! + d3;
    }
    return w[F_STEP]! * d0 + w[F_PAGE]! * d1 + w[F_BYTE]! * d2 + w[F_RECORD]! * d3;
  };
  const recorder: SimRecorder = {
    acquire(words: Int32Array, index: number, tryLock: boolean): void {
      // Only the subsystem's locks: the pages arrays' pool (a VmapSpace with its own lock)
      // stands for the kernel's kmalloc, whose per-CPU slabs take no shared lock.
      if (words.buffer !== locksBuffer) return;
      const t = testOf[cur]!;
      if (t >= 0) acquires[t] = acquires[t]! + 1;
      machine.record(tryLock ? EV_TRY : EV_ACQ, index, workSince() + lockNs, lines);
    },
    release(words: Int32Array, index: number): void {
      if (words.buffer !== locksBuffer) return;
      machine.record(EV_REL, index, workSince(), lines);
    },
    acquireClass(
      table: Int32Array,
      classIndex: number,
      _words: Int32Array,
      at: number,
      tryLock: boolean,
    ): void {
      if (table.buffer !== locksBuffer) return;
      const t = testOf[cur]!;
      if (t >= 0) acquires[t] = acquires[t]! + 1;
      machine.record(
        tryLock ? EV_TRY : EV_ACQ,
        lockOf(classIndex, at),
        workSince() + lockNs,
        lines,
      );
    },
    releaseClass(table: Int32Array, classIndex: number, _words: Int32Array, at: number): void {
      if (table.buffer !== locksBuffer) return;
      machine.record(EV_REL, lockOf(classIndex, at), workSince(), lines);
    },
    touch(line: number): void {
      machine.record(EV_TOUCH, line, workSince(), lines);
    },
  };
  const results: WorkerResult[] = [];
  const gens = views.map((vm, c) => {
    const out: WorkerResult = { worker: c, cpu: c, tests: [], order: [], totalNs: 0 };
    results.push(out);
    return cpuWorkload(
      o.wrapView === undefined ? vm : o.wrapView(vm, c),
      params,
      c,
      () => machine.clock[c]!,
      out,
      (t) => (testOf[c] = t),
    );
  });
  let ops = 0;
  setSimRecorder(recorder);
  try {
    machine.run((c: number): boolean => {
      cur = c;
      s0 = WORK[W_STEPS]!;
      s1 = WORK[W_PAGES]!;
      s2 = WORK[W_BYTES]!;
      s3 = WORK[W_RECORDS]!;
      const r = gens[c]!.next();
      if (r.done === true) return false;
      ops++;
      const kind = r.value === ACCESS ? F_ACCESS : F_CALL;
      const t = testOf[c]!;
      if (t >= 0) features[t]![kind] = features[t]![kind]! + 1;
      // The call's fixed cost comes first (entry, argument checks), the rest after its last event.
      machine.lead(kind === F_CALL ? callNs : w[kind]!);
      const ns = workSince();
      machine.finish(ns, lines);
      return true;
    });
  } finally {
    setSimRecorder(null);
  }
  const lockStats = foldInstances(machine.lockStats(), slots, classOf);
  let cpuNs = 0;
  for (const r of results) cpuNs += r.totalNs;
  const byClass = new Map<string, number>();
  for (const s of lockStats) byClass.set(s.name, (byClass.get(s.name) ?? 0) + s.spinNs);
  const spin = [...byClass]
    .map(([name, spinNs]) => ({ name, spinNs, spinShare: cpuNs > 0 ? spinNs / cpuNs : 0 }))
    .filter((s) => s.spinNs > 0)
    .sort((a, b) => b.spinNs - a.spinNs);
  const spinAll = spin.reduce((a, s) => a + s.spinNs, 0);
  for (let c = 1; c < views.length; c++) views[c]!.detach();
  return {
    vm: vm0,
    nrCpus,
    workers: results,
    elapsedNs: machine.makespan,
    lockStats,
    spin,
    spinShare: cpuNs > 0 ? spinAll / cpuNs : 0,
    cpuNs,
    features,
    acquires,
    ops,
  };
}
