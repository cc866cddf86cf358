/**
 * The 'offload2023' design: the "Offload free_vmap_area_lock" design of the August 2023 v2
 * series (patch 6/9, with 9/9's node count and node size), where each vmap node has its own
 * free heap, fed in node_size blocks from the global free tree. The series moved to
 * size-segregated pools in v3 (the 'nodes' design); this one was never merged.
 *
 * Holds: Offload2023Design: per node a busy tree (by address), a lazy tree (by the node id
 * encoded in the flags, else by address, merging as it arrives, as in v2), a free heap (an
 * augmented free tree) and the margins of the blocks it fetched; the node fast path
 * (node_alloc), the fetch of a block (node_alloc_fill), the purge that returns areas to their
 * node's heap and whole blocks to the global heap (purge_vmap_node).
 * Invariant: a node's free heap holds only ranges inside the blocks it fetched, each block
 * shrunk by a page on each side (the margins, kept as records) so nothing merges across
 * blocks; no block's interior is wholly free in its node (it went back to the global heap);
 * global free + busy + lazy + node heaps + margins tile the managed space. Checked by
 * checkOffload() (./offload2023-check.ts).
 * Callers: the core (src/designs/vmap-areas.ts), built by the registry.
 *
 * Kernel: mm/vmalloc.c of "Mitigate a vmap lock contention" v2 (Aug 2023): node_alloc(),
 * node_alloc_fill(), id_to_node(), this_node_id(), encode_vn_id()/decode_vn_id(),
 * free_vmap_area(), purge_vmap_node(), reclaim_list_global(); calculate_nr_nodes() and the
 * node_size formula of patch 9/9 (the value that makes 6/9 do anything: before 9/9,
 * node_size is 1 and node_alloc() serves nothing).
 * Differs from kernel: the margins of a fetched block are kept as two one-page records in a
 * per-node margin tree (the kernel keeps no record of them), so check() can tile the space and
 * name each block; the error path's free (freeNow, the kernel's free_vmap_area()) also returns
 * a block freed whole, as the purge does. The purge runs every node inline (the helper count
 * the kernel would use is recorded).
 *
 *   global heap:  ...free...|m|<-- interior: node 1's heap, busy, lazy -->|m|...free...
 *                           |<---------------- node_size ------------------>|
 *   address zone: (addr / node_size) % nr_nodes picks the busy tree (a block spans two zones)
 */

import { invariantFailure } from '../debug.js';
import { mergeOrAddVmapArea } from '../kva/free-tree.js';
import { rbListCount } from '../kva/rb-list.js';
import { VaFlags, type VaStore } from '../kva/vmap-area.js';
import type { ControlLayout } from '../shared/control-layout.js';
import { Lock, type LockTable } from '../shared/lock.js';
import type { DesignCheck, PcpuSeam, PurgeModeValue, VmapCore, VmapDesign } from './design.js';
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
import { checkOffload, describeOffload, type OffloadNodeInfo } from './offload2023-check.js';
import { NodeHeaps } from './offload2023-heap.js';
import {
  NODE_WORDS,
  N_BUSY_HEAD,
  N_FETCHES,
  N_FREE_HEAD,
  N_LAZY_HEAD,
  N_MARGIN_HEAD,
  N_RETURNS,
  type OffloadView,
} from './offload2023-node.js';
import { VaStat, bump } from './stat.js';

export interface OffloadDecl {
  free: FreeSpaceDecl;
  /** node n's words start at nodes + n * NODE_WORDS */
  nodes: number;
  busyLocks: number;
  lazyLocks: number;
  freeLocks: number;
}

export class Offload2023Design implements VmapDesign, OffloadView {
  readonly name = 'offload2023';
  readonly modernWarning = false;
  /** Before 6.9 the drain loops while the backlog still exceeds the limit. */
  readonly drainRepeats = true;
  allocTag = 0;
  readonly nrNodes: number;
  /** node_size: the block fetched from the global heap, and the address zone of a node. */
  readonly nodeSize: number;
  /** The records, for people looking inside (tests). */
  readonly s: VaStore;
  readonly ctl: Int32Array;
  readonly base: number;
  private readonly core: VmapCore;
  private readonly free: FreeSpace;
  private readonly heaps: NodeHeaps;
  readonly busyLocks: Lock[];
  readonly lazyLocks: Lock[];
  /** &vn->free.lock: the node's free heap and its margins. */
  readonly freeLocks: Lock[];
  readonly pageSize: number;
  readonly pcpu: PcpuSeam;

  static declare(layout: ControlLayout, nrCpus: number, nrNodes: number): OffloadDecl {
    const n = nrNodes;
    return {
      free: FreeSpace.declare(layout, nrCpus),
      nodes: layout.lines(n * NODE_WORDS),
      busyLocks: layout.lockArray('&vn->busy.lock', n),
      lazyLocks: layout.lockArray('&vn->lazy.lock', n),
      freeLocks: layout.lockArray('&vn->free.lock', n),
    };
  }

  constructor(core: VmapCore, decl: OffloadDecl, table: LockTable) {
    this.core = core;
    this.s = core.s;
    this.ctl = core.ctl;
    this.free = new FreeSpace(core, decl.free, table);
    // Policies (src/mm/config.ts): by default offloadNrNodes() and offloadNodeSize().
    this.nrNodes = core.cfg.nrVmapNodes;
    this.nodeSize = core.cfg.vmapZoneSize;
    this.pageSize = core.cfg.pageSize;
    const locks = (first: number, name: string): Lock[] =>
      Array.from({ length: this.nrNodes }, (_, i) => new Lock(table, first + i, name));
    this.busyLocks = locks(decl.busyLocks, '&vn->busy.lock');
    this.lazyLocks = locks(decl.lazyLocks, '&vn->lazy.lock');
    this.freeLocks = locks(decl.freeLocks, '&vn->free.lock');
    this.base = decl.nodes;
    this.heaps = new NodeHeaps(
      core,
      this.free,
      decl.free.preload,
      (n) => this.nodeBase(n),
      this.freeLocks,
      this.nodeSize,
    );
    this.pcpu = this.free.pcpuSeam((cpu, va) => this.insertBusyArea(cpu, va));
  }

  init(start: number, end: number): void {
    for (let n = 0; n < this.nrNodes; n++) {
      const o = this.nodeBase(n);
      for (const w of [N_BUSY_HEAD, N_LAZY_HEAD, N_FREE_HEAD, N_MARGIN_HEAD])
        this.ctl[o + w] = newHead(this.s);
    }
    this.free.init(start, end);
  }

  nodeBase(n: number): number {
    return this.base + n * NODE_WORDS;
  }

  /** addr_to_node_id(): zones of node_size bytes dealt round-robin to the nodes. */
  addrToNodeId(addr: number): number {
    return Math.floor(addr / this.nodeSize) % this.nrNodes;
  }

  /** encode_vn_id(): node id + 1 in bits VN_ID_SHIFT and up of va->flags. */
  encodeVnId(id: number): number {
    return (id + 1) << VaFlags.VN_ID_SHIFT;
  }

  /** decode_vn_id(): the node id in va->flags, or -1 when none was encoded (0 - 1). */
  decodeVnId(flags: number): number {
    const id = (flags >> VaFlags.VN_ID_SHIFT) - 1;
    return id >= 0 && id < this.nrNodes ? id : -1;
  }

  // ------------------------------------------------------------ allocation

  /**
   * Kernel: node_alloc() on the node of the allocating CPU (this_node_id()): only requests for
   * exactly the vmalloc window whose size (plus the alignment, when above a page) is at most a
   * quarter of node_size. A hit is tagged with the node; a miss is not tagged (va->flags = 0),
   * and the core goes to the global heap, retrying there alone after a purge, as v2 does.
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
    const cfg = this.core.cfg;
    if (vstart !== cfg.vmallocStart || vend !== cfg.vmallocEnd) return 0;
    const extra = align > this.pageSize ? align : 0;
    if (size + extra > Math.floor(this.nodeSize / 4)) return 0;
    const s = this.s;
    const va = s.alloc();
    if (va === 0) return 0;
    const n = cpu % this.nrNodes;
    if (!this.heaps.alloc(cpu, n, va, size, align)) {
      bump(this.core.stat, VaStat.POOL_MISSES);
      s.free(va);
      return 0;
    }
    bump(this.core.stat, VaStat.POOL_HITS);
    this.allocTag = this.encodeVnId(n);
    s.setFlags(va, vaFlags | this.allocTag);
    s.setVm(va, 0);
    this.insertBusyArea(cpu, va);
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
   * An area lives in the node of its start; v2's find_vmap_area() walks node ids upwards
   * (with wrap) from the address's node until one holds it.
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
      n = (n + 1) % this.nrNodes;
    } while (n !== first);
    return 0;
  }

  /**
   * Lazy areas go to the node encoded in their flags, else to the node of their address, and
   * merge with their lazy neighbours there (v2's per-node merge_or_add_vmap_area()): only
   * ranges of one block, or ranges of no block, can touch, the margins keep the rest apart.
   */
  insertLazy(cpu: number, va: number): void {
    const s = this.s;
    const id = this.decodeVnId(s.flags(va));
    const n = id >= 0 ? id : this.addrToNodeId(s.start(va));
    const lock = this.lazyLocks[n]!;
    this.core.take(lock, cpu);
    const ok = mergeOrAddVmapArea(s, this.ctl[this.nodeBase(n) + N_LAZY_HEAD]!, va, false);
    lock.unlock();
    if (ok === 0) invariantFailure(`vmalloc bug: lazily freed area #${va} overlaps a lazy range`);
  }

  /** Kernel: free_vmap_area(): to the node encoded in the flags, else to the global heap. */
  freeNow(cpu: number, va: number): void {
    const id = this.decodeVnId(this.s.flags(va));
    if (id >= 0) this.heaps.freeNow(cpu, id, va);
    else this.free.freeNow(cpu, va);
  }

  // ------------------------------------------------------------ purge

  /**
   * Kernel: __purge_vmap_area_lazy() of v2: every node's lazy list is detached, one TLB flush
   * covers them all, then each node is purged (purge_vmap_node()).
   */
  purgeLocked(cpu: number, _mode: PurgeModeValue): boolean {
    const core = this.core;
    const detached: { node: number; first: number; head: number }[] = [];
    for (let n = 0; n < this.nrNodes; n++) {
      const lh = this.ctl[this.nodeBase(n) + N_LAZY_HEAD]!;
      const first = detachList(core, this.lazyLocks[n]!, lh, cpu);
      if (first !== 0) detached.push({ node: n, first, head: lh });
    }
    if (detached.length === 0) return false;
    bump(core.stat, VaStat.PURGES);
    core.flushTlbAll();
    // nr_purge_helpers = clamp(vmap_lazy_nr / lazy_max_pages(), 1, nodes to purge) - 1
    const helpers =
      Math.min(Math.max(Math.floor(core.lazyPages / core.cfg.lazyMaxPages), 1), detached.length) -
      1;
    bump(core.stat, VaStat.PURGE_HELPERS, helpers);
    let purged = 0;
    const hasNode = (va: number): boolean => this.decodeVnId(this.s.flags(va)) >= 0;
    for (const d of detached) {
      const r = this.heaps.purge(cpu, d.node, d.first, d.head, hasNode);
      core.subLazy(r.pages);
      purged += r.ranges;
    }
    bump(core.stat, VaStat.PURGED_AREAS, purged);
    return purged > 0;
  }

  // ------------------------------------------------------------ iteration and checks

  /** vmallocinfo walks node 0's busy list, node 1's, ... */
  busyIds(): number[] {
    const out: number[] = [];
    for (let n = 0; n < this.nrNodes; n++)
      listIds(this.s, this.ctl[this.nodeBase(n) + N_BUSY_HEAD]!, out);
    return out;
  }

  lazyIds(): number[] {
    const out: number[] = [];
    for (let n = 0; n < this.nrNodes; n++)
      listIds(this.s, this.ctl[this.nodeBase(n) + N_LAZY_HEAD]!, out);
    return out;
  }

  private countAll(word: number): number {
    let c = 0;
    for (let n = 0; n < this.nrNodes; n++)
      c += rbListCount(this.s, this.ctl[this.nodeBase(n) + word]!);
    return c;
  }

  get busyCount(): number {
    return this.countAll(N_BUSY_HEAD);
  }

  get lazyCount(): number {
    return this.countAll(N_LAZY_HEAD);
  }

  /** Free blocks of the global heap and of every node's heap. */
  get freeCount(): number {
    return this.free.count + this.countAll(N_FREE_HEAD);
  }

  /** Blocks fetched from the global heap so far, and blocks returned to it whole. */
  blockCounts(): { fetched: number; returned: number } {
    let fetched = 0;
    let returned = 0;
    for (let n = 0; n < this.nrNodes; n++) {
      fetched += Atomics.load(this.ctl, this.nodeBase(n) + N_FETCHES);
      returned += Atomics.load(this.ctl, this.nodeBase(n) + N_RETURNS);
    }
    return { fetched, returned };
  }

  pooledCount(): number {
    return 0;
  }

  /** The global free tree's head (for the check). */
  get globalFreeHead(): number {
    return this.free.head;
  }

  locks(): readonly Lock[] {
    return [this.free.lock, ...this.busyLocks, ...this.lazyLocks, ...this.freeLocks];
  }

  check(start: number, end: number): DesignCheck {
    const own: number[] = [];
    const free = this.free.check(start, end, own);
    return checkOffload(this, start, end, free, own);
  }

  /**
   * Every node's heap, blocks, busy and lazy ranges, and the global heap, for people looking
   * inside (tests). Read under each structure's lock: consistent per list, not across them.
   */
  describe(cpu: number): { global: { start: number; end: number }[]; nodes: OffloadNodeInfo[] } {
    this.core.take(this.free.lock, cpu);
    const global = listIds(this.s, this.free.head).map((x) => ({
      start: this.s.start(x),
      end: this.s.end(x),
    }));
    this.free.lock.unlock();
    return { global, nodes: describeOffload(this, (lock) => this.core.take(lock, cpu)) };
  }
}
