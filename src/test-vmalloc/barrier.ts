/**
 * The start barrier of test_vmalloc's workers (the kernel holds them with an SRCU read lock
 * until all are created): each worker counts itself in and sleeps until the parent opens it.
 *
 *   Int32 word 0: workers arrived     word 1: 1 once the parent opened the barrier
 */

const ARRIVED = 0;
const OPEN = 1;

export function makeBarrier(): SharedArrayBuffer {
  return new SharedArrayBuffer(8);
}

/** In a worker: counts in, then waits until the barrier opens. */
export function waitAtBarrier(buf: SharedArrayBuffer): void {
  const w = new Int32Array(buf);
  Atomics.add(w, ARRIVED, 1);
  Atomics.notify(w, ARRIVED);
  while (Atomics.load(w, OPEN) === 0) Atomics.wait(w, OPEN, 0, 1000);
}

/** In the parent: resolves once `n` workers wait at the barrier. */
export async function allArrived(buf: SharedArrayBuffer, n: number): Promise<void> {
  const w = new Int32Array(buf);
  for (;;) {
    const seen = Atomics.load(w, ARRIVED);
    if (seen >= n) return;
    const r = Atomics.waitAsync(w, ARRIVED, seen, 1000);
    if (r.async) await r.value;
  }
}

/** In the parent: lets every worker go. */
export function openBarrier(buf: SharedArrayBuffer): void {
  const w = new Int32Array(buf);
  Atomics.store(w, OPEN, 1);
  Atomics.notify(w, OPEN);
}
