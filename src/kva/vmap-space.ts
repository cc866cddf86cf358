/**
 * VmapSpace: the bare range allocator (free tree + busy tree, immediate free).
 *
 * Holds: one managed space [start, end), its free blocks and its busy areas; the operations
 * on them. Its contract and argument checks are in vmap-space-options.ts, its shared memory
 * (the handle: made, laid out, checked at attach) in vmap-space-handle.ts.
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
import { findVmapArea, insertVmapArea, unlinkVmapArea } from './busy-tree.js';
import { allocFromFreeTree, mergeOrAddVmapArea } from './free-tree.js';
import { rbListCount, rbRootOf } from './rb-list.js';
import { VaStore } from './vmap-area.js';
import {
  checkAddr,
  checkAttachOptions,
  checkOptionsBag,
  checkVend,
  checkVstart,
  notAnAreaStart,
  resolveSpaceOptions,
  windowInverted,
  type AllocOptions,
  type Range,
  type VmapSpaceAttachOptions,
  type VmapSpaceHandle,
  type VmapSpaceOptions,
  type VmapSpaceStats,
} from './vmap-space-options.js';
import {
  C_BUSY_HEAD,
  C_FLAGS,
  C_FREE_HEAD,
  F_EXACT,
  checkSpaceHandle,
  createSpaceHandle,
} from './vmap-space-handle.js';
import { SpacePools, type PoolTrips } from './space-pools.js';
import { poolCounts } from './space-pools-check.js';
import {
  checkParts,
  listRanges,
  plainStats,
  pooledBusyRanges,
  pooledFind,
  pooledStats,
  rebuildSpace,
  type SpaceParts,
} from './vmap-space-views.js';
import { Lock, LockTable } from '../shared/lock.js';

export type {
  AllocOptions,
  VmapSpaceAttachOptions,
  Range,
  VmapSpaceHandle,
  VmapSpaceOptions,
  VmapSpacePoolOptions,
  VmapSpaceStats,
} from './vmap-space-options.js';
import { pauseSteps, resumeSteps, stepHook } from '../shared/step-hook.js';

// The hot words of the control and statistics blocks (vmap-space-handle.ts has the layout),
// as this module's own constants: V8 folds a module's own constants into the code but loads
// imported ones at every use (the copies are checked by test/kva/layout.test.ts).
const C_PRELOAD = 2;
const S_BUSY_BYTES = 0;
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
  /** stat[S_BUSY_BYTES]: bytes in live areas (a typed array: a double field would be boxed). */
  private readonly stat: Float64Array;
  /** The space's lock when it is concurrent (the kernel's free_vmap_area_lock). */
  private readonly lock: Lock | null;
  /** Who this instance takes the lock as (a worker's id, for the lock's owner word). */
  private readonly cpu: number;
  /** The lock table (concurrent spaces) and every lock in it: the space's and its pools'. */
  private readonly table: LockTable | null;
  private readonly allLocks: Lock[] = [];
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
    const attachTo = (options as { [ATTACH]?: [VmapSpaceHandle, number] } | null)?.[ATTACH];
    // A new space: every option is checked before anything is made.
    const handle = attachTo?.[0] ?? createSpaceHandle(resolveSpaceOptions(options));
    this.handle = handle;
    this.start = handle.start;
    this.end = handle.end;
    this.pageSize = handle.pageSize;
    this.s = new VaStore(handle.store);
    this.ctl = new Int32Array(handle.ctl);
    this.stat = new Float64Array(handle.stat);
    const table = handle.locks === null ? null : new LockTable(handle.locks);
    this.table = table;
    this.lock = table === null ? null : new Lock(table, 0, 'vmap_space_lock');
    if (this.lock !== null) this.allLocks.push(this.lock);
    this.cpu = attachTo?.[1] ?? 0;
    this.freeHead = this.ctl[C_FREE_HEAD]!;
    this.busyHead = this.ctl[C_BUSY_HEAD]!;
    this.exact = (this.ctl[C_FLAGS]! & F_EXACT) !== 0;
    this.parts = {
      s: this.s,
      start: this.start,
      end: this.end,
      freeHead: this.freeHead,
      busyHead: this.busyHead,
      ctl: this.ctl,
      stat: this.stat,
    };
    this.pools =
      (handle.pools ?? null) === null || table === null
        ? null
        : new SpacePools(
            this.parts,
            handle.pools!,
            this.cpu,
            this.pageSize,
            this.win,
            this.exact,
            (i, name) => {
              const l = new Lock(table, i, name);
              this.allLocks.push(l);
              return l;
            },
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
    const h = checkSpaceHandle(handle);
    const cpu = checkAttachOptions(options);
    return new VmapSpace({ [ATTACH]: [h, cpu] } as unknown as VmapSpaceOptions);
  }

  /** Takes the lock (concurrent spaces) and brings this thread's views up to date. */
  private enter(): void {
    if (stepHook !== null) pauseSteps();
    if (this.lock !== null) {
      this.lock.lock(this.cpu);
      this.s.refreshViews();
    }
  }

  private leave(): void {
    if (this.lock !== null) this.lock.unlock();
    resumeSteps();
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
        this.exact,
      ) < 0
    ) {
      s.free(va);
      return 0;
    }
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
    this.stat[S_BUSY_BYTES] = this.stat[S_BUSY_BYTES]! - (s.end(va) - s.start(va));
    if (mergeOrAddVmapArea(s, this.freeHead, va, true) === 0) freeOverlap(s, va);
  }

  /**
   * Recovery of the vmalloc subsystem (src/mm/recovery-parts.ts), with every other thread
   * outside this space: its lock is made free whoever held it (a dead worker may have), and
   * the space is rebuilt with exactly the live areas `keep` (sorted, disjoint, inside).
   * @internal
   */
  rebuild(keep: readonly { start: number; end: number }[]): void {
    rebuildSpace(this.parts, keep);
    this.lock?.forceRelease();
  }

  /**
   * Makes this instance's locks see which cpus are dead in `owner` (LockTable.shareLivenessOf):
   * for a space used inside a subsystem whose cpus are its lockers, so that a cpu marked dead
   * there makes this space's waiters give up too (EOWNERDEAD) instead of waiting out the
   * timeout. No-op for a space that is not concurrent.
   * @internal
   */
  shareLivenessOf(owner: LockTable): void {
    this.table?.shareLivenessOf(owner);
  }

  /**
   * This instance's trips past the pools' fast paths (`bench space`), counted since it was
   * made: allocations cut from the free tree (and of those, refills), purges under the space's
   * lock, purges that needed only the cache's lock. null without pools. @internal
   */
  poolTrips(): PoolTrips | null {
    return this.pools?.trips() ?? null;
  }

  /** The locks of this space and of its pools (empty when not concurrent). @internal */
  locks(): readonly Lock[] {
    return this.allLocks;
  }

  /**
   * Recovery: frees the lock whoever holds it (every other thread is outside this space; a
   * dead worker may hold it), so that the recovery can read the space before rebuild().
   * @internal
   */
  releaseLock(): void {
    this.lock?.forceRelease();
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
    if (this.pools !== null) return pooledFind(this.pools, addr);
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
    return this.locked(() => this.s.smax(rbRootOf(this.s, this.freeHead)));
  }

  stats(): VmapSpaceStats {
    const p = this.pools;
    if (p !== null) return pooledStats(this.parts, p);
    return this.locked(() => plainStats(this.parts));
  }

  /** Free blocks in address order. */
  *freeBlocks(): IterableIterator<Range> {
    yield* this.walk(this.freeHead);
  }

  /** Live areas in address order. */
  *busyAreas(): IterableIterator<Range> {
    const p = this.pools;
    if (p !== null) yield* pooledBusyRanges(p);
    else yield* this.walk(this.busyHead);
  }

  /** A snapshot of the list under `h` (taken under the lock, so concurrent changes are safe). */
  private *walk(h: number): IterableIterator<Range> {
    yield* this.locked(() => listRanges(this.s, h));
  }

  /**
   * Verifies every invariant: red-black rules and parent links of both trees, every smax,
   * tree/list agreement, free blocks sorted, disjoint and coalesced, busy areas disjoint from
   * free blocks, free plus busy tiling the space, and the record accounting.
   * Throws VmallocError code EINVARIANT naming the first violation.
   */
  check(): void {
    const p = this.pools;
    if (p !== null) checkParts(this.parts, p);
    else this.locked(() => checkParts(this.parts, null));
  }
}

// Failures, kept out of the hot functions so that those stay small.

function busyOverlap(s: VaStore, va: number): never {
  invariantFailure(`allocated [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a busy area`);
}

function freeOverlap(s: VaStore, va: number): never {
  invariantFailure(`freed range [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a free block`);
}
