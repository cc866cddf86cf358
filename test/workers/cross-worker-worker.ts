/**
 * Worker of cross-worker.test.ts: one CPU of a shared vmalloc doing a set number of random
 * operations (a count, not a duration, so that what it did does not depend on the machine's
 * speed or load), plus hand-offs: areas it fills and posts to a peer, which reads them back
 * through its own attached instance and stamps them; the owner verifies the stamp before
 * freeing.
 *
 * Messages in:  {type: 'check', id, owner, addr, len, seed}   read a peer's area
 *               {type: 'release', id}                         a peer has checked our area
 *               {type: 'exit'}
 * Messages out: {type: 'handoff', id, owner, addr, len, seed}
 *               {type: 'checked', id, owner, by, error}
 *               {type: 'done', report}   {type: 'error', message}
 */

import { parentPort, workerData } from 'node:worker_threads';
import { attachVmalloc, type VmallocHandle } from '../../src/index.js';
import { Churner, type ChurnCounters, type LiveArea } from '../helpers/churn.js';
import { Rng } from '../helpers/rng.js';
import { handoffPattern, stampOf } from './handoff.js';

interface Data {
  handle: VmallocHandle;
  cpu: number;
  seed: number;
  /** Random operations (Churner steps) to make, in batches of 256. */
  steps: number;
  owners: SharedArrayBuffer;
  handoffs: number;
}

export interface WorkerReport {
  cpu: number;
  counters: ChurnCounters;
  errors: string[];
  /** Areas left allocated for the main thread to verify and free. */
  kept: LiveArea[];
  handoffsChecked: number;
  peerChecks: number;
  warnings: string[];
}

const data = workerData as Data;
const port = parentPort!;
const warnings: string[] = [];
const vm = attachVmalloc(data.handle, { cpu: data.cpu, logger: { warn: (m) => warnings.push(m) } });
const rng = new Rng(data.seed);
const churn = new Churner(vm, rng, new Uint8Array(data.owners), 64);

const handed = new Map<number, { addr: number; len: number; seed: number }>();
let released = 0;
let peerChecks = 0;
let onReleased: (() => void) | null = null;

function fail(e: unknown): void {
  port.postMessage({
    type: 'error',
    message: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e),
  });
}

port.on(
  'message',
  (m: { type: string; id: number; owner: number; addr: number; len: number; seed: number }) => {
    try {
      if (m.type === 'check') {
        // A peer's area, read through this worker's own instance.
        const got = vm.read(m.addr, m.len);
        const want = handoffPattern(m.seed, m.len);
        let error: string | null = null;
        for (let k = 0; k < m.len; k++) {
          if (got[k] !== want[k]) {
            error = `cpu ${data.cpu} read byte ${k} of cpu ${m.owner}'s area 0x${m.addr.toString(16)} as ${got[k]}, expected ${want[k]}`;
            break;
          }
        }
        // Stamp the area's last 8 bytes for the owner to read back.
        vm.write(m.addr + m.len - 8, stampOf(data.cpu, m.id));
        peerChecks++;
        port.postMessage({ type: 'checked', id: m.id, owner: m.owner, by: data.cpu, error });
      } else if (m.type === 'release') {
        const h = handed.get(m.id)!;
        handed.delete(m.id);
        const stamp = vm.read(h.addr + h.len - 8, 8);
        const peer = stamp[0]!;
        const want = stampOf(peer, m.id);
        if (!stamp.every((b, k) => b === want[k]))
          churn.errors.push(`cpu ${data.cpu}: the peer's stamp on hand-off ${m.id} is missing`);
        const body = vm.read(h.addr, h.len - 8);
        const pattern = handoffPattern(h.seed, h.len);
        if (!body.every((b, k) => b === pattern[k]))
          churn.errors.push(`cpu ${data.cpu}: hand-off ${m.id} changed while a peer held it`);
        vm.vfree(h.addr);
        released++;
        onReleased?.();
      } else if (m.type === 'exit') {
        port.close();
      }
    } catch (e) {
      fail(e);
    }
  },
);

async function main(): Promise<void> {
  // Hand-offs first, so that peers read them while everyone is busy.
  for (let k = 0; k < data.handoffs; k++) {
    const len = rng.range(1, 24) * vm.pageSize;
    const addr = vm.vmalloc(len)!;
    const seed = rng.u32();
    vm.write(addr, handoffPattern(seed, len));
    const id = data.cpu * 1000 + k;
    handed.set(id, { addr, len, seed });
    port.postMessage({ type: 'handoff', id, owner: data.cpu, addr, len, seed });
  }
  for (let done = 0; done < data.steps; done += 256) {
    for (let k = 0; k < 256; k++) churn.step();
    await new Promise((r) => setImmediate(r)); // let hand-off messages in
  }
  const kept = churn.freeAllBut(rng.range(4, 12));
  if (released < data.handoffs)
    await new Promise<void>((resolve) => {
      onReleased = () => {
        if (released === data.handoffs) resolve();
      };
    });
  const report: WorkerReport = {
    cpu: data.cpu,
    counters: churn.counters,
    errors: churn.errors,
    kept,
    handoffsChecked: released,
    peerChecks,
    warnings,
  };
  port.postMessage({ type: 'done', report });
}

main().catch(fail);
