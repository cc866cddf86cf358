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

/** Parent id of `x` (0 for the root). */
export function rbParent(s: VaStore, x: number): number {
  return s.pc[x]! >> 1;
}

/** Puts `nw` where `old` hangs under `parent` (or at the root). */
function changeChild(s: VaStore, h: number, old: number, nw: number, parent: number): void {
  if (parent === 0) s.left[h] = nw;
  else if (s.left[parent] === old) s.left[parent] = nw;
  else s.right[parent] = nw;
}

/** `nw` takes `old`'s parent and colour; `old` becomes `nw`'s child with `color`. */
function rotateSetParents(s: VaStore, h: number, old: number, nw: number, color: number): void {
  const pcOld = s.pc[old]!;
  s.pc[nw] = pcOld;
  s.pc[old] = (nw << 1) | color;
  changeChild(s, h, old, nw, pcOld >> 1);
}

function setParent(s: VaStore, x: number, parent: number): void {
  s.pc[x] = (parent << 1) | (s.pc[x]! & 1);
}

/** max(own size, children's smax); a missing child is record 0, whose smax is 0. */
export function subtreeMax(s: VaStore, x: number): number {
  let m = s.end[x]! - s.start[x]!;
  const l = s.smax[s.left[x]!]!;
  const r = s.smax[s.right[x]!]!;
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
  while (x !== stop) {
    const m = subtreeMax(s, x);
    if (s.smax[x] === m) break;
    s.smax[x] = m;
    x = s.pc[x]! >> 1;
  }
}

function augmentRotate(s: VaStore, old: number, nw: number): void {
  s.smax[nw] = s.smax[old]!;
  s.smax[old] = subtreeMax(s, old);
}

/**
 * Rebalances after `node` was linked as a red leaf.
 * Kernel: __rb_insert().
 */
export function rbInsertColor(s: VaStore, h: number, node: number, aug: boolean): void {
  let parent = s.pc[node]! >> 1;
  for (;;) {
    if (parent === 0) {
      // The node is the root: the root is black.
      s.pc[node] = RB_BLACK;
      return;
    }
    if ((s.pc[parent]! & 1) === RB_BLACK) return;
    // A red parent is never the root, so the grandparent exists.
    const gparent = s.pc[parent]! >> 1;
    let tmp = s.right[gparent]!;
    if (parent !== tmp) {
      // Parent is a left child; tmp is the uncle.
      if (tmp !== 0 && (s.pc[tmp]! & 1) === RB_RED) {
        // Red uncle: recolour and continue from the grandparent.
        s.pc[tmp] = (gparent << 1) | RB_BLACK;
        s.pc[parent] = (gparent << 1) | RB_BLACK;
        node = gparent;
        parent = s.pc[node]! >> 1;
        s.pc[node] = (parent << 1) | RB_RED;
        continue;
      }
      tmp = s.right[parent]!;
      if (node === tmp) {
        // Node is an inner grandchild: left-rotate at parent to make it outer.
        tmp = s.left[node]!;
        s.right[parent] = tmp;
        s.left[node] = parent;
        if (tmp !== 0) s.pc[tmp] = (parent << 1) | RB_BLACK;
        s.pc[parent] = (node << 1) | RB_RED;
        if (aug) augmentRotate(s, parent, node);
        parent = node;
        tmp = s.right[node]!;
      }
      // Outer grandchild: right-rotate at the grandparent.
      s.left[gparent] = tmp;
      s.right[parent] = gparent;
      if (tmp !== 0) s.pc[tmp] = (gparent << 1) | RB_BLACK;
      rotateSetParents(s, h, gparent, parent, RB_RED);
      if (aug) augmentRotate(s, gparent, parent);
      return;
    } else {
      // Mirror: parent is a right child.
      tmp = s.left[gparent]!;
      if (tmp !== 0 && (s.pc[tmp]! & 1) === RB_RED) {
        s.pc[tmp] = (gparent << 1) | RB_BLACK;
        s.pc[parent] = (gparent << 1) | RB_BLACK;
        node = gparent;
        parent = s.pc[node]! >> 1;
        s.pc[node] = (parent << 1) | RB_RED;
        continue;
      }
      tmp = s.left[parent]!;
      if (node === tmp) {
        tmp = s.right[node]!;
        s.left[parent] = tmp;
        s.right[node] = parent;
        if (tmp !== 0) s.pc[tmp] = (parent << 1) | RB_BLACK;
        s.pc[parent] = (node << 1) | RB_RED;
        if (aug) augmentRotate(s, parent, node);
        parent = node;
        tmp = s.left[node]!;
      }
      s.right[gparent] = tmp;
      s.left[parent] = gparent;
      if (tmp !== 0) s.pc[tmp] = (gparent << 1) | RB_BLACK;
      rotateSetParents(s, h, gparent, parent, RB_RED);
      if (aug) augmentRotate(s, gparent, parent);
      return;
    }
  }
}

/**
 * Removes `node` from the tree (links of `node` itself are left for the caller to clear).
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
  const child = s.right[node]!;
  let tmp = s.left[node]!;
  let parent: number;
  let rebalance: number;

  if (tmp === 0) {
    // At most a right child: it takes the node's place and colour.
    const pc = s.pc[node]!;
    parent = pc >> 1;
    changeChild(s, h, node, child, parent);
    if (child !== 0) {
      s.pc[child] = pc;
      rebalance = 0;
    } else {
      rebalance = (pc & 1) === RB_BLACK ? parent : 0;
    }
    tmp = parent;
  } else if (child === 0) {
    // Only a left child (necessarily red, with a black node): it takes the node's place.
    const pc = s.pc[node]!;
    s.pc[tmp] = pc;
    parent = pc >> 1;
    changeChild(s, h, node, tmp, parent);
    rebalance = 0;
    tmp = parent;
  } else {
    let successor = child;
    let child2: number;
    tmp = s.left[child]!;
    if (tmp === 0) {
      // The right child is the successor.
      parent = successor;
      child2 = s.right[successor]!;
      if (aug) s.smax[successor] = s.smax[node]!;
    } else {
      // The successor is the leftmost node of the right subtree.
      do {
        parent = successor;
        successor = tmp;
        tmp = s.left[tmp]!;
      } while (tmp !== 0);
      child2 = s.right[successor]!;
      s.left[parent] = child2;
      s.right[successor] = child;
      setParent(s, child, successor);
      if (aug) {
        s.smax[successor] = s.smax[node]!;
        augmentPropagate(s, parent, successor);
      }
    }
    tmp = s.left[node]!;
    s.left[successor] = tmp;
    setParent(s, tmp, successor);

    const pc = s.pc[node]!;
    changeChild(s, h, node, successor, pc >> 1);
    if (child2 !== 0) {
      s.pc[child2] = (parent << 1) | RB_BLACK;
      rebalance = 0;
    } else {
      rebalance = (s.pc[successor]! & 1) === RB_BLACK ? parent : 0;
    }
    s.pc[successor] = pc;
    tmp = successor;
  }

  if (aug) augmentPropagate(s, tmp, 0);
  if (rebalance !== 0) eraseColor(s, h, rebalance, aug);
}

/** Restores the black height after a black leaf left `parent`. Kernel: ____rb_erase_color(). */
function eraseColor(s: VaStore, h: number, parent: number, aug: boolean): void {
  let node = 0;
  let sibling: number;
  let tmp1: number;
  let tmp2: number;
  for (;;) {
    sibling = s.right[parent]!;
    if (node !== sibling) {
      // node is the left child (possibly missing).
      if ((s.pc[sibling]! & 1) === RB_RED) {
        // Red sibling: left-rotate at parent so the sibling is black.
        tmp1 = s.left[sibling]!;
        s.right[parent] = tmp1;
        s.left[sibling] = parent;
        s.pc[tmp1] = (parent << 1) | RB_BLACK;
        rotateSetParents(s, h, parent, sibling, RB_RED);
        if (aug) augmentRotate(s, parent, sibling);
        sibling = tmp1;
      }
      tmp1 = s.right[sibling]!;
      if (tmp1 === 0 || (s.pc[tmp1]! & 1) === RB_BLACK) {
        tmp2 = s.left[sibling]!;
        if (tmp2 === 0 || (s.pc[tmp2]! & 1) === RB_BLACK) {
          // Black sibling with black children: recolour it and move up.
          s.pc[sibling] = (parent << 1) | RB_RED;
          if ((s.pc[parent]! & 1) === RB_RED) {
            s.pc[parent] = s.pc[parent]! | RB_BLACK;
          } else {
            node = parent;
            parent = s.pc[node]! >> 1;
            if (parent !== 0) continue;
          }
          return;
        }
        // Sibling's inner child is red: right-rotate at sibling.
        tmp1 = s.right[tmp2]!;
        s.left[sibling] = tmp1;
        s.right[tmp2] = sibling;
        s.right[parent] = tmp2;
        if (tmp1 !== 0) s.pc[tmp1] = (sibling << 1) | RB_BLACK;
        if (aug) augmentRotate(s, sibling, tmp2);
        tmp1 = sibling;
        sibling = tmp2;
      }
      // Sibling's outer child is red: left-rotate at parent and recolour.
      tmp2 = s.left[sibling]!;
      s.right[parent] = tmp2;
      s.left[sibling] = parent;
      s.pc[tmp1] = (sibling << 1) | RB_BLACK;
      if (tmp2 !== 0) setParent(s, tmp2, parent);
      rotateSetParents(s, h, parent, sibling, RB_BLACK);
      if (aug) augmentRotate(s, parent, sibling);
      return;
    } else {
      // Mirror: node is the right child.
      sibling = s.left[parent]!;
      if ((s.pc[sibling]! & 1) === RB_RED) {
        tmp1 = s.right[sibling]!;
        s.left[parent] = tmp1;
        s.right[sibling] = parent;
        s.pc[tmp1] = (parent << 1) | RB_BLACK;
        rotateSetParents(s, h, parent, sibling, RB_RED);
        if (aug) augmentRotate(s, parent, sibling);
        sibling = tmp1;
      }
      tmp1 = s.left[sibling]!;
      if (tmp1 === 0 || (s.pc[tmp1]! & 1) === RB_BLACK) {
        tmp2 = s.right[sibling]!;
        if (tmp2 === 0 || (s.pc[tmp2]! & 1) === RB_BLACK) {
          s.pc[sibling] = (parent << 1) | RB_RED;
          if ((s.pc[parent]! & 1) === RB_RED) {
            s.pc[parent] = s.pc[parent]! | RB_BLACK;
          } else {
            node = parent;
            parent = s.pc[node]! >> 1;
            if (parent !== 0) continue;
          }
          return;
        }
        tmp1 = s.left[tmp2]!;
        s.right[sibling] = tmp1;
        s.left[tmp2] = sibling;
        s.left[parent] = tmp2;
        if (tmp1 !== 0) s.pc[tmp1] = (sibling << 1) | RB_BLACK;
        if (aug) augmentRotate(s, sibling, tmp2);
        tmp1 = sibling;
        sibling = tmp2;
      }
      tmp2 = s.right[sibling]!;
      s.left[parent] = tmp2;
      s.right[sibling] = parent;
      s.pc[tmp1] = (sibling << 1) | RB_BLACK;
      if (tmp2 !== 0) setParent(s, tmp2, parent);
      rotateSetParents(s, h, parent, sibling, RB_BLACK);
      if (aug) augmentRotate(s, parent, sibling);
      return;
    }
  }
}
