/**
 * The public face of the vmalloc subsystem: Vmalloc, createVmalloc(), attachVmalloc().
 *
 * Holds: the Vmalloc class, whose methods check their arguments and delegate to the modules
 * named after the kernel's concepts (src/mm/: alloc-path, free-path, vmap, access, statistics,
 * proc, checker; src/designs/: the vmap-area core and the designs).
 * Invariant: a method either completes or throws before changing anything (misuse), and in
 * the checked mode every state-changing method ends with check().
 * Callers: library users, the test_vmalloc driver, the CLI.
 *
 * Kernel: the exported functions of mm/vmalloc.c. Each Vmalloc is one thread's view (one
 * cpu) of state that lives entirely in shared buffers.
 */

import { VmallocError, checkInteger } from '../errors.js';
import {
  type AttachOptions,
  type CreateVmallocOptions,
  attachContext,
  createContext,
} from './create.js';
import { detachedPrototype } from './detached.js';
import { NodesDesign, type VmapNodeInfo } from '../designs/nodes.js';
import type { PurgeNotifier, VmapAreas } from '../designs/vmap-areas.js';
import { formatLockStat } from '../shared/lock-stat.js';
import type { LockStat } from '../shared/lock.js';
import { copy, physOffset, readBytes, vmallocToPage } from '../mm/access.js';
import { vmallocNodeRange } from '../mm/alloc-path.js';
import {
  checkAddr,
  checkAlign,
  checkByteSize,
  checkCpu,
  callerId,
  defaultCaller,
  throwEinval,
} from '../mm/args.js';
import { checkAll } from '../mm/checker.js';
import type { VmallocConfig } from '../mm/config.js';
import { workerToken } from '../mm/cpu-claims.js';
import { freesPagesOnVfree, releaseArea, unlinkForFree } from '../mm/free-path.js';
import { infoSource, lockStats } from '../mm/proc.js';
import type { VmContext, VmallocHandle } from '../mm/shared-state.js';
import { collectStats, type VmallocStats } from '../mm/statistics.js';
import { VmFlags } from '../mm/vm-struct.js';
import { type VmallocinfoSource, formatVmallocinfo } from '../mm/vmallocinfo.js';
import {
  type VmArea,
  type VmapOptions,
  allocPages,
  findVm,
  freePages,
  getVmArea,
  removeVmArea,
  snapshot,
  vmap,
} from '../mm/vmap.js';

export interface VmallocAllocOptions {
  /** Power of two the address must be a multiple of. @defaultValue 1 */
  align?: number;
  /** Zero the pages (vzalloc, __GFP_ZERO). @defaultValue false */
  zero?: boolean;
  /**
   * Shown in vmallocinfo, like the kernel's %pS of the return address.
   * @defaultValue the API function, as "vmalloc+0x0/0x0"
   */
  caller?: string;
}

export class Vmalloc {
  readonly config: VmallocConfig;
  /** This thread's cpu id. */
  readonly cpu: number;
  readonly pageSize: number;
  /** VMALLOC_START and VMALLOC_END. */
  readonly vmallocStart: number;
  readonly vmallocEnd: number;
  /** Structured-cloneable: pass it to a worker and attachVmalloc() it there. */
  readonly handle: VmallocHandle;
  private readonly ctx: VmContext;

  /** @internal Use createVmalloc() or attachVmalloc(). */
  constructor(ctx: VmContext) {
    this.ctx = ctx;
    this.handle = ctx.handle;
    this.config = ctx.config;
    this.cpu = ctx.cpu;
    this.pageSize = ctx.pageSize;
    this.vmallocStart = ctx.config.vmallocStart;
    this.vmallocEnd = ctx.config.vmallocEnd;
  }

  // ---------------------------------------------------------------- allocation

  /**
   * Allocates `size` bytes (rounded up to pages, plus a guard page of address space) of
   * virtually contiguous memory in the vmalloc window: the address, or null when address
   * space, page frames or page arrays run out (a warning with the kernel's text is logged).
   * Kernel: vmalloc() / __vmalloc_node().
   */
  vmalloc(size: number, options?: VmallocAllocOptions): number | null {
    return this.allocate('vmalloc', size, options, false, 0);
  }

  /** vmalloc() with zeroed pages. Kernel: vzalloc(). */
  vzalloc(size: number, options?: Omit<VmallocAllocOptions, 'zero'>): number | null {
    return this.allocate('vzalloc', size, options, true, 0);
  }

  /**
   * vmalloc() allowing huge mappings: a request of at least a PMD (pageSize / 8 pages) is
   * aligned to a PMD and rounded up to one; if that fails, a normal vmalloc is made.
   * Kernel: vmalloc_huge(). Differs from kernel: the pages are still single frames.
   */
  vmallocHuge(size: number, options?: VmallocAllocOptions): number | null {
    return this.allocate('vmalloc_huge', size, options, false, VmFlags.VM_ALLOW_HUGE_VMAP);
  }

  private allocate(
    fn: string,
    size: number,
    options: VmallocAllocOptions | undefined,
    zeroed: boolean,
    vmFlags: number,
  ): number | null {
    const ctx = this.ctx;
    const bytes = checkByteSize(fn, size);
    let align = 1;
    let zero = zeroed;
    let caller = 0;
    if (options !== undefined) {
      if (options === null || typeof options !== 'object' || Array.isArray(options))
        throwEinval(fn, 'options must be an object', options);
      if (options.align !== undefined) align = checkAlign(fn, options.align);
      if (options.zero !== undefined && typeof options.zero !== 'boolean')
        throwEinval(fn, 'zero must be a boolean', options.zero);
      zero ||= options.zero === true;
      if (options.caller !== undefined) caller = callerId(ctx, fn, options.caller);
    }
    if (caller === 0) caller = defaultCaller(ctx, fn);
    const start = this.vmallocStart;
    const end = this.vmallocEnd;
    let addr: number | null;
    const pmd = this.pageSize * (this.pageSize / 8);
    if (vmFlags !== 0 && bytes >= pmd) {
      const huge = Math.ceil(bytes / pmd) * pmd;
      addr = vmallocNodeRange(ctx, huge, Math.max(align, pmd), start, end, zero, vmFlags, caller);
      addr ??= vmallocNodeRange(ctx, bytes, align, start, end, zero, vmFlags, caller);
    } else {
      addr = vmallocNodeRange(ctx, bytes, align, start, end, zero, 0, caller);
    }
    this.afterOp();
    return addr;
  }

  // ---------------------------------------------------------------- free

  /**
   * Releases the area that starts at `addr`: its pages return at once, its address range
   * becomes lazily free (reusable after the next purge). 0, null and undefined are ignored.
   * @throws VmallocError ENOENT when `addr` is not the start of a live vm area; EINVAL for
   * an address that is not page-aligned.
   * Kernel: vfree().
   */
  vfree(addr: number | null | undefined): void {
    if (addr === 0 || addr === null || addr === undefined) return;
    const ctx = this.ctx;
    const va = unlinkForFree(ctx, 'vfree', addr);
    const vm = ctx.vmOf(va);
    releaseArea(ctx, va, vm, freesPagesOnVfree(ctx, vm));
    this.afterOp();
  }

  /**
   * Unmaps an area made by vmap(); the pages stay the caller's (unless VM_MAP_PUT_PAGES).
   * @throws VmallocError EINVAL for a vmalloc area (vfree() frees it and its pages).
   * Kernel: vunmap().
   */
  vunmap(addr: number | null | undefined): void {
    if (addr === 0 || addr === null || addr === undefined) return;
    const ctx = this.ctx;
    const va = unlinkForFree(ctx, 'vunmap', addr);
    const vm = ctx.vmOf(va);
    releaseArea(ctx, va, vm, (ctx.vms.flags(vm) & VmFlags.VM_MAP_PUT_PAGES) !== 0);
    this.afterOp();
  }

  // ---------------------------------------------------------------- vmap & friends

  /**
   * Maps the given page frames (from allocPages) into a new area: the address, or null. The
   * frames stay the caller's (a frame may be mapped by several areas) unless
   * VM_MAP_PUT_PAGES hands them to the area, whose vfree() then frees them.
   * @throws VmallocError EINVAL for a number that is no allocated frame (or a frame listed
   * twice with VM_MAP_PUT_PAGES); EBUSY for a vmalloc area's page, or, with VM_MAP_PUT_PAGES,
   * a frame another area maps.
   * Kernel: vmap().
   */
  vmap(pages: ArrayLike<number>, options?: VmapOptions): number | null {
    const addr = vmap(this.ctx, pages, options);
    this.afterOp();
    return addr;
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
    const bytes = checkByteSize('get_vm_area', size);
    const vm = getVmArea(this.ctx, bytes, flags, options);
    this.afterOp();
    return vm === 0 ? null : snapshot(this.ctx, vm);
  }

  /** The vm_struct of the live area containing `addr`, or null. Kernel: find_vm_area(). */
  findVmArea(addr: number): VmArea | null {
    const vm = findVm(this.ctx, checkAddr('find_vm_area', addr));
    return vm === 0 ? null : snapshot(this.ctx, vm);
  }

  /**
   * Removes the area starting at `addr` without freeing its pages: the vm_struct it had (its
   * `pages` are now the caller's, to freePages()), or null when no area starts there.
   * Kernel: remove_vm_area().
   */
  removeVmArea(addr: number): VmArea | null {
    const snap = removeVmArea(this.ctx, checkAddr('remove_vm_area', addr));
    this.afterOp();
    return snap;
  }

  /**
   * The page frame mapped at `addr`, or null (no area, guard page, unmapped): a walk of the
   * page table. Kernel: vmalloc_to_page().
   */
  vmallocToPage(addr: number): number | null {
    return vmallocToPage(this.ctx, checkAddr('vmalloc_to_page', addr));
  }

  /**
   * Up to `n` page frames (fewer when memory runs out), the caller's until freePages().
   * @throws VmallocError EINVAL when `n` exceeds the frames of physical memory.
   * Kernel: alloc_pages_bulk().
   */
  allocPages(n: number): Int32Array {
    const out = allocPages(this.ctx, n);
    this.afterOp();
    return out;
  }

  /**
   * Returns page frames from allocPages (and those remove_vm_area handed back). The whole
   * list is checked first: nothing is freed unless every frame can be.
   * @throws VmallocError EINVAL for a number that is no allocated frame or a frame listed
   * twice; EBUSY for a frame a vmap area still maps, or an area's own page.
   * Kernel: __free_page().
   */
  freePages(pfns: ArrayLike<number>): void {
    freePages(this.ctx, pfns);
    this.afterOp();
  }

  // ---------------------------------------------------------------- purge

  /** Returns every lazily freed range to free space now. Kernel: purge_vmap_area_lazy(). */
  purge(): void {
    this.ctx.areas.reclaimAndPurge(this.cpu);
    this.afterOp();
  }

  /**
   * Registers a function called when an allocation fails even after a purge; it should free
   * what it can and return how much it freed (> 0 makes the allocation retry). It runs in the
   * middle of the allocation, so an exception it throws is dropped (it counts as 0 freed).
   * Kernel: register_vmap_purge_notifier().
   */
  registerPurgeNotifier(fn: PurgeNotifier): void {
    if (typeof fn !== 'function')
      throwEinval('register_vmap_purge_notifier', 'fn must be a function', fn);
    // As the kernel's notifier chains refuse a block registered twice (-EEXIST).
    if (!this.ctx.addNotifier(fn))
      throw new VmallocError(
        'EINVAL',
        'Cannot register_vmap_purge_notifier: fn is registered already (unregister it first)',
      );
  }

  /**
   * Unregisters a function registerPurgeNotifier() registered: false when it was not.
   * @throws VmallocError EINVAL when `fn` is not a function.
   * Kernel: unregister_vmap_purge_notifier().
   */
  unregisterPurgeNotifier(fn: PurgeNotifier): boolean {
    if (typeof fn !== 'function')
      throwEinval('unregister_vmap_purge_notifier', 'fn must be a function', fn);
    return this.ctx.removeNotifier(fn);
  }

  /** vmap_lazy_nr: pages (guard pages included) freed lazily and not yet purged. */
  get lazyPages(): number {
    return this.ctx.areas.lazyPages;
  }

  /** lazy_max_pages() */
  get lazyMaxPages(): number {
    return this.config.lazyMaxPages;
  }

  // ---------------------------------------------------------------- locks and workers

  /** Per-lock statistics (lock_stat), each under its lock class name. */
  lockStats(): LockStat[] {
    return lockStats(this.ctx);
  }

  /** /proc/lock_stat in the kernel's layout, classes by contentions. */
  lockStat(): string {
    return formatLockStat(this.lockStats());
  }

  /** Turns lock statistics on or off, for every worker. Off, a lock costs one extra load. */
  setLockStat(on: boolean): void {
    if (typeof on !== 'boolean') throwEinval('setLockStat', 'on must be a boolean', on);
    this.ctx.lockTable.setStats(on);
  }

  /** Zeroes the lock statistics. */
  resetLockStat(): void {
    this.ctx.lockTable.resetStats();
  }

  /**
   * Declares that the worker using `cpu` has died (call it from its 'exit' handler, or let
   * watchWorker do it): a worker waiting for a lock that cpu held gives up at once with
   * EOWNERDEAD instead of waiting for the timeout, and the id is free for a new worker to
   * attach with. The state that lock protected may be inconsistent afterwards. Works on a
   * detached instance too (a supervising thread).
   * @throws VmallocError EINVAL when `cpu` is attached in this thread (it is alive: detach
   * it instead).
   */
  markCpuDead(cpu: number): void {
    checkCpu('markCpuDead', cpu, this.config.nrCpus);
    this.ctx.claims.markDead('markCpuDead', cpu);
  }

  /**
   * Declares `cpu` alive again (the CPU is back online). attachVmalloc() does this itself
   * when it takes the id of a dead worker, so this is rarely needed. Do not use it for a
   * worker that died holding a lock: that lock stays taken, and waiters would then wait for
   * the timeout instead of failing at once. It does not claim the id.
   */
  markCpuAlive(cpu: number): void {
    checkCpu('markCpuAlive', cpu, this.config.nrCpus);
    this.ctx.lockTable.markCpuAlive(cpu);
  }

  /**
   * Watches a worker (anything with on('exit', fn), such as a Node Worker) that uses `cpu`:
   * when it exits, the cpu is marked dead and its id freed (markCpuDead), so a new worker can
   * attach with it. A Node Worker is recognised by its threadId: if another live thread holds
   * the id when it exits (the worker was refused the id, or gave it back and the id was
   * reused), nothing changes. Works on a detached instance too (a supervising thread).
   */
  watchWorker(worker: { on(event: 'exit', fn: () => void): unknown }, cpu: number): void {
    if (worker === null || typeof worker !== 'object' || typeof worker.on !== 'function')
      throwEinval('watchWorker', "worker must have an on('exit', fn) method", worker);
    checkCpu('watchWorker', cpu, this.config.nrCpus);
    const claims = this.ctx.claims;
    const token = workerToken(worker);
    worker.on('exit', () => claims.workerExited(cpu, token));
  }

  /**
   * Gives this instance's cpu id back, so that another worker (or a later attachVmalloc in
   * this thread) can use it: this cpu's caches of records and pages go back to the shared
   * pools first, then the claim is released. Afterwards the instance refuses every call with
   * VmallocError EINVAL, except those that act as no cpu: markCpuDead, markCpuAlive,
   * watchWorker and the lock statistics (lockStats, lockStat, setLockStat, resetLockStat).
   * Its areas stay allocated: any worker can free them. If the claim was taken away meanwhile
   * (markCpuDead), the caches are left to the id's new holder.
   */
  detach(): void {
    const ctx = this.ctx;
    if (ctx.claims.heldHere(this.cpu)) {
      ctx.s.drainCpu();
      ctx.vms.drainCpu();
      ctx.frames.drainCpu();
      this.afterOp();
      ctx.claims.release(this.cpu);
    }
    Object.setPrototypeOf(this, detachedPrototype(Vmalloc.prototype, KEPT_AFTER_DETACH));
  }

  // ---------------------------------------------------------------- vmap nodes

  /** @internal The vmap-area core and its design, for tests that look inside. */
  get areas(): VmapAreas {
    return this.ctx.areas;
  }

  /** The nodes design's structures (null in other designs). */
  get nodes(): NodesDesign | null {
    const d = this.ctx.areas.design;
    return d instanceof NodesDesign ? d : null;
  }

  /**
   * The nodes design, node by node: busy areas (placed by address), lazy areas (placed by the
   * allocating CPU's node), pool lengths by size. Empty for the other designs.
   */
  vmapNodes(): VmapNodeInfo[] {
    const nodes = this.nodes;
    if (nodes === null) return [];
    this.ctx.refreshAll();
    return nodes.describe(this.cpu);
  }

  /** The vmap node whose zone holds `addr` (addr_to_node_id()); 0 in the other designs. */
  addrToNodeId(addr: number): number {
    checkAddr('addrToNodeId', addr);
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

  /** Copies `length` bytes starting at `addr` out of mapped pages. */
  read(addr: number, length: number): Uint8Array {
    checkInteger('read', 'length', length);
    if (length < 0) throwEinval('read', 'length must not be negative', length);
    if (length > 2 ** 31) throwEinval('read', 'length must not exceed 2^31 bytes', length);
    return readBytes(this.ctx, 'read', addr, length);
  }

  /** Copies bytes out of mapped pages into `target`. */
  readInto(addr: number, target: Uint8Array): void {
    if (!(target instanceof Uint8Array)) throwEinval('read', 'target must be a Uint8Array', target);
    copy(this.ctx, 'read', addr, target, true);
  }

  /** Copies `bytes` into mapped pages starting at `addr`. */
  write(addr: number, bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array)) throwEinval('write', 'bytes must be a Uint8Array', bytes);
    copy(this.ctx, 'write', addr, bytes, false);
  }

  /** One byte. */
  readU8(addr: number): number {
    const at = physOffset(this.ctx, 'read', addr, 1);
    return this.ctx.frames.bytes()[at]!;
  }

  /** One byte, as `*(u8 *)addr = value`: an integer from 0 to 255. */
  writeU8(addr: number, value: number): void {
    // Catches every non-byte: a non-number, NaN, a fraction, a negative, 256 and up.
    if (typeof value !== 'number' || (value & 0xff) !== value)
      throwEinval('write', 'value must be an integer from 0 to 255', value);
    const at = physOffset(this.ctx, 'write', addr, 1);
    this.ctx.frames.bytes()[at] = value;
  }

  /** A pointer (8 bytes, the kernel address of `value`, 0 for null), little-endian. */
  writePtr(addr: number, value: number): void {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= 2 ** 48)
      throwEinval('write', 'value must be an address in [0, 2^48) or 0', value);
    const lo = value === 0 ? 0 : value % 2 ** 32;
    const hi = value === 0 ? 0 : 0xffff0000 + Math.floor(value / 2 ** 32);
    const at = physOffset(this.ctx, 'write', addr, 8);
    const dv = this.ctx.frames.dataView();
    dv.setUint32(at, lo, true);
    dv.setUint32(at + 4, hi, true);
  }

  /** A pointer stored by writePtr: the library address, 0 for null. */
  readPtr(addr: number): number {
    const at = physOffset(this.ctx, 'read', addr, 8);
    const dv = this.ctx.frames.dataView();
    const lo = dv.getUint32(at, true);
    const hi = dv.getUint32(at + 4, true);
    return hi === 0 && lo === 0 ? 0 : (hi - 0xffff0000) * 2 ** 32 + lo;
  }

  // ---------------------------------------------------------------- introspection

  /** /proc/vmallocinfo. Kernel: vmalloc_info_show(). */
  vmallocinfo(): string {
    return formatVmallocinfo(this.infoSource());
  }

  /** @internal Data for vmallocinfo and the report. */
  infoSource(): VmallocinfoSource {
    return infoSource(this.ctx);
  }

  stats(): VmallocStats {
    return collectStats(this.ctx);
  }

  /**
   * Verifies every invariant of the subsystem: the design's trees and lists, the tiling of
   * the managed space (designs that record free space), vmap_lazy_nr, every record accounted
   * for, every vm_struct against its area, every page owned once, the page table against the
   * areas' pages, the page allocator, the page-array pool.
   * @throws VmallocError EINVARIANT naming the first violation.
   */
  check(): void {
    checkAll(this.ctx);
  }

  /** The checked mode: check() after every (or every n-th) operation that changes state. */
  private afterOp(): void {
    const every = this.config.checkEveryOp;
    const ctx = this.ctx;
    if (every !== 0 && ++ctx.opsSinceCheck >= every) {
      ctx.opsSinceCheck = 0;
      checkAll(ctx);
    }
  }
}

/** Methods a detached Vmalloc keeps: they supervise workers or read lock_stat, as no cpu. */
const KEPT_AFTER_DETACH = [
  'markCpuDead',
  'markCpuAlive',
  'watchWorker',
  'lockStats',
  'lockStat',
  'setLockStat',
  'resetLockStat',
];

/**
 * Creates a vmalloc subsystem, with this thread as cpu `options.cpu` (0 by default): workers
 * attach with the other ids, or this instance detaches first to lend its id. See
 * VmallocOptions for the other defaults.
 */
export function createVmalloc(options: CreateVmallocOptions = {}): Vmalloc {
  return new Vmalloc(createContext(options));
}

/**
 * The same vmalloc subsystem in another worker: `handle` is `vm.handle` of the instance that
 * created it (sent with postMessage). Every operation works from any worker, on the same
 * areas and memory. Each thread must use its own cpu id (a worker is a CPU: per-CPU caches
 * and page lists are used without locks), so the id is claimed in shared memory: a second
 * attach with an id in use fails, until its holder detaches (vm.detach()) or is declared dead
 * (markCpuDead, or watchWorker when its worker exits). Taking the id of a dead worker marks
 * the cpu alive again.
 * @throws VmallocError EBUSY when `cpu` is attached already (by any thread, this one too);
 * EOWNERDEAD when the dead worker that had `cpu` still holds a lock; EINVAL for a bad handle
 * (not one, a copy that lost its shared buffers, one edited after creation, one of a
 * shared: false subsystem) or cpu. Nothing changes on a throw.
 */
export function attachVmalloc(handle: VmallocHandle, options: AttachOptions): Vmalloc {
  return new Vmalloc(attachContext(handle, options));
}

export { VmFlags };
export type {
  AttachOptions,
  CreateVmallocOptions,
  VmArea,
  VmapOptions,
  VmallocHandle,
  VmallocStats,
};
