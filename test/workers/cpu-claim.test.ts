/**
 * A cpu id is one thread's at a time: attachVmalloc claims it in shared memory, detach() and a
 * declared death (markCpuDead, watchWorker) free it, and a second claim is refused with EBUSY
 * and changes nothing; a detached instance refuses every call that acts as a cpu. In one
 * thread and in real worker threads, in both designs. Waits are on messages and 'exit' events.
 */

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  attachVmalloc,
  createVmalloc,
  DESIGN_NAMES,
  Vmalloc,
  VmallocError,
  type VmallocDesign,
  type VmallocHandle,
} from '../../src/index.js';
import { LockTable } from '../../src/shared/lock.js';
import { WORKER_LOCK_TIMEOUT_MS, WORKER_TEST_TIMEOUT_MS } from '../helpers/hang-guard.js';
import { PAGE, snapshot } from '../helpers/vm.js';
import { next } from '../shared/worker-wait.js';
import type { ClaimWorkerMessage } from './cpu-claim-worker.js';
import type { LockWorkerData } from './lock-protocol.js';

const timeout = WORKER_TEST_TIMEOUT_MS;

function subsystem(design: VmallocDesign, nrCpus = 4): Vmalloc {
  return createVmalloc({ design, nrCpus, logger: null, lockTimeoutMs: WORKER_LOCK_TIMEOUT_MS });
}

/** A VmallocError with `code` whose message matches every pattern. */
function isError(code: string, ...patterns: RegExp[]): (e: unknown) => boolean {
  return (e) =>
    e instanceof VmallocError && e.code === code && patterns.every((p) => p.test(e.message));
}

const busy = (cpu: number, by: 'in this thread' | 'by another worker'): ((e: unknown) => boolean) =>
  isError(
    'EBUSY',
    new RegExp(
      `^Cannot attach vmalloc: cpu must be an id no thread holds, got ${cpu}, which is already attached \\(${by}\\)`,
    ),
    /each worker needs its own cpu id from 0 to nrCpus - 1 \(3\)/,
    /vm\.detach\(\)/,
    new RegExp(`markCpuDead\\(${cpu}\\)`),
  );

function claimWorker(handle: VmallocHandle, cpu: number): Worker {
  return new Worker(new URL('./cpu-claim-worker.js', import.meta.url), {
    workerData: { handle, cpu },
  });
}

const isDead = (vm: Vmalloc, cpu: number): boolean => new LockTable(vm.handle.locks).isCpuDead(cpu);

for (const design of DESIGN_NAMES) {
  describe(`cpu claims (${design})`, () => {
    test('the same cpu twice in one thread: EBUSY, and nothing changes', () => {
      const vm = subsystem(design);
      const kept = vm.vmalloc(3 * PAGE)!;
      const c1 = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      const before = snapshot(vm);
      assert.throws(() => attachVmalloc(vm.handle, { cpu: 0 }), busy(0, 'in this thread'));
      assert.throws(() => attachVmalloc(vm.handle, { cpu: 1 }), busy(1, 'in this thread'));
      assert.equal(snapshot(vm), before);
      // Both holders still work, and still hold their ids.
      vm.vfree(vm.vmalloc(PAGE));
      c1.vfree(c1.vmalloc(2 * PAGE));
      c1.vfree(kept);
      assert.throws(() => attachVmalloc(vm.handle, { cpu: 1 }), busy(1, 'in this thread'));
      vm.check();
    });

    test('createVmalloc claims options.cpu (default 0)', () => {
      const vm = createVmalloc({ design, nrCpus: 4, logger: null, cpu: 2 });
      assert.equal(vm.cpu, 2);
      assert.throws(() => attachVmalloc(vm.handle, { cpu: 2 }), busy(2, 'in this thread'));
      const c0 = attachVmalloc(vm.handle, { cpu: 0, logger: null });
      c0.vfree(c0.vmalloc(PAGE));
      assert.equal(createVmalloc({ design, nrCpus: 4, logger: null }).cpu, 0);
      assert.throws(
        () => createVmalloc({ design, nrCpus: 4, cpu: 4 }),
        isError(
          'EINVAL',
          /^Cannot create vmalloc: cpu must be an integer from 0 to nrCpus - 1 \(3\), got 4$/,
        ),
      );
    });

    test("re-attach after detach, in one thread; detach hands over the cpu's cached pages", () => {
      const vm = subsystem(design, 3);
      const c1 = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      const p = c1.vmalloc(8 * PAGE)!;
      const pfns1 = Array.from({ length: 8 }, (_, k) => c1.vmallocToPage(p + k * PAGE)!);
      c1.vfree(p); // the 8 pages go back to cpu 1's page list
      const q = c1.vmalloc(PAGE)!; // an area that outlives its cpu's detach
      c1.detach();
      vm.check();
      // The pages cpu 1 had cached are in the shared pool: cpu 2's first refill takes them
      // (without the drain it would take never-used frames, none of cpu 1's).
      const c2 = attachVmalloc(vm.handle, { cpu: 2, logger: null });
      const r = c2.vmalloc(64 * PAGE)!;
      const pfns2 = new Set(Array.from({ length: 64 }, (_, k) => c2.vmallocToPage(r + k * PAGE)!));
      const qPfn = c2.vmallocToPage(q);
      assert.deepEqual(
        pfns1.filter((pfn) => pfn !== qPfn && !pfns2.has(pfn)),
        [],
        `cpu 1's cached pages ${pfns1.join(',')} are handed out to cpu 2: ${[...pfns2].join(',')}`,
      );
      const again = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      again.vfree(q);
      c2.vfree(r);
      // The creator lends its cpu the same way.
      vm.detach();
      const c0 = attachVmalloc(vm.handle, { cpu: 0, logger: null });
      c0.vfree(c0.vmalloc(PAGE));
      c0.purge();
      c0.check();
      assert.equal(c0.stats().busyAreas, 0);
    });

    test('a detached instance refuses every call that acts as a cpu, cheaply', () => {
      const vm = subsystem(design);
      const c1 = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      const p = vm.vmalloc(PAGE)!;
      c1.detach();
      assert.ok(c1 instanceof Vmalloc);
      assert.equal(c1.cpu, 1, 'its fields stay readable');
      const refused = isError(
        'EINVAL',
        /this Vmalloc was detached from cpu 1 \(vm\.detach\(\)\); attach again with attachVmalloc\(vm\.handle, \{ cpu \}\)/,
      );
      assert.throws(
        () => c1.vmalloc(PAGE),
        isError('EINVAL', /^Cannot vmalloc: /),
        'names the call',
      );
      assert.throws(() => c1.vmalloc(PAGE), refused);
      assert.throws(() => c1.vfree(p), refused);
      assert.throws(() => c1.vfree(0), refused);
      assert.throws(() => c1.read(p, 1), refused);
      assert.throws(() => c1.write(p, new Uint8Array(1)), refused);
      assert.throws(() => c1.stats(), refused);
      assert.throws(() => c1.check(), refused);
      assert.throws(() => c1.lazyPages, refused);
      assert.throws(() => c1.shrinker, refused);
      assert.throws(
        () => c1.detach(),
        isError('EINVAL', /^Cannot detach: this Vmalloc was already detached from cpu 1$/),
      );
      // Every method and getter of the class, but those that act as no cpu.
      const kept = ['constructor', 'markCpuDead', 'markCpuAlive', 'watchWorker'];
      const lockStatCalls = ['lockStats', 'lockStat', 'setLockStat', 'resetLockStat'];
      // Vmalloc's own methods and those it inherits from its base classes.
      const protos: object[] = [];
      for (let p: object = Vmalloc.prototype; p !== Object.prototype;) {
        protos.push(p);
        p = Object.getPrototypeOf(p) as object;
      }
      assert.ok(protos.some((p) => Object.getOwnPropertyNames(p).includes('stats')));
      assert.ok(protos.some((p) => Object.getOwnPropertyNames(p).includes('vmMapRam')));
      for (const proto of protos) {
        for (const name of Object.getOwnPropertyNames(proto)) {
          if (kept.includes(name) || lockStatCalls.includes(name)) continue;
          const d = Object.getOwnPropertyDescriptor(proto, name)!;
          const call = d.get
            ? (): unknown => (c1 as unknown as Record<string, unknown>)[name]
            : (): unknown => (c1 as unknown as Record<string, () => unknown>)[name]!();
          assert.throws(call, isError('EINVAL', new RegExp(`^Cannot ${name}: `)), name);
        }
      }
      // The calls of a supervising thread still work.
      c1.setLockStat(true);
      c1.resetLockStat();
      assert.ok(c1.lockStats().length > 0);
      assert.match(c1.lockStat(), /^lock_stat version/m);
      c1.markCpuDead(3);
      assert.equal(isDead(vm, 3), true);
      c1.markCpuAlive(3);
      assert.equal(isDead(vm, 3), false);
      // The live instances are unaffected, and cpu 1 is free.
      vm.vfree(p);
      attachVmalloc(vm.handle, { cpu: 1, logger: null }).vfree(vm.vmalloc(PAGE));
      vm.check();
    });

    test('detach without shared memory (shared: false)', () => {
      const vm = createVmalloc({ design, nrCpus: 2, logger: null, shared: false });
      vm.vfree(vm.vmalloc(PAGE));
      vm.detach();
      assert.throws(
        () => vm.vmalloc(PAGE),
        isError('EINVAL', /^Cannot vmalloc: this Vmalloc was detached from cpu 0/),
      );
      assert.ok(vm.lockStats().length > 0);
    });

    test('markCpuDead frees the id; not for a cpu attached in this thread', () => {
      const vm = subsystem(design);
      const c1 = attachVmalloc(vm.handle, { cpu: 1, logger: null });
      const before = snapshot(vm);
      const alive = isError(
        'EINVAL',
        /^Cannot markCpuDead: cpu must not be attached in this thread \(it is alive\), got 1; detach it/,
      );
      assert.throws(() => vm.markCpuDead(1), alive);
      assert.throws(
        () => c1.markCpuDead(0),
        isError('EINVAL', /cpu must not be attached in this thread \(it is alive\), got 0/),
      );
      assert.equal(isDead(vm, 1), false);
      assert.equal(snapshot(vm), before);
      c1.vfree(c1.vmalloc(PAGE));
    });

    test(
      'two workers with the same cpu: the second gets EBUSY, its exit frees nothing',
      { timeout },
      async () => {
        const vm = subsystem(design);
        const w1 = claimWorker(vm.handle, 2);
        vm.watchWorker(w1, 2);
        const exit1 = once(w1, 'exit');
        try {
          assert.equal((await next<ClaimWorkerMessage>(w1, 'attach')).type, 'attach');
          const before = snapshot(vm);
          const w2 = claimWorker(vm.handle, 2);
          vm.watchWorker(w2, 2);
          const exit2 = once(w2, 'exit');
          const m = await next<Extract<ClaimWorkerMessage, { type: 'attach' }>>(w2, 'attach');
          assert.equal(m.ok, false);
          assert.ok(busy(2, 'by another worker')(new VmallocError(m.code!, m.message!)), m.message);
          await exit2; // its watchWorker handler has run
          assert.equal(isDead(vm, 2), false, 'the exit of the refused worker did not kill cpu 2');
          assert.throws(() => attachVmalloc(vm.handle, { cpu: 2 }), busy(2, 'by another worker'));
          assert.equal(snapshot(vm), before);
          w1.postMessage({ type: 'work' });
          assert.equal(
            (await next<Extract<ClaimWorkerMessage, { type: 'worked' }>>(w1, 'worked')).ok,
            true,
          );
          w1.postMessage({ type: 'detach' });
          await next(w1, 'detached');
          await exit1;
          const c2 = attachVmalloc(vm.handle, { cpu: 2, logger: null });
          c2.vfree(c2.vmalloc(PAGE));
          vm.check();
        } finally {
          await w1.terminate();
        }
      },
    );

    test('the id of a watched worker that exits attached is free again', { timeout }, async () => {
      const vm = subsystem(design);
      const w = claimWorker(vm.handle, 3);
      vm.watchWorker(w, 3);
      const exit = once(w, 'exit');
      assert.equal(
        (await next<Extract<ClaimWorkerMessage, { type: 'attach' }>>(w, 'attach')).ok,
        true,
      );
      w.postMessage({ type: 'work' });
      await next(w, 'worked');
      w.postMessage({ type: 'quit' }); // exits still holding cpu 3
      await exit;
      assert.equal(isDead(vm, 3), true, 'watchWorker marked it dead');
      const c3 = attachVmalloc(vm.handle, { cpu: 3, logger: null });
      assert.equal(isDead(vm, 3), false, 'attaching marks it alive');
      c3.vfree(c3.vmalloc(PAGE));
      vm.check();
    });

    test(
      'an unwatched worker that exits attached keeps its id until markCpuDead',
      { timeout },
      async () => {
        const vm = subsystem(design);
        const w = claimWorker(vm.handle, 1);
        const exit = once(w, 'exit');
        assert.equal(
          (await next<Extract<ClaimWorkerMessage, { type: 'attach' }>>(w, 'attach')).ok,
          true,
        );
        w.postMessage({ type: 'quit' });
        await exit;
        const before = snapshot(vm);
        assert.throws(() => attachVmalloc(vm.handle, { cpu: 1 }), busy(1, 'by another worker'));
        assert.equal(snapshot(vm), before);
        vm.markCpuDead(1);
        const c1 = attachVmalloc(vm.handle, { cpu: 1, logger: null });
        assert.equal(isDead(vm, 1), false);
        c1.vfree(c1.vmalloc(PAGE));
        vm.check();
      },
    );

    test(
      'the id of a worker that died holding a lock is refused (EOWNERDEAD)',
      { timeout },
      async () => {
        const vm = subsystem(design);
        // Lock slot 0 is the design's first lock: free_vmap_area_lock, or vmap_area_lock in a
        // design that has one lock for busy and free space ('rfc2018').
        const name = vm.areas.design.locks().find((l) => l.index === 0)!.name;
        const data: LockWorkerData = {
          locks: vm.handle.locks as SharedArrayBuffer,
          index: 0,
          name,
          cpu: 1,
          mode: 'hold',
          hold: 'spin',
        };
        const w = new Worker(new URL('./lock-worker.js', import.meta.url), { workerData: data });
        vm.watchWorker(w, 1);
        const exit = once(w, 'exit');
        await next(w, 'locked');
        await w.terminate();
        await exit;
        const dead = isError(
          'EOWNERDEAD',
          new RegExp(`^Cannot attach vmalloc: the last worker of cpu 1 died holding ${name}`),
        );
        assert.throws(() => attachVmalloc(vm.handle, { cpu: 1 }), dead);
        assert.throws(
          () => attachVmalloc(vm.handle, { cpu: 1 }),
          dead,
          'still refused: the claim was not kept',
        );
        assert.equal(isDead(vm, 1), true);
        attachVmalloc(vm.handle, { cpu: 2, logger: null }); // other ids are fine
      },
    );
  });
}
