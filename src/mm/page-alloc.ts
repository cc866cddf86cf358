/**
 * Physical memory: page frames in a SharedArrayBuffer and the allocator that hands them out.
 *
 * Holds: the frames (nrFrames * pageSize bytes, grown on first use), a stack of free frame
 * numbers (pfns), a per-frame state byte, and the zone lock.
 * Invariant: every pfn below the high-water mark is either on the free stack (state FREE) or
 * handed out (state USED), never both; pfns at or above it have never been used.
 * Callers: the vmalloc layer (vmalloc pages, vmap pages given by users), tests.
 *
 * Kernel: the buddy allocator's order-0 path (alloc_pages, alloc_pages_bulk, __free_page).
 * Differs from kernel: order-0 only; no zones, watermarks or reclaim: when the frames run out,
 * allocation fails.
 *
 *   frames:   | pfn 0 | pfn 1 | pfn 2 | ...                | pfn nrFrames-1 |   pageSize bytes each
 *   freeList: | pfn | pfn | ... (NFREE deep)                                  recycled frames
 *   state:    | 0/1 | 0/1 | ...                                               1 byte per frame
 */

import {
  type AnyBuffer,
  growBuffer,
  makeFixedBuffer,
  makeGrowableBuffer,
} from '../shared/buffers.js';

const NR_FRAMES = 0; // frames the memory holds at most
const HWM = 1; // pfns [0, HWM) have been handed out at least once
const NFREE = 2; // depth of the free stack
const CAP_FRAMES = 3; // frames the frames buffer holds now
const USED = 4; // frames handed out now
const META_WORDS = 8;

const FREE = 0;
const IN_USE = 1;

/** Frames are added to the buffer in steps of this many bytes. */
const GROW_STEP = 16 * 2 ** 20;

export interface PageAllocatorBuffers {
  readonly meta: AnyBuffer;
  readonly frames: AnyBuffer;
  readonly freeList: AnyBuffer;
  readonly state: AnyBuffer;
  readonly pageSize: number;
}

export class PageAllocator {
  readonly buffers: PageAllocatorBuffers;
  readonly pageSize: number;
  private readonly meta: Int32Array;
  private readonly freeList: Int32Array;
  private readonly state: Uint8Array;
  /** All frames as bytes; re-made when the frames buffer grows. */
  private mem!: Uint8Array;
  private memFrames = -1;
  /** A page of zeros (not shared), the source of zero(). */
  private readonly zeroPage: Uint8Array;

  constructor(buffers: PageAllocatorBuffers) {
    this.buffers = buffers;
    this.pageSize = buffers.pageSize;
    this.meta = new Int32Array(buffers.meta);
    this.freeList = new Int32Array(buffers.freeList);
    this.state = new Uint8Array(buffers.state);
    this.zeroPage = new Uint8Array(buffers.pageSize);
    this.refresh();
  }

  static create(physicalBytes: number, pageSize: number, shared: boolean): PageAllocator {
    const nrFrames = Math.floor(physicalBytes / pageSize);
    const initialFrames = Math.min(nrFrames, Math.max(1, Math.floor(GROW_STEP / pageSize)));
    const buffers: PageAllocatorBuffers = {
      meta: makeFixedBuffer(META_WORDS * 4, shared),
      frames: makeGrowableBuffer(initialFrames * pageSize, nrFrames * pageSize, shared),
      freeList: makeFixedBuffer(nrFrames * 4, shared),
      state: makeFixedBuffer(nrFrames, shared),
      pageSize,
    };
    const meta = new Int32Array(buffers.meta);
    meta[NR_FRAMES] = nrFrames;
    meta[CAP_FRAMES] = initialFrames;
    return new PageAllocator(buffers);
  }

  /** Frames of physical memory in all (totalram_pages()). */
  get nrFrames(): number {
    return this.meta[NR_FRAMES]!;
  }

  /** Frames handed out now. */
  get used(): number {
    return this.meta[USED]!;
  }

  /** Frames that can still be handed out. */
  get free(): number {
    return this.meta[NR_FRAMES]! - this.meta[USED]!;
  }

  /** Re-makes the byte view after the frames buffer grew (here or in another thread). */
  refresh(): void {
    const frames = Atomics.load(this.meta, CAP_FRAMES);
    if (frames !== this.memFrames) {
      this.mem = new Uint8Array(this.buffers.frames, 0, frames * this.pageSize);
      this.memFrames = frames;
    }
  }

  /** All frame bytes; frame pfn starts at pfn * pageSize. Valid until the next growth. */
  bytes(): Uint8Array {
    return this.mem;
  }

  /** One frame, or -1 when memory is exhausted. The caller holds the zone lock. */
  allocLocked(): number {
    const meta = this.meta;
    let pfn: number;
    const nfree = meta[NFREE]!;
    if (nfree > 0) {
      pfn = this.freeList[nfree - 1]!;
      meta[NFREE] = nfree - 1;
    } else {
      pfn = meta[HWM]!;
      if (pfn >= meta[NR_FRAMES]!) return -1;
      if (pfn >= meta[CAP_FRAMES]!) this.growFrames(pfn + 1);
      meta[HWM] = pfn + 1;
    }
    this.state[pfn] = IN_USE;
    meta[USED] = meta[USED]! + 1;
    return pfn;
  }

  /**
   * Up to `n` frames into out[at..]; returns how many were allocated (fewer when memory runs
   * out). The caller holds the zone lock. Kernel: alloc_pages_bulk().
   */
  allocBulkLocked(n: number, out: Int32Array, at: number): number {
    let got = 0;
    while (got < n) {
      const pfn = this.allocLocked();
      if (pfn < 0) break;
      out[at + got++] = pfn;
    }
    return got;
  }

  /** Returns a frame. The caller holds the zone lock. Kernel: __free_page(). */
  freeLocked(pfn: number): void {
    const meta = this.meta;
    this.state[pfn] = FREE;
    const nfree = meta[NFREE]!;
    this.freeList[nfree] = pfn;
    meta[NFREE] = nfree + 1;
    meta[USED] = meta[USED]! - 1;
  }

  /** Is `pfn` a frame that is handed out now? */
  isInUse(pfn: number): boolean {
    return Number.isInteger(pfn) && pfn >= 0 && pfn < this.meta[HWM]! && this.state[pfn] === IN_USE;
  }

  /**
   * Fills frame `pfn` with zeros, by copying a page of zeros: on a SharedArrayBuffer V8's
   * TypedArray.fill stores byte by byte (18x slower, measured), while set() copies in bulk.
   */
  zero(pfn: number): void {
    this.refresh();
    this.mem.set(this.zeroPage, pfn * this.pageSize);
  }

  private growFrames(need: number): void {
    const step = Math.max(1, Math.floor(GROW_STEP / this.pageSize));
    const frames = Math.min(this.meta[NR_FRAMES]!, Math.max(need, this.meta[CAP_FRAMES]! + step));
    growBuffer(this.buffers.frames, frames * this.pageSize);
    Atomics.store(this.meta, CAP_FRAMES, frames);
    this.refresh();
  }

  /** Invariant check: free stack and state bytes agree, counts add up. Returns problems. */
  checkProblems(): string[] {
    const problems: string[] = [];
    const hwm = this.meta[HWM]!;
    const nfree = this.meta[NFREE]!;
    const seen = new Uint8Array(hwm);
    for (let k = 0; k < nfree; k++) {
      const pfn = this.freeList[k]!;
      if (pfn < 0 || pfn >= hwm)
        problems.push(`free list holds pfn ${pfn} beyond the high-water mark ${hwm}`);
      else if (seen[pfn]) problems.push(`pfn ${pfn} is twice on the free list`);
      else if (this.state[pfn] !== FREE)
        problems.push(`pfn ${pfn} is on the free list but marked in use`);
      else seen[pfn] = 1;
    }
    let inUse = 0;
    for (let pfn = 0; pfn < hwm; pfn++) if (this.state[pfn] === IN_USE) inUse++;
    if (inUse + nfree !== hwm)
      problems.push(`${inUse} frames in use + ${nfree} free != ${hwm} ever used`);
    if (inUse !== this.meta[USED])
      problems.push(`used counter ${this.meta[USED]} != ${inUse} frames in use`);
    return problems;
  }
}
