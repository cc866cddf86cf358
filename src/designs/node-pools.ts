/**
 * The pools of the 'nodes' design (kernels 6.9+): per vmap node, lists of ready areas by exact
 * size, refilled by the purge and taken by allocations of that size before the free tree.
 *
 * Holds: NodePools: pool[0..255] of every node (ready areas of 1..256 pages, guard page
 * included, LIFO), their length words and &vn->pool_lock; taking from a pool (the fast path of
 * node_alloc), refilling one, the decay, the shrinker's count and scan, the pools' part of the
 * checker; and the list operations on the records' `list` links that pools use (a pool is a
 * list without a tree).
 * Invariant: a pooled area is in pool[(pages - 1)] of exactly one node, with exactly
 * (index + 1) pages; a pool's length word equals the length of its list (written under the
 * node's pool lock; read without it only as a peek or by the shrinker's count).
 * Callers: NodesDesign (src/designs/nodes.ts), which owns one, takes from it in node_alloc,
 * refills and decays it in the purge, and delegates the shrinker and tests to it.
 *
 * Kernel: mm/vmalloc.c (6.9+): struct vmap_node's pool[] and pool_lock, node_pool_del_va(),
 * node_pool_add_va(), decay_va_pool_node() (2025 rewrite: floor(len / 4) per partial decay),
 * vmap_node_shrink_count() / vmap_node_shrink_scan().
 *
 * Words of node n's pools, from first + n * stride (inside the node's words of nodes.ts):
 *
 *   [0, 256)     pool head p: the list of ready areas of p + 1 pages
 *   [256, 512)   pool length p
 */

import { invariantFailure } from '../debug.js';
import { mergeOrAddVmapArea } from '../kva/free-tree.js';
import { rbListFirst, rbListInit } from '../kva/rb-list.js';
import type { VaStore } from '../kva/vmap-area.js';
import { Lock, type LockTable } from '../shared/lock.js';
import type { VmapCore } from './design.js';
import { type FreeSpace, listIds, newHead } from './free-space.js';
import { VaStat, bump } from './stat.js';
import { S_POOL_FILL, S_POOL_TAKE, stepHook } from '../shared/step-hook.js';

/** Pools hold areas of 1..MAX_VA_SIZE_PAGES pages (guard page included). */
export const MAX_VA_SIZE_PAGES = 256;
/** Words of one node's pools: the heads, then the lengths. */
const P_HEAD = 0;
const P_LEN = P_HEAD + MAX_VA_SIZE_PAGES;
export const POOL_WORDS = P_LEN + MAX_VA_SIZE_PAGES;

export class NodePools {
  /** &vn->pool_lock of each node. */
  readonly locks: Lock[];
  private readonly core: VmapCore;
  private readonly s: VaStore;
  private readonly ctl: Int32Array;
  private readonly free: FreeSpace;
  private readonly nrNodes: number;
  /** Node n's pool words start at first + n * stride. */
  private readonly first: number;
  private readonly stride: number;

  constructor(
    core: VmapCore,
    free: FreeSpace,
    table: LockTable,
    nrNodes: number,
    locks: number,
    first: number,
    stride: number,
  ) {
    this.core = core;
    this.s = core.s;
    this.ctl = core.ctl;
    this.free = free;
    this.nrNodes = nrNodes;
    this.first = first;
    this.stride = stride;
    this.locks = Array.from(
      { length: nrNodes },
      (_, i) => new Lock(table, locks + i, '&vn->pool_lock'),
    );
  }

  /** Creates node `n`'s empty pools (in size order: record ids as the design always made them). */
  initNode(n: number): void {
    const o = this.poolBase(n);
    for (let p = 0; p < MAX_VA_SIZE_PAGES; p++) this.ctl[o + P_HEAD + p] = newHead(this.s);
  }

  private poolBase(n: number): number {
    return this.first + n * this.stride;
  }

  /**
   * The head of the exact-size pool if it is aligned; otherwise the head moves to the tail
   * and the request misses. Kernel: node_pool_del_va().
   */
  delVa(cpu: number, n: number, size: number, align: number, vstart: number, vend: number): number {
    const pages = size / this.core.cfg.pageSize;
    const idx = pages - 1;
    if (idx >= MAX_VA_SIZE_PAGES || !Number.isInteger(idx)) return 0;
    const o = this.poolBase(n);
    if (Atomics.load(this.ctl, o + P_LEN + idx) === 0) return 0; // unlocked peek
    const s = this.s;
    const lock = this.locks[n]!;
    this.core.take(lock, cpu);
    const h = this.ctl[o + P_HEAD + idx]!;
    let va = rbListFirst(s, h);
    if (va !== 0) {
      const start = s.start(va);
      if (align === 1 || start % align === 0) {
        if (s.size(va) !== size || start < vstart || s.end(va) > vend) {
          va = 0; // WARN_ON_ONCE in the kernel: left in place
        } else {
          listDel(s, va);
          if (stepHook !== null) stepHook(S_POOL_TAKE);
          this.ctl[o + P_LEN + idx] = this.ctl[o + P_LEN + idx]! - 1;
        }
      } else {
        listDel(s, va);
        listAddTail(s, h, va);
        va = 0;
      }
    }
    lock.unlock();
    return va;
  }

  /** Pushes a purged area onto its size's pool (LIFO); false when it is too big. Kernel: node_pool_add_va(). */
  addVa(cpu: number, n: number, va: number): boolean {
    const idx = this.s.size(va) / this.core.cfg.pageSize - 1;
    if (idx >= MAX_VA_SIZE_PAGES) return false;
    const o = this.poolBase(n);
    // The policy's limit (vmapPoolLimit; none in the kernel): an unlocked peek, as the length
    // only grows in a purge and purges are serialized.
    if (Atomics.load(this.ctl, o + P_LEN + idx) >= this.core.cfg.vmapPoolLimit) return false;
    const lock = this.locks[n]!;
    this.core.take(lock, cpu);
    listAdd(this.s, this.ctl[o + P_HEAD + idx]!, va);
    if (stepHook !== null) stepHook(S_POOL_FILL);
    Atomics.store(this.ctl, o + P_LEN + idx, this.ctl[o + P_LEN + idx]! + 1);
    lock.unlock();
    return true;
  }

  /**
   * Trims every pool of node `n`: a quarter (rounded down) of its areas, or all of them when
   * `full`; the most recently added go first. They coalesce among themselves in a temporary
   * tree before going back to the free tree. Returns how many areas left the pools.
   * Kernel: decay_va_pool_node() (so pools of fewer than 4 areas lose none in a partial decay).
   */
  decayNode(cpu: number, n: number, full: boolean): number {
    const s = this.s;
    const o = this.poolBase(n);
    const scratch = this.free.scratchHead;
    const lock = this.locks[n]!;
    let decayed = 0;
    for (let p = 0; p < MAX_VA_SIZE_PAGES; p++) {
      if (Atomics.load(this.ctl, o + P_LEN + p) === 0) continue;
      const h = this.ctl[o + P_HEAD + p]!;
      // Detach the pool, so that no one can take from it meanwhile.
      this.core.take(lock, cpu);
      const first = rbListFirst(s, h);
      const last = s.prev(h);
      const len = this.ctl[o + P_LEN + p]!;
      rbListInit(s, h);
      Atomics.store(this.ctl, o + P_LEN + p, 0);
      lock.unlock();
      if (first === 0) continue;
      // The kernel's len >> 2, or the policy's share (vmapPoolDecay).
      const nDecay = full ? len : Math.floor(len * this.core.cfg.vmapPoolDecay);
      let va = first;
      for (let k = 0; k < nDecay; k++) {
        const next = s.next(va);
        if (mergeOrAddVmapArea(s, scratch, va, false) === 0)
          invariantFailure(`pooled area #${va} overlaps another`);
        va = next;
      }
      decayed += nDecay;
      if (va !== h) {
        // Put the rest back (only purges fill pools, and they are serialized).
        this.core.take(lock, cpu);
        listReattach(s, h, va, last);
        Atomics.store(this.ctl, o + P_LEN + p, len - nDecay);
        lock.unlock();
      }
    }
    if (decayed > 0) {
      const out = listIds(s, scratch);
      rbListInit(s, scratch);
      this.free.mergeAll(cpu, out, false);
      bump(this.core.stat, VaStat.DECAYED, decayed);
    }
    return decayed;
  }

  // ------------------------------------------------------------ shrinker

  /** Areas in all pools. Kernel: vmap_node_shrink_count() (0 is SHRINK_EMPTY). */
  count(): number {
    let n = 0;
    for (let node = 0; node < this.nrNodes; node++) {
      const o = this.poolBase(node);
      for (let p = 0; p < MAX_VA_SIZE_PAGES; p++) n += Atomics.load(this.ctl, o + P_LEN + p);
    }
    return n;
  }

  /** Empties every pool into the free tree; returns the areas released. Kernel: vmap_node_shrink_scan(). */
  scan(cpu: number): number {
    this.core.purgeMutex.lock(cpu);
    try {
      let n = 0;
      for (let node = 0; node < this.nrNodes; node++) n += this.decayNode(cpu, node, true);
      return n;
    } finally {
      this.core.purgeMutex.unlock();
    }
  }

  // ------------------------------------------------------------ views and checks

  /** Pool lengths of node `n` by size in pages (index 0: 1 page). */
  lengths(n: number): number[] {
    const o = this.poolBase(n);
    return Array.from({ length: MAX_VA_SIZE_PAGES }, (_, p) =>
      Atomics.load(this.ctl, o + P_LEN + p),
    );
  }

  /**
   * Checks node `n`'s pools: each a well-linked list of areas of its size, as long as its
   * length word. Appends the heads to `own` and the pooled areas to `pooled`.
   */
  checkNode(n: number, own: number[], pooled: number[]): void {
    const s = this.s;
    const o = this.poolBase(n);
    for (let p = 0; p < MAX_VA_SIZE_PAGES; p++) {
      const h = this.ctl[o + P_HEAD + p]!;
      own.push(h);
      let len = 0;
      let prev = h;
      for (let va = s.next(h); va !== h; va = s.next(va)) {
        if (s.prev(va) !== prev) invariantFailure(`node ${n} pool ${p}: broken list at #${va}`);
        if (s.size(va) !== (p + 1) * this.core.cfg.pageSize)
          invariantFailure(`node ${n} pool ${p} holds an area of ${s.size(va)} bytes`);
        pooled.push(va);
        prev = va;
        len++;
        if (len > s.highWater) invariantFailure(`node ${n} pool ${p}: cycle`);
      }
      if (len !== this.ctl[o + P_LEN + p])
        invariantFailure(`node ${n} pool ${p}: len ${this.ctl[o + P_LEN + p]} but ${len} areas`);
    }
  }
}

// List operations on the `list` links of records (pools are lists without trees). The record
// layout of vmap-area.ts, as this module's own constants (V8 folds them; checked by a test).
const I_PREV = 9,
  I_NEXT = 10;

function listDel(s: VaStore, x: number): void {
  const i = s.i;
  const p = i[(x << 4) + I_PREV]!;
  const n = i[(x << 4) + I_NEXT]!;
  i[(p << 4) + I_NEXT] = n;
  i[(n << 4) + I_PREV] = p;
}

/** Inserts x right after head h (the pool's most recent entry). */
function listAdd(s: VaStore, h: number, x: number): void {
  const i = s.i;
  const first = i[(h << 4) + I_NEXT]!;
  i[(x << 4) + I_PREV] = h;
  i[(x << 4) + I_NEXT] = first;
  i[(first << 4) + I_PREV] = x;
  i[(h << 4) + I_NEXT] = x;
}

/** Inserts x right before head h (the pool's least recent entry). */
function listAddTail(s: VaStore, h: number, x: number): void {
  const i = s.i;
  const last = i[(h << 4) + I_PREV]!;
  i[(x << 4) + I_PREV] = last;
  i[(x << 4) + I_NEXT] = h;
  i[(last << 4) + I_NEXT] = x;
  i[(h << 4) + I_PREV] = x;
}

/** Links the chain first..last (whose last.next is h) back under head h. */
function listReattach(s: VaStore, h: number, first: number, last: number): void {
  const i = s.i;
  i[(h << 4) + I_NEXT] = first;
  i[(first << 4) + I_PREV] = h;
  i[(h << 4) + I_PREV] = last;
}
