/**
 * An rb-tree and an address-sorted list of the same records, kept together (the kernel's
 * `struct rb_list` and the free_vmap_area_root / free_vmap_area_list pair).
 *
 * Holds: the head record conventions, link and unlink of a record into both the tree and the
 * list, and the descent that finds where a range belongs.
 * Invariant: the in-order walk of the tree equals the list order; ranges are disjoint and
 * sorted by start.
 * Callers: free-tree.ts, busy-tree.ts, and the node / lazy structures built on them.
 *
 * A head is a record that is never itself in a tree. Its slots are used as follows:
 *
 *   head h:  left[h] = root id (0: empty)     next[h] = first record (h when empty)
 *            vm[h]   = number of records      prev[h] = last record  (h when empty)
 *
 *   list:   h <-> first <-> ... <-> last <-> h      (circular, like list_head)
 *
 * Kernel: find_va_links(), get_va_next_sibling(), __link_va(), __unlink_va().
 */

import { augmentPropagate, rbErase, rbInsertColor } from './rbtree.js';
import type { VaStore } from './vmap-area.js';

/** Makes `h` an empty head. */
export function rbListInit(s: VaStore, h: number): void {
  s.left[h] = 0;
  s.next[h] = h;
  s.prev[h] = h;
  s.vm[h] = 0;
}

/** Number of records linked under head `h`. */
export function rbListCount(s: VaStore, h: number): number {
  return s.vm[h]!;
}

/** Root record of the tree under `h`, or 0. */
export function rbRootOf(s: VaStore, h: number): number {
  return s.left[h]!;
}

/** Lowest record under `h`, or 0. */
export function rbListFirst(s: VaStore, h: number): number {
  const x = s.next[h]!;
  return x === h ? 0 : x;
}

/** Highest record under `h`, or 0. */
export function rbListLast(s: VaStore, h: number): number {
  const x = s.prev[h]!;
  return x === h ? 0 : x;
}

/** The record after `x` in address order under `h`, or 0. */
export function rbListNext(s: VaStore, h: number, x: number): number {
  const n = s.next[x]!;
  return n === h ? 0 : n;
}

/**
 * Where `[start, end)` belongs in the tree under `h`, searching down from `from` (0: the root).
 * Returns `parent << 1 | isLeft`, 0 for an empty tree, or -1 when the range overlaps a record.
 */
export function findVaLinks(s: VaStore, h: number, start: number, end: number, from: number): number {
  let cur = from !== 0 ? from : s.left[h]!;
  if (cur === 0) return 0;
  for (;;) {
    if (end <= s.start[cur]!) {
      const l = s.left[cur]!;
      if (l === 0) return (cur << 1) | 1;
      cur = l;
    } else if (start >= s.end[cur]!) {
      const r = s.right[cur]!;
      if (r === 0) return cur << 1;
      cur = r;
    } else {
      return -1;
    }
  }
}

/**
 * The list record that follows a record linked at `link` (the head when it goes last).
 * Kernel: get_va_next_sibling().
 */
export function nextSiblingOfLink(s: VaStore, h: number, link: number): number {
  const parent = link >> 1;
  if (parent === 0) return h;
  return (link & 1) !== 0 ? parent : s.next[parent]!;
}

/**
 * Links `va` at `link` (from findVaLinks, not -1) into the tree and the list under `h`.
 * With `aug`, the new leaf's smax is its size and the ancestors are updated before the
 * rebalancing rotations, so the augmentation is exact throughout.
 */
export function linkVa(s: VaStore, h: number, va: number, link: number, aug: boolean): void {
  const parent = link >> 1;
  const next = nextSiblingOfLink(s, h, link);
  s.left[va] = 0;
  s.right[va] = 0;
  s.pc[va] = parent << 1; // red leaf
  if (parent === 0) s.left[h] = va;
  else if ((link & 1) !== 0) s.left[parent] = va;
  else s.right[parent] = va;

  const prev = s.prev[next]!;
  s.prev[va] = prev;
  s.next[va] = next;
  s.next[prev] = va;
  s.prev[next] = va;
  s.vm[h] = s.vm[h]! + 1;

  if (aug) {
    s.smax[va] = s.end[va]! - s.start[va]!;
    augmentPropagate(s, parent, 0);
  }
  rbInsertColor(s, h, va, aug);
}

/** Unlinks `va` from the tree and the list under `h` and clears its links. */
export function unlinkVa(s: VaStore, h: number, va: number, aug: boolean): void {
  rbErase(s, h, va, aug);
  const prev = s.prev[va]!;
  const next = s.next[va]!;
  s.next[prev] = next;
  s.prev[next] = prev;
  s.pc[va] = 0;
  s.left[va] = 0;
  s.right[va] = 0;
  s.prev[va] = 0;
  s.next[va] = 0;
  s.vm[h] = s.vm[h]! - 1;
}
