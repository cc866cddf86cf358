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

import { RB_BLACK, RB_RED, type VaStore } from './vmap-area.js';

// None of these functions allocates a record, so each holds the store's views in locals.

/** Parent id of `x` (0 for the root). */
export function rbParent(s: VaStore, x: number): number {
  return s.pc[x]! >> 1;
}

/** Puts `nw` where `old` hangs under `parent` (or at the root of head `h`). */
function changeChild(s: VaStore, h: number, old: number, nw: number, parent: number): void {
  const left = s.left;
  if (parent === 0) left[h] = nw;
  else if (left[parent] === old) left[parent] = nw;
  else s.right[parent] = nw;
}

/** `nw` takes `old`'s parent and colour; `old` becomes `nw`'s child with `color`. */
function rotateSetParents(s: VaStore, h: number, old: number, nw: number, color: number): void {
  const pc = s.pc;
  const pcOld = pc[old]!;
  pc[nw] = pcOld;
  pc[old] = (nw << 1) | color;
  changeChild(s, h, old, nw, pcOld >> 1);
}

/** max(own size, children's smax); a missing child is record 0, whose smax is 0. */
export function subtreeMax(s: VaStore, x: number): number {
  const smax = s.smax;
  let m = s.end[x]! - s.start[x]!;
  const l = smax[s.left[x]!]!;
  const r = smax[s.right[x]!]!;
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
  const smax = s.smax;
  const start = s.start;
  const end = s.end;
  const left = s.left;
  const right = s.right;
  const pc = s.pc;
  x |= 0;
  while (x !== stop) {
    let m = end[x]! - start[x]!;
    const l = smax[left[x]! | 0]!;
    const r = smax[right[x]! | 0]!;
    if (l > m) m = l;
    if (r > m) m = r;
    if (smax[x] === m) break;
    smax[x] = m;
    x = pc[x]! >> 1;
  }
}

/** After a rotation: `nw` took `old`'s place, so it takes its subtree max; `old` is recomputed. */
function augmentRotate(s: VaStore, old: number, nw: number): void {
  const smax = s.smax;
  smax[nw] = smax[old]!;
  smax[old] = subtreeMax(s, old);
}

/**
 * Rebalances after `node` was linked as a red leaf under a red parent.
 * Kernel: __rb_insert().
 */
export function rbInsertColor(s: VaStore, h: number, node: number, aug: boolean): void {
  const pc = s.pc;
  const left = s.left;
  const right = s.right;
  let parent = pc[node]! >> 1;
  for (;;) {
    if (parent === 0) {
      // The node is the root: the root is black.
      pc[node] = RB_BLACK;
      return;
    }
    if ((pc[parent]! & 1) === RB_BLACK) return;
    // A red parent is never the root, so the grandparent exists.
    const gparent = pc[parent]! >> 1;
    let tmp = right[gparent]!;
    if (parent !== tmp) {
      // Parent is a left child; tmp is the uncle.
      if (tmp !== 0 && (pc[tmp]! & 1) === RB_RED) {
        // Red uncle: recolour and continue from the grandparent.
        pc[tmp] = (gparent << 1) | RB_BLACK;
        pc[parent] = (gparent << 1) | RB_BLACK;
        node = gparent;
        parent = pc[node]! >> 1;
        pc[node] = (parent << 1) | RB_RED;
        continue;
      }
      tmp = right[parent]!;
      if (node === tmp) {
        // Node is an inner grandchild: left-rotate at parent to make it outer.
        tmp = left[node]!;
        right[parent] = tmp;
        left[node] = parent;
        if (tmp !== 0) pc[tmp] = (parent << 1) | RB_BLACK;
        pc[parent] = (node << 1) | RB_RED;
        if (aug) augmentRotate(s, parent, node);
        parent = node;
        tmp = right[node]!;
      }
      // Outer grandchild: right-rotate at the grandparent.
      left[gparent] = tmp;
      right[parent] = gparent;
      if (tmp !== 0) pc[tmp] = (gparent << 1) | RB_BLACK;
      rotateSetParents(s, h, gparent, parent, RB_RED);
      if (aug) augmentRotate(s, gparent, parent);
      return;
    } else {
      // Mirror: parent is a right child.
      tmp = left[gparent]!;
      if (tmp !== 0 && (pc[tmp]! & 1) === RB_RED) {
        pc[tmp] = (gparent << 1) | RB_BLACK;
        pc[parent] = (gparent << 1) | RB_BLACK;
        node = gparent;
        parent = pc[node]! >> 1;
        pc[node] = (parent << 1) | RB_RED;
        continue;
      }
      tmp = left[parent]!;
      if (node === tmp) {
        tmp = right[node]!;
        left[parent] = tmp;
        right[node] = parent;
        if (tmp !== 0) pc[tmp] = (parent << 1) | RB_BLACK;
        pc[parent] = (node << 1) | RB_RED;
        if (aug) augmentRotate(s, parent, node);
        parent = node;
        tmp = left[node]!;
      }
      right[gparent] = tmp;
      left[parent] = gparent;
      if (tmp !== 0) pc[tmp] = (gparent << 1) | RB_BLACK;
      rotateSetParents(s, h, gparent, parent, RB_RED);
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
  const pc = s.pc;
  const left = s.left;
  const right = s.right;
  const child = right[node]!;
  let tmp = left[node]!;
  let parent: number;
  let rebalance: number;

  if (tmp === 0) {
    // At most a right child: it takes the node's place and colour.
    const pcNode = pc[node]!;
    parent = pcNode >> 1;
    changeChild(s, h, node, child, parent);
    if (child !== 0) {
      pc[child] = pcNode;
      rebalance = 0;
    } else {
      rebalance = (pcNode & 1) === RB_BLACK ? parent : 0;
    }
    tmp = parent;
  } else if (child === 0) {
    // Only a left child (necessarily red, under a black node): it takes the node's place.
    const pcNode = pc[node]!;
    pc[tmp] = pcNode;
    parent = pcNode >> 1;
    changeChild(s, h, node, tmp, parent);
    rebalance = 0;
    tmp = parent;
  } else {
    let successor = child;
    let child2: number;
    tmp = left[child]!;
    if (tmp === 0) {
      // The right child is the successor.
      parent = successor;
      child2 = right[successor]!;
      if (aug) s.smax[successor] = s.smax[node]!;
    } else {
      // The successor is the leftmost node of the right subtree.
      do {
        parent = successor;
        successor = tmp;
        tmp = left[tmp]!;
      } while (tmp !== 0);
      child2 = right[successor]!;
      left[parent] = child2;
      right[successor] = child;
      pc[child] = (successor << 1) | (pc[child]! & 1);
      if (aug) {
        s.smax[successor] = s.smax[node]!;
        augmentPropagate(s, parent, successor);
      }
    }
    tmp = left[node]!;
    left[successor] = tmp;
    pc[tmp] = (successor << 1) | (pc[tmp]! & 1);

    const pcNode = pc[node]!;
    changeChild(s, h, node, successor, pcNode >> 1);
    if (child2 !== 0) {
      pc[child2] = (parent << 1) | RB_BLACK;
      rebalance = 0;
    } else {
      rebalance = (pc[successor]! & 1) === RB_BLACK ? parent : 0;
    }
    pc[successor] = pcNode;
    tmp = successor;
  }

  if (aug) augmentPropagate(s, tmp, 0);
  if (rebalance !== 0) eraseColor(s, h, rebalance, aug);
}

/** Restores the black height after a black leaf left `parent`. Kernel: ____rb_erase_color(). */
function eraseColor(s: VaStore, h: number, parent: number, aug: boolean): void {
  const pc = s.pc;
  const left = s.left;
  const right = s.right;
  let node = 0;
  let sibling: number;
  let tmp1: number;
  let tmp2: number;
  for (;;) {
    sibling = right[parent]!;
    if (node !== sibling) {
      // node is the left child (possibly missing).
      if ((pc[sibling]! & 1) === RB_RED) {
        // Red sibling: left-rotate at parent so the sibling is black.
        tmp1 = left[sibling]!;
        right[parent] = tmp1;
        left[sibling] = parent;
        pc[tmp1] = (parent << 1) | RB_BLACK;
        rotateSetParents(s, h, parent, sibling, RB_RED);
        if (aug) augmentRotate(s, parent, sibling);
        sibling = tmp1;
      }
      tmp1 = right[sibling]!;
      if (tmp1 === 0 || (pc[tmp1]! & 1) === RB_BLACK) {
        tmp2 = left[sibling]!;
        if (tmp2 === 0 || (pc[tmp2]! & 1) === RB_BLACK) {
          // Black sibling with black children: recolour it and move up.
          pc[sibling] = (parent << 1) | RB_RED;
          if ((pc[parent]! & 1) === RB_RED) {
            pc[parent] = pc[parent]! | RB_BLACK;
          } else {
            node = parent;
            parent = pc[node]! >> 1;
            if (parent !== 0) continue;
          }
          return;
        }
        // Sibling's inner child is red: right-rotate at sibling.
        tmp1 = right[tmp2]!;
        left[sibling] = tmp1;
        right[tmp2] = sibling;
        right[parent] = tmp2;
        if (tmp1 !== 0) pc[tmp1] = (sibling << 1) | RB_BLACK;
        if (aug) augmentRotate(s, sibling, tmp2);
        tmp1 = sibling;
        sibling = tmp2;
      }
      // Sibling's outer child is red: left-rotate at parent and recolour.
      tmp2 = left[sibling]!;
      right[parent] = tmp2;
      left[sibling] = parent;
      pc[tmp1] = (sibling << 1) | RB_BLACK;
      if (tmp2 !== 0) pc[tmp2] = (parent << 1) | (pc[tmp2]! & 1);
      rotateSetParents(s, h, parent, sibling, RB_BLACK);
      if (aug) augmentRotate(s, parent, sibling);
      return;
    } else {
      // Mirror: node is the right child.
      sibling = left[parent]!;
      if ((pc[sibling]! & 1) === RB_RED) {
        tmp1 = right[sibling]!;
        left[parent] = tmp1;
        right[sibling] = parent;
        pc[tmp1] = (parent << 1) | RB_BLACK;
        rotateSetParents(s, h, parent, sibling, RB_RED);
        if (aug) augmentRotate(s, parent, sibling);
        sibling = tmp1;
      }
      tmp1 = left[sibling]!;
      if (tmp1 === 0 || (pc[tmp1]! & 1) === RB_BLACK) {
        tmp2 = right[sibling]!;
        if (tmp2 === 0 || (pc[tmp2]! & 1) === RB_BLACK) {
          pc[sibling] = (parent << 1) | RB_RED;
          if ((pc[parent]! & 1) === RB_RED) {
            pc[parent] = pc[parent]! | RB_BLACK;
          } else {
            node = parent;
            parent = pc[node]! >> 1;
            if (parent !== 0) continue;
          }
          return;
        }
        tmp1 = left[tmp2]!;
        right[sibling] = tmp1;
        left[tmp2] = sibling;
        left[parent] = tmp2;
        if (tmp1 !== 0) pc[tmp1] = (sibling << 1) | RB_BLACK;
        if (aug) augmentRotate(s, sibling, tmp2);
        tmp1 = sibling;
        sibling = tmp2;
      }
      tmp2 = right[sibling]!;
      left[parent] = tmp2;
      right[sibling] = parent;
      pc[tmp1] = (sibling << 1) | RB_BLACK;
      if (tmp2 !== 0) pc[tmp2] = (parent << 1) | (pc[tmp2]! & 1);
      rotateSetParents(s, h, parent, sibling, RB_BLACK);
      if (aug) augmentRotate(s, parent, sibling);
      return;
    }
  }
}
