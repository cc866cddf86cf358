/**
 * The 'global' design (kernels 5.2 to 6.8): one free tree, one busy tree, one lazy tree, each
 * under its own global lock.
 *
 * Holds: GlobalDesign: the busy tree under vmap_area_lock, the lazy ("purge") tree under
 * purge_vmap_area_lock, over the shared FreeSpace (free_vmap_area_lock).
 * Invariant (outside a purge): free blocks, busy areas and lazy ranges tile the managed
 * space; lazy ranges are merged with their lazy neighbours as they arrive.
 * Callers: the core (src/designs/vmap-areas.ts), built by the registry.
 *
 * Kernel: mm/vmalloc.c (5.2 to 6.8): vmap_area_root, purge_vmap_area_root,
 * free_vmap_area_noflush() (merge into the purge tree), __purge_vmap_area_lazy() (6.7).
 */

import { invariantFailure } from '../debug.js';
import { checkCoalesced, checkRbList } from '../kva/check.js';
import { mergeOrAddVmapArea } from '../kva/free-tree.js';
import { rbListCount } from '../kva/rb-list.js';
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
import { VaStat, bump } from './stat.js';
import { S_LAZY_LOCKED, S_PURGE_DETACHED, S_PURGE_MERGED, stepHook } from '../shared/step-hook.js';

export interface GlobalDecl {
  free: FreeSpaceDecl;
  /** busy head, lazy head */
  heads: number;
  busyLock: number;
  lazyLock: number;
}

const W_BUSY_HEAD = 0;
const W_LAZY_HEAD = 1;

export class GlobalDesign implements VmapDesign {
  readonly name = 'global';
  readonly modernWarning = false;
  /** <= 6.8: the drain loops while the backlog still exceeds the limit. */
  readonly drainRepeats = true;
  readonly allocTag = 0;
  private readonly core: VmapCore;
  private readonly free: FreeSpace;
  private readonly ctl: Int32Array;
  private readonly heads: number;
  private readonly busyLock: Lock; // vmap_area_lock
  private readonly lazyLock: Lock; // purge_vmap_area_lock
  readonly pcpu: PcpuSeam;

  static declare(layout: ControlLayout, nrCpus: number): GlobalDecl {
    return {
      free: FreeSpace.declare(layout, nrCpus),
      heads: layout.words(2),
      busyLock: layout.lock('vmap_area_lock'),
      lazyLock: layout.lock('purge_vmap_area_lock'),
    };
  }

  constructor(core: VmapCore, decl: GlobalDecl, table: LockTable) {
    this.core = core;
    this.ctl = core.ctl;
    this.free = new FreeSpace(core, decl.free, table);
    this.heads = decl.heads;
    this.busyLock = new Lock(table, decl.busyLock, 'vmap_area_lock');
    this.lazyLock = new Lock(table, decl.lazyLock, 'purge_vmap_area_lock');
    this.pcpu = this.free.pcpuSeam((cpu, va) =>
      insertBusy(this.core, this.busyLock, this.busyHead, cpu, va),
    );
  }

  init(start: number, end: number): void {
    this.ctl[this.heads + W_BUSY_HEAD] = newHead(this.core.s);
    this.ctl[this.heads + W_LAZY_HEAD] = newHead(this.core.s);
    this.free.init(start, end);
  }

  private get busyHead(): number {
    return this.ctl[this.heads + W_BUSY_HEAD]!;
  }

  private get lazyHead(): number {
    return this.ctl[this.heads + W_LAZY_HEAD]!;
  }

  poolAlloc(): number {
    return 0;
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
    insertBusy(this.core, this.busyLock, this.busyHead, cpu, va);
    return true;
  }

  find(cpu: number, addr: number): number {
    return findIn(this.core, this.busyLock, this.busyHead, cpu, addr);
  }

  findUnlink(cpu: number, addr: number, requireVm: boolean): number {
    return findUnlinkIn(this.core, this.busyLock, this.busyHead, cpu, addr, requireVm);
  }

  /** Before 6.9 the lazy ("purge") tree merges neighbouring ranges as they arrive. */
  insertLazy(cpu: number, va: number): void {
    this.core.take(this.lazyLock, cpu);
    const ok = mergeOrAddVmapArea(this.core.s, this.lazyHead, va, false);
    if (stepHook !== null) stepHook(S_LAZY_LOCKED);
    this.lazyLock.unlock();
    if (ok === 0) invariantFailure(`vmalloc bug: lazily freed area #${va} overlaps a lazy range`);
  }

  freeNow(cpu: number, va: number): void {
    this.free.freeNow(cpu, va);
  }

  /**
   * The whole lazy list is detached under its lock, then merged into the free tree in address
   * order. Kernel: __purge_vmap_area_lazy() (6.7).
   */
  purgeLocked(cpu: number, _mode: PurgeModeValue): boolean {
    const core = this.core;
    const s = core.s;
    const lh = this.lazyHead;
    const first = detachList(core, this.lazyLock, lh, cpu);
    if (first === 0) return false;
    if (stepHook !== null) stepHook(S_PURGE_DETACHED);
    bump(core.stat, VaStat.PURGES);
    core.flushTlbAll(); // one flush_tlb_kernel_range() over [first, last]
    const chain: number[] = [];
    let pages = 0;
    for (let va = first; va !== lh; va = s.next(va)) {
      chain.push(va);
      pages += s.size(va) / core.cfg.pageSize;
    }
    this.free.mergeAll(cpu, chain, true);
    if (stepHook !== null) stepHook(S_PURGE_MERGED);
    core.subLazy(pages);
    bump(core.stat, VaStat.PURGED_AREAS, chain.length);
    return true;
  }

  busyIds(): number[] {
    return listIds(this.core.s, this.busyHead);
  }

  lazyIds(): number[] {
    return listIds(this.core.s, this.lazyHead);
  }

  get busyCount(): number {
    return rbListCount(this.core.s, this.busyHead);
  }

  get lazyCount(): number {
    return rbListCount(this.core.s, this.lazyHead);
  }

  get freeCount(): number {
    return this.free.count;
  }

  pooledCount(): number {
    return 0;
  }

  locks(): readonly Lock[] {
    return [this.free.lock, this.busyLock, this.lazyLock];
  }

  check(start: number, end: number): DesignCheck {
    const s = this.core.s;
    const own: number[] = [this.busyHead, this.lazyHead];
    const free = this.free.check(start, end, own);
    const busy = checkRbList(s, this.busyHead, false, 'busy tree', start, end);
    const lazy = checkRbList(s, this.lazyHead, false, 'lazy tree', start, end);
    checkCoalesced(s, lazy, 'lazy tree');
    return { busy, lazy, free, other: [], own, tiling: [free, busy, lazy] };
  }
}
