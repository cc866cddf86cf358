/**
 * The 'nodes' design (kernels 6.9+): vmap nodes, each with its own busy tree, lazy tree and
 * size-segregated pools of ready areas, so that CPUs rarely meet on a lock.
 *
 * Holds: NodesDesign: the per-node busy and lazy trees and their locks over the shared free
 * tree, owning the nodes' pools (NodePools, src/designs/node-pools.ts); node_alloc (the pool
 * fast path and the node tag), placement by address, by allocating node and by cpu; the purge
 * that refills pools from the allocating CPU's node and decays them. The nodes' checker and
 * inside view are in src/designs/nodes-check.ts.
 * Invariant: a busy area is in the busy tree of the node of its start address; a lazy area in
 * the lazy tree of the node encoded in its flags (or of its address when none is); a pooled
 * area in pool[(pages - 1)] of that node, with exactly (index + 1) pages; free + busy + lazy +
 * pooled tile the managed space.
 * Callers: the core (src/designs/vmap-areas.ts), built by the registry; the vmalloc layer for
 * vmapNodes(), addrToNodeId() and the shrinker.
 *
 * Kernel: mm/vmalloc.c (6.9+): struct vmap_node, vmap_init_nodes(), addr_to_node_id(),
 * encode_vn_id()/decode_vn_id(), node_alloc(), free_vmap_area_noflush(),
 * __purge_vmap_area_lazy(), purge_vmap_node(), the "vmap-node" shrinker (its count and scan
 * are the pools'). Differs from kernel: the purge processes every node inline in the purging
 * thread (the kernel hands some to helper work items; the helper count it would use is
 * recorded).
 * As in purge_vmap_node(), the areas a node's purge returns to the free tree are collected by
 * head insertion and so merged in descending address order (the tree's shape, and with it the
 * result of later aligned allocations, depends on that order).
 *
 *   node n:  busy tree + list   (areas whose start is in n's 64 KiB zones)   &vn->busy.lock
 *            lazy tree + list   (areas freed, allocated from n's CPUs)         &vn->lazy.lock
 *            pool[0..255]       (ready areas of 1..256 pages, LIFO)            &vn->pool_lock
 *                               (the pools' words and lock: node-pools.ts)
 *
 *   address:  | zone 0 | zone 1 | ... | zone N-1 | zone N | ...      zone = 16 pages
 *   node:     |   0    |   1    | ... |   N-1    |   0    | ...      (addr / zone) % N
 */

import { invariantFailure } from '../debug.js';
import { insertVmapArea } from '../kva/busy-tree.js';
import { rbListCount } from '../kva/rb-list.js';
import { VaFlags, type VaStore } from '../kva/vmap-area.js';
import type { ControlLayout } from '../shared/control-layout.js';
import { Lock, type LockTable } from '../shared/lock.js';
import {
  PurgeMode,
  type DesignCheck,
  type PcpuSeam,
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
import { NodePools, POOL_WORDS } from './node-pools.js';
import { checkNodes, describeNodes, type VmapNodeInfo } from './nodes-check.js';
import { VaStat, bump } from './stat.js';
import { S_LAZY_LOCKED, S_PURGE_DETACHED, S_PURGE_MERGED, stepHook } from '../shared/step-hook.js';

export type { VmapNodeInfo } from './nodes-check.js';

/** Words of one node in the control block. */
const N_BUSY_HEAD = 0;
const N_LAZY_HEAD = 1;
const N_SKIP_POPULATE = 2;
/** The node's pools (node-pools.ts): heads, then lengths. */
const N_POOLS = 8;
/** A multiple of 16 words: each node's words start on a cache line of their own. */
const NODE_WORDS = N_POOLS + POOL_WORDS + 8;

/** nr_vmap_nodes = clamp(possible CPUs, 1, 128). */
export function nrVmapNodes(nrCpus: number): number {
  return Math.min(Math.max(nrCpus, 1), 128);
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
  /** vmap_zone_size: 16 pages with several nodes (or the policy's), else 1. */
  readonly zoneSize: number;
  /** The records, for people looking inside (tests). */
  readonly s: VaStore;
  private readonly core: VmapCore;
  private readonly ctl: Int32Array;
  private readonly free: FreeSpace;
  private readonly busyLocks: Lock[];
  private readonly lazyLocks: Lock[];
  /** The nodes' pools (their words live in the nodes' words, at N_POOLS). */
  readonly pools: NodePools;
  private readonly base: number;
  readonly pcpu: PcpuSeam;

  static declare(layout: ControlLayout, nrCpus: number, nrNodes: number): NodesDecl {
    const n = nrNodes;
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
    // Policies (src/mm/config.ts): by default nrVmapNodes(nrCpus) nodes and 16-page zones.
    this.nrNodes = core.cfg.nrVmapNodes;
    this.zoneSize = core.cfg.vmapZoneSize;
    const locks = (first: number, name: string): Lock[] =>
      Array.from({ length: this.nrNodes }, (_, i) => new Lock(table, first + i, name));
    this.busyLocks = locks(decl.busyLocks, '&vn->busy.lock');
    this.lazyLocks = locks(decl.lazyLocks, '&vn->lazy.lock');
    this.base = decl.nodes;
    this.pools = new NodePools(
      core,
      this.free,
      table,
      this.nrNodes,
      decl.poolLocks,
      decl.nodes + N_POOLS,
      NODE_WORDS,
    );
    this.pcpu = this.free.pcpuSeam((cpu, va) => this.insertBusyArea(cpu, va));
  }

  init(start: number, end: number): void {
    const s = this.s;
    for (let n = 0; n < this.nrNodes; n++) {
      const o = this.nodeBase(n);
      this.ctl[o + N_BUSY_HEAD] = newHead(s);
      this.ctl[o + N_LAZY_HEAD] = newHead(s);
      this.pools.initNode(n);
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
    const va = this.pools.delVa(cpu, id, size, align, vstart, vend);
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
    if (stepHook !== null) stepHook(S_LAZY_LOCKED);
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
      this.pools.decayNode(cpu, n, fullPoolDecay);
      const lh = this.ctl[o + N_LAZY_HEAD]!;
      const first = detachList(core, this.lazyLocks[n]!, lh, cpu);
      if (first !== 0) detached.push({ node: n, first, head: lh });
    }
    if (detached.length === 0) return false;
    if (stepHook !== null) stepHook(S_PURGE_DETACHED);
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
      if (!(this.decodeVnId(s.flags(va)) >= 0 && !skip && this.pools.addVa(cpu, n, va)))
        toFree.push(va);
      else bump(core.stat, VaStat.POOL_REFILLS);
      va = next;
    }
    if (stepHook !== null) stepHook(S_PURGE_MERGED);
    core.subLazy(pages);
    toFree.reverse();
    this.free.mergeAll(cpu, toFree, false);
    return count;
  }

  // ------------------------------------------------------------ shrinker

  /** Areas in all pools. Kernel: vmap_node_shrink_count(). */
  shrinkCount(): number {
    return this.pools.count();
  }

  /** Empties every pool into the free tree; returns the areas released. Kernel: vmap_node_shrink_scan(). */
  shrinkScan(cpu: number): number {
    return this.pools.scan(cpu);
  }

  // ------------------------------------------------------------ iteration and checks

  /** vmallocinfo (6.9+) walks node 0's busy list, node 1's, ... */
  busyIds(): number[] {
    const s = this.s;
    const out: number[] = [];
    for (let n = 0; n < this.nrNodes; n++) listIds(s, this.busyHead(n), out);
    return out;
  }

  lazyIds(): number[] {
    const s = this.s;
    const out: number[] = [];
    for (let n = 0; n < this.nrNodes; n++) listIds(s, this.lazyHead(n), out);
    return out;
  }

  /**
   * Every node's contents, for people looking inside (see describeNodes in nodes-check.ts).
   */
  describe(cpu: number): VmapNodeInfo[] {
    return describeNodes(this, this.core, cpu);
  }

  /** The node whose busy tree holds area `va` (by its start). */
  busyNodeOf(va: number): number {
    return this.addrToNodeId(this.s.start(va));
  }

  get busyCount(): number {
    let c = 0;
    for (let n = 0; n < this.nrNodes; n++) c += rbListCount(this.s, this.busyHead(n));
    return c;
  }

  get lazyCount(): number {
    let c = 0;
    for (let n = 0; n < this.nrNodes; n++) c += rbListCount(this.s, this.lazyHead(n));
    return c;
  }

  locks(): readonly Lock[] {
    return [this.free.lock, ...this.busyLocks, ...this.lazyLocks, ...this.pools.locks];
  }

  get freeCount(): number {
    return this.free.count;
  }

  pooledCount(): number {
    return this.pools.count();
  }

  /** The free space's checks, then every node's (nodes-check.ts). */
  check(start: number, end: number): DesignCheck {
    const own: number[] = [];
    const free = this.free.check(start, end, own);
    return checkNodes(this, start, end, free, own);
  }

  // ------------------------------------------------------------ for the checker and views

  /** Head of node `n`'s busy tree + list. */
  busyHead(n: number): number {
    return this.ctl[this.nodeBase(n) + N_BUSY_HEAD]!;
  }

  /** Head of node `n`'s lazy tree + list. */
  lazyHead(n: number): number {
    return this.ctl[this.nodeBase(n) + N_LAZY_HEAD]!;
  }

  /** &vn->busy.lock of node `n`. */
  busyLock(n: number): Lock {
    return this.busyLocks[n]!;
  }

  /** &vn->lazy.lock of node `n`. */
  lazyLock(n: number): Lock {
    return this.lazyLocks[n]!;
  }
}
