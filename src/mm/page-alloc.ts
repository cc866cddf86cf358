/**
 * Physical memory: page frames in a SharedArrayBuffer and the allocator that hands them out.
 *
 * Holds: the frames (nrFrames * pageSize bytes, grown on first use), a shared stack of free
 * frame numbers (pfns) under the zone lock, per-CPU page lists, and an owner word per frame.
 * Invariant: every pfn below the high-water mark is either handed out (owner FRAME_AREA or
 * FRAME_USER + n) or free (owner FRAME_FREE: on the shared stack or on exactly one CPU's
 * list), never both; pfns at or above the high-water mark have never been used (FRAME_FREE).
 * Callers: the vmalloc layer (vmalloc pages, vmap pages given by users), tests.
 *
 * Kernel: the buddy allocator's order-0 path (alloc_pages, alloc_pages_bulk, __free_page) and
 * its per-CPU page lists (struct per_cpu_pages: a CPU allocates from and frees to its own
 * list; only a refill or a drain of `batch` pages takes zone->lock).
 * Differs from kernel: order-0 only; no zones, watermarks or reclaim: when the frames run out,
 * allocation fails.
 *
 *   frames:   | pfn 0 | pfn 1 | pfn 2 | ...                | pfn nrFrames-1 |   pageSize bytes each
 *   freeList: | pfn | pfn | ... (NFREE deep)                                  under zone->lock
 *   pcp:      | cpu 0: count, pfns[PCP_HIGH] | cpu 1: ... |                   one CPU each
 *   owner:    | 0 / -1 / 1+n | ...                                         one Int32 per frame
 *
 * The owner word says who may free a frame, so misuse is refused instead of corrupting memory
 * (a frame freed twice, or freed while an area still maps it):
 *   FRAME_FREE (0)       on a free list
 *   FRAME_AREA (-1)      an area's own page: a vmalloc area's, or one handed to vmap() with
 *                        VM_MAP_PUT_PAGES; only that area's vfree() frees it
 *   FRAME_USER + n (1+n) allocated to the user by allocPages() and mapped by n vmap() areas;
 *                        freePages() takes it only at n = 0
 * It is written where the allocator already touches the frame (alloc, free), and by vmap and
 * the unmap of a vmap area (one atomic add per page, since two workers may map one frame).
 */

import {
  type AnyBuffer,
  growBuffer,
  makeFixedBuffer,
  makeGrowableBuffer,
} from '../shared/buffers.js';
import type { Lock } from '../shared/lock.js';
import { S_PCP_DRAIN, S_PCP_REFILL, stepHook } from '../shared/step-hook.js';

const NR_FRAMES = 0; // frames the memory holds at most
const HWM = 1; // pfns [0, HWM) have been handed out at least once
const NFREE = 2; // depth of the shared free stack
const CAP_FRAMES = 3; // frames the frames buffer holds now
const META_WORDS = 8;

/** Owner words: see the header. */
export const FRAME_FREE = 0;
export const FRAME_AREA = -1;
export const FRAME_USER = 1;
/** What frameOwner() answers for a number that is not a frame of this memory. */
export const FRAME_NONE = -2;

/** Per-CPU page list: the most pages it keeps (pcp->high) and how many move at once (pcp->batch). */
const PCP_HIGH = 256;
const PCP_BATCH = 64;
const PCP_WORDS = PCP_HIGH + 1;

/** Frames are added to the buffer in steps of this many bytes. */
const GROW_STEP = 16 * 2 ** 20;

export interface PageAllocatorBuffers {
  readonly meta: AnyBuffer;
  readonly frames: AnyBuffer;
  readonly freeList: AnyBuffer;
  readonly state: AnyBuffer;
  readonly pcp: AnyBuffer;
  readonly pageSize: number;
}

export class PageAllocator {
  readonly buffers: PageAllocatorBuffers;
  readonly pageSize: number;
  private readonly meta: Int32Array;
  private readonly freeList: Int32Array;
  private readonly state: Int32Array;
  private readonly pcp: Int32Array;
  private pcpBase = 0;
  private cpu = 0;
  private lock: Lock | null = null;
  /** All frames as bytes; re-made when the frames buffer grows. */
  private mem!: Uint8Array;
  private dv!: DataView;
  private memFrames = -1;
  /** A page of zeros (not shared), the source of zero(). */
  private readonly zeroPage: Uint8Array;

  constructor(buffers: PageAllocatorBuffers) {
    this.buffers = buffers;
    this.pageSize = buffers.pageSize;
    this.meta = new Int32Array(buffers.meta);
    this.freeList = new Int32Array(buffers.freeList);
    this.state = new Int32Array(buffers.state);
    this.pcp = new Int32Array(buffers.pcp);
    this.zeroPage = new Uint8Array(buffers.pageSize);
    this.refresh();
  }

  static createBuffers(
    physicalBytes: number,
    pageSize: number,
    nrCpus: number,
    shared: boolean,
  ): PageAllocatorBuffers {
    const nrFrames = Math.floor(physicalBytes / pageSize);
    const initialFrames = Math.min(nrFrames, Math.max(1, Math.floor(GROW_STEP / pageSize)));
    const buffers: PageAllocatorBuffers = {
      meta: makeFixedBuffer(META_WORDS * 4, shared),
      frames: makeGrowableBuffer(initialFrames * pageSize, nrFrames * pageSize, shared),
      freeList: makeFixedBuffer(nrFrames * 4, shared),
      state: makeFixedBuffer(nrFrames * 4, shared),
      pcp: makeFixedBuffer(nrCpus * PCP_WORDS * 4, shared),
      pageSize,
    };
    const meta = new Int32Array(buffers.meta);
    meta[NR_FRAMES] = nrFrames;
    meta[CAP_FRAMES] = initialFrames;
    return buffers;
  }

  /** This thread allocates as `cpu`; `zoneLock` guards the shared free stack. */
  bindCpu(cpu: number, zoneLock: Lock): void {
    if ((cpu + 1) * PCP_WORDS > this.pcp.length)
      throw new RangeError(`cpu ${cpu} has no page list`);
    this.cpu = cpu;
    this.pcpBase = cpu * PCP_WORDS;
    this.lock = zoneLock;
  }

  /** Frames of physical memory in all (totalram_pages()). */
  get nrFrames(): number {
    return this.meta[NR_FRAMES]!;
  }

  /** Frames handed out now. */
  get used(): number {
    return this.meta[HWM]! - Atomics.load(this.meta, NFREE) - this.pcpCount();
  }

  /** Frames that can still be handed out. */
  get freeFrames(): number {
    return this.nrFrames - this.used;
  }

  /** Re-makes the byte view after the frames buffer grew (here or in another thread). */
  refresh(): void {
    const frames = Atomics.load(this.meta, CAP_FRAMES);
    if (frames !== this.memFrames) {
      this.mem = new Uint8Array(this.buffers.frames, 0, frames * this.pageSize);
      this.dv = new DataView(this.buffers.frames, 0, frames * this.pageSize);
      this.memFrames = frames;
    }
  }

  /** All frame bytes; frame pfn starts at pfn * pageSize. Call refresh() first when shared. */
  bytes(): Uint8Array {
    return this.mem;
  }

  /** The same bytes as a DataView (for multi-byte values). */
  dataView(): DataView {
    return this.dv;
  }

  /**
   * One frame for `owner` (FRAME_AREA or FRAME_USER), or -1 when memory is exhausted.
   * Kernel: alloc_page() via the pcp list.
   */
  alloc(owner: number): number {
    const pcp = this.pcp;
    const base = this.pcpBase;
    let n = pcp[base]!;
    if (n === 0) {
      n = this.refill();
      if (n === 0) return -1;
    }
    const pfn = pcp[base + n]!;
    pcp[base] = n - 1;
    this.state[pfn] = owner;
    return pfn;
  }

  /**
   * Up to `n` frames into out[at..]; returns how many were allocated (fewer when memory runs
   * out), each owned by `owner`. Kernel: alloc_pages_bulk().
   */
  allocBulk(n: number, out: Int32Array, at: number, owner: number): number {
    let got = 0;
    while (got < n) {
      const pfn = this.alloc(owner);
      if (pfn < 0) break;
      out[at + got++] = pfn;
    }
    return got;
  }

  /** Returns a frame. Kernel: __free_page(). */
  free(pfn: number): void {
    const pcp = this.pcp;
    const base = this.pcpBase;
    this.state[pfn] = FRAME_FREE;
    let n = pcp[base]!;
    if (n === PCP_HIGH) n = this.drain();
    pcp[base + 1 + n] = pfn;
    pcp[base] = n + 1;
  }

  /** Is `pfn` a frame that is handed out now? */
  isInUse(pfn: unknown): boolean {
    const owner = this.frameOwner(pfn);
    return owner !== FRAME_FREE && owner !== FRAME_NONE;
  }

  /** The owner word of frame `pfn`, or FRAME_NONE when `pfn` is not a frame of this memory. */
  frameOwner(pfn: unknown): number {
    if (typeof pfn !== 'number' || !Number.isInteger(pfn) || pfn < 0 || pfn >= this.nrFrames)
      return FRAME_NONE;
    return Atomics.load(this.state, pfn);
  }

  /** Sets the owner word of a handed-out frame (an area hands its pages over, or back). */
  setOwner(pfn: number, owner: number): void {
    Atomics.store(this.state, pfn, owner);
  }

  /** One more (delta 1) or one fewer (-1) vmap area maps user frame `pfn`. */
  addMap(pfn: number, delta: number): void {
    Atomics.add(this.state, pfn, delta);
  }

  /** The owner words of the frames below the high-water mark (for the checker). */
  owners(): Int32Array {
    return this.state.subarray(0, this.meta[HWM]!);
  }

  /**
   * Fills frame `pfn` with zeros, by copying a page of zeros: on a SharedArrayBuffer V8's
   * TypedArray.fill stores byte by byte (18x slower, measured), while set() copies in bulk.
   */
  zero(pfn: number): void {
    this.refresh();
    this.mem.set(this.zeroPage, pfn * this.pageSize);
  }

  /** Fills this cpu's list with a batch from the shared stack; returns the list's length. */
  private refill(): number {
    const pcp = this.pcp;
    const base = this.pcpBase;
    const meta = this.meta;
    this.lock?.lock(this.cpu);
    let n = 0;
    while (n < PCP_BATCH) {
      let pfn: number;
      const nfree = meta[NFREE]!;
      if (nfree > 0) {
        pfn = this.freeList[nfree - 1]!;
        meta[NFREE] = nfree - 1;
      } else {
        pfn = meta[HWM]!;
        if (pfn >= meta[NR_FRAMES]!) break;
        if (pfn >= meta[CAP_FRAMES]!) this.growFrames(pfn + 1);
        meta[HWM] = pfn + 1;
      }
      pcp[base + 1 + n++] = pfn;
      if (n === 2) if (stepHook !== null) stepHook(S_PCP_REFILL);
    }
    this.lock?.unlock();
    pcp[base] = n;
    return n;
  }

  /** Returns the older half of this cpu's list to the shared stack; returns the new length. */
  private drain(): number {
    const pcp = this.pcp;
    const base = this.pcpBase;
    const meta = this.meta;
    this.lock?.lock(this.cpu);
    let nfree = meta[NFREE]!;
    for (let k = 0; k < PCP_BATCH; k++) this.freeList[nfree++] = pcp[base + 1 + k]!;
    if (stepHook !== null) stepHook(S_PCP_DRAIN);
    meta[NFREE] = nfree;
    this.lock?.unlock();
    pcp.copyWithin(base + 1, base + 1 + PCP_BATCH, base + 1 + PCP_HIGH);
    const n = PCP_HIGH - PCP_BATCH;
    pcp[base] = n;
    return n;
  }

  /**
   * Returns this cpu's whole page list to the shared stack, for a thread that stops being
   * this cpu (detach): no page stays parked on the list of a cpu nobody may use again.
   * Returns how many pages moved. Kernel: drain_local_pages() (cpu offline).
   */
  drainCpu(): number {
    const pcp = this.pcp;
    const base = this.pcpBase;
    const n = pcp[base]!;
    if (n === 0) return 0;
    const meta = this.meta;
    this.lock?.lock(this.cpu);
    let nfree = meta[NFREE]!;
    for (let k = 1; k <= n; k++) this.freeList[nfree++] = pcp[base + k]!;
    meta[NFREE] = nfree;
    pcp[base] = 0;
    this.lock?.unlock();
    return n;
  }

  /**
   * Recovery (src/mm/recovery.ts), with every thread outside the allocator: sets the owner
   * word of every frame below the high-water mark to `owner[pfn]`, rebuilds the free stack
   * from the frames that are FRAME_FREE and empties every per-CPU list. Returns how many
   * frames were in use and are free now.
   */
  rebuild(owner: Int32Array): number {
    const meta = this.meta;
    const hwm = meta[HWM]!;
    let n = 0;
    let freed = 0;
    for (let pfn = 0; pfn < hwm; pfn++) {
      const o = owner[pfn]!;
      if (o === FRAME_FREE && this.state[pfn] !== FRAME_FREE) freed++;
      Atomics.store(this.state, pfn, o);
      if (o === FRAME_FREE) this.freeList[n++] = pfn;
    }
    meta[NFREE] = n;
    for (let base = 0; base < this.pcp.length; base += PCP_WORDS) this.pcp[base] = 0;
    return freed;
  }

  private pcpCount(): number {
    let n = 0;
    for (let base = 0; base < this.pcp.length; base += PCP_WORDS) n += this.pcp[base]!;
    return n;
  }

  private growFrames(need: number): void {
    const step = Math.max(1, Math.floor(GROW_STEP / this.pageSize));
    const frames = Math.min(this.meta[NR_FRAMES]!, Math.max(need, this.meta[CAP_FRAMES]! + step));
    growBuffer(this.buffers.frames, frames * this.pageSize);
    Atomics.store(this.meta, CAP_FRAMES, frames);
    this.refresh();
  }

  /** Invariant check: free stack, per-CPU lists and owner words agree. Returns problems. */
  checkProblems(): string[] {
    const problems: string[] = [];
    const hwm = this.meta[HWM]!;
    const seen = new Uint8Array(hwm);
    const onFree = (pfn: number, where: string): void => {
      if (pfn < 0 || pfn >= hwm)
        problems.push(`${where} holds pfn ${pfn} beyond the high-water mark ${hwm}`);
      else if (seen[pfn]) problems.push(`pfn ${pfn} is free twice (${where})`);
      else if (this.state[pfn] !== FRAME_FREE)
        problems.push(`pfn ${pfn} is on ${where} but marked in use (owner ${this.state[pfn]})`);
      else seen[pfn] = 1;
    };
    const nfree = this.meta[NFREE]!;
    for (let k = 0; k < nfree; k++) onFree(this.freeList[k]!, 'the free stack');
    for (let base = 0; base < this.pcp.length; base += PCP_WORDS) {
      for (let k = 1; k <= this.pcp[base]!; k++)
        onFree(this.pcp[base + k]!, `cpu ${base / PCP_WORDS}'s page list`);
    }
    for (let pfn = 0; pfn < hwm; pfn++) {
      const owner = this.state[pfn]!;
      if (seen[pfn] === 0 && owner === FRAME_FREE)
        problems.push(`pfn ${pfn} is neither free nor in use (lost)`);
      else if (owner !== FRAME_FREE && owner !== FRAME_AREA && owner < FRAME_USER)
        problems.push(`pfn ${pfn} has the owner word ${owner}, which means nothing`);
    }
    return problems;
  }
}
