/**
 * The <= 5.1 allocator's search: busy areas only (rb-tree + address-sorted list), free space
 * as the gaps between them, found by walking the list from a cached position.
 *
 * Holds: the legacy head (an rb_list head of busy areas whose spare slots hold the search
 * cache), the gap walk with the cache rules, the free-time cache rule + erase, and the check
 * of the cache.
 * Invariant (between calls): the busy areas are disjoint and sorted; free_vmap_cache is 0 or
 * a record in the tree; with a cache, every gap below the cached area, measured from
 * ALIGN(max(gap start, cached_vstart), cached_align), is at most cached_hole_size long (that
 * is what lets a request at least that large, no lower and no less aligned, skip it).
 * Callers: LegacySpace (the bare allocator, for trace replays) and the 'legacy' design
 * (src/designs/legacy.ts), each under its own lock.
 *
 * Kernel (4.19): alloc_vmap_area() (the search between retry: and found:), __free_vmap_area()
 * (the cache rule), free_vmap_cache, cached_hole_size, cached_vstart, cached_align.
 * Differs from kernel: addresses are exact integers below 2^53 in doubles, so the wrap-around
 * checks are plain comparisons; the caller inserts nothing: legacyAllocRange() links the
 * record it is given.
 *
 * The legacy head h (see rb-list.ts for the slots every head uses):
 *
 *   left[h] root   next[h]/prev[h] the busy list   vm[h] count      (rb_list, as any head)
 *   start[h] cached_vstart   end[h] cached_hole_size   smax[h] cached_align
 *   flags[h] free_vmap_cache (a record id, 0: none)
 *
 * The cache makes a run of identical requests O(1) (each starts right after the last one),
 * and any more permissive request (smaller than a hole seen, lower vstart, looser alignment)
 * O(number of busy areas): it walks from the bottom.
 */

import { invariant, invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import { findVaLinks, linkVa, rbListInit, unlinkVa } from './rb-list.js';
import type { VaStore } from './vmap-area.js';
import { WORK, W_STEPS } from '../shared/sim-hook.js';

// The record layout of vmap-area.ts, as this module's own constants (V8 folds them).
const F_START = 0,
  F_END = 1,
  F_SMAX = 2;
const I_LEFT = 7,
  I_RIGHT = 8,
  I_NEXT = 10,
  I_FLAGS = 11;

/** The head's slots that hold the search cache. */
const F_CACHED_VSTART = F_START;
const F_CACHED_HOLE = F_END;
const F_CACHED_ALIGN = F_SMAX;
const I_CACHE = I_FLAGS;

/** The smallest multiple of `align` (a power of two) >= x; exact for doubles below 2^1023. */
function alignUp(x: number, align: number): number {
  return Math.ceil(x / align) * align;
}

/** Makes `h` an empty legacy head: no busy area, no cache. */
export function legacyInit(s: VaStore, h: number): void {
  rbListInit(s, h);
  const f = s.f;
  f[(h << 3) + F_CACHED_VSTART] = 0;
  f[(h << 3) + F_CACHED_HOLE] = 0;
  f[(h << 3) + F_CACHED_ALIGN] = 0;
  s.i[(h << 4) + I_CACHE] = 0;
}

/** The search cache of head `h`, as plain data (tests, check, debugging). */
export interface LegacyCache {
  /** free_vmap_cache: a record id, 0 when none. */
  area: number;
  holeSize: number;
  vstart: number;
  align: number;
}

export function legacyCache(s: VaStore, h: number): LegacyCache {
  const f = s.f;
  return {
    area: s.i[(h << 4) + I_CACHE]!,
    holeSize: f[(h << 3) + F_CACHED_HOLE]!,
    vstart: f[(h << 3) + F_CACHED_VSTART]!,
    align: f[(h << 3) + F_CACHED_ALIGN]!,
  };
}

/**
 * Finds the first gap of the busy list under `h` that holds `size` bytes aligned to `align`
 * inside [vstart, vend), starting from the cache when the cache rules allow it, and links
 * record `va` there as a busy area, which becomes the cache. False when no gap holds it: no
 * area is added then, but the cache has changed as the kernel's does on a failed search (the
 * request's vstart and align are recorded, the cache may have been dropped and the hole size
 * grown).
 *
 * vstart < vend, size a positive multiple of the page size and align a power of two are the
 * caller's to check; [vstart, vend) must lie inside the space the areas live in.
 */
export function legacyAllocRange(
  s: VaStore,
  h: number,
  va: number,
  size: number,
  align: number,
  vstart: number,
  vend: number,
): boolean {
  const f = s.f;
  const i = s.i;
  const ho = h << 3;
  let cache = i[(h << 4) + I_CACHE]! | 0;
  let hole = f[ho + F_CACHED_HOLE]!;
  // A request more permissive than the last one may fit below the cache: search from the
  // bottom. (The hole test is strict: a request exactly as large as the largest hole seen
  // still starts after the cache, though that hole would hold it; kept as the kernel has it.)
  if (
    cache === 0 ||
    size < hole ||
    vstart < f[ho + F_CACHED_VSTART]! ||
    align < f[ho + F_CACHED_ALIGN]!
  ) {
    cache = 0;
    hole = 0;
  }
  f[ho + F_CACHED_VSTART] = vstart;
  f[ho + F_CACHED_ALIGN] = align;

  let addr = 0;
  let first = 0;
  let steps = 0; // nodes and list entries visited, for the simulator's cost model (WORK)
  if (cache !== 0) {
    addr = alignUp(f[(cache << 3) + F_END]!, align);
    // The cache lies below this window: forget it, search from vstart.
    if (addr < vstart) {
      cache = 0;
      hole = 0;
    } else {
      first = cache;
    }
  }
  if (cache === 0) {
    addr = alignUp(vstart, align);
    // The lowest busy area ending at or above addr; one containing addr ends the descent.
    let n = i[(h << 4) + I_LEFT]! | 0;
    while (n !== 0) {
      steps++;
      if (f[(n << 3) + F_END]! >= addr) {
        first = n;
        if (f[(n << 3) + F_START]! <= addr) break;
        n = i[(n << 4) + I_LEFT]! | 0;
      } else {
        n = i[(n << 4) + I_RIGHT]! | 0;
      }
    }
  }
  // Walk the gaps: while the range does not end before `first` (and still ends inside the
  // window), remember the largest gap passed and move past `first`.
  if (first !== 0) {
    while (addr + size > f[(first << 3) + F_START]! && addr + size <= vend) {
      steps++;
      const gapEnd = f[(first << 3) + F_START]!;
      if (addr + hole < gapEnd) hole = gapEnd - addr;
      addr = alignUp(f[(first << 3) + F_END]!, align);
      const nx = i[(first << 4) + I_NEXT]! | 0;
      if (nx === h) break; // past the last area: nothing above limits the range but vend
      first = nx;
    }
  }
  f[ho + F_CACHED_HOLE] = hole;
  WORK[W_STEPS] = WORK[W_STEPS]! + steps;
  if (addr + size > vend) {
    i[(h << 4) + I_CACHE] = cache;
    return false;
  }
  f[(va << 3) + F_START] = addr;
  f[(va << 3) + F_END] = addr + size;
  const link = findVaLinks(s, h, va, 0);
  if (link < 0) overlapFailure(s, va);
  linkVa(s, h, va, link, false);
  i[(h << 4) + I_CACHE] = va;
  return true;
}

/** Kept out of legacyAllocRange, so that the hot function builds no closure. */
function overlapFailure(s: VaStore, va: number): never {
  invariantFailure(`legacy walk: [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps a busy area`);
}

/**
 * Erases busy area `va` from the tree and list under `h`, first moving the cache off it as the
 * kernel does: a free below cached_vstart drops the cache; a free at or below the cached area
 * moves the cache to the freed area's predecessor (the new gap then lies above the cache).
 * The hole size and alignment are left as they are. Kernel: __free_vmap_area().
 */
export function legacyErase(s: VaStore, h: number, va: number): void {
  const f = s.f;
  const i = s.i;
  const cache = i[(h << 4) + I_CACHE]! | 0;
  if (cache !== 0) {
    if (f[(va << 3) + F_END]! < f[(h << 3) + F_CACHED_VSTART]!) {
      i[(h << 4) + I_CACHE] = 0;
    } else if (f[(va << 3) + F_START]! <= f[(cache << 3) + F_START]!) {
      const pv = s.prev(va);
      i[(h << 4) + I_CACHE] = pv === h ? 0 : pv;
    }
  }
  unlinkVa(s, h, va, false);
}

/**
 * Checks the cache of head `h` against its busy areas `busy` (the tree's records in address
 * order, as checkRbList returns them): the cached area is one of them, the cached alignment
 * is 0 (no request yet) or a power of two, and no gap below the cached area is longer, as the
 * cached request would measure it, than cached_hole_size.
 */
export function checkLegacyCache(
  s: VaStore,
  h: number,
  busy: readonly number[],
  name: string,
): void {
  const c = legacyCache(s, h);
  invariant(
    c.holeSize >= 0 && Number.isSafeInteger(c.holeSize),
    () => `${name}: cached_hole_size is ${c.holeSize}`,
  );
  invariant(
    c.align === 0 || (c.align >= 1 && 2 ** Math.round(Math.log2(c.align)) === c.align),
    () => `${name}: cached_align ${c.align} is not a power of two`,
  );
  if (c.area === 0) return;
  // Only a successful search sets the cache, and every search records its alignment.
  invariant(c.align >= 1, () => `${name}: a cached area with no cached_align`);
  const at = busy.indexOf(c.area);
  invariant(at >= 0, () => `${name}: free_vmap_cache #${c.area} is not in the busy tree`);
  let gapStart = -Infinity;
  for (let k = 0; k <= at; k++) {
    const x = busy[k]!;
    const from = alignUp(Math.max(gapStart, c.vstart), c.align);
    const len = s.start(x) - from;
    invariant(
      len <= c.holeSize,
      () =>
        `${name}: the gap [${hex(from)}, ${hex(s.start(x))}) below free_vmap_cache ` +
        `[${hex(s.start(c.area))}, ${hex(s.end(c.area))}) is longer than cached_hole_size ${hex(c.holeSize)}`,
    );
    gapStart = s.end(x);
  }
}
