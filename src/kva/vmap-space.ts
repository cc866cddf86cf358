/**
 * VmapSpace: the bare range allocator (free tree + busy tree, immediate free).
 *
 * Holds: one managed space [start, end), its free blocks and its busy areas.
 * Invariant (between calls): free blocks and busy areas tile [start, end) exactly; free blocks
 * are coalesced; all rules of check.ts hold.
 * Callers: library users directly; tests and the kva benchmark.
 *
 * Kernel: alloc_vmap_area() / free_vmap_area() without the lazy step, the pools or the locks.
 * Differs from kernel: misuse throws VmallocError (the kernel returns -EINVAL or WARNs), and
 * `free` takes exactly the start of an area (the kernel looks areas up by containment).
 */

import {
  VmallocError,
  checkAddressIn,
  checkAlign,
  checkInteger,
  checkOptions,
  checkSize,
  hex,
  isPowerOfTwo,
} from '../errors.js';
import { invariantFailure } from '../debug.js';
import { findVmapArea, insertVmapArea, unlinkVmapArea } from './busy-tree.js';
import { checkCoalesced, checkRbList, checkStore, checkTiling } from './check.js';
import { allocFromFreeTree, mergeOrAddVmapArea } from './free-tree.js';
import { rbListCount, rbListFirst, rbListInit, rbListNext, rbRootOf } from './rb-list.js';
import { VaStore } from './vmap-area.js';

export interface VmapSpaceOptions {
  /** First address of the space (inclusive). An integer in [0, 2^53). */
  start: number;
  /** End of the space (exclusive). An integer in (start, 2^53]. */
  end: number;
  /** Allocation granule: sizes must be multiples of it. A power of two; default 4096. */
  pageSize?: number;
  /** Keep the records in SharedArrayBuffers (default: whenever the platform has them). */
  shared?: boolean;
  /** Ceiling on records (busy areas + free blocks + 3); default 2^25. */
  maxRecords?: number;
}

export interface AllocOptions {
  /** Power of two the address must be a multiple of; default 1. */
  align?: number;
  /** Lowest acceptable address (inclusive); default the space's start. */
  vstart?: number;
  /** Highest acceptable end address (exclusive); default the space's end. */
  vend?: number;
}

/** A half-open range [start, end). */
export interface Range {
  start: number;
  end: number;
}

export interface VmapSpaceStats {
  /** end - start */
  size: number;
  busyCount: number;
  busyBytes: number;
  freeCount: number;
  freeBytes: number;
  /** Largest single free block: the largest request with align 1 that can succeed. */
  largestFree: number;
  /** Records handed out by the store (areas, blocks, heads, spare). */
  records: number;
  /** Records the store can hold before it grows. */
  capacity: number;
}

const MAX_END = 2 ** 53;
const BUSY_BYTES = 0;

export class VmapSpace {
  readonly start: number;
  readonly end: number;
  readonly pageSize: number;
  private readonly s: VaStore;
  private readonly freeHead: number;
  private readonly busyHead: number;
  /** preload[0]: a spare record for a no-edge split (the kernel's ne_fit_preload_node). */
  private readonly preload: Int32Array;
  /** stat[BUSY_BYTES]: bytes in live areas (a typed array: a double field would be boxed). */
  private readonly stat: Float64Array;

  constructor(options: VmapSpaceOptions) {
    const opts = checkOptions('create VmapSpace', options);
    if (opts === undefined) {
      throw new VmallocError(
        'EINVAL',
        'Cannot create VmapSpace: options {start, end} are required',
      );
    }
    const pageSize = opts.pageSize === undefined ? 4096 : opts.pageSize;
    if (typeof pageSize !== 'number' || !isPowerOfTwo(pageSize) || pageSize > 2 ** 30) {
      throw new VmallocError(
        'EINVAL',
        `Cannot create VmapSpace: pageSize must be a power of two from 1 to 2^30, got ${String(pageSize)}`,
      );
    }
    const start = checkAddressIn(
      'create VmapSpace',
      'start',
      opts.start,
      0,
      MAX_END - 1,
      '[0, 2^53)',
    );
    const end = checkEnd(opts.end, start);
    this.start = start;
    this.end = end;
    this.pageSize = pageSize;
    this.s = VaStore.create({
      shared: opts.shared as boolean | undefined,
      maxRecords: opts.maxRecords as number | undefined,
    });
    const s = this.s;
    this.freeHead = s.alloc();
    this.busyHead = s.alloc();
    rbListInit(s, this.freeHead);
    rbListInit(s, this.busyHead);
    this.preload = new Int32Array(1);
    this.stat = new Float64Array(1);
    const va = s.alloc();
    s.setRange(va, start, end);
    mergeOrAddVmapArea(s, this.freeHead, va, true);
  }

  /** end - start */
  get size(): number {
    return this.end - this.start;
  }

  /**
   * Reserves `size` bytes at the lowest address that satisfies the options, or returns null
   * when no free block can hold it. Kernel: alloc_vmap_area() -> __alloc_vmap_area().
   *
   * With `align` above the page size the search prunes by `size + align - 1`, as the kernel
   * does, so a smaller suitably aligned block off the search path may be passed over.
   */
  alloc(size: number, options?: AllocOptions): number | null {
    const pageSize = this.pageSize;
    if (!(
      typeof size === 'number' &&
      size > 0 &&
      size <= this.end - this.start &&
      Number.isInteger(size / pageSize)
    )) {
      checkSize('alloc', 'size', size, pageSize, this.end - this.start, 'the size of the space');
    }
    let align = 1;
    let vstart = this.start;
    let vend = this.end;
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') checkOptions('alloc', options);
      const a = options.align;
      if (a !== undefined) {
        // Common powers of two up to 2^30 are tested inline; the rest (and errors) out of line.
        if (
          typeof a === 'number' &&
          a >= 1 &&
          a <= 0x40000000 &&
          (a & (a - 1)) === 0 &&
          (a | 0) === a
        )
          align = a;
        else align = checkAlign('alloc', 'align', a);
      }
      const vs = options.vstart;
      if (vs !== undefined) vstart = this.checkVstart(vs);
      const ve = options.vend;
      if (ve !== undefined) vend = this.checkVend(ve);
      if (vstart >= vend) {
        throw new VmallocError(
          'EINVAL',
          `Cannot alloc: vstart must be below vend, got vstart ${hex(vstart)} and vend ${hex(vend)}`,
        );
      }
    }
    const s = this.s;
    if (this.preload[0] === 0) {
      const spare = s.alloc();
      if (spare === 0) return null;
      this.preload[0] = spare;
    }
    const va = s.alloc();
    if (va === 0) return null;
    if (
      allocFromFreeTree(
        s,
        this.freeHead,
        va,
        size,
        align,
        vstart,
        vend,
        pageSize,
        this.preload,
        0,
      ) < 0
    ) {
      s.free(va);
      return null;
    }
    if (!insertVmapArea(s, this.busyHead, va)) busyOverlap(s, va);
    this.stat[BUSY_BYTES] = this.stat[BUSY_BYTES]! + size;
    return s.start(va);
  }

  /**
   * Releases the area that starts at `addr`, merging it with its free neighbours.
   * Throws ENOENT when no live area starts there (never allocated, already freed, or an
   * address inside an area).
   */
  free(addr: number): void {
    if (typeof addr !== 'number' || !Number.isSafeInteger(addr)) checkInteger('free', 'addr', addr);
    const s = this.s;
    const va = findVmapArea(s, this.busyHead, addr);
    if (va === 0 || s.start(va) !== addr) notAnAreaStart(s, va, addr);
    unlinkVmapArea(s, this.busyHead, va);
    this.stat[BUSY_BYTES] = this.stat[BUSY_BYTES]! - (s.end(va) - addr);
    if (mergeOrAddVmapArea(s, this.freeHead, va, true) === 0) freeOverlap(s, va);
  }

  /** The live area containing `addr`, or null. */
  find(addr: number): Range | null {
    checkInteger('find', 'addr', addr);
    const s = this.s;
    const va = findVmapArea(s, this.busyHead, addr);
    return va === 0 ? null : { start: s.start(va), end: s.end(va) };
  }

  /** Number of live areas. */
  get busyCount(): number {
    return rbListCount(this.s, this.busyHead);
  }

  /** Bytes in live areas. */
  get busyBytes(): number {
    return this.stat[BUSY_BYTES]!;
  }

  /** Number of free blocks (maximal free ranges). */
  get freeCount(): number {
    return rbListCount(this.s, this.freeHead);
  }

  /** Bytes not in live areas. */
  get freeBytes(): number {
    return this.end - this.start - this.stat[BUSY_BYTES]!;
  }

  /** Size of the largest free block, read from the root of the augmented tree: O(1). */
  get largestFree(): number {
    return this.s.smax(rbRootOf(this.s, this.freeHead));
  }

  stats(): VmapSpaceStats {
    return {
      size: this.size,
      busyCount: this.busyCount,
      busyBytes: this.busyBytes,
      freeCount: this.freeCount,
      freeBytes: this.freeBytes,
      largestFree: this.largestFree,
      records: this.s.live,
      capacity: this.s.capacity,
    };
  }

  /** Free blocks in address order. */
  *freeBlocks(): IterableIterator<Range> {
    yield* this.walk(this.freeHead);
  }

  /** Live areas in address order. */
  *busyAreas(): IterableIterator<Range> {
    yield* this.walk(this.busyHead);
  }

  private *walk(h: number): IterableIterator<Range> {
    const s = this.s;
    for (let x = rbListFirst(s, h); x !== 0; x = rbListNext(s, h, x)) {
      yield { start: s.start(x), end: s.end(x) };
    }
  }

  /**
   * Verifies every invariant: red-black rules and parent links of both trees, every smax,
   * tree/list agreement, free blocks sorted, disjoint and coalesced, busy areas disjoint from
   * free blocks, free plus busy tiling the space, and the record accounting.
   * Throws VmallocError code EINVARIANT naming the first violation.
   */
  check(): void {
    const s = this.s;
    const free = checkRbList(s, this.freeHead, true, 'free tree', this.start, this.end);
    const busy = checkRbList(s, this.busyHead, false, 'busy tree', this.start, this.end);
    checkCoalesced(s, free, 'free tree');
    checkTiling(s, [free, busy], this.start, this.end, 'space');
    let busyBytes = 0;
    for (const x of busy) busyBytes += s.end(x) - s.start(x);
    if (busyBytes !== this.busyBytes)
      invariantFailure(`busy bytes counted ${this.busyBytes}, areas hold ${busyBytes}`);
    const inUse = [this.freeHead, this.busyHead, ...free, ...busy];
    if (this.preload[0] !== 0) inUse.push(this.preload[0]!);
    checkStore(s, inUse, 'records');
  }

  private checkVstart(v: unknown): number {
    return checkAddressIn(
      'alloc',
      'vstart',
      v,
      this.start,
      this.end - 1,
      `the space [${hex(this.start)}, ${hex(this.end)})`,
    );
  }

  private checkVend(v: unknown): number {
    if (v === this.end) return this.end; // may be 2^53, one past the largest safe integer
    return checkAddressIn(
      'alloc',
      'vend',
      v,
      this.start + 1,
      this.end,
      `the space (${hex(this.start)}, ${hex(this.end)}]`,
    );
  }
}

// Failures, kept out of the hot functions so that those stay small.

function notAnAreaStart(s: VaStore, va: number, addr: number): never {
  throw new VmallocError(
    'ENOENT',
    va === 0
      ? `Cannot free ${hex(addr)}: no live area contains it (never allocated, or already freed)`
      : `Cannot free ${hex(addr)}: it lies inside the area [${hex(s.start(va))}, ${hex(s.end(va))}); pass the area's start`,
  );
}

function busyOverlap(s: VaStore, va: number): never {
  invariantFailure(`allocated [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a busy area`);
}

function freeOverlap(s: VaStore, va: number): never {
  invariantFailure(`freed range [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a free block`);
}

function checkEnd(value: unknown, start: number): number {
  if (typeof value === 'number' && value === MAX_END) return value;
  return checkAddressIn(
    'create VmapSpace',
    'end',
    value,
    start + 1,
    MAX_END,
    `(start, 2^53], start being ${hex(start)}`,
  );
}
