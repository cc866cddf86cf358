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
import type { ArenaBuffers } from '../shared/record-arena.js';
import { makeFixedBuffer, type AnyBuffer } from '../shared/buffers.js';
import { Lock, LockTable } from '../shared/lock.js';

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
  /**
   * Take a lock (in shared memory) around every operation, so that workers attached with
   * VmapSpace.attach() can use the space at the same time. @defaultValue false
   */
  concurrent?: boolean;
  /**
   * With `concurrent`: how long a worker waits for the lock before throwing VmallocError
   * ETIMEDOUT (the holder's worker may have died), in milliseconds. @defaultValue 10000
   */
  lockTimeoutMs?: number;
}

/** What a worker needs to attach to a space: structured-cloneable (postMessage it). */
export interface VmapSpaceHandle {
  readonly kind: 'VmapSpace';
  readonly start: number;
  readonly end: number;
  readonly pageSize: number;
  readonly store: ArenaBuffers;
  readonly ctl: AnyBuffer;
  readonly stat: AnyBuffer;
  readonly locks: AnyBuffer | null;
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
/** Words of the control block. */
const C_FREE_HEAD = 0;
const C_BUSY_HEAD = 1;
const C_PRELOAD = 2;
const CTL_WORDS = 4;
/** The option key by which attach() hands a handle to the constructor. */
const ATTACH = Symbol('attach');

export class VmapSpace {
  readonly start: number;
  readonly end: number;
  readonly pageSize: number;
  /** Structured-cloneable: pass it to a worker and VmapSpace.attach() it there. */
  readonly handle: VmapSpaceHandle;
  private readonly s: VaStore;
  private readonly freeHead: number;
  private readonly busyHead: number;
  /** ctl[C_PRELOAD]: a spare record for a no-edge split (the kernel's ne_fit_preload_node). */
  private readonly ctl: Int32Array;
  /** stat[BUSY_BYTES]: bytes in live areas (a typed array: a double field would be boxed). */
  private readonly stat: Float64Array;
  /** The space's lock when it is concurrent (the kernel's free_vmap_area_lock). */
  private readonly lock: Lock | null;
  /** Who this instance takes the lock as (a worker's id, for the lock's owner word). */
  private readonly cpu: number;
  /** This thread's request window [vstart, vend), handed down without boxing the doubles. */
  private readonly win = new Float64Array(2);

  constructor(options: VmapSpaceOptions) {
    const attachTo = (options as { [ATTACH]?: [VmapSpaceHandle, number] } | null)?.[ATTACH];
    if (attachTo !== undefined) {
      const [handle, cpu] = attachTo;
      this.handle = handle;
      this.start = handle.start;
      this.end = handle.end;
      this.pageSize = handle.pageSize;
      this.s = new VaStore(handle.store);
      this.ctl = new Int32Array(handle.ctl);
      this.stat = new Float64Array(handle.stat);
      this.lock =
        handle.locks === null ? null : new Lock(new LockTable(handle.locks), 0, 'vmap_space_lock');
      this.cpu = cpu;
      this.freeHead = this.ctl[C_FREE_HEAD]!;
      this.busyHead = this.ctl[C_BUSY_HEAD]!;
      return;
    }
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
    const shared = (opts.shared as boolean | undefined) ?? typeof SharedArrayBuffer === 'function';
    const concurrent = opts.concurrent === true;
    if (concurrent && !shared) {
      throw new VmallocError(
        'EINVAL',
        'Cannot create VmapSpace: concurrent: true needs shared memory (shared: true)',
      );
    }
    this.start = start;
    this.end = end;
    this.pageSize = pageSize;
    this.cpu = 0;
    this.s = VaStore.create({ shared, maxRecords: opts.maxRecords as number | undefined });
    const ctlBuf = makeFixedBuffer(CTL_WORDS * 4, shared);
    const statBuf = makeFixedBuffer(8, shared);
    const timeout = opts.lockTimeoutMs;
    if (
      timeout !== undefined &&
      (typeof timeout !== 'number' ||
        !Number.isSafeInteger(timeout) ||
        timeout < 1 ||
        timeout > 2 ** 31 - 1)
    ) {
      throw new VmallocError(
        'EINVAL',
        `Cannot create VmapSpace: lockTimeoutMs must be a positive integer (milliseconds), got ${String(timeout)}`,
      );
    }
    const locks = concurrent ? LockTable.create(1, true) : null;
    if (locks !== null && timeout !== undefined) locks.setTimeout(timeout);
    this.ctl = new Int32Array(ctlBuf);
    this.stat = new Float64Array(statBuf);
    this.lock = locks === null ? null : new Lock(locks, 0, 'vmap_space_lock');
    const s = this.s;
    this.freeHead = s.alloc();
    this.busyHead = s.alloc();
    this.ctl[C_FREE_HEAD] = this.freeHead;
    this.ctl[C_BUSY_HEAD] = this.busyHead;
    rbListInit(s, this.freeHead);
    rbListInit(s, this.busyHead);
    const va = s.alloc();
    s.setRange(va, start, end);
    mergeOrAddVmapArea(s, this.freeHead, va, true);
    this.handle = {
      kind: 'VmapSpace',
      start,
      end,
      pageSize,
      store: s.buffers,
      ctl: ctlBuf,
      stat: statBuf,
      locks: locks === null ? null : locks.buffer,
    };
  }

  /**
   * The same space, in this worker: `handle` is another instance's `handle` (sent with
   * postMessage); `cpu` identifies this worker in the lock's owner word. The space must have
   * been created with `concurrent: true`.
   */
  static attach(handle: VmapSpaceHandle, options: { cpu?: number } = {}): VmapSpace {
    if (handle === null || typeof handle !== 'object' || handle.kind !== 'VmapSpace') {
      throw new VmallocError(
        'EINVAL',
        'Cannot attach VmapSpace: handle must be the handle of a VmapSpace',
      );
    }
    if (handle.locks === null) {
      throw new VmallocError(
        'EINVAL',
        'Cannot attach VmapSpace: the space was created without concurrent: true, so it cannot be shared between workers',
      );
    }
    const cpu = options.cpu ?? 0;
    if (!Number.isInteger(cpu) || cpu < 0 || cpu > 0xffff) {
      throw new VmallocError(
        'EINVAL',
        `Cannot attach VmapSpace: cpu must be an integer from 0 to 65535, got ${String(cpu)}`,
      );
    }
    return new VmapSpace({ [ATTACH]: [handle, cpu] } as unknown as VmapSpaceOptions);
  }

  /** Takes the lock (concurrent spaces) and brings this thread's views up to date. */
  private enter(): void {
    if (this.lock !== null) {
      this.lock.lock(this.cpu);
      this.s.refreshViews();
    }
  }

  private leave(): void {
    if (this.lock !== null) this.lock.unlock();
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
    const win = this.win;
    win[0] = vstart;
    win[1] = vend;
    let va: number;
    if (this.lock === null) {
      va = this.allocLocked(size, align);
    } else {
      this.enter();
      try {
        va = this.allocLocked(size, align);
      } finally {
        this.leave();
      }
    }
    // Read here rather than returned by allocLocked: a double returned from a call that is not
    // inlined is boxed, while this read is, when the caller inlines alloc(), not.
    return va === 0 ? null : this.s.start(va);
  }

  /** alloc() after validation, with the lock held (concurrent spaces): the new area, or 0. */
  private allocLocked(size: number, align: number): number {
    const s = this.s;
    const ctl = this.ctl;
    if (ctl[C_PRELOAD] === 0) {
      const spare = s.alloc();
      if (spare === 0) return 0;
      ctl[C_PRELOAD] = spare;
    }
    const va = s.alloc();
    if (va === 0) return 0;
    if (
      allocFromFreeTree(
        s,
        this.freeHead,
        va,
        size,
        align,
        this.win,
        this.pageSize,
        ctl,
        C_PRELOAD,
      ) < 0
    ) {
      s.free(va);
      return 0;
    }
    if (!insertVmapArea(s, this.busyHead, va)) busyOverlap(s, va);
    this.stat[BUSY_BYTES] = this.stat[BUSY_BYTES]! + size;
    return va;
  }

  /**
   * Releases the area that starts at `addr`, merging it with its free neighbours.
   * Throws ENOENT when no live area starts there (never allocated, already freed, or an
   * address inside an area).
   */
  free(addr: number): void {
    if (typeof addr !== 'number' || !Number.isSafeInteger(addr)) checkInteger('free', 'addr', addr);
    // The lookup stays in this (small, inlinable) method and the rest takes the record id, so
    // the address is never passed, boxed, to a call V8 does not inline.
    if (this.lock === null) {
      const va = findVmapArea(this.s, this.busyHead, addr);
      if (va === 0 || this.s.start(va) !== addr) notAnAreaStart(this.s, va, addr);
      this.release(va);
      return;
    }
    this.enter();
    try {
      const va = findVmapArea(this.s, this.busyHead, addr);
      if (va === 0 || this.s.start(va) !== addr) notAnAreaStart(this.s, va, addr);
      this.release(va);
    } finally {
      this.leave();
    }
  }

  /** Unlinks busy area `va` and merges its range into the free tree (lock held). */
  private release(va: number): void {
    const s = this.s;
    unlinkVmapArea(s, this.busyHead, va);
    this.stat[BUSY_BYTES] = this.stat[BUSY_BYTES]! - (s.end(va) - s.start(va));
    if (mergeOrAddVmapArea(s, this.freeHead, va, true) === 0) freeOverlap(s, va);
  }

  /** The live area containing `addr`, or null. */
  find(addr: number): Range | null {
    checkInteger('find', 'addr', addr);
    return this.locked(() => {
      const s = this.s;
      const va = findVmapArea(s, this.busyHead, addr);
      return va === 0 ? null : { start: s.start(va), end: s.end(va) };
    });
  }

  /** Runs `fn` holding the lock (concurrent spaces); for the cold, object-returning calls. */
  private locked<T>(fn: () => T): T {
    this.enter();
    try {
      return fn();
    } finally {
      this.leave();
    }
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
    if (this.lock === null) return this.s.smax(rbRootOf(this.s, this.freeHead));
    return this.locked(() => this.s.smax(rbRootOf(this.s, this.freeHead)));
  }

  stats(): VmapSpaceStats {
    return this.locked(() => ({
      size: this.size,
      busyCount: this.busyCount,
      busyBytes: this.busyBytes,
      freeCount: this.freeCount,
      freeBytes: this.freeBytes,
      // Read directly: the getter would take the (non-re-entrant) lock a second time.
      largestFree: this.s.smax(rbRootOf(this.s, this.freeHead)),
      records: this.s.live,
      capacity: this.s.capacity,
    }));
  }

  /** Free blocks in address order. */
  *freeBlocks(): IterableIterator<Range> {
    yield* this.walk(this.freeHead);
  }

  /** Live areas in address order. */
  *busyAreas(): IterableIterator<Range> {
    yield* this.walk(this.busyHead);
  }

  /** A snapshot of the list under `h` (taken under the lock, so concurrent changes are safe). */
  private *walk(h: number): IterableIterator<Range> {
    const out = this.locked(() => {
      const s = this.s;
      const ranges: Range[] = [];
      for (let x = rbListFirst(s, h); x !== 0; x = rbListNext(s, h, x))
        ranges.push({ start: s.start(x), end: s.end(x) });
      return ranges;
    });
    yield* out;
  }

  /**
   * Verifies every invariant: red-black rules and parent links of both trees, every smax,
   * tree/list agreement, free blocks sorted, disjoint and coalesced, busy areas disjoint from
   * free blocks, free plus busy tiling the space, and the record accounting.
   * Throws VmallocError code EINVARIANT naming the first violation.
   */
  check(): void {
    this.locked(() => this.checkLocked());
  }

  private checkLocked(): void {
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
    if (this.ctl[C_PRELOAD] !== 0) inUse.push(this.ctl[C_PRELOAD]!);
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
