/**
 * Worker of vm-map-ram.test.ts: attached as `cpu`, waits for the start flag, then maps,
 * fills, verifies and unmaps its own frames `rounds` times (counts 1 to 64 from its vmap
 * blocks, now and then 65 to 80 through the area allocator), and at the end maps `kept`
 * mappings filled with a signature and posts them, for the main thread to read and unmap.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { attachVmalloc, type VmallocHandle } from '../../src/index.js';

export interface Kept {
  addr: number;
  count: number;
  cpu: number;
}

const data = workerData as {
  handle: VmallocHandle;
  cpu: number;
  start: SharedArrayBuffer;
  rounds: number;
  kept: number;
};
const vm = attachVmalloc(data.handle, { cpu: data.cpu, logger: null });
const PAGE = vm.pageSize;
const pages = vm.allocPages(80);
const start = new Int32Array(data.start);
Atomics.wait(start, 0, 0);
let seed = data.cpu * 7919 + 1;
const next = (n: number): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return (seed >>> 8) % n;
};
const errors: string[] = [];
for (let k = 0; k < data.rounds; k++) {
  const count = k % 50 === 49 ? 65 + next(16) : 1 + next(64);
  const a = vm.vmMapRam(pages, count);
  if (a === null) {
    errors.push(`round ${k}: vm_map_ram(${count}) returned null`);
    continue;
  }
  const sig = (data.cpu * 16 + (k & 15)) & 0xff;
  for (let p = 0; p < count; p++) vm.writeU8(a + p * PAGE + data.cpu, sig);
  for (let p = 0; p < count; p++) {
    const got = vm.readU8(a + p * PAGE + data.cpu);
    if (got !== sig) errors.push(`round ${k}: page ${p} reads ${got}, wrote ${sig}`);
  }
  vm.vmUnmapRam(a, count);
}
const kept: Kept[] = [];
for (let k = 0; k < data.kept; k++) {
  const count = 1 + (k % 4);
  const own = vm.allocPages(count);
  const a = vm.vmMapRam(own, count)!;
  for (let p = 0; p < count; p++) vm.writeU8(a + p * PAGE, (data.cpu * 10 + p) & 0xff);
  kept.push({ addr: a, count, cpu: data.cpu });
}
vm.vmUnmapAliases();
vm.detach();
parentPort!.postMessage({ type: 'done', errors, kept });
