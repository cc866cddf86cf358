/**
 * Worker of recovery-fault.test.ts. Two roles, both doing random vmalloc / vfree / vmap /
 * vunmap / vm_map_ram (small, from the vmap blocks, and large) / vm_unmap_ram / purge with an
 * owner signature written into every area (its cpu and a serial at the first and last byte).
 * The victim also runs two bursts every BURST_EVERY operations, so that the steps a random
 * mix reaches seldom or never come in every trial: POOL_BURST areas of 255 pages (get_vm_area,
 * no frames) freed together push vmap_lazy_nr past lazy_max_pages(), whose drain refills the
 * nodes' pools, and a few more areas of that size take from them; a burst of vm_map_ram
 * mappings fills a vmap block and unmaps them all (a block fully dirty is freed), then a
 * purge frees the fragmented one; a burst of RCU_BURST kvfreeRcu fills a batch, which the
 * victim frees at a later call once its grace period is over; a burst of PCPU_BURST percpu
 * objects of 32 KiB populates fresh pages and makes chunks, and freeing them all destroys the
 * last emptied chunk (two empty ones: one is kept). The random mix holds small percpu objects
 * too, signed in the first and the last CPU's copy.
 *
 * Each trial's data comes in a message (RecoveryWorkerData); a survivor serves one trial after
 * another, a victim one.
 *
 *   victim    installs the step hook: at the `nth` time step `step` runs it reports
 *             {type: 'parked', step} and blocks forever, where the test terminates it (or, at
 *             `killAfterOps` > 0, it runs on and the test terminates it at a random moment).
 *             If the step never comes within its operations it reports {type: 'unreached'}.
 *   survivor  runs until ctl[STOP] is set, then reads back every area it holds and reports
 *             {type: 'verified', areas, bad, ops} (or {type: 'error', message}).
 */

import { parentPort } from 'node:worker_threads';
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

const port = parentPort!;
const say = (m: RecoveryWorkerMessage): void => port.postMessage(m);
/** The current trial's (a survivor serves one trial after another). */
let data: RecoveryWorkerData;
let ctl: Int32Array;

interface Held {
  addr: number;
  bytes: number;
  sig: number;
  /** Frames of a vmap or vm_map_ram area (the caller's), else null. */
  pfns: Int32Array | null;
  /** Pages of a vm_map_ram mapping, else 0. */
  ram: number;
  /** A percpu object (addr: CPU 0's copy; signed there and in the last CPU's copy). */
  pcpu?: boolean;
}

/** The victim's bursts come every this many operations. */
const BURST_EVERY = 50;
/** Areas of the pools burst: their 256 pages each (guard included) pass lazy_max_pages(). */
const POOL_BURST = 70;
/** Mappings of 8 pages of the vm_map_ram burst: more than a block of 256 pages. */
const RAM_BURST = 40;
/** Areas of the kvfree_rcu burst: more than a batch (KVFREE_BATCH, 128). */
const RCU_BURST = 130;
/** Objects of 32 KiB (PCPU_MIN_UNIT_SIZE) of the percpu burst: four fill a chunk. */
const PCPU_BURST = 9;
const PCPU_BIG = 32 * 1024;

/** The last byte's address: of the last CPU's copy for a percpu object. */
function lastByte(vm: Vmalloc, h: Held): number {
  const base = h.pcpu === true ? vm.perCpuPtr(h.addr, vm.config.nrCpus - 1) : h.addr;
  return base + h.bytes - 1;
}

function sign(vm: Vmalloc, h: Held): void {
  vm.writeU8(h.addr, data.cpu);
  vm.writeU8(h.addr + 1, h.sig & 255);
  vm.writeU8(lastByte(vm, h), (h.sig >> 8) & 255);
}

function intact(vm: Vmalloc, h: Held): boolean {
  return (
    vm.readU8(h.addr) === data.cpu &&
    vm.readU8(h.addr + 1) === (h.sig & 255) &&
    vm.readU8(lastByte(vm, h)) === ((h.sig >> 8) & 255)
  );
}

/**
 * Frees the caller's frames. A dead lock holder met on the way makes freePages recover and
 * throw EOWNERDEAD (some frames may be free already): the others then stay allocated, a leak
 * of this thread's own, not a loss.
 */
function freeFrames(vm: Vmalloc, pfns: Int32Array): void {
  try {
    vm.freePages(pfns);
  } catch (e) {
    if (!(e instanceof Error && (e as Error & { code?: string }).code === 'EOWNERDEAD')) throw e;
  }
}

function release(vm: Vmalloc, h: Held): void {
  if (h.pcpu === true) {
    vm.freePercpu(h.addr);
  } else if (h.pfns === null) {
    vm.vfree(h.addr);
  } else if (h.ram !== 0) {
    vm.vmUnmapRam(h.addr, h.ram);
    freeFrames(vm, h.pfns);
  } else {
    vm.vunmap(h.addr);
    freeFrames(vm, h.pfns);
  }
}

/** The victim's pools burst (see the header): get_vm_area areas of 255 pages, all freed. */
function poolBurst(vm: Vmalloc): void {
  const addrs: number[] = [];
  for (let k = 0; k < POOL_BURST; k++) {
    const a = vm.getVmArea(255 * vm.pageSize);
    if (a !== null) addrs.push(a.addr);
  }
  for (const a of addrs) vm.vfree(a);
  // (Now, before a purge's full decay empties the pools again.)
  addrs.length = 0;
  for (let k = 0; k < 8; k++) {
    const a = vm.getVmArea(255 * vm.pageSize);
    if (a !== null) addrs.push(a.addr);
  }
  for (const a of addrs) vm.vfree(a);
}

/** The victim's percpu burst (see the header). */
function pcpuBurst(vm: Vmalloc): void {
  const ptrs: number[] = [];
  for (let k = 0; k < PCPU_BURST; k++) {
    const p = vm.allocPercpu(PCPU_BIG, 8);
    if (p !== null) ptrs.push(p);
  }
  for (const p of ptrs) vm.freePercpu(p);
}

/** The victim's kvfree_rcu burst (see the header). */
function rcuBurst(vm: Vmalloc): void {
  for (let k = 0; k < RCU_BURST; k++) {
    const a = vm.vmalloc(vm.pageSize);
    if (a !== null) vm.kvfreeRcu(a);
  }
}

/** The victim's vm_map_ram burst (see the header). */
function ramBurst(vm: Vmalloc): void {
  const pfns = vm.allocPages(8);
  if (pfns.length !== 8) {
    freeFrames(vm, pfns);
    return;
  }
  const addrs: number[] = [];
  for (let k = 0; k < RAM_BURST; k++) {
    const a = vm.vmMapRam(pfns, 8);
    if (a !== null) addrs.push(a);
  }
  for (const a of addrs) vm.vmUnmapRam(a, 8);
  freeFrames(vm, pfns);
  vm.purge();
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
    if (addr === null) freeFrames(vm, pfns);
    else h = { addr, bytes: 2 * page, sig: serial, pfns, ram: 0 };
  } else if (r === 16) {
    const bytes = 2 + rng.below(3000);
    const addr = vm.allocPercpu(bytes, 1 << rng.below(4));
    if (addr !== null) h = { addr, bytes, sig: serial, pfns: null, ram: 0, pcpu: true };
  } else if (r >= 12 && r <= 15) {
    // vm_map_ram: up to 8 pages from this cpu's vmap blocks, or 65-72 in an area of its own.
    const n = r === 15 ? 65 + rng.below(8) : 1 + rng.below(8);
    const pfns = vm.allocPages(n);
    const addr = pfns.length === n ? vm.vmMapRam(pfns, n) : null;
    if (addr === null) freeFrames(vm, pfns);
    else h = { addr, bytes: n * page, sig: serial, pfns, ram: n };
  } else {
    let pages = 1 + rng.below(8);
    if (r === 9)
      pages = 520 + rng.below(40); // a pages array of its own (nested area)
    else if (r === 10) pages = 300; // frees enough pages to drain a cpu's page list
    const align = r === 11 ? 16 * page : undefined; // splits a free block in the middle
    const addr = vm.vmalloc(pages * page, align === undefined ? undefined : { align });
    if (addr !== null) h = { addr, bytes: pages * page, sig: serial, pfns: null, ram: 0 };
  }
  if (h !== null) {
    sign(vm, h);
    held.push(h);
  }
  return true;
}

function run(): void {
  ctl = new Int32Array(data.ctl);
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
      if (op % BURST_EVERY === BURST_EVERY / 2) poolBurst(vm);
      else if (op % BURST_EVERY === 0) ramBurst(vm);
      else if (op % BURST_EVERY === BURST_EVERY / 5) rcuBurst(vm);
      else if (op % BURST_EVERY === (BURST_EVERY * 3) / 5) pcpuBurst(vm);
      else step(vm, rng, held, op);
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
  vm.detach(); // (the next trial's subsystem is another)
  say({ type: 'verified', areas: held.length, bad, ops });
}

// A trial's data comes by message, so that the test starts the worker ahead of its trial
// (a victim while the previous trial runs) and a survivor serves one trial after another.
port.on('message', (d: RecoveryWorkerData) => {
  data = d;
  try {
    run();
  } catch (e) {
    say({ type: 'error', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
});
