/**
 * Worker of recovery-fault.test.ts. Two roles, both doing random vmalloc / vfree / vmap /
 * vunmap / purge with an owner signature written into every area (its cpu and a serial at the
 * first and last byte):
 *
 *   victim    installs the step hook: at the `nth` time step `step` runs it reports
 *             {type: 'parked', step} and blocks forever, where the test terminates it (or, at
 *             `killAfterOps` > 0, it runs on and the test terminates it at a random moment).
 *             If the step never comes within its operations it reports {type: 'unreached'}.
 *   survivor  runs until ctl[STOP] is set, then reads back every area it holds and reports
 *             {type: 'verified', areas, bad, ops} (or {type: 'error', message}).
 */

import { parentPort, workerData } from 'node:worker_threads';
import { attachVmalloc, type Vmalloc } from '../../src/index.js';
import { setStepHook } from '../../src/shared/step-hook.js';
import { Rng } from '../helpers/rng.js';

import {
  FOREVER,
  STOP,
  VICTIM_OPS,
  type RecoveryWorkerData,
  type RecoveryWorkerMessage,
} from './recovery-protocol.js';

const data = workerData as RecoveryWorkerData;
const port = parentPort!;
const say = (m: RecoveryWorkerMessage): void => port.postMessage(m);
const ctl = new Int32Array(data.ctl);

interface Held {
  addr: number;
  bytes: number;
  sig: number;
  /** Frames of a vmap area (the caller's), else null. */
  pfns: Int32Array | null;
}

function sign(vm: Vmalloc, h: Held): void {
  vm.writeU8(h.addr, data.cpu);
  vm.writeU8(h.addr + 1, h.sig & 255);
  vm.writeU8(h.addr + h.bytes - 1, (h.sig >> 8) & 255);
}

function intact(vm: Vmalloc, h: Held): boolean {
  return (
    vm.readU8(h.addr) === data.cpu &&
    vm.readU8(h.addr + 1) === (h.sig & 255) &&
    vm.readU8(h.addr + h.bytes - 1) === ((h.sig >> 8) & 255)
  );
}

function release(vm: Vmalloc, h: Held): void {
  if (h.pfns === null) {
    vm.vfree(h.addr);
  } else {
    vm.vunmap(h.addr);
    vm.freePages(h.pfns);
  }
}

/** One random operation; returns false when a held area was found damaged. */
function step(vm: Vmalloc, rng: Rng, held: Held[], serial: number): boolean {
  const page = vm.pageSize;
  const r = rng.below(20);
  if (held.length > 0 && (r < 7 || held.length > 48)) {
    const k = rng.below(held.length);
    const h = held[k]!;
    held[k] = held[held.length - 1]!;
    held.pop();
    const ok = intact(vm, h);
    release(vm, h);
    return ok;
  }
  if (r === 7) {
    vm.purge();
    return true;
  }
  let h: Held | null = null;
  if (r === 8) {
    const pfns = vm.allocPages(2);
    const addr = pfns.length === 2 ? vm.vmap(pfns) : null;
    if (addr === null) vm.freePages(pfns);
    else h = { addr, bytes: 2 * page, sig: serial, pfns };
  } else {
    let pages = 1 + rng.below(8);
    if (r === 9)
      pages = 520 + rng.below(40); // a pages array of its own (nested area)
    else if (r === 10) pages = 300; // frees enough pages to drain a cpu's page list
    const align = r === 11 ? 16 * page : undefined; // splits a free block in the middle
    const addr = vm.vmalloc(pages * page, align === undefined ? undefined : { align });
    if (addr !== null) h = { addr, bytes: pages * page, sig: serial, pfns: null };
  }
  if (h !== null) {
    sign(vm, h);
    held.push(h);
  }
  return true;
}

function run(): void {
  const vm = attachVmalloc(data.handle, { cpu: data.cpu, logger: null });
  const rng = new Rng(data.seed);
  const held: Held[] = [];
  if (data.role === 'victim') {
    let hits = 0;
    setStepHook((s) => {
      if (s !== data.step || ++hits < data.nth) return;
      setStepHook(null);
      say({ type: 'parked', step: s });
      Atomics.wait(ctl, FOREVER, 0); // until terminated, in the middle of the operation
    });
    for (let op = 1; op <= data.maxOps; op++) {
      step(vm, rng, held, op);
      Atomics.store(ctl, VICTIM_OPS, op);
    }
    setStepHook(null);
    if (data.step !== 0) say({ type: 'unreached' });
    return;
  }
  let ops = 0;
  let bad = 0;
  while (Atomics.load(ctl, STOP) === 0) {
    if (!step(vm, rng, held, ++ops)) bad++;
  }
  for (const h of held) if (!intact(vm, h)) bad++;
  say({ type: 'verified', areas: held.length, bad, ops });
}

try {
  run();
} catch (e) {
  say({ type: 'error', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
}
