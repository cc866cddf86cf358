/**
 * Worker of vmap-space.test.ts: a set number of random allocs and frees (a count, not a
 * duration, so that what it did does not depend on the machine's speed or load) on a
 * concurrent VmapSpace shared by several workers. Every page of a live area is claimed in a
 * shared owner map (Atomics) and must not already belong to anyone; it is released, still
 * ours, right before the area is freed.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { VmapSpace, type Range, type VmapSpaceHandle } from '../../src/index.js';
import { Rng } from '../helpers/rng.js';

export interface SpaceWorkerReport {
  id: number;
  allocs: number;
  frees: number;
  windowed: number;
  aligned: number;
  /** Requests without a window that failed. */
  nulls: number;
  windowNulls: number;
  errors: string[];
  kept: Range[];
}

const data = workerData as {
  handle: VmapSpaceHandle;
  id: number;
  seed: number;
  /** Random operations (alloc or free) to make, in batches of 64. */
  ops: number;
  owners: SharedArrayBuffer;
  start: SharedArrayBuffer;
};
const port = parentPort!;
const space = VmapSpace.attach(data.handle, { cpu: data.id });
const owners = new Uint8Array(data.owners);
const rng = new Rng(data.seed);
const page = space.pageSize;
const units = (space.end - space.start) / page;
const report: SpaceWorkerReport = {
  id: data.id,
  allocs: 0,
  frees: 0,
  windowed: 0,
  aligned: 0,
  nulls: 0,
  windowNulls: 0,
  errors: [],
  kept: [],
};
const live: Range[] = [];

function error(msg: string): void {
  if (report.errors.length < 20) report.errors.push(`worker ${data.id}: ${msg}`);
}

function alloc(): void {
  const pages = rng.chance(0.9) ? rng.range(1, 32) : rng.range(33, 256);
  const size = pages * page;
  const opts: { align?: number; vstart?: number; vend?: number } = {};
  if (rng.chance(0.15)) opts.align = page << rng.below(6);
  if (rng.chance(0.15)) {
    const from = rng.below(units / 2);
    opts.vstart = space.start + from * page;
    opts.vend = opts.vstart + (pages + rng.range(0, 4096)) * page;
  }
  const addr = space.alloc(size, opts);
  if (addr === null) {
    // A window may be full; the whole space never is.
    if (opts.vstart === undefined) report.nulls++;
    else report.windowNulls++;
    return;
  }
  report.allocs++;
  if (opts.align !== undefined) {
    report.aligned++;
    if (addr % opts.align !== 0) error(`0x${addr.toString(16)} not aligned to ${opts.align}`);
  }
  if (opts.vstart !== undefined) {
    report.windowed++;
    if (addr < opts.vstart || addr + size > opts.vend!)
      error(`0x${addr.toString(16)}+${size} outside [${opts.vstart}, ${opts.vend})`);
  }
  const first = (addr - space.start) / page;
  for (let u = first; u < first + pages; u++) {
    const was = Atomics.compareExchange(owners, u, 0, data.id);
    if (was !== 0) error(`unit ${u} of new area 0x${addr.toString(16)} is owned by worker ${was}`);
  }
  live.push({ start: addr, end: addr + size });
}

function free(i: number): void {
  const a = live[i]!;
  live[i] = live[live.length - 1]!;
  live.pop();
  const found = space.find(a.start + rng.below((a.end - a.start) / page) * page);
  if (found === null || found.start !== a.start || found.end !== a.end)
    error(`find inside 0x${a.start.toString(16)} gave ${JSON.stringify(found)}`);
  const first = (a.start - space.start) / page;
  for (let u = first; u < (a.end - space.start) / page; u++) {
    const was = Atomics.compareExchange(owners, u, data.id, 0);
    if (was !== data.id) error(`unit ${u} of live area 0x${a.start.toString(16)} owned by ${was}`);
  }
  space.free(a.start);
  report.frees++;
}

const start = new Int32Array(data.start);
while (Atomics.load(start, 0) === 0) Atomics.wait(start, 0, 0, 100);
for (let done = 0; done < data.ops; done += 64) {
  for (let k = 0; k < 64; k++) {
    if (live.length < 4 || (live.length < 100 && rng.chance(0.52))) alloc();
    else free(rng.below(live.length));
  }
}
while (live.length > 10) free(rng.below(live.length));
report.kept = live.splice(0);
port.postMessage(report);
