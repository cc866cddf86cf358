/**
 * Worker of page-table.test.ts: one thread mapping its share of every region of a shared page
 * table at the same moment as its peers (a barrier per region), so the threads race to make
 * the region's pud, pmd and pte tables and to grow the buffer; then unmapping its share of the
 * odd regions.
 *
 * Messages out: {type: 'done', errors, lostRaces}   {type: 'error', message}
 */

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { PageTable, type PageTableHandle } from '../../src/mm/page-table.js';

export interface PageTableWorkerData {
  handle: PageTableHandle;
  /** This worker's number in [0, workers). */
  worker: number;
  workers: number;
  /** Base address of each region (2 MiB, one pte table with 4 KiB pages). */
  regions: number[];
  /** Pages per chunk: chunk c of a region belongs to worker c % workers. */
  chunk: number;
  /** One Int32 word: the barrier counter. */
  barrier: SharedArrayBuffer;
}

export interface PageTableWorkerDone {
  type: 'done';
  errors: string[];
  lostRaces: number;
}

export const REGION_PAGES = 512;

/** The pfn every thread maps page k of region r to. */
export function pfnOf(r: number, k: number): number {
  return (r * REGION_PAGES + k) * 3 + 1;
}

function run(data: PageTableWorkerData): PageTableWorkerDone {
  const pt = PageTable.attach(data.handle);
  const page = pt.pageSize;
  const gate = new Int32Array(data.barrier);
  let round = 0;
  const barrier = (): void => {
    round++;
    const target = data.workers * round;
    if (Atomics.add(gate, 0, 1) + 1 === target) {
      Atomics.notify(gate, 0);
      return;
    }
    // Spin (all leave within a moment of the last arrival, to race), then sleep if it is long.
    for (let spins = 0; Atomics.load(gate, 0) < target; spins++) {
      if (spins > 100_000) Atomics.wait(gate, 0, Atomics.load(gate, 0), 1);
    }
  };
  const errors: string[] = [];
  const pfns = new Int32Array(REGION_PAGES);
  const chunks = REGION_PAGES / data.chunk;
  data.regions.forEach((base, r) => {
    for (let k = 0; k < REGION_PAGES; k++) pfns[k] = pfnOf(r, k);
    barrier();
    for (let c = data.worker; c < chunks; c += data.workers) {
      pt.map(base + c * data.chunk * page, pfns, c * data.chunk, data.chunk);
    }
    for (let c = data.worker; c < chunks; c += data.workers) {
      for (let k = c * data.chunk; k < (c + 1) * data.chunk; k++) {
        const got = pt.lookup(base + k * page);
        if (got !== pfns[k]) errors.push(`region ${r} page ${k}: pfn ${got}, mapped ${pfns[k]}`);
      }
    }
  });
  data.regions.forEach((base, r) => {
    barrier();
    if (r % 2 === 0) return;
    for (let c = data.worker; c < chunks; c += data.workers) {
      pt.unmap(base + c * data.chunk * page, data.chunk);
    }
  });
  return { type: 'done', errors, lostRaces: pt.lostRaces };
}

if (!isMainThread) {
  try {
    parentPort!.postMessage(run(workerData as PageTableWorkerData));
  } catch (e) {
    parentPort!.postMessage({
      type: 'error',
      message: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e),
    });
  }
}
