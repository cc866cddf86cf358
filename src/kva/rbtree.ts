/**
 * Intrusive red-black tree over vmap-area records, with optional max-augmentation.
 *
 * Holds: the rebalancing of lib/rbtree.c (insert fix-up, erase with successor replacement,
 * erase fix-up) and the "max" augmentation of include/linux/rbtree_augmented.h, where every
 * node of the free tree stores `smax = max(own size, smax(left), smax(right))`.
 * Invariant (after each exported call): red-black rules hold; when `aug` is true every node's
 * `smax` is exact.
 * Callers: rb-list.ts (link / unlink), free-tree.ts (propagation after a block changes size).
 *
 * The case analysis follows lib/rbtree.c step for step, so a sequence of inserts and erases
 * gives the kernel's tree shape. That matters: with a large alignment the kernel's search
 * result depends on the shape (see free-tree.ts).
 *
 * Kernel: __rb_insert(), __rb_erase_augmented(), ____rb_erase_color(), RB_DECLARE_CALLBACKS_MAX.
 * Differs from kernel: the root lives in the tree head record (`left[head]`); the callbacks are
 * a boolean, not a function table, so the same code serves the plain and the augmented trees.
 *
 * Rotation (left rotation at P; the right one is its mirror):
 *
 *        P                 N
 *       / \               / \
 *      a   N     -->     P   c        augment: N takes P's old smax (same subtree),
 *         / \           / \                    P is recomputed from a and b.
 *        b   c         a   b
 */

import type { VaStore } from './vmap-area.js';

// The record layout of vmap-area.ts, as this module's own constants: V8 folds a module's
// own constants into the code but loads imported ones at every use (checked by a test).
const RB_RED = 0,
  RB_BLACK = 1;
const F_START = 0,
  F_END = 1,
  F_SMAX = 2;
const I_PC = 6,
  I_LEFT = 7,
  I_RIGHT = 8;

// None of these functions allocates a record, so each holds the store's views in locals.
// Record x's words: i[(x << 4) + I_PC | I_LEFT | I_RIGHT], f[(x << 3) + F_START | F_END | F_SMAX].

/** Puts `nw` where `old` hangs under `parent` (or at the root of head `h`). */
function changeChild(i: Int32Array, h: number, old: number, nw: number, parent: number): void {
  if (parent === 0) i[(h << 4) + I_LEFT] = nw;
  else if (i[(parent << 4) + I_LEFT] === old) i[(parent << 4) + I_LEFT] = nw;
  else i[(parent << 4) + I_RIGHT] = nw;
}

/** `nw` takes `old`'s parent and colour; `old` becomes `nw`'s child with `color`. */
function rotateSetParents(i: Int32Array, h: number, old: number, nw: number, color: number): void {
  const pcOld = i[(old << 4) + I_PC]!;
  i[(nw << 4) + I_PC] = pcOld;
  i[(old << 4) + I_PC] = (nw << 1) | color;
  changeChild(i, h, old, nw, pcOld >> 1);
}

/** max(own size, children's smax); a missing child is record 0, whose smax is 0. */
export function subtreeMax(s: VaStore, x: number): number {
  const f = s.f;
  const i = s.i;
  const o = x << 3;
  let m = f[o + F_END]! - f[o + F_START]!;
  const l = f[(i[(x << 4) + I_LEFT]! << 3) + F_SMAX]!;
  const r = f[(i[(x << 4) + I_RIGHT]! << 3) + F_SMAX]!;
  if (l > m) m = l;
  if (r > m) m = r;
  return m;
}

/**
 * Recomputes `smax` from `x` up to (not including) `stop`, stopping early at the first node
 * whose value does not change: everything above it was already right.
 * Kernel: augment_tree_propagate_from() / the generated _propagate callback.
 */
export function augmentPropagate(s: VaStore, x: number, stop: number): void {
  // subtreeMax() written out: this loop runs on every allocation and free.
  const f = s.f;
  const i = s.i;
  x |= 0;
  while (x !== stop) {
    const o = x << 3;
    const xi = x << 4;
    let m = f[o + F_END]! - f[o + F_START]!;
    const l = f[(i[xi + I_LEFT]! << 3) + F_SMAX]!;
    const r = f[(i[xi + I_RIGHT]! << 3) + F_SMAX]!;
    if (l > m) m = l;
    if (r > m) m = r;
    if (f[o + F_SMAX] === m) break;
    f[o + F_SMAX] = m;
    x = i[xi + I_PC]! >> 1;
  }
}

/** After a rotation: `nw` took `old`'s place, so it takes its subtree max; `old` is recomputed. */
function augmentRotate(s: VaStore, old: number, nw: number): void {
  const f = s.f;
  f[(nw << 3) + F_SMAX] = f[(old << 3) + F_SMAX]!;
  f[(old << 3) + F_SMAX] = subtreeMax(s, old);
}

/**
 * Rebalances after `node` was linked as a red leaf under a red parent.
 * Kernel: __rb_insert().
 */
export function rbInsertColor(s: VaStore, h: number, node: number, aug: boolean): void {
  const i = s.i;
  let parent = i[(node << 4) + I_PC]! >> 1;
  for (;;) {
    if (parent === 0) {
      // The node is the root: the root is black.
      i[(node << 4) + I_PC] = RB_BLACK;
      return;
    }
    const ppc = i[(parent << 4) + I_PC]!;
    if ((ppc & 1) === RB_BLACK) return;
    // A red parent is never the root, so the grandparent exists.
    const gparent = ppc >> 1;
    let tmp = i[(gparent << 4) + I_RIGHT]!;
    if (parent !== tmp) {
      // Parent is a left child; tmp is the uncle.
      if (tmp !== 0 && (i[(tmp << 4) + I_PC]! & 1) === RB_RED) {
        // Red uncle: recolour and continue from the grandparent.
        i[(tmp << 4) + I_PC] = (gparent << 1) | RB_BLACK;
        i[(parent << 4) + I_PC] = (gparent << 1) | RB_BLACK;
        node = gparent;
        parent = i[(node << 4) + I_PC]! >> 1;
        i[(node << 4) + I_PC] = (parent << 1) | RB_RED;
        continue;
      }
      tmp = i[(parent << 4) + I_RIGHT]!;
      if (node === tmp) {
        // Node is an inner grandchild: left-rotate at parent to make it outer.
        tmp = i[(node << 4) + I_LEFT]!;
        i[(parent << 4) + I_RIGHT] = tmp;
        i[(node << 4) + I_LEFT] = parent;
        if (tmp !== 0) i[(tmp << 4) + I_PC] = (parent << 1) | RB_BLACK;
        i[(parent << 4) + I_PC] = (node << 1) | RB_RED;
        if (aug) augmentRotate(s, parent, node);
        parent = node;
        tmp = i[(node << 4) + I_RIGHT]!;
      }
      // Outer grandchild: right-rotate at the grandparent.
      i[(gparent << 4) + I_LEFT] = tmp;
      i[(parent << 4) + I_RIGHT] = gparent;
      if (tmp !== 0) i[(tmp << 4) + I_PC] = (gparent << 1) | RB_BLACK;
      rotateSetParents(i, h, gparent, parent, RB_RED);
      if (aug) augmentRotate(s, gparent, parent);
      return;
    } else {
      // Mirror: parent is a right child.
      tmp = i[(gparent << 4) + I_LEFT]!;
      if (tmp !== 0 && (i[(tmp << 4) + I_PC]! & 1) === RB_RED) {
        i[(tmp << 4) + I_PC] = (gparent << 1) | RB_BLACK;
        i[(parent << 4) + I_PC] = (gparent << 1) | RB_BLACK;
        node = gparent;
        parent = i[(node << 4) + I_PC]! >> 1;
        i[(node << 4) + I_PC] = (parent << 1) | RB_RED;
        continue;
      }
      tmp = i[(parent << 4) + I_LEFT]!;
      if (node === tmp) {
        tmp = i[(node << 4) + I_RIGHT]!;
        i[(parent << 4) + I_LEFT] = tmp;
        i[(node << 4) + I_RIGHT] = parent;
        if (tmp !== 0) i[(tmp << 4) + I_PC] = (parent << 1) | RB_BLACK;
        i[(parent << 4) + I_PC] = (node << 1) | RB_RED;
        if (aug) augmentRotate(s, parent, node);
        parent = node;
        tmp = i[(node << 4) + I_LEFT]!;
      }
      i[(gparent << 4) + I_RIGHT] = tmp;
      i[(parent << 4) + I_LEFT] = gparent;
      if (tmp !== 0) i[(tmp << 4) + I_PC] = (gparent << 1) | RB_BLACK;
      rotateSetParents(i, h, gparent, parent, RB_RED);
      if (aug) augmentRotate(s, gparent, parent);
      return;
    }
  }
}

/**
 * Removes `node` from the tree (the node's own links are left for the caller to clear).
 * Kernel: __rb_erase_augmented() + ____rb_erase_color().
 *
 * With two children the in-order successor takes the node's place:
 *
 *        N                 S           S = leftmost of N's right subtree;
 *       / \               / \          S's own right child (if any) takes S's old place.
 *      a   r     -->     a   r
 *         /                 /
 *       ...               ...
 *       /                 /
 *      S                 x
 *       \
 *        x
 */
export function rbErase(s: VaStore, h: number, node: number, aug: boolean): void {
  const i = s.i;
  const f = s.f;
  const ni = node << 4;
  const child = i[ni + I_RIGHT]!;
  let tmp = i[ni + I_LEFT]!;
  let parent: number;
  let rebalance: number;

  if (tmp === 0) {
    // At most a right child: it takes the node's place and colour.
    const pcNode = i[ni + I_PC]!;
    parent = pcNode >> 1;
    changeChild(i, h, node, child, parent);
    if (child !== 0) {
      i[(child << 4) + I_PC] = pcNode;
      rebalance = 0;
    } else {
      rebalance = (pcNode & 1) === RB_BLACK ? parent : 0;
    }
    tmp = parent;
  } else if (child === 0) {
    // Only a left child (necessarily red, under a black node): it takes the node's place.
    const pcNode = i[ni + I_PC]!;
    i[(tmp << 4) + I_PC] = pcNode;
    parent = pcNode >> 1;
    changeChild(i, h, node, tmp, parent);
    rebalance = 0;
    tmp = parent;
  } else {
    let successor = child;
    let child2: number;
    tmp = i[(child << 4) + I_LEFT]!;
    if (tmp === 0) {
      // The right child is the successor.
      parent = successor;
      child2 = i[(successor << 4) + I_RIGHT]!;
      if (aug) f[(successor << 3) + F_SMAX] = f[(node << 3) + F_SMAX]!;
    } else {
      // The successor is the leftmost node of the right subtree.
      do {
        parent = successor;
        successor = tmp;
        tmp = i[(tmp << 4) + I_LEFT]!;
      } while (tmp !== 0);
      child2 = i[(successor << 4) + I_RIGHT]!;
      i[(parent << 4) + I_LEFT] = child2;
      i[(successor << 4) + I_RIGHT] = child;
      i[(child << 4) + I_PC] = (successor << 1) | (i[(child << 4) + I_PC]! & 1);
      if (aug) {
        f[(successor << 3) + F_SMAX] = f[(node << 3) + F_SMAX]!;
        augmentPropagate(s, parent, successor);
      }
    }
    tmp = i[ni + I_LEFT]!;
    i[(successor << 4) + I_LEFT] = tmp;
    i[(tmp << 4) + I_PC] = (successor << 1) | (i[(tmp << 4) + I_PC]! & 1);

    const pcNode = i[ni + I_PC]!;
    changeChild(i, h, node, successor, pcNode >> 1);
    if (child2 !== 0) {
      i[(child2 << 4) + I_PC] = (parent << 1) | RB_BLACK;
      rebalance = 0;
    } else {
      rebalance = (i[(successor << 4) + I_PC]! & 1) === RB_BLACK ? parent : 0;
    }
    i[(successor << 4) + I_PC] = pcNode;
    tmp = successor;
  }

  if (aug) augmentPropagate(s, tmp, 0);
  if (rebalance !== 0) eraseColor(s, h, rebalance, aug);
}

/** Restores the black height after a black leaf left `parent`. Kernel: ____rb_erase_color(). */
function eraseColor(s: VaStore, h: number, parent: number, aug: boolean): void {
  const i = s.i;
  let node = 0;
  let sibling: number;
  let tmp1: number;
  let tmp2: number;
  for (;;) {
    sibling = i[(parent << 4) + I_RIGHT]!;
    if (node !== sibling) {
      // node is the left child (possibly missing).
      if ((i[(sibling << 4) + I_PC]! & 1) === RB_RED) {
        // Red sibling: left-rotate at parent so the sibling is black.
        tmp1 = i[(sibling << 4) + I_LEFT]!;
        i[(parent << 4) + I_RIGHT] = tmp1;
        i[(sibling << 4) + I_LEFT] = parent;
        i[(tmp1 << 4) + I_PC] = (parent << 1) | RB_BLACK;
        rotateSetParents(i, h, parent, sibling, RB_RED);
        if (aug) augmentRotate(s, parent, sibling);
        sibling = tmp1;
      }
      tmp1 = i[(sibling << 4) + I_RIGHT]!;
      if (tmp1 === 0 || (i[(tmp1 << 4) + I_PC]! & 1) === RB_BLACK) {
        tmp2 = i[(sibling << 4) + I_LEFT]!;
        if (tmp2 === 0 || (i[(tmp2 << 4) + I_PC]! & 1) === RB_BLACK) {
          // Black sibling with black children: recolour it and move up.
          i[(sibling << 4) + I_PC] = (parent << 1) | RB_RED;
          const ppc = i[(parent << 4) + I_PC]!;
          if ((ppc & 1) === RB_RED) {
            i[(parent << 4) + I_PC] = ppc | RB_BLACK;
          } else {
            node = parent;
            parent = ppc >> 1;
            if (parent !== 0) continue;
          }
          return;
        }
        // Sibling's inner child is red: right-rotate at sibling.
        tmp1 = i[(tmp2 << 4) + I_RIGHT]!;
        i[(sibling << 4) + I_LEFT] = tmp1;
        i[(tmp2 << 4) + I_RIGHT] = sibling;
        i[(parent << 4) + I_RIGHT] = tmp2;
        if (tmp1 !== 0) i[(tmp1 << 4) + I_PC] = (sibling << 1) | RB_BLACK;
        if (aug) augmentRotate(s, sibling, tmp2);
        tmp1 = sibling;
        sibling = tmp2;
      }
      // Sibling's outer child is red: left-rotate at parent and recolour.
      tmp2 = i[(sibling << 4) + I_LEFT]!;
      i[(parent << 4) + I_RIGHT] = tmp2;
      i[(sibling << 4) + I_LEFT] = parent;
      i[(tmp1 << 4) + I_PC] = (sibling << 1) | RB_BLACK;
      if (tmp2 !== 0) i[(tmp2 << 4) + I_PC] = (parent << 1) | (i[(tmp2 << 4) + I_PC]! & 1);
      rotateSetParents(i, h, parent, sibling, RB_BLACK);
      if (aug) augmentRotate(s, parent, sibling);
      return;
    } else {
      // Mirror: node is the right child.
      sibling = i[(parent << 4) + I_LEFT]!;
      if ((i[(sibling << 4) + I_PC]! & 1) === RB_RED) {
        tmp1 = i[(sibling << 4) + I_RIGHT]!;
        i[(parent << 4) + I_LEFT] = tmp1;
        i[(sibling << 4) + I_RIGHT] = parent;
        i[(tmp1 << 4) + I_PC] = (parent << 1) | RB_BLACK;
        rotateSetParents(i, h, parent, sibling, RB_RED);
        if (aug) augmentRotate(s, parent, sibling);
        sibling = tmp1;
      }
      tmp1 = i[(sibling << 4) + I_LEFT]!;
      if (tmp1 === 0 || (i[(tmp1 << 4) + I_PC]! & 1) === RB_BLACK) {
        tmp2 = i[(sibling << 4) + I_RIGHT]!;
        if (tmp2 === 0 || (i[(tmp2 << 4) + I_PC]! & 1) === RB_BLACK) {
          i[(sibling << 4) + I_PC] = (parent << 1) | RB_RED;
          const ppc = i[(parent << 4) + I_PC]!;
          if ((ppc & 1) === RB_RED) {
            i[(parent << 4) + I_PC] = ppc | RB_BLACK;
          } else {
            node = parent;
            parent = ppc >> 1;
            if (parent !== 0) continue;
          }
          return;
        }
        tmp1 = i[(tmp2 << 4) + I_LEFT]!;
        i[(sibling << 4) + I_RIGHT] = tmp1;
        i[(tmp2 << 4) + I_LEFT] = sibling;
        i[(parent << 4) + I_LEFT] = tmp2;
        if (tmp1 !== 0) i[(tmp1 << 4) + I_PC] = (sibling << 1) | RB_BLACK;
        if (aug) augmentRotate(s, sibling, tmp2);
        tmp1 = sibling;
        sibling = tmp2;
      }
      tmp2 = i[(sibling << 4) + I_RIGHT]!;
      i[(parent << 4) + I_LEFT] = tmp2;
      i[(sibling << 4) + I_RIGHT] = parent;
      i[(tmp1 << 4) + I_PC] = (sibling << 1) | RB_BLACK;
      if (tmp2 !== 0) i[(tmp2 << 4) + I_PC] = (parent << 1) | (i[(tmp2 << 4) + I_PC]! & 1);
      rotateSetParents(i, h, parent, sibling, RB_BLACK);
      if (aug) augmentRotate(s, parent, sibling);
      return;
    }
  }
}
