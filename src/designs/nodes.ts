/**
 * The 'nodes' design (kernels 6.9+): vmap nodes, each with its own busy tree, lazy tree and
 * size-segregated pools of ready areas, so that CPUs rarely meet on a lock.
 *
 * Holds: NodesDesign: the per-node structures and locks over the shared free tree; the pool
 * fast path (node_alloc), placement by address, by allocating node and by cpu; the purge that
 * refills pools from the allocating CPU's node and decays them; the shrinker.
 * Invariant: a busy area is in the busy tree of the node of its start address; a lazy area in
 * the lazy tree of the node encoded in its flags (or of its address when none is); a pooled
 * area in pool[(pages - 1)] of that node, with exactly (index + 1) pages; free + busy + lazy +
 * pooled tile the managed space.
 * Callers: the core (src/designs/vmap-areas.ts), built by the registry; the vmalloc layer for
 * vmapNodes(), addrToNodeId() and the shrinker.
 *
 * Kernel: mm/vmalloc.c (6.9+): struct vmap_node, vmap_init_nodes(), addr_to_node_id(),
 * encode_vn_id()/decode_vn_id(), node_alloc(), node_pool_del_va(), node_pool_add_va(),
 * free_vmap_area_noflush(), __purge_vmap_area_lazy(), purge_vmap_node(),
 * decay_va_pool_node() (2025 rewrite: floor(len / 4) per partial decay), the "vmap-node"
 * shrinker. Differs from kernel: the purge processes every node inline in the purging thread
 * (the kernel hands some to helper work items; the helper count it would use is recorded).
 * As in purge_vmap_node(), the areas a node's purge returns to the free tree are collected by
 * head insertion and so merged in descending address order (the tree's shape, and with it the
 * result of later aligned allocations, depends on that order).
 *
 *   node n:  busy tree + list   (areas whose start is in n's 64 KiB zones)   &vn->busy.lock
 *            lazy tree + list   (areas freed, allocated from n's CPUs)         &vn->lazy.lock
 *            pool[0..255]       (ready areas of 1..256 pages, LIFO)            &vn->pool_lock
 *
 *   address:  | zone 0 | zone 1 | ... | zone N-1 | zone N | ...      zone = 16 pages
 *   node:     |   0    |   1    | ... |   N-1    |   0    | ...      (addr / zone) % N
 */

import { invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import { checkRbList } from '../kva/check.js';
import { mergeOrAddVmapArea } from '../kva/free-tree.js';
import { insertVmapArea } from '../kva/busy-tree.js';
import { rbListCount, rbListFirst, rbListInit } from '../kva/rb-list.js';
import { VaFlags, type VaStore } from '../kva/vmap-area.js';
import type { ControlLayout } from '../shared/control-layout.js';
import { Lock, type LockTable } from '../shared/lock.js';
import {
  PurgeMode,
  type DesignCheck,
  type PurgeModeValue,
  type VmapCore,
  type VmapDesign,
} from './design.js';
import {
  FreeSpace,
  type FreeSpaceDecl,
  detachList,
  findIn,
  findUnlinkIn,
  insertBusy,
  listIds,
  newHead,
} from './free-space.js';
import { VaStat, bump } from './stat.js';

/** Pools hold areas of 1..MAX_VA_SIZE_PAGES pages (guard page included). */
export const MAX_VA_SIZE_PAGES = 256;
/** Words of one node in the control block. */
const N_BUSY_HEAD = 0;
const N_LAZY_HEAD = 1;
const N_SKIP_POPULATE = 2;
const N_POOL_HEAD = 8;
const N_POOL_LEN = N_POOL_HEAD + MAX_VA_SIZE_PAGES;
/** A multiple of 16 words: each node's words start on a cache line of their own. */
const NODE_WORDS = N_POOL_LEN + MAX_VA_SIZE_PAGES + 8;

/** nr_vmap_nodes = clamp(possible CPUs, 1, 128). */
export function nrVmapNodes(nrCpus: number): number {
  return Math.min(Math.max(nrCpus, 1), 128);
}

/** One vmap node as vm.vmapNodes() shows it. */
export interface VmapNodeInfo {
  node: number;
  /** Busy areas whose start lies in this node's zones, in address order. */
  busy: { start: number; end: number }[];
  /** Lazily freed areas of the CPU(s) this node serves, in address order, not yet purged. */
  lazy: { start: number; end: number }[];
  /** Ready areas by exact size in pages (only sizes with some). */
  pools: { pages: number; count: number }[];
}

export interface NodesDecl {
  free: FreeSpaceDecl;
  /** node n's words start at nodes + n * NODE_WORDS */
  nodes: number;
  busyLocks: number;
  lazyLocks: number;
  poolLocks: number;
}

export class NodesDesign implements VmapDesign {
  readonly name = 'nodes';
  readonly modernWarning = true;
  /** 6.9+: one purge per drain. */
  readonly drainRepeats = false;
  allocTag = 0;
  readonly nrNodes: number;
  /** vmap_zone_size: 16 pages with several nodes, else 1. */
  readonly zoneSize: number;
  /** The records, for people looking inside (tests). */
  readonly s: VaStore;
  private readonly core: VmapCore;
  private readonly ctl: Int32Array;
  private readonly free: FreeSpace;
  private readonly busyLocks: Lock[];
  private readonly lazyLocks: Lock[];
  private readonly poolLocks: Lock[];
  private readonly base: number;

  static declare(layout: ControlLayout, nrCpus: number): NodesDecl {
    const n = nrVmapNodes(nrCpus);
    return {
      free: FreeSpace.declare(layout, nrCpus),
      nodes: layout.lines(n * NODE_WORDS),
      busyLocks: layout.lockArray('&vn->busy.lock', n),
      lazyLocks: layout.lockArray('&vn->lazy.lock', n),
      poolLocks: layout.lockArray('&vn->pool_lock', n),
    };
  }

  constructor(core: VmapCore, decl: NodesDecl, table: LockTable) {
    this.core = core;
    this.s = core.s;
    this.ctl = core.ctl;
    this.free = new FreeSpace(core, decl.free, table);
    this.nrNodes = nrVmapNodes(core.cfg.nrCpus);
    this.zoneSize = this.nrNodes > 1 ? 16 * core.cfg.pageSize : 1;
    const locks = (first: number, name: string): Lock[] =>
      Array.from({ length: this.nrNodes }, (_, i) => new Lock(table, first + i, name));
    this.busyLocks = locks(decl.busyLocks, '&vn->busy.lock');
    this.lazyLocks = locks(decl.lazyLocks, '&vn->lazy.lock');
    this.poolLocks = locks(decl.poolLocks, '&vn->pool_lock');
    this.base = decl.nodes;
  }

  init(start: number, end: number): void {
    const s = this.s;
    for (let n = 0; n < this.nrNodes; n++) {
      const o = this.nodeBase(n);
      this.ctl[o + N_BUSY_HEAD] = newHead(s);
      this.ctl[o + N_LAZY_HEAD] = newHead(s);
      for (let p = 0; p < MAX_VA_SIZE_PAGES; p++) this.ctl[o + N_POOL_HEAD + p] = newHead(s);
    }
    this.free.init(start, end);
  }

  private nodeBase(n: number): number {
    return this.base + n * NODE_WORDS;
  }

  /** addr_to_node_id() */
  addrToNodeId(addr: number): number {
    return Math.floor(addr / this.zoneSize) % this.nrNodes;
  }

  /** encode_vn_id(): node id + 1 in bits VN_ID_SHIFT and up of va->flags. */
  encodeVnId(id: number): number {
    return (id + 1) << VaFlags.VN_ID_SHIFT;
  }

  /** decode_vn_id(): the node id in va->flags, or -1 when none is valid. */
  decodeVnId(flags: number): number {
    const id = (flags >> VaFlags.VN_ID_SHIFT) - 1;
    return id >= 0 && id < this.nrNodes ? id : -1;
  }

  // ------------------------------------------------------------ allocation

  /**
   * Kernel: node_alloc(). Only requests for exactly the vmalloc window, with several nodes,
   * look in the pool of the allocating CPU's node; hit or miss, the area is tagged with that
   * node, so its range refills that node's pool when it is purged.
   */
  poolAlloc(
    cpu: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
    vaFlags: number,
  ): number {
    this.allocTag = 0;
    if (
      vstart !== this.core.cfg.vmallocStart ||
      vend !== this.core.cfg.vmallocEnd ||
      this.nrNodes === 1
    )
      return 0;
    const id = cpu % this.nrNodes;
    this.allocTag = this.encodeVnId(id);
    const va = this.poolDelVa(cpu, id, size, align, vstart, vend);
    bump(this.core.stat, va === 0 ? VaStat.POOL_MISSES : VaStat.POOL_HITS);
    if (va !== 0) {
      this.s.setFlags(va, vaFlags | this.allocTag);
      this.s.setVm(va, 0);
      this.insertBusyArea(cpu, va);
    }
    return va;
  }

  allocRange(
    cpu: number,
    va: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
  ): boolean {
    if (!this.free.alloc(cpu, va, size, align, vstart, vend)) return false;
    this.insertBusyArea(cpu, va);
    return true;
  }

  /**
   * The head of the exact-size pool if it is aligned; otherwise the head moves to the tail
   * and the request misses. Kernel: node_pool_del_va().
   */
  private poolDelVa(
    cpu: number,
    n: number,
    size: number,
    align: number,
    vstart: number,
    vend: number,
  ): number {
    const pages = size / this.core.cfg.pageSize;
    const idx = pages - 1;
    if (idx >= MAX_VA_SIZE_PAGES || !Number.isInteger(idx)) return 0;
    const o = this.nodeBase(n);
    if (Atomics.load(this.ctl, o + N_POOL_LEN + idx) === 0) return 0; // unlocked peek
    const s = this.s;
    const lock = this.poolLocks[n]!;
    this.core.take(lock, cpu);
    const h = this.ctl[o + N_POOL_HEAD + idx]!;
    let va = rbListFirst(s, h);
    if (va !== 0) {
      const start = s.start(va);
      if (align === 1 || start % align === 0) {
        if (s.size(va) !== size || start < vstart || s.end(va) > vend) {
          va = 0; // WARN_ON_ONCE in the kernel: left in place
        } else {
          listDel(s, va);
          this.ctl[o + N_POOL_LEN + idx] = this.ctl[o + N_POOL_LEN + idx]! - 1;
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
  private poolAddVa(cpu: number, n: number, va: number): boolean {
    const idx = this.s.size(va) / this.core.cfg.pageSize - 1;
    if (idx >= MAX_VA_SIZE_PAGES) return false;
    const o = this.nodeBase(n);
    const lock = this.poolLocks[n]!;
    this.core.take(lock, cpu);
    listAdd(this.s, this.ctl[o + N_POOL_HEAD + idx]!, va);
    Atomics.store(this.ctl, o + N_POOL_LEN + idx, this.ctl[o + N_POOL_LEN + idx]! + 1);
    lock.unlock();
    return true;
  }

  /** Busy areas live in the node of their start address. */
  private insertBusyArea(cpu: number, va: number): void {
    const n = this.addrToNodeId(this.s.start(va));
    insertBusy(this.core, this.busyLocks[n]!, this.ctl[this.nodeBase(n) + N_BUSY_HEAD]!, cpu, va);
  }

  // ------------------------------------------------------------ lookup and free

  /**
   * An area lives in the node of its start; an address inside it maps to that node or a later
   * zone's, so the walk goes through node ids downwards (with wrap) from the address's node.
   * Kernel: find_vmap_area().
   */
  find(cpu: number, addr: number): number {
    const va = this.findUnlink(cpu, addr, false, false);
    return va < 0 ? -va : va;
  }

  findUnlink(cpu: number, addr: number, requireVm: boolean, unlink = true): number {
    const first = this.addrToNodeId(addr);
    let n = first;
    do {
      const h = this.ctl[this.nodeBase(n) + N_BUSY_HEAD]!;
      const va = unlink
        ? findUnlinkIn(this.core, this.busyLocks[n]!, h, cpu, addr, requireVm)
        : findIn(this.core, this.busyLocks[n]!, h, cpu, addr);
      if (va !== 0) return va;
      n = (n + this.nrNodes - 1) % this.nrNodes;
    } while (n !== first);
    return 0;
  }

  /** Lazy areas go to the allocating node (its id is in the flags), no merging. */
  insertLazy(cpu: number, va: number): void {
    const s = this.s;
    const id = this.decodeVnId(s.flags(va));
    const n = id >= 0 ? id : this.addrToNodeId(s.start(va));
    const lock = this.lazyLocks[n]!;
    this.core.take(lock, cpu);
    const ok = insertVmapArea(s, this.ctl[this.nodeBase(n) + N_LAZY_HEAD]!, va);
    lock.unlock();
    if (!ok) invariantFailure(`vmalloc bug: lazily freed area #${va} overlaps a lazy area`);
  }

  freeNow(cpu: number, va: number): void {
    this.free.freeNow(cpu, va);
  }

  // ------------------------------------------------------------ purge

  /**
   * Kernel: __purge_vmap_area_lazy(start, end, full_pool_decay). Every node's pools decay
   * first (fully on reclaim), every node's lazy list is detached, one TLB flush covers them
   * all, then each node's areas refill that node's pools (unless skip_populate) or go back to
   * the free tree.
   */
  purgeLocked(cpu: number, mode: PurgeModeValue): boolean {
    const core = this.core;
    const fullPoolDecay = mode === PurgeMode.RECLAIM;
    const detached: { node: number; first: number; head: number }[] = [];
    for (let n = 0; n < this.nrNodes; n++) {
      const o = this.nodeBase(n);
      this.ctl[o + N_SKIP_POPULATE] = fullPoolDecay ? 1 : 0;
      this.decayPoolNode(cpu, n, fullPoolDecay);
      const lh = this.ctl[o + N_LAZY_HEAD]!;
      const first = detachList(core, this.lazyLocks[n]!, lh, cpu);
      if (first !== 0) detached.push({ node: n, first, head: lh });
    }
    if (detached.length === 0) return false;
    bump(core.stat, VaStat.PURGES);
    core.flushTlbAll();
    // helpers = clamp(vmap_lazy_nr / lazy_max_pages(), 1, nodes to purge) - 1
    const helpers =
      Math.min(Math.max(Math.floor(core.lazyPages / core.cfg.lazyMaxPages), 1), detached.length) -
      1;
    bump(core.stat, VaStat.PURGE_HELPERS, helpers);
    let purged = 0;
    for (const d of detached) purged += this.purgeNode(cpu, d.node, d.first, d.head);
    bump(core.stat, VaStat.PURGED_AREAS, purged);
    return purged > 0;
  }

  /**
   * Kernel: purge_vmap_node(). Returns the areas purged. The areas that do not go into a pool
   * are collected with list_add() (head insertion), so they reach the free tree in descending
   * address order, all under one hold of free_vmap_area_lock (reclaim_list_global()).
   */
  private purgeNode(cpu: number, n: number, first: number, head: number): number {
    const s = this.s;
    const core = this.core;
    const skip = this.ctl[this.nodeBase(n) + N_SKIP_POPULATE] === 1;
    const toFree: number[] = [];
    let pages = 0;
    let count = 0;
    for (let va = first; va !== head;) {
      const next = s.next(va);
      pages += s.size(va) / core.cfg.pageSize;
      count++;
      if (!(this.decodeVnId(s.flags(va)) >= 0 && !skip && this.poolAddVa(cpu, n, va)))
        toFree.push(va);
      else bump(core.stat, VaStat.POOL_REFILLS);
      va = next;
    }
    core.subLazy(pages);
    toFree.reverse();
    this.free.mergeAll(cpu, toFree, false);
    return count;
  }

  /**
   * Trims every pool of node `n`: a quarter (rounded down) of its areas, or all of them when
   * `full`; the most recently added go first. They coalesce among themselves in a temporary
   * tree before going back to the free tree. Returns how many areas left the pools.
   * Kernel: decay_va_pool_node() (so pools of fewer than 4 areas lose none in a partial decay).
   */
  decayPoolNode(cpu: number, n: number, full: boolean): number {
    const s = this.s;
    const o = this.nodeBase(n);
    const scratch = this.free.scratchHead;
    const lock = this.poolLocks[n]!;
    let decayed = 0;
    for (let p = 0; p < MAX_VA_SIZE_PAGES; p++) {
      if (Atomics.load(this.ctl, o + N_POOL_LEN + p) === 0) continue;
      const h = this.ctl[o + N_POOL_HEAD + p]!;
      // Detach the pool, so that no one can take from it meanwhile.
      this.core.take(lock, cpu);
      const first = rbListFirst(s, h);
      const last = s.prev(h);
      const len = this.ctl[o + N_POOL_LEN + p]!;
      rbListInit(s, h);
      Atomics.store(this.ctl, o + N_POOL_LEN + p, 0);
      lock.unlock();
      if (first === 0) continue;
      const nDecay = full ? len : len >> 2;
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
        Atomics.store(this.ctl, o + N_POOL_LEN + p, len - nDecay);
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
  shrinkCount(): number {
    let n = 0;
    for (let node = 0; node < this.nrNodes; node++) {
      const o = this.nodeBase(node);
      for (let p = 0; p < MAX_VA_SIZE_PAGES; p++) n += Atomics.load(this.ctl, o + N_POOL_LEN + p);
    }
    return n;
  }

  /** Empties every pool into the free tree; returns the areas released. Kernel: vmap_node_shrink_scan(). */
  shrinkScan(cpu: number): number {
    this.core.purgeMutex.lock(cpu);
    try {
      let n = 0;
      for (let node = 0; node < this.nrNodes; node++) n += this.decayPoolNode(cpu, node, true);
      return n;
    } finally {
      this.core.purgeMutex.unlock();
    }
  }

  /** Pool lengths of node `n` by size in pages (index 0: 1 page). */
  poolLengths(n: number): number[] {
    const o = this.nodeBase(n);
    return Array.from({ length: MAX_VA_SIZE_PAGES }, (_, p) =>
      Atomics.load(this.ctl, o + N_POOL_LEN + p),
    );
  }

  // ------------------------------------------------------------ iteration and checks

  /** vmallocinfo (6.9+) walks node 0's busy list, node 1's, ... */
  busyIds(): number[] {
    const s = this.s;
    const out: number[] = [];
    for (let n = 0; n < this.nrNodes; n++)
      listIds(s, this.ctl[this.nodeBase(n) + N_BUSY_HEAD]!, out);
    return out;
  }

  lazyIds(): number[] {
    const s = this.s;
    const out: number[] = [];
    for (let n = 0; n < this.nrNodes; n++)
      listIds(s, this.ctl[this.nodeBase(n) + N_LAZY_HEAD]!, out);
    return out;
  }

  /**
   * Every node's contents, for people looking inside: busy and lazy areas as address ranges
   * (lazy ranges include the guard page), and the non-empty pools by size in pages. Each list
   * is read under its node's lock, so the view is consistent per list, not across the nodes.
   */
  describe(cpu: number): VmapNodeInfo[] {
    const s = this.s;
    const out: VmapNodeInfo[] = [];
    const ranges = (h: number, lock: Lock): { start: number; end: number }[] => {
      this.core.take(lock, cpu);
      try {
        return listIds(s, h).map((va) => ({ start: s.start(va), end: s.end(va) }));
      } finally {
        lock.unlock();
      }
    };
    for (let n = 0; n < this.nrNodes; n++) {
      const o = this.nodeBase(n);
      const pools: { pages: number; count: number }[] = [];
      this.poolLengths(n).forEach((count, k) => {
        if (count > 0) pools.push({ pages: k + 1, count });
      });
      out.push({
        node: n,
        busy: ranges(this.ctl[o + N_BUSY_HEAD]!, this.busyLocks[n]!),
        lazy: ranges(this.ctl[o + N_LAZY_HEAD]!, this.lazyLocks[n]!),
        pools,
      });
    }
    return out;
  }

  /** The node whose busy tree holds area `va` (by its start). */
  busyNodeOf(va: number): number {
    return this.addrToNodeId(this.s.start(va));
  }

  get busyCount(): number {
    let c = 0;
    for (let n = 0; n < this.nrNodes; n++)
      c += rbListCount(this.s, this.ctl[this.nodeBase(n) + N_BUSY_HEAD]!);
    return c;
  }

  get lazyCount(): number {
    let c = 0;
    for (let n = 0; n < this.nrNodes; n++)
      c += rbListCount(this.s, this.ctl[this.nodeBase(n) + N_LAZY_HEAD]!);
    return c;
  }

  locks(): readonly Lock[] {
    return [this.free.lock, ...this.busyLocks, ...this.lazyLocks, ...this.poolLocks];
  }

  get freeCount(): number {
    return this.free.count;
  }

  pooledCount(): number {
    return this.shrinkCount();
  }

  check(start: number, end: number): DesignCheck {
    const s = this.s;
    const own: number[] = [];
    const free = this.free.check(start, end, own);
    const busy: number[] = [];
    const lazy: number[] = [];
    const pooled: number[] = [];
    for (let n = 0; n < this.nrNodes; n++) {
      const o = this.nodeBase(n);
      const bh = this.ctl[o + N_BUSY_HEAD]!;
      const lh = this.ctl[o + N_LAZY_HEAD]!;
      own.push(bh, lh);
      for (const va of checkRbList(s, bh, false, `node ${n} busy tree`, start, end)) {
        if (this.addrToNodeId(s.start(va)) !== n)
          invariantFailure(
            `area ${hex(s.start(va))} is in node ${n}'s busy tree, its address belongs to node ${this.addrToNodeId(s.start(va))}`,
          );
        busy.push(va);
      }
      for (const va of checkRbList(s, lh, false, `node ${n} lazy tree`, start, end)) {
        const id = this.decodeVnId(s.flags(va));
        const want = id >= 0 ? id : this.addrToNodeId(s.start(va));
        if (want !== n)
          invariantFailure(
            `lazy area ${hex(s.start(va))} is in node ${n}, belongs in node ${want}`,
          );
        lazy.push(va);
      }
      for (let p = 0; p < MAX_VA_SIZE_PAGES; p++) {
        const h = this.ctl[o + N_POOL_HEAD + p]!;
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
        if (len !== this.ctl[o + N_POOL_LEN + p])
          invariantFailure(
            `node ${n} pool ${p}: len ${this.ctl[o + N_POOL_LEN + p]} but ${len} areas`,
          );
      }
    }
    return {
      busy,
      lazy,
      free,
      other: [{ kind: 'pooled', ids: pooled }],
      own,
      tiling: [free, busy, lazy, pooled],
    };
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
