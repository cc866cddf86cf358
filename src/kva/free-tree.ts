/**
 * The free tree: free blocks in an augmented rb-tree + address-sorted list, the lowest-match
 * search, fit classification and clipping, and merge on free.
 *
 * Holds: the "Global kva allocator" algorithms of mm/vmalloc.c over a VaStore.
 * Invariant (between calls): free blocks are disjoint, sorted, fully coalesced (no block ends
 * where the next begins) and every node's smax is max(own size, children's smax).
 * Callers: VmapSpace (src/kva/vmap-space.ts) and the vmalloc layer (src/mm/).
 *
 * Differs from kernel: addresses are exact integers in doubles below 2^53 instead of unsigned
 * longs, so the wrap-around checks become plain comparisons; errors are negative numbers since
 * 0 is a valid address here.
 */

import { augmentPropagate } from './rbtree.js';
import { findVaLinks, linkVa, nextSiblingOfLink, unlinkVa } from './rb-list.js';
import type { VaStore } from './vmap-area.js';

/** Failure values of the search and clip (addresses are >= 0). */
export const FIT_ENOENT = -1; // no block can hold the request
export const FIT_ERANGE = -2; // the lowest block that can hold it ends the allocation past vend
export const FIT_ENOMEM = -3; // a no-edge split needed a second record and none was left
export const FIT_EINVAL = -4; // the range is not inside the block (a bug in the caller)

/** ALIGN(x, align) for a power-of-two align; exact for doubles since align is 2^k. */
export function alignUp(x: number, align: number): number {
  return align === 1 ? x : Math.ceil(x / align) * align;
}

/**
 * Does an allocation of `size` at `align`, at or after `vstart`, fit in block `va`?
 * Kernel: is_within_this_va().
 */
function isWithinThisVa(s: VaStore, va: number, size: number, align: number, vstart: number): boolean {
  const start = s.start[va]!;
  const nstart = alignUp(start > vstart ? start : vstart, align);
  return nstart + size <= s.end[va]!;
}

/**
 * The lowest free block that can hold the request, or 0.
 * Kernel: find_vmap_lowest_match().
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
  vstart: number,
  adjust: boolean,
): number {
  const length = adjust ? size + align - 1 : size;
  let node = s.left[h]!;
  while (node !== 0) {
    const l = s.left[node]!;
    if (s.smax[l]! >= length && vstart < s.start[node]!) {
      node = l;
      continue;
    }
    if (isWithinThisVa(s, node, size, align, vstart)) return node;
    const r = s.right[node]!;
    if (s.smax[r]! >= length) {
      node = r;
      continue;
    }
    // Roll back up to the first ancestor that fits or whose right subtree is worth a look.
    for (;;) {
      node = s.pc[node]! >> 1;
      if (node === 0) return 0;
      if (isWithinThisVa(s, node, size, align, vstart)) return node;
      const rr = s.right[node]!;
      if (s.smax[rr]! >= length && vstart <= s.start[node]!) {
        vstart = s.start[node]! + 1;
        node = rr;
        break;
      }
    }
  }
  return 0;
}

/**
 * Where `[nstart, nstart + size)` lies in block `va`. Kernel: classify_va_fit_type().
 *
 *      |<------------- block ------------->|
 *   FL |###################################|   full fit: the block goes away
 *   LE |########|                          |   left edge: start moves up
 *   RE |                          |########|   right edge: end moves down
 *   NE |          |########|               |   no edge: split in two
 */
export const FitType = { NOTHING: 0, FL: 1, LE: 2, RE: 3, NE: 4 } as const;
export type FitType = (typeof FitType)[keyof typeof FitType];

export function classifyVaFitType(s: VaStore, va: number, nstart: number, size: number): FitType {
  const start = s.start[va]!;
  const end = s.end[va]!;
  if (nstart < start || nstart + size > end) return FitType.NOTHING;
  if (nstart === start) return nstart + size === end ? FitType.FL : FitType.LE;
  return nstart + size === end ? FitType.RE : FitType.NE;
}

/**
 * Removes `[nstart, nstart + size)` from free block `va`. Returns 0 or a negative FIT_ value.
 * A no-edge split takes the spare record in `preload[slot]` (the kernel's per-CPU
 * ne_fit_preload_node), else allocates one.
 * Kernel: va_clip() (adjust_va_to_fit_type() before 6.9).
 */
export function vaClip(
  s: VaStore,
  h: number,
  va: number,
  nstart: number,
  size: number,
  preload: Int32Array,
  slot: number,
): number {
  const start = s.start[va]!;
  const end = s.end[va]!;
  const nend = nstart + size;
  if (nstart < start || nend > end) return FIT_EINVAL;
  if (nstart === start) {
    if (nend === end) {
      unlinkVa(s, h, va, true);
      s.free(va);
      return 0;
    }
    s.start[va] = nend;
  } else if (nend === end) {
    s.end[va] = nstart;
  } else {
    let lva = preload[slot]!;
    if (lva !== 0) preload[slot] = 0;
    else if ((lva = s.alloc()) === 0) return FIT_ENOMEM;
    // The right part keeps the record and its place; the left part is a new node that
    // belongs at the rightmost position of va's left subtree, so the descent starts at va.
    s.start[va] = nend;
    augmentPropagate(s, va, 0);
    s.start[lva] = start;
    s.end[lva] = nstart;
    linkVa(s, h, lva, findVaLinks(s, h, start, nstart, va), true);
    return 0;
  }
  augmentPropagate(s, va, 0);
  return 0;
}

/**
 * Allocates from the chosen block: the address, or a negative FIT_ value.
 * `vend` is checked only here, after the lowest block was chosen, as the kernel does.
 * Kernel: va_alloc().
 */
export function vaAlloc(
  s: VaStore,
  h: number,
  va: number,
  size: number,
  align: number,
  vstart: number,
  vend: number,
  preload: Int32Array,
  slot: number,
): number {
  const start = s.start[va]!;
  const nstart = alignUp(start > vstart ? start : vstart, align);
  if (nstart + size > vend) return FIT_ERANGE;
  const err = vaClip(s, h, va, nstart, size, preload, slot);
  return err < 0 ? err : nstart;
}

/**
 * The whole search-and-clip: the address, or a negative FIT_ value.
 * Kernel: __alloc_vmap_area().
 *
 * The inflated search length is used only when align exceeds the page size and the window is
 * not exactly `size` long (an exact window could never satisfy the inflated length).
 */
export function allocFromFreeTree(
  s: VaStore,
  h: number,
  size: number,
  align: number,
  vstart: number,
  vend: number,
  pageSize: number,
  preload: Int32Array,
  slot: number,
): number {
  const adjust = align > pageSize && vend - vstart !== size;
  const va = findVmapLowestMatch(s, h, size, align, vstart, adjust);
  if (va === 0) return FIT_ENOENT;
  return vaAlloc(s, h, va, size, align, vstart, vend, preload, slot);
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
  const start = s.start[va]!;
  const end = s.end[va]!;
  const link = findVaLinks(s, h, start, end, 0);
  if (link < 0) return 0;
  const next = nextSiblingOfLink(s, h, link);
  let cur = va;
  let merged = false;
  if (next !== h && s.start[next] === end) {
    s.start[next] = start;
    s.free(va);
    cur = next;
    merged = true;
  }
  const prev = s.prev[next]!;
  if (prev !== h && s.end[prev] === start) {
    const curEnd = s.end[cur]!;
    if (merged) {
      unlinkVa(s, h, cur, aug);
      s.free(cur);
    } else {
      s.free(va);
    }
    s.end[prev] = curEnd;
    cur = prev;
    merged = true;
  }
  if (!merged) linkVa(s, h, va, link, aug);
  else if (aug) augmentPropagate(s, cur, 0);
  return cur;
}
