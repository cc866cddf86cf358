/**
 * Worker of `bench space` (space.ts): attaches to the shared space and runs the workload,
 * untimed warm-up first, then the timed pairs once the start word opens; reports its failures.
 *
 * The workload: a ring of `live` ranges of random sizes (1 to `maxPages` pages); each step
 * frees a random one and allocates a new one of a random size in its place (an alloc+free
 * pair); every `longEvery`-th step keeps the old range for good instead (a long-lived range,
 * at most `longMax` a worker), so the space fragments as a real heap does.
 * Callers: space.ts, through new Worker(); nothing imports it.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { VmapSpace, type VmapSpaceHandle } from '../kva/vmap-space.js';
import { type TraceChunk, TraceRecorder } from '../test-vmalloc/trace-record.js';

export interface SpaceWorkerData {
  handle: VmapSpaceHandle;
  cpu: number;
  seed: number;
  pairs: number;
  warmup: number;
  live: number;
  maxPages: number;
  longEvery: number;
  longMax: number;
  /** Int32 words: 0 ready count, 1 start (0: wait), 2 done count. */
  sync: SharedArrayBuffer;
  /**
   * A recorded run (space-record.ts): its trace's shared words (trace-record.ts); every call
   * goes through a recorder, whose chunks are posted as they fill. null: not recorded.
   */
  trace: SharedArrayBuffer | null;
}

export interface SpaceWorkerReport {
  cpu: number;
  nulls: number;
  kept: number;
}

/** What a worker posts: its trace's chunks (recorded runs), then its report, last. */
export type SpaceWorkerMessage =
  { type: 'trace'; chunk: TraceChunk } | ({ type: 'report' } & SpaceWorkerReport);

const d = workerData as SpaceWorkerData;
const attached = VmapSpace.attach(d.handle, { cpu: d.cpu });
// A timed run's worker only ever sees the space itself, a recorded run's only the recording
// view: each run is a new thread, so neither shape slows the other's calls.
const recorder =
  d.trace === null
    ? null
    : new TraceRecorder(d.trace, d.cpu, (chunk) =>
        parentPort!.postMessage({ type: 'trace', chunk } satisfies SpaceWorkerMessage, [
          chunk.records.buffer as ArrayBuffer,
        ]),
      );
const space = recorder === null ? attached : recorder.wrapSpace(attached, d.cpu);
const page = space.pageSize;
const sync = new Int32Array(d.sync);
let x = d.seed >>> 0 || 1;
/** xorshift32: a few integer operations, so the generator costs little next to the space. */
function rnd(n: number): number {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) % n;
}

const ring = new Float64Array(d.live);
const kept: number[] = [];
let nulls = 0;
let step = 0;

function fill(): void {
  for (let k = 0; k < d.live; k++) {
    const a = space.alloc((1 + rnd(d.maxPages)) * page);
    if (a === null) nulls++;
    ring[k] = a ?? -1;
  }
}

function run(pairs: number): void {
  for (let n = 0; n < pairs; n++) {
    const k = rnd(d.live);
    const old = ring[k]!;
    if (++step % d.longEvery === 0 && kept.length < d.longMax) kept.push(old);
    else if (old >= 0) space.free(old);
    const a = space.alloc((1 + rnd(d.maxPages)) * page);
    if (a === null) nulls++;
    ring[k] = a ?? -1;
  }
}

fill();
run(d.warmup);
Atomics.add(sync, 0, 1);
Atomics.notify(sync, 0);
while (Atomics.load(sync, 1) === 0) Atomics.wait(sync, 1, 0, 50);
run(d.pairs);
Atomics.add(sync, 2, 1);
Atomics.notify(sync, 2);
// Untimed: the space is left empty for the next run's check.
for (const a of ring) if (a >= 0) space.free(a);
for (const a of kept) if (a >= 0) space.free(a);
recorder?.flush();
parentPort!.postMessage({
  type: 'report',
  cpu: d.cpu,
  nulls,
  kept: kept.length,
} satisfies SpaceWorkerMessage);
