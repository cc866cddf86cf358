/**
 * Worker of cpu-claim.test.ts: attaches to a shared vmalloc as `cpu` and reports how that
 * went ({type: 'attach', ok, code, message}); refused, it exits. Attached, it obeys:
 *
 *   work    vmalloc, write, read back and vfree a few areas; reports 'worked'
 *   detach  vm.detach(), reports 'detached', exits
 *   quit    exits still attached (as a worker that dies would)
 */

import { parentPort, workerData } from 'node:worker_threads';
import { attachVmalloc, VmallocError, type Vmalloc, type VmallocHandle } from '../../src/index.js';

export type ClaimWorkerMessage =
  | { type: 'attach'; ok: boolean; code?: string; message?: string }
  | { type: 'worked'; ok: boolean; message?: string }
  | { type: 'detached' };

const data = workerData as { handle: VmallocHandle; cpu: number };
const port = parentPort!;
const say = (m: ClaimWorkerMessage): void => port.postMessage(m);

let vm: Vmalloc | null = null;
try {
  vm = attachVmalloc(data.handle, { cpu: data.cpu, logger: null });
  say({ type: 'attach', ok: true });
} catch (e) {
  const err = e as VmallocError;
  say({ type: 'attach', ok: false, code: err.code, message: err.message });
  port.close();
}

function work(v: Vmalloc): void {
  const addrs: number[] = [];
  for (let k = 1; k <= 8; k++) {
    const a = v.vmalloc(k * v.pageSize);
    if (a === null) throw new VmallocError('ENOMEM', 'vmalloc failed');
    v.writeU8(a + k * v.pageSize - 1, k);
    addrs.push(a);
  }
  addrs.forEach((a, i) => {
    if (v.readU8(a + (i + 1) * v.pageSize - 1) !== i + 1) throw new Error('read back differs');
    v.vfree(a);
  });
}

if (vm !== null) {
  const v = vm;
  port.on('message', (m: { type: 'work' | 'detach' | 'quit' }) => {
    if (m.type === 'work') {
      try {
        work(v);
        say({ type: 'worked', ok: true });
      } catch (e) {
        say({ type: 'worked', ok: false, message: String(e) });
      }
    } else if (m.type === 'detach') {
      v.detach();
      say({ type: 'detached' });
      port.close();
    } else {
      port.close();
    }
  });
}
