/**
 * Buffers that can grow in place.
 *
 * Holds: the one helper that makes and grows the backing memory of every arena.
 * Invariant: a buffer only ever grows; views made over an older, shorter length stay valid
 * (they just do not reach the new bytes), so a reader refreshes its views when the arena's
 * shared capacity word says the buffer grew.
 * Callers: record arenas (src/kva/vmap-area.ts and later arenas).
 *
 * A SharedArrayBuffer is used whenever the platform has one (Node always does; browsers only
 * when cross-origin isolated). Without it a resizable ArrayBuffer gives the same single-thread
 * behaviour, so the library still works as a plain allocator in a non-isolated page.
 */

export type AnyBuffer = SharedArrayBuffer | ArrayBuffer;

/** Options of the growable constructors; @types/node for Node 20 does not declare them yet. */
type GrowableCtor = new (length: number, options: { maxByteLength: number }) => AnyBuffer;

export const hasSharedMemory: boolean = typeof SharedArrayBuffer === 'function';

/** A buffer of `bytes` bytes that may later grow to `maxBytes`. */
export function makeGrowableBuffer(bytes: number, maxBytes: number, shared: boolean): AnyBuffer {
  const Ctor = (shared ? SharedArrayBuffer : ArrayBuffer) as unknown as GrowableCtor;
  return new Ctor(bytes, { maxByteLength: Math.max(bytes, maxBytes) });
}

/** A fixed-size buffer, shared when asked for. */
export function makeFixedBuffer(bytes: number, shared: boolean): AnyBuffer {
  return shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
}

/**
 * Grows `buf` to at least `bytes` (never shrinks). Throws RangeError beyond its maximum.
 * Two threads may race to grow the same shared buffer: a grow to a length another thread has
 * already passed fails, and is then simply done.
 */
export function growBuffer(buf: AnyBuffer, bytes: number): void {
  if (buf.byteLength >= bytes) return;
  try {
    if (buf instanceof ArrayBuffer) {
      (buf as unknown as { resize(n: number): void }).resize(bytes);
    } else {
      (buf as unknown as { grow(n: number): void }).grow(bytes);
    }
  } catch (e) {
    if (buf.byteLength >= bytes) return;
    throw e;
  }
}

/** The largest size `buf` may grow to. */
export function maxByteLengthOf(buf: AnyBuffer): number {
  return (buf as unknown as { maxByteLength?: number }).maxByteLength ?? buf.byteLength;
}
