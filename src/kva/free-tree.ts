/**
 * The free tree: free blocks in an augmented rb-tree + address-sorted list, the lowest-match
 * search, fit classification and clipping, and merge on free.
 *
 * Holds: the "Global kva allocator" algorithms of mm/vmalloc.c over a VaStore.
 * Invariant (between calls): free blocks are disjoint, sorted, fully coalesced (no block ends
 * where the next begins) and every node's smax is max(own size, children's smax).
 * Callers: VmapSpace (src/kva/vmap-space.ts) and the vmalloc layer (src/mm/).
 *
 * Differs from kernel: addresses are exact integers in doubles up to 2^53 instead of unsigned
 * longs, so the wrap-around checks become plain comparisons. A sum can still round: an aligned
 * start may lie at or past 2^53, and 2^53 + 1 rounds to 2^53. So "does [a, a + size) end by
 * `end`" is always written `a <= end - size` (end and size are integers <= 2^53, so the
 * difference is exact), never `a + size <= end`; an aligned start is exact whatever its size
 * (an integer times a power of two). A range to clip out is given as a
 * record holding it (the busy area being made), not as two addresses: V8 boxes a computed
 * double passed to a call it does not inline, an allocation per call above 2^31.
 */

import { augmentPropagate } from './rbtree.js';
import { findVaLinks, linkVa, unlinkVa } from './rb-list.js';
import type { VaStore } from './vmap-area.js';
import { S_FREE_CLIPPED, S_FREE_MERGE, S_FREE_SPLIT, stepHook } from '../shared/step-hook.js';
import { WORK, W_RECORDS, W_STEPS } from '../shared/sim-hook.js';

// The record layout of vmap-area.ts, as this module's own constants: V8 folds a module's
// own constants into the code but loads imported ones at every use (checked by a test).
const F_START = 0,
  F_END = 1,
  F_SMAX = 2;
const I_PC = 6,
  I_LEFT = 7,
  I_RIGHT = 8,
  I_PREV = 9,
  I_NEXT = 10;

/** Failure values of the search and clip (addresses are >= 0). */
export const FIT_ENOENT = -1; // no block can hold the request
export const FIT_ERANGE = -2; // the lowest block that can hold it ends the allocation past vend
export const FIT_ENOMEM = -3; // a no-edge split needed a second record and none was left
export const FIT_EINVAL = -4; // the range is not inside the block (a bug in the caller)

/**
 * The lowest free block that can hold the request at or above `win[0]` (vstart), or 0.
 * Kernel: find_vmap_lowest_match(), with is_within_this_va() written out.
 *
 * A pruned in-order descent: go left while the left subtree may hold `length` bytes and the
 * node starts above vstart; else test the node; else go right if that subtree may hold it;
 * else climb until an ancestor fits or has a right subtree worth entering. On entering one,
 * vstart moves just past that ancestor's start, so the subtrees already searched (all below
 * it) are never entered again.
 *
 * With `adjust`, subtrees are pruned by `size + align - 1` (a block that large always fits
 * whatever its alignment), while nodes on the path are tested exactly: a smaller block that
 * happens to be aligned is taken when the path passes it, so the result depends on the shape
 * of the tree, as in the kernel.
 */
export function findVmapLowestMatch(
  s: VaStore,
  h: number,
  size: number,
  align: number,
  win: Float64Array,
  adjust: boolean,
): number {
  const f = s.f;
  const i = s.i;
  // `| 0` and `+` keep ids in int32 and sizes in float64 registers through the loop (V8).
  const sz = +size;
  const al = +align;
  // Only a pruning bound: it may round above 2^53, but no block is longer than 2^53, and a
  // block of exactly 2^53 is the only one in its tree, so the rounding never changes a path.
  const length = adjust ? sz + al - 1 : sz;
  // ALIGN(x, al) = ceil(x / al) * al; 1 / al is exact for a power of two, and a multiply is
  // several times cheaper than a divide.
  const inv = 1 / al;
  let lo = win[0]!;
  let node = i[(h << 4) + I_LEFT]! | 0;
  // Nodes visited, for the simulator's cost model (WORK only grows; nothing reads it here).
  let steps = 0;
  while (node !== 0) {
    steps++;
    const ni = node << 4;
    const l = i[ni + I_LEFT]! | 0;
    let start = f[(node << 3) + F_START]!;
    if (f[(l << 3) + F_SMAX]! >= length && lo < start) {
      node = l;
      continue;
    }
    // Does the request fit in this block, at or after vstart?
    if (start < lo) start = lo;
    if (al !== 1) start = Math.ceil(start * inv) * al;
    if (start <= f[(node << 3) + F_END]! - sz) return found(node, steps);
    const r = i[ni + I_RIGHT]! | 0;
    if (f[(r << 3) + F_SMAX]! >= length) {
      node = r;
      continue;
    }
    // Roll back up to the first ancestor that fits or whose right subtree is worth a look.
    for (;;) {
      steps++;
      node = i[(node << 4) + I_PC]! >> 1;
      if (node === 0) return found(0, steps);
      const nstart = f[(node << 3) + F_START]!;
      start = nstart < lo ? lo : nstart;
      if (al !== 1) start = Math.ceil(start * inv) * al;
      if (start <= f[(node << 3) + F_END]! - sz) return found(node, steps);
      const rr = i[(node << 4) + I_RIGHT]! | 0;
      if (f[(rr << 3) + F_SMAX]! >= length && lo <= nstart) {
        lo = nstart + 1;
        node = rr;
        break;
      }
    }
  }
  return found(0, steps);
}

/** Counts a search's steps (see WORK) and returns its result. */
function found(node: number, steps: number): number {
  WORK[W_STEPS] = WORK[W_STEPS]! + steps;
  return node;
}

/**
 * The truly lowest free block that can hold the request inside [win[0], win[1]), or 0: the
 * search of `fit: 'exact'`, beyond the kernel. Unlike findVmapLowestMatch with `adjust`, it
 * prunes subtrees only by `size` (a smaller block may hold an aligned request when its start
 * happens to be aligned), so it finds the lowest fit the brute-force scan would.
 *
 * An in-order walk (left subtree, node, right subtree) over the parent links, skipping every
 * subtree whose smax is below `size`, every left subtree of a node at or below vstart (all its
 * blocks end before that node starts), and stopping at the first node that starts past
 * vend - size (every later block starts higher). Each node is visited at most once. Cost: it
 * may test every block of at least `size` bytes below the answer whose start is misaligned,
 * where the kernel's rule tests O(log n) (its pruning guarantees a fit in any subtree it enters).
 */
export function findVmapLowestExact(
  s: VaStore,
  h: number,
  size: number,
  align: number,
  win: Float64Array,
): number {
  const f = s.f;
  const i = s.i;
  const sz = +size;
  const al = +align;
  const inv = 1 / al;
  const lo = win[0]!;
  const last = win[1]! - sz; // the highest start the window allows
  let node = i[(h << 4) + I_LEFT]! | 0;
  // `down`: node's left subtree is still to be walked; else it was, and node is next in order.
  let down = true;
  while (node !== 0) {
    const ni = node << 4;
    const nstart = f[(node << 3) + F_START]!;
    if (down) {
      const l = i[ni + I_LEFT]! | 0;
      if (f[(l << 3) + F_SMAX]! >= sz && lo < nstart) {
        node = l;
        continue;
      }
    }
    if (nstart > last) return 0;
    let start = nstart < lo ? lo : nstart;
    if (al !== 1) start = Math.ceil(start * inv) * al;
    if (start <= f[(node << 3) + F_END]! - sz) return node;
    const r = i[ni + I_RIGHT]! | 0;
    if (f[(r << 3) + F_SMAX]! >= sz) {
      node = r;
      down = true;
      continue;
    }
    // Climb past every ancestor whose right subtree we come from: the first one we reach from
    // its left is the next node in order.
    for (;;) {
      const p = i[(node << 4) + I_PC]! >> 1;
      if (p === 0) return 0;
      const fromLeft = (i[(p << 4) + I_LEFT]! | 0) === node;
      node = p;
      if (fromLeft) break;
    }
    down = false;
  }
  return 0;
}

/**
 * Removes the range of record `nva` from free block `va`. Returns 0 or a negative FIT_ value.
 * The four fit types of the kernel's classify_va_fit_type(), told apart inline:
 *
 *      |<------------- block ------------->|
 *   FL |###################################|   full fit: the block goes away
 *   LE |########|                          |   left edge: start moves up
 *   RE |                          |########|   right edge: end moves down
 *   NE |          |########|               |   no edge: split in two
 *
 * A no-edge split takes the spare record in `preload[slot]` (the kernel's per-CPU
 * ne_fit_preload_node), else allocates one.
 * Kernel: va_clip() (adjust_va_to_fit_type() before 6.9).
 */
export function vaClip(
  s: VaStore,
  h: number,
  va: number,
  nva: number,
  preload: Int32Array,
  slot: number,
): number {
  const f = s.f;
  const o = va << 3;
  const start = f[o + F_START]!;
  const end = f[o + F_END]!;
  const nstart = f[(nva << 3) + F_START]!;
  const nend = f[(nva << 3) + F_END]!;
  if (nstart < start || nend > end) return FIT_EINVAL;
  if (nstart === start) {
    if (nend === end) {
      unlinkVa(s, h, va, true);
      s.free(va);
      return 0;
    }
    f[o + F_START] = nend;
  } else if (nend === end) {
    f[o + F_END] = nstart;
  } else {
    return splitNoEdge(s, h, va, nva, preload, slot);
  }
  if (stepHook !== null) stepHook(S_FREE_CLIPPED);
  augmentPropagate(s, va, 0);
  return 0;
}

/**
 * The no-edge case of vaClip: the right part keeps the record and its place in the tree; the
 * left part is a new record that belongs at the rightmost position of va's left subtree, so
 * its descent starts at va.
 *
 *   before:  va [start ......................... end)
 *   after:  lva [start, nstart)  nva  va [nend, end)
 */
function splitNoEdge(
  s: VaStore,
  h: number,
  va: number,
  nva: number,
  preload: Int32Array,
  slot: number,
): number {
  let lva = preload[slot]!;
  if (lva !== 0) preload[slot] = 0;
  else if ((lva = s.alloc()) === 0) return FIT_ENOMEM;
  const f = s.f; // after s.alloc(): the views may have grown
  f[(lva << 3) + F_START] = f[(va << 3) + F_START]!;
  f[(lva << 3) + F_END] = f[(nva << 3) + F_START]!;
  f[(va << 3) + F_START] = f[(nva << 3) + F_END]!;
  if (stepHook !== null) stepHook(S_FREE_SPLIT);
  augmentPropagate(s, va, 0);
  linkVa(s, h, lva, findVaLinks(s, h, lva, va), true);
  return 0;
}

/**
 * The whole search-and-clip: finds the lowest block for the request, sets record `nva` to the
 * allocated range and clips it out. Returns 0, or a negative FIT_ value (nothing changed).
 * The window [vstart, vend) comes in `win[0]`, `win[1]`: addresses above 2^31 passed as
 * arguments to a call V8 does not inline are boxed (an allocation per call); a caller's
 * typed array is not.
 * `vend` is checked only after the lowest block was chosen, as the kernel does.
 * Kernel: __alloc_vmap_area() + va_alloc().
 *
 * The inflated search length is used only when align exceeds the page size and the window is
 * not exactly `size` long (an exact window could never satisfy the inflated length). With
 * `exact` the search is findVmapLowestExact instead: the truly lowest fit in the window.
 */
export function allocFromFreeTree(
  s: VaStore,
  h: number,
  nva: number,
  size: number,
  align: number,
  win: Float64Array,
  pageSize: number,
  preload: Int32Array,
  slot: number,
  exact = false,
): number {
  const vstart = win[0]!;
  const vend = win[1]!;
  const adjust = align > pageSize && vend - vstart !== size;
  const va = exact
    ? findVmapLowestExact(s, h, size, align, win)
    : findVmapLowestMatch(s, h, size, align, win, adjust);
  if (va === 0) return FIT_ENOENT;
  const f = s.f;
  let nstart = f[(va << 3) + F_START]!;
  if (nstart < vstart) nstart = vstart;
  if (align !== 1) nstart = Math.ceil(nstart * (1 / align)) * align;
  if (nstart > vend - size) return FIT_ERANGE;
  // Exact now: nstart + size <= vend <= 2^53.
  f[(nva << 3) + F_START] = nstart;
  f[(nva << 3) + F_END] = nstart + size;
  return vaClip(s, h, va, nva, preload, slot);
}

/**
 * allocFromFreeTree() with the records it needs from store `s`: a spare for a no-edge split
 * first (`preload[slot]`, taken when there is none: the kernel's preload before it takes
 * free_vmap_area_lock), then the new area's record; then the search in the tree under `h`.
 * Returns the new area (its range set and clipped out of the free tree), or 0: no record, or
 * no block fits (the area's record went back; a spare taken stays for the next call).
 * Callers: VmapSpace (vmap-space.ts) and the pools' slow path (space-pools-slow.ts), with
 * the space's lock held.
 * Kernel: ne_fit_preload() + kmem_cache_alloc(vmap_area_cachep) + __alloc_vmap_area().
 */
export function cutFromFreeTree(
  s: VaStore,
  preload: Int32Array,
  slot: number,
  h: number,
  size: number,
  align: number,
  win: Float64Array,
  pageSize: number,
  exact: boolean,
): number {
  if (preload[slot] === 0) {
    const spare = s.alloc();
    if (spare === 0) return 0;
    preload[slot] = spare;
  }
  const va = s.alloc();
  if (va === 0) return 0;
  if (allocFromFreeTree(s, h, va, size, align, win, pageSize, preload, slot, exact) < 0) {
    s.free(va);
    return 0;
  }
  return va;
}

/**
 * Puts the range of record `va` back, merging it with the free block before and/or after it.
 * Returns the record that now holds the range (va, or the neighbour it merged into; merged-away
 * records go back to the store), or 0 when the range overlaps a free block (nothing changed).
 * Kernel: merge_or_add_vmap_area() / merge_or_add_vmap_area_augment().
 *
 *   before:   [ prev ]      [ va ]      [ next ]
 *   next:     [ prev ]      [ va ][ next ]          -> next.start = va.start, va freed
 *   prev:     [ prev ][ va ]        [ next ]        -> prev.end = va.end, va freed
 *   both:     [ prev ][ va ][ next ]                -> next grown, then unlinked,
 *                                                      then prev.end = next.end
 *
 * When both merge, the grown `next` is unlinked before `prev` grows: the erase's rotations and
 * propagation then see only consistent values, and one propagation from prev finishes the job.
 */
export function mergeOrAddVmapArea(s: VaStore, h: number, va: number, aug: boolean): number {
  WORK[W_RECORDS] = WORK[W_RECORDS]! + 1; // (the simulator's cost model)
  const link = findVaLinks(s, h, va, 0);
  if (link < 0) return 0;
  const f = s.f;
  const i = s.i;
  const start = f[(va << 3) + F_START]!;
  const end = f[(va << 3) + F_END]!;
  const parent = link >> 1;
  const next = parent === 0 ? h : (link & 1) !== 0 ? parent : i[(parent << 4) + I_NEXT]!;
  let cur = va;
  let merged = false;
  if (next !== h && f[(next << 3) + F_START] === end) {
    f[(next << 3) + F_START] = start;
    s.free(va);
    if (stepHook !== null) stepHook(S_FREE_MERGE);
    cur = next;
    merged = true;
  }
  const prev = i[(next << 4) + I_PREV]!;
  if (prev !== h && f[(prev << 3) + F_END] === start) {
    const curEnd = f[(cur << 3) + F_END]!;
    if (merged) unlinkVa(s, h, cur, aug);
    s.free(cur);
    f[(prev << 3) + F_END] = curEnd;
    cur = prev;
    merged = true;
  }
  if (!merged) linkVa(s, h, va, link, aug);
  else if (aug) augmentPropagate(s, cur, 0);
  return cur;
}
