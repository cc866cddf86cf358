/**
 * Worker of shared-frames.test.ts: attached as `cpu`, waits for the start flag, then maps the
 * same user frames again and again (vmap, a write through the map, vunmap) and reports how
 * many maps it made.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { attachVmalloc, type VmallocHandle } from '../../src/index.js';

const data = workerData as {
  handle: VmallocHandle;
  cpu: number;
  pages: Int32Array;
  start: SharedArrayBuffer;
  rounds: number;
};
const vm = attachVmalloc(data.handle, { cpu: data.cpu, logger: null });
const start = new Int32Array(data.start);
Atomics.wait(start, 0, 0);
let maps = 0;
for (let k = 0; k < data.rounds; k++) {
  const a = vm.vmap(data.pages);
  if (a === null) continue;
  maps++;
  vm.writeU8(a + (k % data.pages.length) * vm.pageSize + data.cpu, k & 0xff);
  vm.vunmap(a);
}
parentPort!.postMessage({ type: 'done', maps });
