/**
 * Interned strings in shared memory (caller names), so a string id stored in a shared record
 * means the same text in every worker.
 *
 * Holds: an append-only table of UTF-8 strings (offsets + bytes) in growable buffers, and a
 * per-thread cache from text to id and back.
 * Invariant: id 0 is "no string"; ids are dense from 1; a published entry never changes.
 * Publishing is one store (the count, last): an append stopped before it (its worker killed,
 * holding the lock) leaves bytes and an offset past the published end that no reader looks
 * at and that the next append overwrites, since it starts from the published end
 * (offsets[count]), not from a separate word; so the table is never inconsistent, and
 * recovery only has to release the lock (it is in the subsystem's lock table).
 * Callers: the vmalloc layer (vm_struct.caller).
 *
 * Appending needs the table's lock when several workers share it; this module takes a Lock
 * handle for that and otherwise only reads.
 */

import { type AnyBuffer, growBuffer, makeFixedBuffer, makeGrowableBuffer } from './buffers.js';
import type { Lock } from './lock.js';

const COUNT = 0; // entries published
const BYTES = 1; // bytes used (for the curious: appends start from offsets[count])
const MAX_STRINGS = 1 << 20;
const MAX_BYTES = 64 * 2 ** 20;

export interface StringTableBuffers {
  readonly meta: AnyBuffer;
  readonly offsets: AnyBuffer;
  readonly bytes: AnyBuffer;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class StringTable {
  readonly buffers: StringTableBuffers;
  private readonly meta: Int32Array;
  private readonly byId: string[] = [''];
  private readonly ids = new Map<string, number>();
  private lastText = '';
  private lastId = 0;

  constructor(
    buffers: StringTableBuffers,
    private readonly lock: Lock | null,
    private readonly cpu: number,
  ) {
    this.buffers = buffers;
    this.meta = new Int32Array(buffers.meta);
  }

  static createBuffers(shared: boolean): StringTableBuffers {
    return {
      meta: makeFixedBuffer(16, shared),
      offsets: makeGrowableBuffer(4096, (MAX_STRINGS + 1) * 4, shared),
      bytes: makeGrowableBuffer(4096, MAX_BYTES, shared),
    };
  }

  /**
   * The id of `text` if this thread already knows it, else 0 (no lock, no sync: the cheap
   * first try of a caller that validates new texts before interning them).
   */
  find(text: string): number {
    if (text === this.lastText && this.lastId !== 0) return this.lastId;
    return this.ids.get(text) ?? 0;
  }

  /** The id of `text`, adding it if new. */
  intern(text: string): number {
    if (text === this.lastText && this.lastId !== 0) return this.lastId;
    let id = this.ids.get(text);
    if (id === undefined) {
      this.lock?.lock(this.cpu);
      try {
        this.sync();
        id = this.ids.get(text) ?? this.append(text);
      } finally {
        this.lock?.unlock();
      }
    }
    this.lastText = text;
    this.lastId = id;
    return id;
  }

  /** The text of `id` ('' for 0). */
  text(id: number): string {
    if (id >= this.byId.length) this.sync();
    return this.byId[id] ?? '';
  }

  /** Reads entries published by other threads into this thread's cache. */
  private sync(): void {
    const count = Atomics.load(this.meta, COUNT);
    if (count + 1 <= this.byId.length) return;
    const offsets = new Int32Array(this.buffers.offsets);
    const bytes = new Uint8Array(this.buffers.bytes);
    for (let id = this.byId.length; id <= count; id++) {
      const text = decoder.decode(bytes.slice(offsets[id - 1]!, offsets[id]!));
      this.byId.push(text);
      this.ids.set(text, id);
    }
  }

  private append(text: string): number {
    const data = encoder.encode(text);
    const count = this.meta[COUNT]!;
    // The published end, not meta[BYTES]: an append that died before publishing may have
    // moved that word past bytes no entry owns.
    const used = new Int32Array(this.buffers.offsets)[count]!;
    if (count + 1 > MAX_STRINGS || used + data.length > MAX_BYTES) {
      throw new RangeError('the string table is full');
    }
    growBuffer(this.buffers.offsets, (count + 2) * 4);
    growBuffer(this.buffers.bytes, used + data.length);
    new Uint8Array(this.buffers.bytes).set(data, used);
    const offsets = new Int32Array(this.buffers.offsets);
    offsets[count + 1] = used + data.length;
    this.meta[BYTES] = used + data.length;
    Atomics.store(this.meta, COUNT, count + 1);
    const id = count + 1;
    this.byId.push(text);
    this.ids.set(text, id);
    return id;
  }
}
