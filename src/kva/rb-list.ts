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
 *
 * None of these functions allocates a record, so they may hold the store's views in locals
 * (smaller bytecode, which lets V8 inline them into the allocator's hot paths).
 */

import { augmentPropagate, rbErase, rbInsertColor } from './rbtree.js';
import type { VaStore } from './vmap-area.js';
import { WORK, W_STEPS } from '../shared/sim-hook.js';

// The record layout of vmap-area.ts, as this module's own constants: V8 folds a module's
// own constants into the code but loads imported ones at every use (checked by a test).
const RB_RED = 0,
  RB_BLACK = 1;
const F_START = 0,
  F_END = 1,
  F_SMAX = 2;
const I_PC = 6,
  I_LEFT = 7,
  I_RIGHT = 8,
  I_PREV = 9,
  I_NEXT = 10,
  I_VM = 12;

/** Makes `h` an empty head. */
export function rbListInit(s: VaStore, h: number): void {
  const i = s.i;
  const o = h << 4;
  i[o + I_LEFT] = 0;
  i[o + I_NEXT] = h;
  i[o + I_PREV] = h;
  i[o + I_VM] = 0;
}

/** Number of records linked under head `h`. */
export function rbListCount(s: VaStore, h: number): number {
  return s.vm(h);
}

/** Root record of the tree under `h`, or 0. */
export function rbRootOf(s: VaStore, h: number): number {
  return s.left(h);
}

/** Lowest record under `h`, or 0. */
export function rbListFirst(s: VaStore, h: number): number {
  const x = s.next(h);
  return x === h ? 0 : x;
}

/** The record after `x` in address order under `h`, or 0. */
export function rbListNext(s: VaStore, h: number, x: number): number {
  const n = s.next(x);
  return n === h ? 0 : n;
}

/**
 * Where record `va`'s range belongs in the tree under `h`, searching down from `from` (0: the
 * root). Returns a link: `parent << 1 | isLeft`, 0 for an empty tree, or -1 when the range
 * overlaps a record already there.
 * Kernel: find_va_links().
 *
 * Takes the record rather than its addresses: V8 would box a computed double passed to a call
 * it does not inline (an allocation per call once addresses pass 2^31).
 */
export function findVaLinks(s: VaStore, h: number, va: number, from: number): number {
  const f = s.f;
  const i = s.i;
  const lo = f[(va << 3) + F_START]!;
  const hi = f[(va << 3) + F_END]!;
  // `| 0` keeps ids in int32 registers through the loop (V8).
  let cur = from !== 0 ? from | 0 : i[(h << 4) + I_LEFT]! | 0;
  if (cur === 0) return 0;
  let link = -1;
  let steps = 0; // nodes visited, for the simulator's cost model (see WORK)
  for (;;) {
    steps++;
    if (hi <= f[(cur << 3) + F_START]!) {
      const l = i[(cur << 4) + I_LEFT]! | 0;
      if (l === 0) {
        link = (cur << 1) | 1;
        break;
      }
      cur = l;
    } else if (lo >= f[(cur << 3) + F_END]!) {
      const r = i[(cur << 4) + I_RIGHT]! | 0;
      if (r === 0) {
        link = cur << 1;
        break;
      }
      cur = r;
    } else {
      break;
    }
  }
  WORK[W_STEPS] = WORK[W_STEPS]! + steps;
  return link;
}

/**
 * Links `va` at `link` (from findVaLinks, not -1) into the tree and the list under `h`.
 * With `aug`, the new leaf's smax is its size and the ancestors are updated before the
 * rebalancing rotations, so the augmentation is exact throughout.
 */
export function linkVa(s: VaStore, h: number, va: number, link: number, aug: boolean): void {
  const i = s.i;
  const parent = link >> 1;
  const vi = va << 4;
  const pi = parent << 4;
  const nx = parent === 0 ? h : (link & 1) !== 0 ? parent : i[pi + I_NEXT]!;
  i[vi + I_LEFT] = 0;
  i[vi + I_RIGHT] = 0;
  if (parent === 0) i[(h << 4) + I_LEFT] = va;
  else if ((link & 1) !== 0) i[pi + I_LEFT] = va;
  else i[pi + I_RIGHT] = va;

  const pv = i[(nx << 4) + I_PREV]!;
  i[vi + I_PREV] = pv;
  i[vi + I_NEXT] = nx;
  i[(pv << 4) + I_NEXT] = va;
  i[(nx << 4) + I_PREV] = va;
  i[(h << 4) + I_VM] = i[(h << 4) + I_VM]! + 1;

  if (aug) {
    const f = s.f;
    f[(va << 3) + F_SMAX] = f[(va << 3) + F_END]! - f[(va << 3) + F_START]!;
    augmentPropagate(s, parent, 0);
  }
  // The new node is red. The root only needs to be black, and under a black parent nothing is
  // to be done: both are common, and testing them here saves a call.
  if (parent === 0) {
    i[vi + I_PC] = RB_BLACK;
  } else {
    i[vi + I_PC] = parent << 1;
    if ((i[pi + I_PC]! & 1) === RB_RED) rbInsertColor(s, h, va, aug);
  }
}

/**
 * Unlinks `va` from the tree and the list under `h`. Its own links are left as they were: no
 * code reads the links of an unlinked record, and linkVa sets all of them.
 */
export function unlinkVa(s: VaStore, h: number, va: number, aug: boolean): void {
  rbErase(s, h, va, aug);
  const i = s.i;
  const vi = va << 4;
  const pv = i[vi + I_PREV]!;
  const nx = i[vi + I_NEXT]!;
  i[(pv << 4) + I_NEXT] = nx;
  i[(nx << 4) + I_PREV] = pv;
  i[(h << 4) + I_VM] = i[(h << 4) + I_VM]! - 1;
}
