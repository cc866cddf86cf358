/**
 * The vmalloc subsystem: vmalloc/vfree, vmap/vunmap, get_vm_area and friends, over the
 * vmap-area manager, vm_struct records and real page frames.
 *
 * Holds: the Vmalloc object (one per thread; all its state lives in shared buffers) and
 * createVmalloc().
 * Invariant (between calls): every busy area with a vm_struct has vm.addr == va.start and
 * vm.size == va size (guard page included); a VM_ALLOC area owns nrPages frames listed in the
 * page-array pool; everything check() verifies.
 * Callers: library users, the test_vmalloc driver, the CLI.
 *
 * Kernel: mm/vmalloc.c: __vmalloc_node_range(), __get_vm_area_node(), __vmalloc_area_node(),
 * vfree(), vunmap(), vmap(), remove_vm_area(), find_vm_area(), vmalloc_to_page().
 * Differs from kernel: misuse throws VmallocError (the kernel WARNs and carries on); vfree of
 * an address inside an area throws ENOENT (the kernel would free the area by containment).
 *
 *   vmalloc(size)
 *     -> __get_vm_area_node: vm_struct, size + guard page, alloc_vmap_area (busy)
 *     -> __vmalloc_area_node: pages array (kmalloc, or a nested vmalloc above a page),
 *        nrPages frames, zeroed for vzalloc
 *   vfree(addr)
 *     -> find_unlink_vmap_area (busy -> unlinked), frames and array freed,
 *        free_vmap_area_noflush (-> lazy until the next purge)
 */

import { VmallocError, checkInteger, isPowerOfTwo } from '../errors.js';
import { invariantFailure } from '../debug.js';
import { checkStore, checkTiling } from '../kva/check.js';
import { VaStore } from '../kva/vmap-area.js';
import { Lock, LockTable } from '../shared/lock.js';
import { makeFixedBuffer, type AnyBuffer } from '../shared/buffers.js';
import type { ArenaBuffers } from '../shared/record-arena.js';
import type { StringTableBuffers } from '../shared/strings.js';
import type { PageAllocatorBuffers } from './page-alloc.js';
import { StringTable } from '../shared/strings.js';
import { type VmallocConfig, type VmallocOptions, resolveConfig } from './config.js';
import { kernelHex } from './layout.js';
import { RateLimitedLog, type VmallocLogger, consoleLogger } from './logger.js';
import { PageAllocator } from './page-alloc.js';
import { PagesPool, type PagesPoolHandle } from './pages-pool.js';
import { VmFlags, VmStore } from './vm-struct.js';
import {
  GlobalVmapAreas,
  type PurgeNotifier,
  VA_STAT_WORDS,
  VaStat,
  type VmapAreaManager,
} from './vmap-areas.js';
import { NodeVmapAreas, nrVmapNodes, type VmapNodeInfo } from '../nodes/vmap-nodes.js';
import { formatLockStat } from '../shared/lock-stat.js';
import type { LockStat } from '../shared/lock.js';
import { type VmallocinfoSource, formatVmallocinfo } from './vmallocinfo.js';

export { VmFlags } from './vm-struct.js';

/** va->flags bits. */
export const VMAP_RAM = 0x1;
export const VMAP_BLOCK = 0x2;

/** Lock table slots. */
const L_FREE = 0;
const L_BUSY = 1;
const L_LAZY = 2;
const L_PURGE = 3;
const L_ZONE = 4;
const L_STRINGS = 5;
const L_VA_CACHE = 6;
const L_VM_CACHE = 7;
/** The nodes design's locks: busy, lazy and pool lock of node n at L_NODES + 3n + 0/1/2. */
const L_NODES = 8;

/** The translation cache with both entries empty (start > end matches no address). */
const EMPTY_TLB = [1, 0, 1, 0];

/** A cpu id argument: an integer in [0, nrCpus). */
function checkCpu(op: string, cpu: unknown, nrCpus: number): asserts cpu is number {
  if (!Number.isInteger(cpu) || (cpu as number) < 0 || (cpu as number) >= nrCpus) {
    throw new VmallocError(
      'EINVAL',
      `Cannot ${op}: cpu must be an integer from 0 to nrCpus - 1 (${nrCpus - 1}), got ${String(cpu)}`,
    );
  }
}

function lockCount(config: VmallocConfig): number {
  return L_NODES + (config.design === 'nodes' ? 3 * nrVmapNodes(config.nrCpus) : 0);
}

function ctlWords(config: VmallocConfig): number {
  return config.design === 'nodes'
    ? NodeVmapAreas.ctlWords(config.nrCpus)
    : GlobalVmapAreas.ctlWords(config.nrCpus);
}

export interface VmallocAllocOptions {
  /** Power of two the address must be a multiple of. @defaultValue 1 */
  align?: number;
  /** Zero the pages (vzalloc, __GFP_ZERO). @defaultValue false */
  zero?: boolean;
  /** Shown in vmallocinfo, like the kernel's %pS of the return address. */
  caller?: string;
}

export interface VmapOptions {
  /** VM_* flags besides VM_MAP. */
  flags?: number;
  caller?: string;
}

/** A snapshot of a vm_struct. */
export interface VmArea {
  addr: number;
  /** Size including the guard page. */
  size: number;
  flags: number;
  nrPages: number;
  caller: string;
  physAddr: number;
  /** Page frame numbers, in address order. */
  pages: number[];
}

export interface VmallocStats {
  design: string;
  nrCpus: number;
  pageSize: number;
  busyAreas: number;
  freeBlocks: number;
  lazyAreas: number;
  /** vmap_lazy_nr */
  lazyPages: number;
  /** lazy_max_pages() */
  lazyMaxPages: number;
  purges: number;
  purgedAreas: number;
  /**
   * Helper workers the kernel's purge would have used, summed over purges
   * (clamp(vmap_lazy_nr / lazy_max_pages(), 1, nodes to purge) - 1); here the purging thread
   * does their nodes itself.
   */
  purgeHelpers: number;
  tlbFlushes: number;
  allocFailures: number;
  allocRetries: number;
  /** nodes design: allocations served from a node pool, and those that missed. */
  poolHits: number;
  poolMisses: number;
  /** nodes design: purged areas put into pools, areas in pools now, areas decayed out. */
  poolRefills: number;
  pooledAreas: number;
  decayed: number;
  pagesTotal: number;
  pagesUsed: number;
  vmStructs: number;
  vmapAreaRecords: number;
}

/**
 * Everything a worker needs to attach to a Vmalloc: its configuration and every shared buffer.
 * Structured-cloneable: send it with postMessage and call attachVmalloc() in the worker.
 */
export interface VmallocHandle {
  readonly kind: 'Vmalloc';
  readonly config: VmallocConfig;
  readonly va: ArenaBuffers;
  readonly vm: ArenaBuffers;
  readonly frames: PageAllocatorBuffers;
  readonly pool: PagesPoolHandle;
  readonly strings: StringTableBuffers;
  readonly locks: AnyBuffer;
  readonly ctl: AnyBuffer;
  readonly stat: AnyBuffer;
}

/** Scratch results of the busy lookup in vfree (a number, to keep the hot path free of objects). */
const UNLINK_NONE = 0;
const UNLINK_INSIDE = -1;
const UNLINK_NO_VM = -2;

export class Vmalloc {
  readonly config: VmallocConfig;
  /** This thread's cpu id. */
  readonly cpu: number;
  readonly pageSize: number;
  /** VMALLOC_START and VMALLOC_END. */
  readonly vmallocStart: number;
  readonly vmallocEnd: number;
  private readonly s: VaStore;
  private readonly vms: VmStore;
  private readonly frames: PageAllocator;
  private readonly pool: PagesPool;
  private readonly strings: StringTable;
  private readonly areas: VmapAreaManager;
  private readonly lockTable: LockTable;
  /** The lock handles of this instance, for lock_stat. */
  private readonly allLocks: Lock[];
  private readonly log: RateLimitedLog;
  /** Structured-cloneable: pass it to a worker and attachVmalloc() it there. */
  readonly handle: VmallocHandle;
  /** The area found by the last failed exact-start lookup (for error messages). */
  private lastFound = 0;
  /** Translation cache: [start, mappedEnd) of two areas (empty: start > end), and their vm_structs. */
  private readonly tlb = Float64Array.from(EMPTY_TLB);
  private readonly tlbVm = new Int32Array(2);
  /** The shared TLB generation the cache was filled under (a purge changes it). */
  private tlbGen = 0;
  private opsSinceCheck = 0;

  /** @internal Use createVmalloc() or attachVmalloc(). */
  constructor(handle: VmallocHandle, cpu: number, logger: VmallocLogger | null) {
    const config = handle.config;
    this.handle = handle;
    this.config = config;
    this.cpu = cpu;
    this.pageSize = config.pageSize;
    this.vmallocStart = config.vmallocStart;
    this.vmallocEnd = config.vmallocEnd;
    const locks = new LockTable(handle.locks);
    this.log = new RateLimitedLog(logger);
    this.s = new VaStore(handle.va);
    this.s.bindCpu(cpu, new Lock(locks, L_VA_CACHE, 'vmap_area_cachep'));
    this.vms = new VmStore(handle.vm);
    this.vms.bindCpu(cpu, new Lock(locks, L_VM_CACHE, 'vm_struct_cachep'));
    this.frames = new PageAllocator(handle.frames);
    this.frames.bindCpu(cpu, new Lock(locks, L_ZONE, 'zone->lock'));
    this.pool = new PagesPool(handle.pool, cpu);
    this.strings = new StringTable(handle.strings, new Lock(locks, L_STRINGS, 'strings_lock'), cpu);
    const vaCfg = {
      pageSize: config.pageSize,
      nrCpus: config.nrCpus,
      lazyMaxPages: config.lazyMaxPages,
      vmallocStart: config.vmallocStart,
      vmallocEnd: config.vmallocEnd,
      modernWarning: config.design === 'nodes',
    };
    const freeLock = new Lock(locks, L_FREE, 'free_vmap_area_lock');
    const purgeMutex = new Lock(locks, L_PURGE, 'vmap_purge_lock');
    const ctl = new Int32Array(handle.ctl);
    // Each cpu counts in its own block (no cache line written by two workers); stats() sums.
    const stat = new Float64Array(handle.stat, cpu * VA_STAT_WORDS * 8, VA_STAT_WORDS);
    if (config.design === 'nodes') {
      const n = nrVmapNodes(config.nrCpus);
      const nodeLock = (k: number, name: string) =>
        Array.from({ length: n }, (_, i) => new Lock(locks, L_NODES + 3 * i + k, name));
      const nodes = {
        busy: nodeLock(0, '&vn->busy.lock'),
        lazy: nodeLock(1, '&vn->lazy.lock'),
        pool: nodeLock(2, '&vn->pool_lock'),
      };
      this.areas = new NodeVmapAreas(
        this.s,
        ctl,
        stat,
        vaCfg,
        { freeLock, purgeMutex, nodes },
        this.log,
      );
    } else {
      const busyLock = new Lock(locks, L_BUSY, 'vmap_area_lock');
      const lazyLock = new Lock(locks, L_LAZY, 'purge_vmap_area_lock');
      this.areas = new GlobalVmapAreas(
        this.s,
        ctl,
        stat,
        vaCfg,
        { freeLock, purgeMutex, busyLock, lazyLock },
        this.log,
      );
    }
    this.lockTable = locks;
    this.allLocks = [
      ...this.areas.locks(),
      new Lock(locks, L_ZONE, 'zone->lock'),
      new Lock(locks, L_STRINGS, 'strings_lock'),
      new Lock(locks, L_VA_CACHE, 'vmap_area_cachep'),
      new Lock(locks, L_VM_CACHE, 'vm_struct_cachep'),
    ];
  }

  /** A new subsystem: all its buffers, initialized; the instance for cpu 0. */
  static create(config: VmallocConfig, logger: VmallocLogger | null): Vmalloc {
    const shared = config.shared;
    const cpus = config.nrCpus;
    const handle: VmallocHandle = {
      kind: 'Vmalloc',
      config,
      va: VaStore.createBuffers({ shared, perCpu: cpus }),
      vm: VmStore.createBuffers({ shared, perCpu: cpus }),
      frames: PageAllocator.createBuffers(config.physicalMemory, config.pageSize, cpus, shared),
      pool: PagesPool.createHandle(cpus, config.physicalMemory / config.pageSize, shared),
      strings: StringTable.createBuffers(shared),
      locks: LockTable.create(lockCount(config), shared, cpus).buffer,
      ctl: makeFixedBuffer(ctlWords(config) * 4, shared),
      stat: makeFixedBuffer(cpus * VA_STAT_WORDS * 8, shared),
    };
    const vm = new Vmalloc(handle, 0, logger);
    vm.lockTable.setTimeout(config.lockTimeoutMs);
    vm.lockTable.setStats(config.lockStat);
    vm.areas.init(config.spaceStart, config.spaceEnd);
    return vm;
  }

  // ---------------------------------------------------------------- allocation

  /**
   * Allocates `size` bytes (rounded up to pages, plus a guard page of address space) of
   * virtually contiguous memory in the vmalloc window: the address, or null when address
   * space or page frames run out (a warning with the kernel's text is logged).
   * Kernel: vmalloc() / __vmalloc_node().
   */
  vmalloc(size: number, options?: VmallocAllocOptions): number | null {
    let align = 1;
    let zero = false;
    let caller = 0;
    if (options !== undefined) {
      if (options === null || typeof options !== 'object')
        throwEinval('vmalloc', 'options must be an object', options);
      if (options.align !== undefined) align = this.checkAlign('vmalloc', options.align);
      zero = options.zero === true;
      if (options.caller !== undefined) caller = this.callerId('vmalloc', options.caller);
    }
    const addr = this.vmallocNodeRange(
      this.checkByteSize('vmalloc', size),
      align,
      this.vmallocStart,
      this.vmallocEnd,
      zero,
      0,
      caller,
    );
    this.afterOp();
    return addr;
  }

  /**
   * vmalloc() allowing huge mappings: a request of at least a PMD (512 pages) is aligned to a
   * PMD and rounded up to one; if that fails, a normal vmalloc is made. Kernel: vmalloc_huge().
   * Differs from kernel: the pages are still single frames (no high-order pages).
   */
  vmallocHuge(size: number, options?: VmallocAllocOptions): number | null {
    const bytes = this.checkByteSize('vmalloc_huge', size);
    const pmd = this.pageSize * (this.pageSize / 8);
    if (bytes < pmd) return this.vmalloc(bytes, options);
    const align = options?.align === undefined ? 1 : this.checkAlign('vmalloc_huge', options.align);
    const caller =
      options?.caller === undefined ? 0 : this.callerId('vmalloc_huge', options.caller);
    const zero = options?.zero === true;
    const huge = Math.ceil(bytes / pmd) * pmd;
    let addr = this.vmallocNodeRange(
      huge,
      Math.max(align, pmd),
      this.vmallocStart,
      this.vmallocEnd,
      zero,
      VmFlags.VM_ALLOW_HUGE_VMAP,
      caller,
    );
    if (addr === null) {
      addr = this.vmallocNodeRange(
        bytes,
        align,
        this.vmallocStart,
        this.vmallocEnd,
        zero,
        VmFlags.VM_ALLOW_HUGE_VMAP,
        caller,
      );
    }
    this.afterOp();
    return addr;
  }

  /** vmalloc() with zeroed pages. Kernel: vzalloc(). */
  vzalloc(size: number, options?: Omit<VmallocAllocOptions, 'zero'>): number | null {
    return this.vmalloc(size, { ...options, zero: true });
  }

  /** Kernel: __vmalloc_node_range(): the area, its pages array, its pages. */
  private vmallocNodeRange(
    realSize: number,
    align: number,
    start: number,
    end: number,
    zero: boolean,
    vmFlags: number,
    caller: number,
  ): number | null {
    const pageSize = this.pageSize;
    const size = Math.ceil(realSize / pageSize) * pageSize;
    if (size / pageSize > this.frames.nrFrames) {
      this.log.warn('__vmalloc_node_range', `vmalloc error: size ${realSize}, exceeds total pages`);
      return null;
    }
    const vm = this.getVmAreaNode(
      size,
      align,
      VmFlags.VM_ALLOC | VmFlags.VM_UNINITIALIZED | vmFlags,
      start,
      end,
      caller,
      realSize,
    );
    if (vm === 0) {
      this.log.warn(
        '__vmalloc_node_range',
        `vmalloc error: size ${realSize}, vm_struct allocation failed`,
      );
      return null;
    }
    if (!this.allocAreaPages(vm, zero)) return null;
    // The area is complete: show it in vmallocinfo from now on.
    this.vms.setFlags(vm, this.vms.flags(vm) & ~VmFlags.VM_UNINITIALIZED);
    this.tlbInsert(vm);
    return this.vms.addr(vm);
  }

  /**
   * Reserves address space for a vm_struct: size + a guard page unless VM_NO_GUARD. Returns the
   * vm_struct id, or 0. Kernel: __get_vm_area_node().
   */
  private getVmAreaNode(
    size: number,
    align: number,
    flags: number,
    start: number,
    end: number,
    caller: number,
    requested: number,
  ): number {
    const vms = this.vms;
    if ((flags & VmFlags.VM_IOREMAP) !== 0) {
      // ioremap areas are aligned to their (power-of-two rounded) size, within limits.
      const order = Math.min(
        Math.max(Math.ceil(Math.log2(size)), Math.log2(this.pageSize)),
        7 + Math.log2(this.pageSize),
      );
      align = 2 ** order;
    }
    const vm = vms.allocZeroed();
    if (vm === 0) return 0;
    const total = (flags & VmFlags.VM_NO_GUARD) !== 0 ? size : size + this.pageSize;
    vms.setFlags(vm, flags);
    vms.setCaller(vm, caller);
    vms.setRequestedSize(vm, requested);
    const va = this.areas.alloc(this.cpu, total, align, start, end, 0);
    if (va === 0) {
      vms.free(vm);
      return 0;
    }
    const s = this.s;
    vms.setArea(vm, s.start(va), s.size(va));
    vms.setVa(vm, va);
    s.setVm(va, vm);
    return vm;
  }

  /**
   * The pages array and the pages of a VM_ALLOC area; on failure everything is released and
   * false returned. Kernel: __vmalloc_area_node().
   */
  private allocAreaPages(vm: number, zero: boolean): boolean {
    const vms = this.vms;
    const pageSize = this.pageSize;
    const nrPages = vms.areaSize(vm, pageSize) / pageSize;
    const arrayBytes = nrPages * 8;
    // The array of page pointers itself: kmalloc'd up to a page, vmalloc'd above (a second
    // area right after this one, shown as "vpages" in vmallocinfo).
    if (arrayBytes > pageSize) {
      const nested = this.vmallocNodeRange(
        arrayBytes,
        1,
        this.vmallocStart,
        this.vmallocEnd,
        false,
        0,
        vms.caller(vm),
      );
      if (nested === null) {
        this.log.warn(
          '__vmalloc_area_node',
          `vmalloc error: size ${vms.areaSize(vm, pageSize)}, failed to allocated page array size ${arrayBytes}`,
        );
        this.freeVmAreaUnused(vm);
        return false;
      }
      vms.setPagesVm(vm, this.vmOfAddress(nested));
    }
    const slot = this.pool.alloc(nrPages);
    if (slot < 0) invariantFailure('the page-array pool is exhausted');
    vms.setPages(vm, slot);
    const got = this.frames.allocBulk(nrPages, this.pool.view(slot), this.pool.offset(slot));
    vms.setNrPages(vm, got);
    if (got < nrPages) {
      this.log.warn(
        '__vmalloc_area_node',
        `vmalloc error: size ${nrPages * pageSize}, page order 0, failed to allocate pages`,
      );
      // As the kernel's vfree(area->addr): unlink from the busy tree, free what was got.
      const va = vms.va(vm);
      if (this.areas.findUnlink(this.cpu, this.s.start(va), true) !== va)
        invariantFailure(`area #${va} vanished from the busy tree`);
      this.releaseArea(va, vm, true);
      return false;
    }
    if (zero) {
      const slots = this.pool.view(slot);
      const at = this.pool.offset(slot);
      for (let k = 0; k < nrPages; k++) this.frames.zero(slots[at + k]!);
    }
    return true;
  }

  /** Undoes getVmAreaNode for an area that has no pages yet (its VA goes back at once). */
  private freeVmAreaUnused(vm: number): void {
    const va = this.vms.va(vm);
    const found = this.areas.findUnlink(this.cpu, this.s.start(va), false);
    if (found !== va) invariantFailure(`area #${va} vanished from the busy tree`);
    this.s.setVm(va, 0);
    this.vms.free(vm);
    this.areas.freeNow(this.cpu, va);
  }

  private vmOfAddress(addr: number): number {
    const va = this.areas.find(this.cpu, addr);
    return va === 0 ? 0 : this.s.vm(va);
  }

  // ---------------------------------------------------------------- free

  /**
   * Releases the area that starts at `addr`: its pages return at once, its address range
   * becomes lazily free (reusable after the next purge). 0, null and undefined are ignored.
   * Kernel: vfree().
   */
  vfree(addr: number | null | undefined): void {
    if (addr === 0 || addr === null || addr === undefined) return;
    const va = this.unlinkForFree('vfree', addr);
    const vm = this.vmOf(va);
    this.releaseArea(
      va,
      vm,
      (this.vms.flags(vm) & VmFlags.VM_MAP) === 0 ||
        (this.vms.flags(vm) & VmFlags.VM_MAP_PUT_PAGES) !== 0,
    );
    this.afterOp();
  }

  /**
   * Unmaps an area made by vmap(); the pages stay the caller's (unless VM_MAP_PUT_PAGES).
   * Kernel: vunmap().
   */
  vunmap(addr: number | null | undefined): void {
    if (addr === 0 || addr === null || addr === undefined) return;
    const va = this.unlinkForFree('vunmap', addr);
    const vm = this.vmOf(va);
    this.releaseArea(va, vm, (this.vms.flags(vm) & VmFlags.VM_MAP_PUT_PAGES) !== 0);
    this.afterOp();
  }

  /**
   * Checks `addr` and unlinks its area from the busy tree; throws with the kernel's wording
   * when it is not the start of a live vm area (nothing changes then).
   * Kernel: remove_vm_area() -> find_unlink_vmap_area().
   */
  private unlinkForFree(fn: 'vfree' | 'vunmap' | 'remove_vm_area', addr: number): number {
    if (typeof addr !== 'number' || !Number.isSafeInteger(addr)) checkInteger(fn, 'addr', addr);
    if (addr % this.pageSize !== 0) {
      throw new VmallocError('EINVAL', `Trying to vfree() bad address (${kernelHex(addr)})`);
    }
    const va = this.findUnlinkWithVm(addr);
    if (va > 0) return va;
    const shown = fn === 'vunmap' ? 'vunmap()' : 'vfree()';
    if (va === UNLINK_NONE) {
      throw new VmallocError(
        'ENOENT',
        `Trying to ${shown} nonexistent vm area (${kernelHex(addr)})`,
      );
    }
    const s = this.s;
    const at = `${kernelHex(s.start(this.lastFound))}-${kernelHex(s.end(this.lastFound))}`;
    if (va === UNLINK_INSIDE) {
      throw new VmallocError(
        'ENOENT',
        `Trying to ${shown} nonexistent vm area (${kernelHex(addr)}): it lies inside the vm area ${at}; pass its start`,
      );
    }
    throw new VmallocError(
      'ENOENT',
      `Trying to ${shown} nonexistent vm area (${kernelHex(addr)}): ${at} is a vm_map_ram area; use vm_unmap_ram()`,
    );
  }

  /** Unlinks the busy area starting at addr if it has a vm_struct; else an UNLINK_ code. */
  private findUnlinkWithVm(addr: number): number {
    const va = this.areas.findUnlink(this.cpu, addr, true);
    if (va >= 0) return va;
    // Found, but not usable: inside an area, or a vm_map_ram area (the kernel would unlink
    // and orphan it); nothing was changed.
    this.lastFound = -va;
    return this.s.start(-va) !== addr ? UNLINK_INSIDE : UNLINK_NO_VM;
  }

  /**
   * Frees an unlinked area's pages (when `freePages`), its pages array and vm_struct, and hands
   * its range to the lazy list. Kernel: the tail of vfree() + free_unmap_vmap_area().
   */
  private releaseArea(va: number, vm: number, freePages: boolean): void {
    this.tlbFlush(vm);
    const vms = this.vms;
    const nrPages = vms.nrPages(vm);
    if (nrPages > 0 || (vms.flags(vm) & (VmFlags.VM_ALLOC | VmFlags.VM_MAP)) !== 0) {
      const slot = vms.pages(vm);
      if (freePages && nrPages > 0) {
        const slots = this.pool.view(slot);
        const at = this.pool.offset(slot);
        for (let k = 0; k < nrPages; k++) this.frames.free(slots[at + k]!);
      }
      if (nrPages > 0 || slot !== 0) {
        this.pool.free(slot);
      }
    }
    const pagesVm = vms.pagesVm(vm);
    vms.free(vm);
    this.s.setVm(va, 0);
    this.areas.freeLazy(this.cpu, va);
    if (pagesVm !== 0) this.vfree(vms.addr(pagesVm));
  }

  // ---------------------------------------------------------------- vmap & friends

  /**
   * Maps the given page frames (from allocPages) into a new area: the address, or null.
   * Kernel: vmap().
   */
  vmap(pages: ArrayLike<number>, options?: VmapOptions): number | null {
    if (pages === null || typeof pages !== 'object' || typeof pages.length !== 'number') {
      throwEinval('vmap', 'pages must be an array of page frame numbers', pages);
    }
    let flags = options?.flags ?? 0;
    if (!Number.isInteger(flags) || flags < 0)
      throwEinval('vmap', 'flags must be VM_* bits', flags);
    if ((flags & VmFlags.VM_FLUSH_RESET_PERMS) !== 0)
      throwEinval('vmap', 'flags must not include VM_FLUSH_RESET_PERMS', flags);
    if ((flags & VmFlags.VM_NO_GUARD) !== 0) {
      this.log.always('vmap: VM_NO_GUARD is not allowed and was removed');
      flags &= ~VmFlags.VM_NO_GUARD;
    }
    const count = pages.length;
    if (count === 0) throwEinval('vmap', 'pages must not be empty', count);
    for (let k = 0; k < count; k++) {
      if (!this.frames.isInUse(pages[k]!))
        throwEinval('vmap', `pages[${k}] must be an allocated page frame`, pages[k]);
    }
    if (count > this.frames.nrFrames) return null;
    const caller = options?.caller === undefined ? 0 : this.callerId('vmap', options.caller);
    const vm = this.getVmAreaNode(
      count * this.pageSize,
      1,
      VmFlags.VM_MAP | flags,
      this.vmallocStart,
      this.vmallocEnd,
      caller,
      count * this.pageSize,
    );
    if (vm === 0) return null;
    const slot = this.pool.alloc(count);
    if (slot < 0) invariantFailure('the page-array pool is exhausted');
    const slots = this.pool.view(slot);
    const at = this.pool.offset(slot);
    for (let k = 0; k < count; k++) slots[at + k] = pages[k]!;
    this.vms.setPages(vm, slot);
    this.vms.setNrPages(vm, count);
    this.afterOp();
    return this.vms.addr(vm);
  }

  /**
   * Reserves an area of `size` bytes (plus guard page) with no pages: a snapshot of its
   * vm_struct, or null. Kernel: get_vm_area_caller().
   */
  getVmArea(
    size: number,
    flags = 0,
    options?: { caller?: string; physAddr?: number },
  ): VmArea | null {
    const bytes = this.checkByteSize('get_vm_area', size);
    if (!Number.isInteger(flags) || flags < 0)
      throwEinval('get_vm_area', 'flags must be VM_* bits', flags);
    const caller = options?.caller === undefined ? 0 : this.callerId('get_vm_area', options.caller);
    const vm = this.getVmAreaNode(
      Math.ceil(bytes / this.pageSize) * this.pageSize,
      1,
      flags,
      this.vmallocStart,
      this.vmallocEnd,
      caller,
      bytes,
    );
    if (vm === 0) return null;
    if (options?.physAddr !== undefined)
      this.vms.setPhysAddr(vm, checkInteger('get_vm_area', 'physAddr', options.physAddr));
    this.afterOp();
    return this.snapshot(vm);
  }

  /** The vm_struct of the live area containing `addr`, or null. Kernel: find_vm_area(). */
  findVmArea(addr: number): VmArea | null {
    checkInteger('find_vm_area', 'addr', addr);
    const va = this.areas.find(this.cpu, addr);
    const vm = this.vmOf(va);
    return vm === 0 ? null : this.snapshot(vm);
  }

  /**
   * Removes the area starting at `addr` without freeing its pages (the caller owns them): the
   * vm_struct it had, or null when no area starts there. Kernel: remove_vm_area().
   */
  removeVmArea(addr: number): VmArea | null {
    checkInteger('remove_vm_area', 'addr', addr);
    if (addr % this.pageSize !== 0) {
      this.log.always(`Trying to vfree() bad address (${kernelHex(addr)})`);
      return null;
    }
    const va = this.findUnlinkWithVm(addr);
    if (va <= 0) return null;
    const vm = this.vmOf(va);
    const snap = this.snapshot(vm);
    this.releaseArea(va, vm, false);
    this.afterOp();
    return snap;
  }

  /** The page frame mapped at `addr`, or null (no area, guard page, unmapped). Kernel: vmalloc_to_page(). */
  vmallocToPage(addr: number): number | null {
    checkInteger('vmalloc_to_page', 'addr', addr);
    const va = this.areas.find(this.cpu, addr);
    const vm = this.vmOf(va);
    if (vm === 0) return null;
    const index = Math.floor((addr - this.vms.addr(vm)) / this.pageSize);
    if (index >= this.vms.nrPages(vm)) return null;
    return this.pfnAt(vm, index);
  }

  /** Up to `n` page frames (fewer when memory runs out). Kernel: alloc_pages_bulk(). */
  allocPages(n: number): Int32Array {
    if (!Number.isSafeInteger(n) || n < 0)
      throwEinval('alloc_pages_bulk', 'n must be a non-negative integer', n);
    const out = new Int32Array(n);
    const got = this.frames.allocBulk(n, out, 0);
    return got === n ? out : out.slice(0, got);
  }

  /** Returns page frames from allocPages. Kernel: __free_page(). */
  freePages(pfns: ArrayLike<number>): void {
    for (let k = 0; k < pfns.length; k++) {
      if (!this.frames.isInUse(pfns[k]!))
        throwEinval('__free_page', `pfns[${k}] must be an allocated page frame`, pfns[k]);
    }
    for (let k = 0; k < pfns.length; k++) this.frames.free(pfns[k]!);
  }

  // ---------------------------------------------------------------- purge

  /** Returns every lazily freed range to the free tree now. Kernel: purge_vmap_area_lazy(). */
  purge(): void {
    this.areas.reclaimAndPurge(this.cpu);
    this.afterOp();
  }

  /**
   * Registers a function called when an allocation fails even after a purge; it should free
   * what it can and return how much it freed (> 0 makes the allocation retry).
   * Kernel: register_vmap_purge_notifier().
   */
  registerPurgeNotifier(fn: PurgeNotifier): void {
    if (typeof fn !== 'function')
      throwEinval('register_vmap_purge_notifier', 'fn must be a function', fn);
    this.areas.registerNotifier(fn);
  }

  unregisterPurgeNotifier(fn: PurgeNotifier): boolean {
    return this.areas.unregisterNotifier(fn);
  }

  /** vmap_lazy_nr: pages (guard pages included) freed lazily and not yet purged. */
  get lazyPages(): number {
    return this.areas.lazyPages;
  }

  /** lazy_max_pages() */
  get lazyMaxPages(): number {
    return this.config.lazyMaxPages;
  }

  // ---------------------------------------------------------------- locks and workers

  /** Per-lock statistics (lock_stat), each under its lock class name. */
  lockStats(): LockStat[] {
    return this.allLocks.map((l) => this.lockTable.stat(l.index, l.name));
  }

  /** /proc/lock_stat in the kernel's layout, classes by contentions. */
  lockStat(): string {
    return formatLockStat(this.lockStats());
  }

  /** Turns lock statistics on or off, for every worker. Off, a lock costs one extra load. */
  setLockStat(on: boolean): void {
    this.lockTable.setStats(on === true);
  }

  /** Zeroes the lock statistics. */
  resetLockStat(): void {
    this.lockTable.resetStats();
  }

  /**
   * Declares that the worker using `cpu` has died (call it from its 'exit' handler): a worker
   * waiting for a lock that cpu held gives up at once with EOWNERDEAD instead of waiting for
   * the timeout. The state that lock protected may be inconsistent afterwards.
   */
  markCpuDead(cpu: number): void {
    checkCpu('markCpuDead', cpu, this.config.nrCpus);
    this.lockTable.markCpuDead(cpu);
  }

  /**
   * Declares `cpu` alive again (the CPU is back online), for a new worker that takes the id
   * of one that exited cleanly. Do not use it for a worker that died holding a lock: that
   * lock stays taken, and waiters would then wait for the timeout instead of failing at once.
   */
  markCpuAlive(cpu: number): void {
    checkCpu('markCpuAlive', cpu, this.config.nrCpus);
    this.lockTable.markCpuAlive(cpu);
  }

  /**
   * Watches a worker (anything with on('exit', fn), such as a Node Worker) that uses `cpu`,
   * and marks the cpu dead when it exits.
   */
  watchWorker(worker: { on(event: 'exit', fn: () => void): unknown }, cpu: number): void {
    checkCpu('watchWorker', cpu, this.config.nrCpus);
    worker.on('exit', () => this.markCpuDead(cpu));
  }

  // ---------------------------------------------------------------- vmap nodes

  /** The nodes design's structures (null in the global design). */
  get nodes(): NodeVmapAreas | null {
    return this.areas instanceof NodeVmapAreas ? this.areas : null;
  }

  /**
   * The nodes design, node by node: busy areas (placed by address), lazy areas (placed by the
   * allocating CPU's node), pool lengths by size. Empty for the global design.
   */
  vmapNodes(): VmapNodeInfo[] {
    const nodes = this.nodes;
    if (nodes === null) return [];
    this.refreshAll();
    return nodes.describe(this.cpu);
  }

  /** The vmap node whose zone holds `addr` (addr_to_node_id()); 0 in the global design. */
  addrToNodeId(addr: number): number {
    checkInteger('addrToNodeId', 'addr', addr);
    const nodes = this.nodes;
    return nodes === null ? 0 : nodes.addrToNodeId(addr);
  }

  /**
   * The "vmap-node" shrinker: count() is the number of areas held in node pools, scan()
   * releases them all to the free tree and returns how many it released.
   */
  get shrinker(): { count(): number; scan(): number } {
    const nodes = this.nodes;
    return {
      count: () => (nodes === null ? 0 : nodes.shrinkCount()),
      scan: () => {
        const n = nodes === null ? 0 : nodes.shrinkScan(this.cpu);
        this.afterOp();
        return n;
      },
    };
  }

  // ---------------------------------------------------------------- memory

  /** Copies `length` bytes starting at `addr` out of a live area's pages. */
  read(addr: number, length: number): Uint8Array {
    checkInteger('read', 'length', length);
    if (length < 0) throwEinval('read', 'length must not be negative', length);
    const out = new Uint8Array(length);
    this.copy('read', addr, out, true);
    return out;
  }

  /** Copies bytes out of a live area's pages into `target`. */
  readInto(addr: number, target: Uint8Array): void {
    this.copy('read', addr, target, true);
  }

  /** Copies `bytes` into a live area's pages starting at `addr`. */
  write(addr: number, bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array)) throwEinval('write', 'bytes must be a Uint8Array', bytes);
    this.copy('write', addr, bytes, false);
  }

  /** One byte. */
  readU8(addr: number): number {
    const at = this.physOffset('read', addr, 1);
    return this.frames.bytes()[at]!;
  }

  /** One byte, as `*(u8 *)addr = value`. */
  writeU8(addr: number, value: number): void {
    const at = this.physOffset('write', addr, 1);
    this.frames.bytes()[at] = value;
  }

  /** A pointer (8 bytes, the kernel address of `value`, 0 for null), little-endian. */
  writePtr(addr: number, value: number): void {
    const lo = value === 0 ? 0 : value % 2 ** 32;
    const hi = value === 0 ? 0 : 0xffff0000 + Math.floor(value / 2 ** 32);
    const at = this.physOffset('write', addr, 8);
    const dv = this.frames.dataView();
    dv.setUint32(at, lo, true);
    dv.setUint32(at + 4, hi, true);
  }

  /** A pointer stored by writePtr: the library address, 0 for null. */
  readPtr(addr: number): number {
    const at = this.physOffset('read', addr, 8);
    const dv = this.frames.dataView();
    const lo = dv.getUint32(at, true);
    const hi = dv.getUint32(at + 4, true);
    return hi === 0 && lo === 0 ? 0 : (hi - 0xffff0000) * 2 ** 32 + lo;
  }

  /**
   * The offset in the frames of [addr, addr + n), which must lie in one page of a live area.
   * Throws EFAULT otherwise.
   */
  private physOffset(op: string, addr: number, n: number): number {
    if (typeof addr !== 'number' || !Number.isSafeInteger(addr)) checkInteger(op, 'addr', addr);
    const vm = this.mappedVm(op, addr, n);
    const off = addr - this.vms.addr(vm);
    const pageSize = this.pageSize;
    const index = Math.floor(off / pageSize);
    const inPage = off - index * pageSize;
    if (inPage + n > pageSize) return this.slowOffset(op, addr, n);
    this.frames.refresh();
    return this.pfnAt(vm, index) * pageSize + inPage;
  }

  private slowOffset(op: string, addr: number, n: number): never {
    throw new VmallocError(
      'EFAULT',
      `Cannot ${op} ${n} bytes at ${kernelHex(addr)}: they cross a page boundary (use read/write)`,
    );
  }

  /**
   * The vm_struct whose mapped pages hold [addr, addr + n); throws EFAULT when none does.
   *
   * A two-entry translation cache (this worker's "TLB") answers for the areas used last, so
   * a store right after a vmalloc costs no tree walk and no lock, as a kernel store goes
   * through the page tables and takes no vmalloc lock. This worker's own frees invalidate it,
   * and every purge (the only way a freed range is handed out again) bumps a shared
   * generation that empties every worker's cache, as flush_tlb_kernel_range() reaches every
   * CPU. As in the kernel, touching an area after it was freed is a use-after-free the
   * caller must avoid.
   */
  private mappedVm(op: string, addr: number, n: number): number {
    const gen = this.areas.tlbGeneration;
    if (gen !== this.tlbGen) {
      this.tlb.set(EMPTY_TLB);
      this.tlbVm.fill(0);
      this.tlbGen = gen;
    }
    const t = this.tlb;
    if (addr >= t[0]! && addr + n <= t[1]!) return this.tlbVm[0]!;
    if (addr >= t[2]! && addr + n <= t[3]!) return this.tlbVm[1]!;
    const vm = this.lookupMappedVm(op, addr, n);
    this.tlbInsert(vm);
    return vm;
  }

  /** Caches area `vm`'s mapped range as the most recent translation. */
  private tlbInsert(vm: number): void {
    const t = this.tlb;
    t[2] = t[0]!;
    t[3] = t[1]!;
    this.tlbVm[1] = this.tlbVm[0]!;
    const start = this.vms.addr(vm);
    t[0] = start;
    t[1] = start + this.vms.nrPages(vm) * this.pageSize;
    this.tlbVm[0] = vm;
  }

  /** Forgets any translation of area `vm` (it is being freed). */
  private tlbFlush(vm: number): void {
    for (let k = 0; k < 2; k++) {
      if (this.tlbVm[k] === vm) {
        this.tlb[2 * k] = 1;
        this.tlb[2 * k + 1] = 0;
        this.tlbVm[k] = 0;
      }
    }
  }

  private lookupMappedVm(op: string, addr: number, n: number): number {
    const va = this.areas.find(this.cpu, addr);
    const vm = this.vmOf(va);
    if (vm === 0) {
      throw new VmallocError(
        'EFAULT',
        va === 0
          ? `Cannot ${op} ${kernelHex(addr)}: no live vm area contains it`
          : `Cannot ${op} ${kernelHex(addr)}: it lies in a vm_map_ram area (not accessible here)`,
      );
    }
    const vms = this.vms;
    const start = vms.addr(vm);
    const mapped = vms.nrPages(vm) * this.pageSize;
    if (addr + n > start + mapped) {
      const guard = addr >= start + vms.areaSize(vm, this.pageSize);
      throw new VmallocError(
        'EFAULT',
        `Cannot ${op} ${n} bytes at ${kernelHex(addr)}: ${
          guard
            ? 'that is the guard page'
            : addr < start + mapped
              ? 'the range runs past the mapped pages'
              : 'no page is mapped there'
        } of the vm area ${kernelHex(start)}-${kernelHex(start + vms.size(vm))}`,
      );
    }
    return vm;
  }

  private copy(op: string, addr: number, buf: Uint8Array, out: boolean): void {
    if (typeof addr !== 'number' || !Number.isSafeInteger(addr)) checkInteger(op, 'addr', addr);
    if (buf.length === 0) return;
    const vm = this.mappedVm(op, addr, buf.length);
    const pageSize = this.pageSize;
    const slots = this.pool.view(this.vms.pages(vm));
    const first = this.pool.offset(this.vms.pages(vm));
    this.frames.refresh();
    const mem = this.frames.bytes();
    let off = addr - this.vms.addr(vm);
    let done = 0;
    while (done < buf.length) {
      const index = Math.floor(off / pageSize);
      const inPage = off - index * pageSize;
      const n = Math.min(pageSize - inPage, buf.length - done);
      const at = slots[first + index]! * pageSize + inPage;
      if (out) buf.set(mem.subarray(at, at + n), done);
      else mem.set(buf.subarray(done, done + n), at);
      done += n;
      off += n;
    }
  }

  // ---------------------------------------------------------------- introspection

  /** /proc/vmallocinfo. Kernel: vmalloc_info_show(). */
  vmallocinfo(): string {
    return formatVmallocinfo(this.infoSource());
  }

  /** @internal Data for vmallocinfo and the report. */
  infoSource(): VmallocinfoSource {
    this.refreshAll();
    const s = this.s;
    const vms = this.vms;
    return {
      design: this.config.design,
      pageSize: this.pageSize,
      numaInfo: this.config.numaInfo,
      busy: this.areas.busyIds().map((va) => {
        const vm = s.vm(va);
        return {
          start: s.start(va),
          end: s.end(va),
          vaFlags: s.flags(va),
          vm:
            vm === 0
              ? null
              : {
                  addr: vms.addr(vm),
                  size: vms.size(vm),
                  flags: vms.flags(vm),
                  nrPages: vms.nrPages(vm),
                  caller: this.strings.text(vms.caller(vm)),
                  physAddr: vms.physAddr(vm),
                  pagesInVmalloc: vms.pagesVm(vm) !== 0,
                },
        };
      }),
      lazy: this.areas.lazyIds().map((va) => ({ start: s.start(va), end: s.end(va) })),
      purgeInfoAlways: this.config.design === 'nodes',
    };
  }

  stats(): VmallocStats {
    const all = new Float64Array(this.handle.stat);
    const st = new Float64Array(VA_STAT_WORDS);
    for (let k = 0; k < all.length; k++) st[k % VA_STAT_WORDS] = st[k % VA_STAT_WORDS]! + all[k]!;
    return {
      design: this.config.design,
      nrCpus: this.config.nrCpus,
      pageSize: this.pageSize,
      busyAreas: this.areas.busyCount,
      freeBlocks: this.areas.freeCount,
      lazyAreas: this.areas.lazyCount,
      lazyPages: this.areas.lazyPages,
      lazyMaxPages: this.config.lazyMaxPages,
      purges: st[VaStat.PURGES]!,
      purgedAreas: st[VaStat.PURGED_AREAS]!,
      purgeHelpers: st[VaStat.PURGE_HELPERS]!,
      tlbFlushes: st[VaStat.TLB_FLUSHES]!,
      allocFailures: st[VaStat.ALLOC_FAILURES]!,
      allocRetries: st[VaStat.ALLOC_RETRIES]!,
      poolHits: st[VaStat.POOL_HITS]!,
      poolMisses: st[VaStat.POOL_MISSES]!,
      poolRefills: st[VaStat.POOL_REFILLS]!,
      pooledAreas: this.nodes?.shrinkCount() ?? 0,
      decayed: st[VaStat.DECAYED]!,
      pagesTotal: this.frames.nrFrames,
      pagesUsed: this.frames.used,
      vmStructs: this.vms.live,
      vmapAreaRecords: this.s.live,
    };
  }

  /**
   * Verifies every invariant of the subsystem: the trees (red-black rules, augmentation,
   * lists), free + busy + lazy tiling the managed space, vmap_lazy_nr, every vm_struct against
   * its area, every page owned once, the page allocator, the page-array pool, record
   * accounting. Throws VmallocError EINVARIANT naming the first violation.
   */
  check(): void {
    this.refreshAll();
    const s = this.s;
    const vms = this.vms;
    const cfg = this.config;
    const { free, busy, lazy, pooled, own } = this.areas.checkTrees(cfg.spaceStart, cfg.spaceEnd);
    checkTiling(s, [free, busy, lazy, pooled], cfg.spaceStart, cfg.spaceEnd, 'address space');
    checkStore(s, [...own, ...free, ...busy, ...lazy, ...pooled], 'vmap_area records');
    const owner = new Map<number, number>();
    const liveVms: number[] = [];
    const poolRanges = new Map(this.pool.ranges().map((r) => [r.start, r.end - r.start]));
    for (const va of busy) {
      const vm = s.vm(va);
      if (vm === 0) continue;
      liveVms.push(vm);
      const where = `vm_struct #${vm} of area ${kernelHex(s.start(va))}`;
      if (vms.va(vm) !== va) invariantFailure(`${where} points to area #${vms.va(vm)}`);
      if (vms.addr(vm) !== s.start(va) || vms.size(vm) !== s.size(va))
        invariantFailure(
          `${where}: addr/size ${vms.addr(vm)}/${vms.size(vm)} differ from the area's`,
        );
      const flags = vms.flags(vm);
      if ((flags & VmFlags.VM_UNINITIALIZED) !== 0)
        invariantFailure(`${where} is still VM_UNINITIALIZED`);
      const nrPages = vms.nrPages(vm);
      if (
        (flags & VmFlags.VM_ALLOC) !== 0 &&
        nrPages !== vms.areaSize(vm, this.pageSize) / this.pageSize
      ) {
        invariantFailure(
          `${where} has ${nrPages} pages for ${vms.areaSize(vm, this.pageSize)} bytes`,
        );
      }
      if (nrPages > 0) {
        const slot = vms.pages(vm);
        const slots = this.pool.view(slot);
        const at = this.pool.offset(slot);
        if (poolRanges.get(slot) !== nrPages)
          invariantFailure(
            `${where}: its pages array (slot ${slot}) is not a live pool range of ${nrPages}`,
          );
        for (let k = 0; k < nrPages; k++) {
          const pfn = slots[at + k]!;
          if (!this.frames.isInUse(pfn))
            invariantFailure(`${where} maps pfn ${pfn}, which is not allocated`);
          if ((flags & VmFlags.VM_ALLOC) !== 0) {
            if (owner.has(pfn))
              invariantFailure(
                `pfn ${pfn} belongs to two vmalloc areas (#${owner.get(pfn)} and #${vm})`,
              );
            owner.set(pfn, vm);
          }
        }
      }
    }
    checkVmStore(vms, liveVms);
    const problems = this.frames.checkProblems();
    if (problems.length > 0) invariantFailure(`page allocator: ${problems[0]}`);
    this.pool.check();
  }

  // ---------------------------------------------------------------- helpers

  /**
   * Brings every view of this thread up to date with growth done by other workers, before
   * reading records outside the locks' discipline (checks, reports).
   */
  private refreshAll(): void {
    this.s.refreshViews();
    this.vms.refreshViews();
    this.frames.refresh();
  }

  /** The frame of page `index` of area `vm`. */
  private pfnAt(vm: number, index: number): number {
    const slot = this.vms.pages(vm);
    return this.pool.view(slot)[this.pool.offset(slot) + index]!;
  }

  /** The vm_struct of busy area `va` (0: none), with this thread's vm_struct views current. */
  private vmOf(va: number): number {
    const vm = va === 0 ? 0 : this.s.vm(va);
    if (vm !== 0) this.vms.refreshViews();
    return vm;
  }

  /** The checked mode: check() after every (or every n-th) operation that changes state. */
  private afterOp(): void {
    const every = this.config.checkEveryOp;
    if (every !== 0 && ++this.opsSinceCheck >= every) {
      this.opsSinceCheck = 0;
      this.check();
    }
  }

  private snapshot(vm: number): VmArea {
    const vms = this.vms;
    const n = vms.nrPages(vm);
    const pages: number[] = [];
    for (let k = 0; k < n; k++) pages.push(this.pfnAt(vm, k));
    return {
      addr: vms.addr(vm),
      size: vms.size(vm),
      flags: vms.flags(vm),
      nrPages: n,
      caller: this.strings.text(vms.caller(vm)),
      physAddr: vms.physAddr(vm),
      pages,
    };
  }

  private checkByteSize(fn: string, size: unknown): number {
    if (typeof size === 'number' && size > 0 && size <= 2 ** 48 && Number.isInteger(size))
      return size;
    const n = checkInteger(fn, 'size', size);
    if (n <= 0) throwEinval(fn, 'size must be positive', n);
    throwEinval(fn, 'size must not exceed the address space (2^48)', n);
  }

  private checkAlign(fn: string, align: unknown): number {
    if (
      typeof align === 'number' &&
      align >= 1 &&
      align <= 0x40000000 &&
      (align & (align - 1)) === 0 &&
      (align | 0) === align
    )
      return align;
    if (typeof align !== 'number' || !isPowerOfTwo(align))
      throwEinval(fn, 'align must be a power of two >= 1', align);
    return align;
  }

  private callerId(fn: string, caller: unknown): number {
    if (typeof caller !== 'string') throwEinval(fn, 'caller must be a string', caller);
    return this.strings.intern(caller);
  }
}

function throwEinval(fn: string, rule: string, value: unknown): never {
  const shown =
    typeof value === 'string'
      ? JSON.stringify(value)
      : typeof value === 'object' && value !== null
        ? 'an object'
        : String(value);
  throw new VmallocError('EINVAL', `Cannot ${fn}: ${rule}, got ${shown}`);
}

function checkVmStore(vms: VmStore, live: number[]): void {
  const hwm = vms.highWater;
  const mark = new Uint8Array(hwm);
  for (const vm of live) mark[vm] = 1;
  for (const vm of vms.freeIdList()) {
    if (mark[vm] !== 0) invariantFailure(`vm_struct #${vm} is both live and free`);
    mark[vm] = 2;
  }
  for (let vm = 1; vm < hwm; vm++) {
    if (mark[vm] === 0)
      invariantFailure(`vm_struct #${vm} is neither attached to an area nor free (a leak)`);
  }
}

/** Creates a vmalloc subsystem. See VmallocOptions for the defaults. */
export function createVmalloc(options: VmallocOptions = {}): Vmalloc {
  const config = resolveConfig(options);
  const logger = options.logger === undefined ? consoleLogger : options.logger;
  return Vmalloc.create(config, logger);
}

export interface AttachOptions {
  /** This worker's cpu id: from 0 to nrCpus - 1, one worker per id. */
  cpu: number;
  /** Where this worker's warnings go. @defaultValue console */
  logger?: VmallocLogger | null;
}

/**
 * The same vmalloc subsystem in another worker: `handle` is `vm.handle` of the instance that
 * created it (sent with postMessage). Every operation works from any worker, on the same
 * areas and memory. Each worker must use its own cpu id (a worker is a CPU: per-CPU caches
 * and page lists are used without locks).
 */
export function attachVmalloc(handle: VmallocHandle, options: AttachOptions): Vmalloc {
  if (handle === null || typeof handle !== 'object' || handle.kind !== 'Vmalloc') {
    throw new VmallocError(
      'EINVAL',
      'Cannot attach vmalloc: handle must be the handle of a Vmalloc (vm.handle)',
    );
  }
  if (!handle.config.shared) {
    throw new VmallocError(
      'EINVAL',
      'Cannot attach vmalloc: it was created with shared: false, so it cannot be shared between workers',
    );
  }
  const cpu = options?.cpu;
  checkCpu('attach vmalloc', cpu, handle.config.nrCpus);
  return new Vmalloc(handle, cpu, options.logger === undefined ? consoleLogger : options.logger);
}
