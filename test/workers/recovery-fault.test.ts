/**
 * Fault injection: a worker is terminated in the middle of an operation, holding a lock or
 * not, while another worker keeps allocating; recover() (or the first survivor that meets a
 * lock the dead worker held) brings the subsystem back, and nothing of the survivors' is lost.
 *
 * Each trial: the main thread (cpu 0) holds signed areas; a survivor worker (cpu 2) runs
 * random vmalloc / vfree / vmap / vunmap / vm_map_ram / alloc_percpu / free_percpu / purge
 * with signatures the whole time; the victim (cpu 1) does the same until the step hook stops
 * it at the nth time a chosen step runs (or, in the random trials, until a random number of
 * operations), and is terminated there. Then
 * the main thread recovers while the survivor runs, stops the survivor (which reads back
 * every area it holds), and checks: check() passes, every area of the main thread and of the
 * survivor reads back its signature, allocation goes on. Every step of STEPS is a kill point
 * in both designs, except those that cannot come in a design (NOT_IN says which and why).
 * Waits are on messages and 'exit' events (no sleeps before assertions).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createVmalloc, type Vmalloc, type VmallocDesign } from '../../src/index.js';
import { STEPS, S_POOL_FILL, S_POOL_TAKE } from '../../src/shared/step-hook.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';
import { Rng, testSeed } from '../helpers/rng.js';
import { until } from '../shared/worker-wait.js';
import {
  STOP,
  VICTIM_OPS,
  type RecoveryWorkerData,
  type RecoveryWorkerMessage,
} from './recovery-protocol.js';

const timeout = WORKER_TEST_TIMEOUT_MS;

function spawn(): Worker {
  return new Worker(new URL('./recovery-worker.js', import.meta.url));
}

/**
 * The workers of one test's trials: a survivor that serves them all, and the next victim,
 * started while the trial before runs (starting a worker costs more than most trials).
 */
class Crew {
  readonly survivor = spawn();
  private spare = spawn();

  /** A started victim; the next one starts now. */
  victim(): Worker {
    const v = this.spare;
    this.spare = spawn();
    return v;
  }

  async close(): Promise<void> {
    await Promise.all([this.survivor.terminate(), this.spare.terminate()]);
  }
}

/** The next message of `w`. */
function outcome(w: Worker): Promise<RecoveryWorkerMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('no message from the worker (a hang)')),
      timeout,
    );
    const onMessage = (m: RecoveryWorkerMessage): void => {
      clearTimeout(timer);
      w.off('error', onError);
      resolve(m);
    };
    const onError = (e: Error): void => {
      clearTimeout(timer);
      w.off('message', onMessage);
      reject(e);
    };
    w.once('message', onMessage);
    w.once('error', onError);
  });
}

interface Signed {
  addr: number;
  bytes: number;
  sig: number;
}

function signAreas(vm: Vmalloc, n: number, base: number): Signed[] {
  const out: Signed[] = [];
  for (let k = 0; k < n; k++) {
    const bytes = (1 + (k % 6)) * vm.pageSize;
    const addr = vm.vmalloc(bytes);
    assert.ok(addr !== null);
    const sig = (base + k) & 255;
    vm.writeU8(addr, sig);
    vm.writeU8(addr + bytes - 1, sig ^ 0x5a);
    out.push({ addr, bytes, sig });
  }
  return out;
}

function assertSigned(vm: Vmalloc, areas: Signed[], what: string): void {
  for (const a of areas) {
    assert.equal(vm.readU8(a.addr), a.sig, `${what}: first byte of ${a.addr}`);
    assert.equal(vm.readU8(a.addr + a.bytes - 1), a.sig ^ 0x5a, `${what}: last byte of ${a.addr}`);
  }
}

interface TrialResult {
  killed: boolean;
  survivorAreas: number;
  survivorOps: number;
}

/**
 * One trial: kill the victim at the nth run of `step` (0: after `killAt` operations), recover,
 * verify. Returns whether a kill happened (the step may not come in the victim's workload).
 */
async function trial(
  crew: Crew,
  design: VmallocDesign,
  step: number,
  nth: number,
  seed: number,
  killAt: number,
): Promise<TrialResult> {
  try {
    return await trialOnce(crew, design, step, nth, seed, killAt);
  } catch (e) {
    // Which trial, so that it can be replayed alone.
    const where =
      step === 0 ? `after ${killAt} operations` : `at step ${step} (${STEPS[step]}) nth ${nth}`;
    if (e instanceof Error)
      e.message = `${design}, kill ${where}, victim seed ${seed}: ${e.message}`;
    throw e;
  }
}

async function trialOnce(
  crew: Crew,
  design: VmallocDesign,
  step: number,
  nth: number,
  seed: number,
  killAt: number,
): Promise<TrialResult> {
  const vm = createVmalloc({
    design,
    nrCpus: 3,
    logger: null,
    lockTimeoutMs: WORKER_LOCK_TIMEOUT_MS,
  });
  const mine = signAreas(vm, 12, seed);
  // The main thread waits on messages, not in calls: it must not hold up the grace periods
  // the workers' kvfreeRcu waits for (it keeps no reference to their areas).
  vm.rcuOffline();
  const ctl = new SharedArrayBuffer(64);
  const words = new Int32Array(ctl);
  const common = { handle: vm.handle, ctl, step, nth };
  const survived = outcome(crew.survivor);
  const toSurvivor: RecoveryWorkerData = {
    ...common,
    cpu: 2,
    role: 'survivor',
    seed: seed ^ 0x1234,
    maxOps: 0,
  };
  crew.survivor.postMessage(toSurvivor);
  const victim = crew.victim();
  vm.watchWorker(victim, 1);
  const victimSays = step === 0 ? null : outcome(victim);
  const toVictim: RecoveryWorkerData = {
    ...common,
    cpu: 1,
    role: 'victim',
    seed,
    maxOps: step === 0 ? 1e9 : 3000,
  };
  victim.postMessage(toVictim);
  let killed = false;
  if (victimSays !== null) {
    const m = await victimSays;
    if (m.type === 'error') assert.fail(`victim failed: ${m.message}`);
    killed = m.type === 'parked';
    // Parked mid-operation (killed there), or done with its operations (killed idle).
    await victim.terminate();
  } else {
    await until(() => Atomics.load(words, VICTIM_OPS) >= killAt, 'victim operations');
    await victim.terminate();
    killed = true;
  }
  // Recover while the survivor runs (it waits at the gate, or has recovered already).
  vm.recover();
  mine.push(...signAreas(vm, 4, seed + 100));
  Atomics.store(words, STOP, 1);
  const s = await survived;
  if (s.type === 'error') assert.fail(`survivor failed: ${s.message}`);
  assert.equal(s.type, 'verified');
  if (s.type !== 'verified') throw new Error('unreachable');
  assert.equal(s.bad, 0, `survivor: ${s.bad} areas lost or damaged`);
  vm.check();
  assertSigned(vm, mine, `main thread (step ${step} nth ${nth} seed ${seed})`);
  // Allocation goes on, and everything can be freed.
  const more = signAreas(vm, 40, seed + 7);
  for (const a of more) vm.vfree(a.addr);
  for (const a of mine) vm.vfree(a.addr);
  vm.purge();
  vm.check();
  return { killed, survivorAreas: s.areas, survivorOps: s.ops };
}

/**
 * Steps that cannot come in a design, with why; every other step of STEPS must be a kill
 * point in every design tested.
 */
const NOT_IN: Record<'global' | 'nodes', Partial<Record<number, string>>> = {
  global: {
    [S_POOL_TAKE]: 'the global design has no pools (they came with the vmap nodes, 6.9)',
    [S_POOL_FILL]: 'the global design has no pools (they came with the vmap nodes, 6.9)',
  },
  nodes: {},
};

/** Tries per step: a step the seeded workload misses at its nth run is tried again at the first. */
const TRIES = 3;

for (const design of ['global', 'nodes'] as const) {
  describe(`recovery from a worker killed mid-operation (${design})`, () => {
    test('every step that applies to the design is a kill point', { timeout }, async () => {
      const seed = testSeed(`recovery steps ${design}`);
      const rng = new Rng(seed);
      const reached: string[] = [];
      const missed: string[] = [];
      const crew = new Crew();
      try {
        for (let step = 1; step < STEPS.length; step++) {
          if (NOT_IN[design][step] !== undefined) continue;
          let killed = false;
          for (let k = 0; k < TRIES && !killed; k++) {
            const nth = k === 0 ? 1 + rng.below(4) : 1;
            killed = (await trial(crew, design, step, nth, rng.u32(), 0)).killed;
          }
          (killed ? reached : missed).push(STEPS[step]!);
        }
      } finally {
        await crew.close();
      }
      const skipped = Object.entries(NOT_IN[design]).map(([s, why]) => `${STEPS[+s]} (${why})`);
      console.log(
        `${design}: killed at ${reached.length} steps; not applicable: ${skipped.join('; ') || 'none'}`,
      );
      assert.deepEqual(missed, [], `steps the workload never reached (seed ${seed})`);
    });

    test('kills at random moments', { timeout }, async () => {
      const seed = testSeed(`recovery random ${design}`);
      const rng = new Rng(seed);
      const crew = new Crew();
      try {
        for (let k = 0; k < 8; k++) {
          const r = await trial(crew, design, 0, 0, rng.u32(), 1 + rng.below(400));
          assert.ok(r.killed);
        }
      } finally {
        await crew.close();
      }
    });
  });
}
