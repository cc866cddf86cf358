/**
 * The pool of page arrays: for every vm_struct, the list of its page frame numbers, kept in
 * one growable Int32 buffer; ranges of slots are handed out by a VmapSpace (this library's own
 * range allocator, with pageSize 1).
 *
 * Holds: the slots and their allocator.
 * Invariant: every live range belongs to exactly one vm_struct; the buffer covers every slot
 * the allocator has handed out.
 * Callers: the vmalloc layer (area->pages).
 *
 * Kernel: area->pages, an array kmalloc'd (or, above a page, itself vmalloc'd: that nested
 * area is modelled by the vmalloc layer; the pfns stay here).
 */

import { growBuffer, makeGrowableBuffer, type AnyBuffer } from '../shared/buffers.js';
import { VmapSpace } from '../kva/vmap-space.js';

export class PagesPool {
  private readonly space: VmapSpace;
  private readonly buffer: AnyBuffer;
  private view: Int32Array;

  constructor(maxSlots: number, shared: boolean) {
    this.space = new VmapSpace({ start: 0, end: maxSlots, pageSize: 1, shared });
    this.buffer = makeGrowableBuffer(64 * 1024, maxSlots * 4, shared);
    this.view = new Int32Array(this.buffer, 0, this.buffer.byteLength / 4);
  }

  /** A range of `n` slots, or -1 when the pool is exhausted. */
  alloc(n: number): number {
    const at = this.space.alloc(n);
    if (at === null) return -1;
    if ((at + n) * 4 > this.buffer.byteLength) {
      growBuffer(this.buffer, Math.max((at + n) * 4, this.buffer.byteLength * 2));
      this.view = new Int32Array(this.buffer, 0, this.buffer.byteLength / 4);
    }
    return at;
  }

  free(at: number): void {
    this.space.free(at);
  }

  /** The slots; valid until the next alloc. */
  slots(): Int32Array {
    if (this.view.length * 4 !== this.buffer.byteLength) {
      this.view = new Int32Array(this.buffer, 0, this.buffer.byteLength / 4);
    }
    return this.view;
  }

  /** Live ranges (for the checker). */
  ranges(): { start: number; end: number }[] {
    return [...this.space.busyAreas()];
  }

  check(): void {
    this.space.check();
  }
}
