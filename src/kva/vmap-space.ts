/**
 * VmapSpace: the bare range allocator (free tree + busy tree, immediate free).
 *
 * Holds: one managed space [start, end), its free blocks and its busy areas; the operations
 * on them. Its contract and argument checks are in vmap-space-options.ts, its shared memory
 * (the handle: made, laid out, viewed) in vmap-space-handle.ts, attach() and the locks of a
 * concurrent space in vmap-space-lock.ts.
 * Invariant (between calls): free blocks and busy areas tile [start, end) exactly; free blocks
 * are coalesced; all rules of check.ts hold.
 * Callers: library users directly; tests and the kva benchmark.
 * With `pools` the busy areas, lazy lists and pools live in space-pools.ts (its invariant
 * extends this one), and every operation below delegates to it.
 *
 * Kernel: alloc_vmap_area() / free_vmap_area() without the lazy step, the pools or the locks.
 * Differs from kernel: misuse throws VmallocError (the kernel returns -EINVAL or WARNs), and
 * `free` takes exactly the start of an area (the kernel looks areas up by containment).
 */

import { checkAlign, checkSize, hex } from '../errors.js';
import { invariantFailure } from '../debug.js';
import type { LockTable, Lock } from '../shared/lock.js';
import { findVmapArea, insertVmapArea, unlinkVmapArea } from './busy-tree.js';
import { cutFromFreeTree, mergeOrAddVmapArea } from './free-tree.js';
import { rbListCount, rbRootOf } from './rb-list.js';
import type { VaStore } from './vmap-area.js';
import {
  checkAddr,
  checkOptionsBag,
  checkVend,
  checkVstart,
  notAnAreaStart,
  windowInverted,
} from './vmap-space-args.js';
import {
  resolveSpaceOptions,
  type AllocOptions,
  type Range,
  type VmapSpaceAttachOptions,
  type VmapSpaceHandle,
  type VmapSpaceOptions,
  type VmapSpaceStats,
} from './vmap-space-options.js';
import { C_FLAGS, F_EXACT, createSpaceHandle, spaceParts } from './vmap-space-handle.js';
import { SpaceLock, attachOptions, attachedTo } from './vmap-space-lock.js';
import { SpacePools, type PoolTrips } from './space-pools.js';
import { poolCounts } from './space-pools-check.js';
import {
  busyRanges,
  checkParts,
  findRange,
  freeRanges,
  rebuildSpace,
  spaceStats,
  type SpaceParts,
} from './vmap-space-views.js';

export type {
  AllocOptions,
  VmapSpaceAttachOptions,
  Range,
  VmapSpaceHandle,
  VmapSpaceOptions,
  VmapSpacePoolOptions,
  VmapSpaceStats,
} from './vmap-space-options.js';

// The hot words of the control and statistics blocks (vmap-space-handle.ts has the layout),
// as this module's own constants: V8 folds a module's own constants into the code but loads
// imported ones at every use (the copies are checked by test/kva/layout.test.ts).
const C_PRELOAD = 2;
const S_BUSY_BYTES = 0;

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
  /** stat[S_BUSY_BYTES]: bytes in live areas (a typed array: a double field would be boxed). */
  private readonly stat: Float64Array;
  /** This instance's view of the space's locks (vmap-space-lock.ts). */
  private readonly lk: SpaceLock;
  /** lk.lock, the space's lock (null: not concurrent), here for the hot paths' test. */
  private readonly lock: Lock | null;
  /** This thread's request window [vstart, vend), handed down without boxing the doubles. */
  private readonly win = new Float64Array(2);
  /** fit: 'exact' (the search that finds the truly lowest aligned fit). */
  private readonly exact: boolean;
  /** The pools of a space made with `pools` (this worker's view of them), else null. */
  private readonly pools: SpacePools | null;
  /** The fields above as the cold views (vmap-space-views.ts) read them. */
  private readonly parts: SpaceParts;

  /**
   * A new space managing [start, end), empty: one free block.
   * @throws VmallocError EINVAL for a bad option (named in the message): start/end outside
   * [0, 2^53] or holding less than a page, a pageSize that is not a power of two up to 2^30, a
   * maxRecords outside [6, 2^26], an unknown key, or `concurrent: true` where the platform has
   * no SharedArrayBuffer (a browser page that is not cross-origin isolated).
   * @example
   * ```ts
   * const space = new VmapSpace({ start: 0, end: 2 ** 30, pageSize: 4096 });
   * const a = space.alloc(8192); // 0
   * ```
   */
  constructor(options: VmapSpaceOptions) {
    const attachTo = attachedTo(options);
    // A new space: every option is checked before anything is made.
    const handle = attachTo?.[0] ?? createSpaceHandle(resolveSpaceOptions(options));
    this.handle = handle;
    this.start = handle.start;
    this.end = handle.end;
    this.pageSize = handle.pageSize;
    const parts = spaceParts(handle);
    this.parts = parts;
    this.s = parts.s;
    this.ctl = parts.ctl;
    this.stat = parts.stat;
    this.freeHead = parts.freeHead;
    this.busyHead = parts.busyHead;
    this.exact = (this.ctl[C_FLAGS]! & F_EXACT) !== 0;
    const lk = new SpaceLock(handle.locks, attachTo?.[1] ?? 0, this.s);
    this.lk = lk;
    this.lock = lk.lock;
    this.pools =
      (handle.pools ?? null) === null || lk.lock === null
        ? null
        : new SpacePools(
            this.parts,
            handle.pools!,
            lk.cpu,
            this.pageSize,
            this.win,
            this.exact,
            (i, name) => lk.make(i, name),
          );
  }

  /**
   * The same space, in this worker: `handle` is another instance's `handle` (sent with
   * postMessage); `cpu` (0 to 65535) identifies this worker in the lock's owner word. The space
   * must have been created with `concurrent: true`. A handle that is not one (forged, of
   * another kind, with buffers of the wrong type or size, or of a space without concurrent)
   * is refused with EINVAL.
   * @throws VmallocError EINVAL for a handle that is not a concurrent space's, or a cpu outside
   * [0, 65535].
   * @example
   * ```ts
   * // main thread: new VmapSpace({ start: 0, end: 2 ** 30, concurrent: true }), then
   * // worker.postMessage(space.handle); in the worker:
   * const space = VmapSpace.attach(workerData.handle, { cpu: 1 });
   * ```
   */
  static attach(handle: VmapSpaceHandle, options: VmapSpaceAttachOptions = {}): VmapSpace {
    return new VmapSpace(attachOptions(handle, options));
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
   * does, so a smaller suitably aligned block off the search path may be passed over (unless
   * the space was made with `fit: 'exact'`). With `pools`, a range of a pooled size comes from
   * this worker's pool when its latest entry suits the request (not the lowest address).
   * @returns the area's start address (an offset in the managed space), or null when out of
   * space (never a throw).
   * @throws VmallocError EINVAL when `size` is not a positive multiple of the page size,
   * `align` is not a power of two, or [vstart, vend) is not a window inside the space;
   * ETIMEDOUT / EOWNERDEAD (concurrent spaces) when the lock's holder hangs or died.
   * @example
   * ```ts
   * const a = space.alloc(65536); // lowest fit
   * const b = space.alloc(8192, { align: 65536, vstart: 2 ** 20 }); // aligned, in a window
   * if (b === null) console.log('out of space');
   * ```
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
      if (options === null || typeof options !== 'object' || Array.isArray(options))
        checkOptionsBag('alloc', options);
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
      if (vs !== undefined) vstart = checkVstart(this.start, this.end, vs);
      const ve = options.vend;
      if (ve !== undefined) vend = checkVend(this.start, this.end, ve);
      if (vstart >= vend) windowInverted(vstart, vend);
    }
    const win = this.win;
    win[0] = vstart;
    win[1] = vend;
    let va: number;
    if (this.pools !== null) {
      va = this.pools.alloc(size, align);
    } else if (this.lock === null) {
      va = this.allocLocked(size, align);
    } else {
      this.lk.enter();
      try {
        va = this.allocLocked(size, align);
      } finally {
        this.lk.leave();
      }
    }
    // Read here rather than returned by allocLocked: a double returned from a call that is not
    // inlined is boxed, while this read is, when the caller inlines alloc(), not.
    return va === 0 ? null : this.s.start(va);
  }

  /** alloc() after validation, with the lock held (concurrent spaces): the new area, or 0. */
  private allocLocked(size: number, align: number): number {
    const s = this.s;
    const va = cutFromFreeTree(
      s,
      this.ctl,
      C_PRELOAD,
      this.freeHead,
      size,
      align,
      this.win,
      this.pageSize,
      this.exact,
    );
    if (va === 0) return 0;
    if (!insertVmapArea(s, this.busyHead, va)) busyOverlap(s, va);
    this.stat[S_BUSY_BYTES] = this.stat[S_BUSY_BYTES]! + size;
    return va;
  }

  /**
   * Releases the area that starts at `addr`, merging it with its free neighbours.
   * Throws ENOENT when no live area starts there (never allocated, already freed, or an
   * address inside an area).
   * @throws VmallocError ENOENT as above; EINVAL for a negative or non-integer address.
   * @example
   * ```ts
   * const a = space.alloc(4096)!;
   * space.free(a); // a second space.free(a) throws ENOENT
   * ```
   */
  free(addr: number): void {
    if (typeof addr !== 'number' || !Number.isSafeInteger(addr) || addr < 0)
      checkAddr('free', addr);
    // The lookup stays in this (small, inlinable) method and the rest takes the record id, so
    // the address is never passed, boxed, to a call V8 does not inline.
    if (this.pools !== null) {
      if (!this.pools.free(addr)) notAnAreaStart(this.s, this.pools.findContaining(addr), addr);
      return;
    }
    if (this.lock === null) {
      const va = findVmapArea(this.s, this.busyHead, addr);
      if (va === 0 || this.s.start(va) !== addr) notAnAreaStart(this.s, va, addr);
      this.release(va);
      return;
    }
    this.lk.enter();
    try {
      const va = findVmapArea(this.s, this.busyHead, addr);
      if (va === 0 || this.s.start(va) !== addr) notAnAreaStart(this.s, va, addr);
      this.release(va);
    } finally {
      this.lk.leave();
    }
  }

  /** Unlinks busy area `va` and merges its range into the free tree (lock held). */
  private release(va: number): void {
    const s = this.s;
    unlinkVmapArea(s, this.busyHead, va);
    this.stat[S_BUSY_BYTES] = this.stat[S_BUSY_BYTES]! - (s.end(va) - s.start(va));
    if (mergeOrAddVmapArea(s, this.freeHead, va, true) === 0) freeOverlap(s, va);
  }

  /**
   * Recovery (src/mm/recovery-parts.ts), every other thread outside this space: rebuilt with
   * exactly the live areas `keep` (rebuildSpace), its lock freed whoever held it. @internal
   */
  rebuild(keep: readonly { start: number; end: number }[]): void {
    rebuildSpace(this.parts, keep);
    this.lk.forceRelease();
  }

  /** Makes this instance's locks see the cpus dead in `owner` (SpaceLock). @internal */
  shareLivenessOf(owner: LockTable): void {
    this.lk.shareLivenessOf(owner);
  }

  /** This instance's trips past the pools' fast paths (PoolTrips), or null. @internal */
  poolTrips(): PoolTrips | null {
    return this.pools?.trips() ?? null;
  }

  /** The locks of this space and of its pools (empty when not concurrent). @internal */
  locks(): readonly Lock[] {
    return this.lk.locks();
  }

  /** Recovery: frees the lock whoever holds it, to read the space before rebuild(). @internal */
  releaseLock(): void {
    this.lk.forceRelease();
  }

  /**
   * The live area containing `addr`, or null.
   * @throws VmallocError EINVAL for a negative or non-integer address.
   * @example
   * ```ts
   * const a = space.alloc(8192)!;
   * space.find(a + 100); // { start: a, end: a + 8192 }
   * ```
   */
  find(addr: number): Range | null {
    checkAddr('find', addr);
    return findRange(this.parts, this.pools, this.lk, addr);
  }

  /** Number of live areas. */
  get busyCount(): number {
    if (this.pools !== null) return poolCounts(this.pools).busyCount;
    return rbListCount(this.s, this.busyHead);
  }

  /** Bytes in live areas. */
  get busyBytes(): number {
    if (this.pools !== null) return poolCounts(this.pools).busyBytes;
    return this.stat[S_BUSY_BYTES]!;
  }

  /** Number of free blocks (maximal free ranges). */
  get freeCount(): number {
    return rbListCount(this.s, this.freeHead);
  }

  /** Bytes not in live areas (with `pools`, lazy and pooled ranges included). */
  get freeBytes(): number {
    return this.end - this.start - this.busyBytes;
  }

  /**
   * Returns every lazily freed and pooled range to the free tree (after which the free blocks
   * are all the space that is not live); the number of ranges returned. 0 without `pools`.
   */
  purge(): number {
    return this.pools === null ? 0 : this.pools.purge(true);
  }

  /** Size of the largest free block, read from the root of the augmented tree: O(1). */
  get largestFree(): number {
    if (this.lock === null) return this.s.smax(rbRootOf(this.s, this.freeHead));
    return this.lk.locked(() => this.s.smax(rbRootOf(this.s, this.freeHead)));
  }

  stats(): VmapSpaceStats {
    return spaceStats(this.parts, this.pools, this.lk);
  }

  /** Free blocks in address order (a snapshot taken under the lock at the first step). */
  *freeBlocks(): IterableIterator<Range> {
    yield* freeRanges(this.parts, this.lk);
  }

  /** Live areas in address order (likewise). */
  *busyAreas(): IterableIterator<Range> {
    yield* busyRanges(this.parts, this.pools, this.lk);
  }

  /**
   * Verifies every invariant: red-black rules and parent links of both trees, every smax,
   * tree/list agreement, free blocks sorted, disjoint and coalesced, busy areas disjoint from
   * free blocks, free plus busy tiling the space, and the record accounting.
   * Throws VmallocError code EINVARIANT naming the first violation.
   */
  check(): void {
    checkParts(this.parts, this.pools, this.lk);
  }
}

// Failures, kept out of the hot functions so that those stay small.

function busyOverlap(s: VaStore, va: number): never {
  invariantFailure(`allocated [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a busy area`);
}

function freeOverlap(s: VaStore, va: number): never {
  invariantFailure(`freed range [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a free block`);
}
