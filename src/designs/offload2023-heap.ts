/**
 * The per-node free heaps of the 'offload2023' design: allocation from a node's heap, the
 * fetch of a node_size block from the global heap, and the return of ranges to their node and
 * of blocks freed whole to the global heap.
 *
 * Holds: NodeHeaps: each node's free heap (an augmented free tree + list) and the margins of
 * the blocks it fetched (a plain tree + list of one-page records), both under the node's
 * free lock (&vn->free.lock), and its fill_in_progress flag.
 * Invariant: a node's heap holds only ranges inside the interiors of the blocks it fetched (a
 * block less its first and last page); ranges of two blocks never touch (two margins lie
 * between them), so nothing merges across blocks; an interior wholly free leaves the node
 * with its margins at once, grown back to node_size, for the global heap.
 * Callers: the design (./offload2023.ts): its fast path, its error-path free and its purge.
 *
 * Kernel: node_alloc(), node_alloc_fill(), the node branch of free_vmap_area() and of
 * purge_vmap_node() in "Mitigate a vmap lock contention" v2 6/9 (Aug 2023).
 * Differs from kernel: the margins are records (the kernel keeps none), so check() can tile
 * the space and name each block and the return can remove them.
 */

import { invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import { findVmapArea, insertVmapArea, unlinkVmapArea } from '../kva/busy-tree.js';
import { allocFromFreeTree, mergeOrAddVmapArea, vaClip } from '../kva/free-tree.js';
import { unlinkVa } from '../kva/rb-list.js';
import type { VaStore } from '../kva/vmap-area.js';
import { LINE_WORDS } from '../shared/control-layout.js';
import type { Lock } from '../shared/lock.js';
import type { VmapCore } from './design.js';
import type { FreeSpace } from './free-space.js';
import { N_FETCHES, N_FILL, N_FREE_HEAD, N_MARGIN_HEAD, N_RETURNS } from './offload2023-node.js';

export class NodeHeaps {
  private readonly core: VmapCore;
  private readonly s: VaStore;
  private readonly ctl: Int32Array;
  private readonly free: FreeSpace;
  /** Word of cpu 0's preload slot (ne_fit_preload_node, shared with the global heap). */
  private readonly preload: number;
  private readonly nodeBase: (n: number) => number;
  private readonly locks: readonly Lock[];
  private readonly nodeSize: number;
  private readonly pageSize: number;
  /** This thread's request window for allocFromFreeTree (no boxed doubles). */
  private readonly win = new Float64Array(2);

  constructor(
    core: VmapCore,
    free: FreeSpace,
    preload: number,
    nodeBase: (n: number) => number,
    locks: readonly Lock[],
    nodeSize: number,
  ) {
    this.core = core;
    this.s = core.s;
    this.ctl = core.ctl;
    this.free = free;
    this.preload = preload;
    this.nodeBase = nodeBase;
    this.locks = locks;
    this.nodeSize = nodeSize;
    this.pageSize = core.cfg.pageSize;
  }

  /** What a block freed whole measures: node_size less its two margins. */
  get interior(): number {
    return this.nodeSize - 2 * this.pageSize;
  }

  private preloadSlot(cpu: number): number {
    const slot = this.preload + cpu * LINE_WORDS;
    // preload_this_cpu_lock(): a spare record for a no-edge split, before the lock is taken.
    if (this.ctl[slot] === 0) this.ctl[slot] = this.s.alloc();
    return slot;
  }

  /**
   * Kernel: node_alloc() past its eligibility checks. The lowest fit in node n's heap for
   * record `va`; on a miss, the CPU that wins fill_in_progress (set under the node's lock, so
   * that one CPU fetches) fetches a block, the others miss. True when `va` got a range.
   */
  alloc(cpu: number, n: number, va: number, size: number, align: number): boolean {
    const o = this.nodeBase(n);
    const slot = this.preloadSlot(cpu);
    const win = this.win;
    win[0] = this.core.cfg.vmallocStart;
    win[1] = this.core.cfg.vmallocEnd;
    const lock = this.locks[n]!;
    this.core.take(lock, cpu);
    const h = this.ctl[o + N_FREE_HEAD]!;
    const err = allocFromFreeTree(this.s, h, va, size, align, win, this.pageSize, this.ctl, slot);
    const fill = err !== 0 && Atomics.exchange(this.ctl, o + N_FILL, 1) === 0;
    lock.unlock();
    if (err === 0) return true;
    if (!fill) return false;
    try {
      return this.fill(cpu, n, va, size, align);
    } finally {
      Atomics.store(this.ctl, o + N_FILL, 0);
    }
  }

  /**
   * Kernel: node_alloc_fill(). Takes node_size bytes from the global heap (lowest fit, no
   * alignment: a block may span two address zones), keeps its first and last page as margins,
   * puts the interior into node n's heap (where it cannot merge) and allocates the request
   * from the interior's lowest aligned address (va_alloc() on the new block).
   */
  private fill(cpu: number, n: number, va: number, size: number, align: number): boolean {
    const s = this.s;
    const cfg = this.core.cfg;
    const P = this.pageSize;
    const ns = this.nodeSize;
    // Every record first, so that a failure changes nothing.
    const block = s.alloc();
    const left = block === 0 ? 0 : s.alloc();
    const right = left === 0 ? 0 : s.alloc();
    if (right === 0 || !this.free.alloc(cpu, block, ns, 1, cfg.vmallocStart, cfg.vmallocEnd)) {
      for (const r of [right, left, block]) if (r !== 0) s.free(r);
      return false;
    }
    const a = s.start(block);
    s.setRange(left, a, a + P);
    s.setRange(right, a + ns - P, a + ns);
    s.setRange(block, a + P, a + ns - P);
    // size + extra <= node_size / 4, so the request always fits the interior.
    let nstart = a + P;
    if (align !== 1) nstart = Math.ceil(nstart / align) * align;
    const slot = this.preloadSlot(cpu);
    const o = this.nodeBase(n);
    const lock = this.locks[n]!;
    this.core.take(lock, cpu);
    const h = this.ctl[o + N_FREE_HEAD]!;
    const mh = this.ctl[o + N_MARGIN_HEAD]!;
    const placed =
      mergeOrAddVmapArea(s, h, block, true) === block &&
      insertVmapArea(s, mh, left) &&
      insertVmapArea(s, mh, right);
    if (!placed) {
      lock.unlock();
      invariantFailure(`vmalloc bug: fetched block at ${hex(a)} met node ${n}'s ranges`);
    }
    this.ctl[o + N_FETCHES] = this.ctl[o + N_FETCHES]! + 1;
    s.setRange(va, nstart, nstart + size);
    const err = nstart + size <= a + ns - P ? vaClip(s, h, block, va, this.ctl, slot) : -1;
    let whole = 0;
    if (err !== 0) {
      // Only a no-edge split left without a record (FIT_ENOMEM) gets here: the block, still
      // whole, goes straight back rather than sit wholly free in the node.
      unlinkVa(s, h, block, true);
      whole = this.giveBackLocked(n, block);
    }
    lock.unlock();
    if (whole !== 0) this.free.freeNow(cpu, whole);
    return err === 0;
  }

  /**
   * Kernel: the node branch of free_vmap_area(): `va` (an unlinked area of node n) goes back
   * to the node's heap; a block freed whole goes on to the global heap (which the kernel's
   * error path leaves to a later purge).
   */
  freeNow(cpu: number, n: number, va: number): void {
    const lock = this.locks[n]!;
    this.core.take(lock, cpu);
    const whole = this.giveBackLocked(n, va);
    lock.unlock();
    if (whole !== 0) this.free.freeNow(cpu, whole);
  }

  /**
   * Kernel: the node part of purge_vmap_node(). With node n's lazy chain `first`..`head`
   * detached: under the node's free lock, each range encoded with a node goes back to node
   * n's heap; blocks freed whole and the ranges with no node are collected by head insertion
   * (list_add), so they reach the global heap in reverse order, under one hold of
   * free_vmap_area_lock (reclaim_list_global()). Returns the pages and the ranges purged.
   */
  purge(
    cpu: number,
    n: number,
    first: number,
    head: number,
    hasNode: (va: number) => boolean,
  ): { pages: number; ranges: number } {
    const s = this.s;
    const toGlobal: number[] = [];
    let pages = 0;
    let ranges = 0;
    const lock = this.locks[n]!;
    this.core.take(lock, cpu);
    for (let va = first; va !== head;) {
      const next = s.next(va);
      pages += s.size(va) / this.pageSize;
      ranges++;
      if (hasNode(va)) {
        const whole = this.giveBackLocked(n, va);
        if (whole !== 0) toGlobal.push(whole);
      } else {
        toGlobal.push(va);
      }
      va = next;
    }
    lock.unlock();
    toGlobal.reverse();
    this.free.mergeAll(cpu, toGlobal, false);
    return { pages, ranges };
  }

  /**
   * With node n's free lock held: merges `va` into the node's heap, unless it is a whole
   * interior already (the kernel's size test); a range that is, or has become, a whole
   * interior leaves the heap with its margins and is returned grown back to node_size for
   * the global heap; else 0.
   */
  private giveBackLocked(n: number, va: number): number {
    const s = this.s;
    const o = this.nodeBase(n);
    const h = this.ctl[o + N_FREE_HEAD]!;
    let cur = va;
    let linked = false;
    if (s.size(va) !== this.interior) {
      cur = mergeOrAddVmapArea(s, h, va, true);
      if (cur === 0)
        invariantFailure(
          `vmalloc bug: [${hex(s.start(va))}, ${hex(s.end(va))}) overlaps node ${n}'s free heap`,
        );
      linked = true;
    }
    if (s.size(cur) !== this.interior) return 0;
    if (linked) unlinkVa(s, h, cur, true);
    const P = this.pageSize;
    const mh = this.ctl[o + N_MARGIN_HEAD]!;
    for (const at of [s.start(cur) - P, s.end(cur)]) {
      const m = findVmapArea(s, mh, at);
      if (m === 0 || s.start(m) !== at || s.size(m) !== P)
        invariantFailure(`vmalloc bug: node ${n} has no margin at ${hex(at)}`);
      unlinkVmapArea(s, mh, m);
      s.free(m);
    }
    s.setRange(cur, s.start(cur) - P, s.end(cur) + P);
    this.ctl[o + N_RETURNS] = this.ctl[o + N_RETURNS]! + 1;
    return cur;
  }
}
