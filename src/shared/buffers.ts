/**
 * Buffers that can grow in place.
 *
 * Holds: the helpers that make and grow the backing memory of every arena, and the guarded
 * test for a SharedArrayBuffer.
 * Invariant: a buffer only ever grows; views made over an older, shorter length stay valid
 * (they just do not reach the new bytes), so a reader refreshes its views when the arena's
 * shared capacity word says the buffer grew.
 * Callers: record arenas (src/shared/record-arena.ts, src/kva/vmap-area.ts), page frames and
 * page tables, the string table, VmapSpace, Vmalloc; the lock table (fixed buffers, and
 * isSharedBuffer to know whether a waiter may sleep).
 *
 * A SharedArrayBuffer is used whenever the platform has one (Node always does; browsers only
 * when cross-origin isolated). Without it a resizable ArrayBuffer gives the same single-thread
 * behaviour, so the library still works as a plain allocator in a non-isolated page.
 */

import { VmallocError } from '../errors.js';

export type AnyBuffer = SharedArrayBuffer | ArrayBuffer;

/** Options of the growable constructors; @types/node for Node 20 does not declare them yet. */
type GrowableCtor = new (length: number, options: { maxByteLength: number }) => AnyBuffer;

/**
 * Is `buf` a SharedArrayBuffer? False, and no ReferenceError, where the platform has none
 * (every mention of the global is guarded so: a page without cross-origin isolation).
 */
export function isSharedBuffer(buf: unknown): buf is SharedArrayBuffer {
  return typeof SharedArrayBuffer !== 'undefined' && buf instanceof SharedArrayBuffer;
}

/** The SharedArrayBuffer constructor; a VmallocError (EINVAL) that says why where there is none. */
function sharedCtor(): typeof SharedArrayBuffer {
  if (typeof SharedArrayBuffer === 'undefined') {
    throw new VmallocError(
      'EINVAL',
      'shared: true cannot be met: this platform has no SharedArrayBuffer (a browser page must be cross-origin isolated); pass shared: false',
    );
  }
  return SharedArrayBuffer;
}

/** A buffer of `bytes` bytes that may later grow to `maxBytes`. */
export function makeGrowableBuffer(bytes: number, maxBytes: number, shared: boolean): AnyBuffer {
  const Ctor = (shared ? sharedCtor() : ArrayBuffer) as unknown as GrowableCtor;
  return new Ctor(bytes, { maxByteLength: Math.max(bytes, maxBytes) });
}

/** A fixed-size buffer, shared when asked for. */
export function makeFixedBuffer(bytes: number, shared: boolean): AnyBuffer {
  return shared ? new (sharedCtor())(bytes) : new ArrayBuffer(bytes);
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
