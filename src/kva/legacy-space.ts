/**
 * LegacySpace: the bare <= 5.1 range allocator (busy tree + list, the gap walk with
 * free_vmap_cache, immediate free), one thread, no locks.
 *
 * Holds: one managed space [start, end) and its busy areas under a legacy head (see
 * legacy-walk.ts), with the same request checks as VmapSpace.
 * Invariant (between calls): the busy areas are disjoint, sorted and inside the space; the
 * cache rules of legacy-walk.ts hold; every record is the head or a busy area.
 * Callers: tests (the replay of the C yardstick's legacy traces, the brute-force model of the
 * cache rules); the 'legacy' design uses legacy-walk.ts directly.
 *
 * Kernel (4.19): alloc_vmap_area() / __free_vmap_area() without the lazy step or the lock.
 * Differs from kernel: misuse throws VmallocError (the kernel BUG()s on a bad size or
 * alignment and never passes an empty window), and `free` takes exactly the start of an area.
 */

import {
  VmallocError,
  checkAddressIn,
  checkAlign,
  checkInteger,
  checkSize,
  hex,
  isPowerOfTwo,
} from '../errors.js';
import { findVmapArea } from './busy-tree.js';
import { checkRbList, checkStore } from './check.js';
import {
  checkLegacyCache,
  legacyAllocRange,
  legacyCache,
  legacyErase,
  legacyInit,
} from './legacy-walk.js';
import { rbListCount, rbListFirst, rbListNext } from './rb-list.js';
import { VaStore } from './vmap-area.js';
import type { AllocOptions, Range } from './vmap-space.js';

const MAX_END = 2 ** 53;
const NO_OPTIONS: AllocOptions = {};

/** The search cache, with the cached area as a range. */
export interface LegacyCacheState {
  /** free_vmap_cache, or null. */
  area: Range | null;
  holeSize: number;
  vstart: number;
  align: number;
}

export class LegacySpace {
  readonly start: number;
  readonly end: number;
  readonly pageSize: number;
  private readonly s: VaStore;
  private readonly head: number;
  /** The space, as the request checks name it. */
  private readonly spaceText: string;

  constructor(options: { start: number; end: number; pageSize?: number }) {
    if (options === null || typeof options !== 'object') {
      throw new VmallocError(
        'EINVAL',
        'Cannot create LegacySpace: options {start, end} are required',
      );
    }
    const pageSize = options.pageSize ?? 4096;
    if (typeof pageSize !== 'number' || !isPowerOfTwo(pageSize) || pageSize > 2 ** 30) {
      throw new VmallocError(
        'EINVAL',
        `Cannot create LegacySpace: pageSize must be a power of two from 1 to 2^30, got ${String(pageSize)}`,
      );
    }
    const start = checkAddressIn(
      'create LegacySpace',
      'start',
      options.start,
      1,
      MAX_END - 1,
      '[1, 2^53)',
    );
    const end =
      options.end === MAX_END
        ? MAX_END
        : checkAddressIn(
            'create LegacySpace',
            'end',
            options.end,
            start + 1,
            MAX_END,
            `(start, 2^53], start being ${hex(start)}`,
          );
    this.start = start;
    this.end = end;
    this.pageSize = pageSize;
    this.spaceText = `the space [${hex(start)}, ${hex(end)}]`;
    this.s = VaStore.create({ shared: false });
    this.head = this.s.alloc();
    legacyInit(this.s, this.head);
  }

  /**
   * Reserves `size` bytes in the first gap the walk reaches that holds them, or returns null
   * (the cache has then been updated as a failed kernel search updates it).
   */
  alloc(size: number, options?: AllocOptions): number | null {
    checkSize('alloc', 'size', size, this.pageSize, this.end - this.start, 'the size of the space');
    const o = options === undefined ? NO_OPTIONS : options;
    if (o === null || typeof o !== 'object') {
      throw new VmallocError('EINVAL', `Cannot alloc: options must be an object, got ${String(o)}`);
    }
    const align = o.align === undefined ? 1 : checkAlign('alloc', 'align', o.align);
    const vstart =
      o.vstart === undefined
        ? this.start
        : checkAddressIn('alloc', 'vstart', o.vstart, this.start, this.end - 1, this.spaceText);
    const vend =
      o.vend === undefined || o.vend === this.end
        ? this.end
        : checkAddressIn('alloc', 'vend', o.vend, this.start + 1, this.end, this.spaceText);
    if (vstart >= vend) {
      throw new VmallocError(
        'EINVAL',
        `Cannot alloc: vstart must be below vend, got vstart ${hex(vstart)} and vend ${hex(vend)}`,
      );
    }
    const s = this.s;
    const va = s.alloc();
    if (va === 0) return null;
    if (!legacyAllocRange(s, this.head, va, size, align, vstart, vend)) {
      s.free(va);
      return null;
    }
    return s.start(va);
  }

  /** Releases the area that starts at `addr`; ENOENT when no live area starts there. */
  free(addr: number): void {
    checkInteger('free', 'addr', addr);
    const s = this.s;
    const va = findVmapArea(s, this.head, addr);
    if (va === 0 || s.start(va) !== addr) {
      throw new VmallocError(
        'ENOENT',
        va === 0
          ? `Cannot free: addr must be the start of a live area, got ${hex(addr)}, which no live area contains (never allocated, or already freed)`
          : `Cannot free: addr must be the start of a live area, got ${hex(addr)}, which lies inside the area [${hex(s.start(va))}, ${hex(s.end(va))}); pass the area's start`,
      );
    }
    legacyErase(s, this.head, va);
    s.free(va);
  }

  /** Number of live areas. */
  get busyCount(): number {
    return rbListCount(this.s, this.head);
  }

  /** Live areas in address order. */
  busyAreas(): Range[] {
    const s = this.s;
    const out: Range[] = [];
    for (let x = rbListFirst(s, this.head); x !== 0; x = rbListNext(s, this.head, x))
      out.push({ start: s.start(x), end: s.end(x) });
    return out;
  }

  /** free_vmap_cache, cached_hole_size, cached_vstart, cached_align. */
  cache(): LegacyCacheState {
    const c = legacyCache(this.s, this.head);
    const s = this.s;
    return {
      area: c.area === 0 ? null : { start: s.start(c.area), end: s.end(c.area) },
      holeSize: c.holeSize,
      vstart: c.vstart,
      align: c.align,
    };
  }

  /** Verifies the tree, the list, the cache rules and the record accounting (EINVARIANT). */
  check(): void {
    const s = this.s;
    const busy = checkRbList(s, this.head, false, 'busy tree', this.start, this.end);
    checkLegacyCache(s, this.head, busy, 'free_vmap_cache');
    checkStore(s, [this.head, ...busy], 'records');
  }
}
