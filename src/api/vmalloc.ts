/**
 * The public face of the vmalloc subsystem: Vmalloc, createVmalloc(), attachVmalloc().
 *
 * Holds: the Vmalloc class, whose methods check their arguments and delegate to the modules
 * named after the kernel's concepts (src/mm/: alloc-path, free-path, vmap, access,
 * purge-notifier, cpu-supervision; src/designs/: the vmap-area core and the designs); what
 * allocates nothing (lookups, statistics, checks, worker supervision, vmap nodes) it inherits
 * from VmallocBase (vmalloc-base.ts), the maps of pages from VmallocMaps (vmalloc-maps.ts),
 * the RCU calls from VmallocRcu (vmalloc-rcu.ts). A state-changing call runs inside the
 * recovery gate through gated() (src/mm/recovery-gate.ts). createVmalloc() and
 * attachVmalloc() build their context in create.ts. The hot methods (vmalloc, vfree, read,
 * write, readU8 ...) stay one call (and gated()) above the vmalloc layer.
 * Invariant: a method either completes or throws before changing anything (misuse), and in
 * the checked mode every state-changing method ends with check().
 * Callers: library users, the test_vmalloc driver, the CLI.
 *
 * Kernel: the exported functions of mm/vmalloc.c. Each Vmalloc is one thread's view (one
 * cpu) of state that lives entirely in shared buffers.
 */

import { checkInteger } from '../errors.js';
import type { PurgeNotifier } from '../designs/vmap-areas.js';
import { copy, physOffset, readBytes } from '../mm/access.js';
import { type VmallocAllocOptions, allocate } from '../mm/alloc-path.js';
import { throwEinval } from '../mm/args.js';
import { releaseCpu } from '../mm/cpu-supervision.js';
import { type RecoveryReport, recover } from '../mm/recovery.js';
import { Recovered, gated } from '../mm/recovery-gate.js';
import { freesPagesOnVfree, releaseArea, unlinkForFree } from '../mm/free-path.js';
import { registerPurgeNotifier, unregisterPurgeNotifier } from '../mm/purge-notifier.js';
import type { VmContext, VmallocHandle } from '../mm/shared-state.js';
import type { VmallocStats } from '../mm/statistics.js';
import { VmFlags } from '../mm/vm-struct.js';
import type { PercpuInfo } from '../mm/percpu.js';
import { type VmallocSnapshot, takeSnapshot } from '../mm/snapshot.js';
import type { VmArea, VmapOptions } from '../mm/vmap.js';
import {
  type AttachOptions,
  type CreateVmallocOptions,
  attachContext,
  createContext,
} from './create.js';
import { detachedPrototype } from './detached.js';
import { KEPT_AFTER_DETACH } from './vmalloc-base.js';
import { VmallocRcu } from './vmalloc-rcu.js';

/**
 * One thread's view (one cpu) of a vmalloc subsystem: the calls that allocate, free and
 * access memory here; kvfree_rcu and the grace periods come from VmallocRcu
 * (src/api/vmalloc-rcu.ts), the maps of pages the caller owns (vmap, get_vm_area,
 * vm_map_ram, the percpu areas) from VmallocMaps (src/api/vmalloc-maps.ts), and lookups,
 * statistics, checks and the supervision of workers from VmallocBase (src/api/vmalloc-base.ts).
 */
export class Vmalloc extends VmallocRcu {
  // ---------------------------------------------------------------- allocation

  /**
   * Allocates `size` bytes (rounded up to pages, plus a guard page of address space) of
   * virtually contiguous memory in the vmalloc window: the address, or null when address
   * space, page frames or page arrays run out (a warning with the kernel's text is logged).
   * Kernel: vmalloc() / __vmalloc_node().
   * @throws VmallocError EINVAL for a size that is not a positive integer or an unknown or bad
   * option (named in the message); the state is unchanged.
   * @example
   * ```ts
   * const p = vm.vmalloc(3 * 4096, { caller: 'my_driver_init+0x2a/0x90' });
   * if (p !== null) vm.write(p, new Uint8Array([1, 2, 3]));
   * ```
   */
  vmalloc(size: number, options?: VmallocAllocOptions): number | null {
    const addr = gated(this.ctx, Recovered.RETRY, vmallocOp, size, options);
    this.afterOp();
    return addr;
  }

  /** vmalloc() with zeroed pages. Kernel: vzalloc(). */
  vzalloc(size: number, options?: Omit<VmallocAllocOptions, 'zero'>): number | null {
    const addr = gated(this.ctx, Recovered.RETRY, vzallocOp, size, options);
    this.afterOp();
    return addr;
  }

  /**
   * vmalloc() allowing huge mappings: a request of at least a PMD (pageSize / 8 pages) is
   * aligned to a PMD and rounded up to one; if that fails, a normal vmalloc is made.
   * Kernel: vmalloc_huge(). Differs from kernel: the pages are still single frames.
   */
  vmallocHuge(size: number, options?: VmallocAllocOptions): number | null {
    const addr = gated(this.ctx, Recovered.RETRY, vmallocHugeOp, size, options);
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
   * @example
   * ```ts
   * vm.vfree(p); // pages freed now; the range waits for a purge
   * ```
   */
  vfree(addr: number | null | undefined): void {
    if (addr === 0 || addr === null || addr === undefined) return;
    gated(this.ctx, wasUnlinked, vfreeOp, addr);
    this.afterOp();
  }

  /**
   * Unmaps an area made by vmap(); the pages stay the caller's (unless VM_MAP_PUT_PAGES).
   * @throws VmallocError EINVAL for a vmalloc area (vfree() frees it and its pages).
   * Kernel: vunmap().
   */
  vunmap(addr: number | null | undefined): void {
    if (addr === 0 || addr === null || addr === undefined) return;
    gated(this.ctx, wasUnlinked, vunmapOp, addr);
    this.afterOp();
  }

  // ---------------------------------------------------------------- purge

  /** Returns every lazily freed range to free space now. Kernel: purge_vmap_area_lazy(). */
  purge(): void {
    gated(this.ctx, Recovered.RETURN, purgeOp); // a recovery purges everything
    this.afterOp();
  }

  /**
   * Brings the subsystem back to a consistent state after a worker died (watchWorker, or
   * markCpuDead, says which): waits until every other live worker is between operations,
   * then rebuilds every shared structure from the complete areas, which stay live at their
   * addresses with their contents. The dead cpu's half-made areas, cached records and pages,
   * and every lazy and pooled area become free; its complete areas stay allocated until
   * someone frees them by address. Also run by any call that finds a lock held by a dead
   * cpu. Returns what it did, or null when another thread was recovering (it waited).
   * @throws VmallocError ETIMEDOUT when a worker stays inside an operation past the lock
   * timeout (it died without being marked dead): nothing changed.
   */
  recover(): RecoveryReport | null {
    const report = recover(this.ctx);
    this.afterOp();
    return report;
  }

  /**
   * Registers a function called when an allocation fails even after a purge; it should free
   * what it can and return how much it freed (> 0 makes the allocation retry). It runs in the
   * middle of the allocation, so an exception it throws is dropped (it counts as 0 freed).
   * Kernel: register_vmap_purge_notifier().
   */
  registerPurgeNotifier(fn: PurgeNotifier): void {
    registerPurgeNotifier(this.ctx, fn);
  }

  /**
   * Unregisters a function registerPurgeNotifier() registered: false when it was not.
   * @throws VmallocError EINVAL when `fn` is not a function.
   * Kernel: unregister_vmap_purge_notifier().
   */
  unregisterPurgeNotifier(fn: PurgeNotifier): boolean {
    return unregisterPurgeNotifier(this.ctx, fn);
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
    releaseCpu(this.ctx, () => this.afterOp());
    Object.setPrototypeOf(this, detachedPrototype(Vmalloc.prototype, KEPT_AFTER_DETACH));
  }

  /**
   * The whole address space as plain JSON-able data: busy areas (kind, caller, node), free
   * blocks, lazily freed areas, pooled areas, vm_map_ram's blocks, the window and the design,
   * each list sorted by address (`schemaVersion` first). Other workers are held between
   * operations while it is taken, so it is consistent. The report (`vmalloc report`) reads it.
   * @throws VmallocError EINVARIANT when a structure is broken (a worker died mid-change and
   * no recovery ran yet: call recover() first).
   * @example
   * ```ts
   * const snap = vm.snapshot();
   * console.log(snap.busy.length, snap.free[0]);
   * ```
   */
  snapshot(): VmallocSnapshot {
    return takeSnapshot(this.ctx);
  }

  // ---------------------------------------------------------------- memory

  /**
   * Copies `length` bytes starting at `addr` out of mapped pages.
   * @throws VmallocError EFAULT when a byte of the range is not mapped; EINVAL for a bad
   * address or length.
   * @example
   * ```ts
   * vm.read(p, 3); // Uint8Array [1, 2, 3]
   * ```
   */
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

  /**
   * Copies `bytes` into mapped pages starting at `addr`.
   * @throws VmallocError EFAULT when a byte of the range is not mapped; EINVAL for a bad
   * address or a `bytes` that is not a Uint8Array.
   * @example
   * ```ts
   * vm.write(p + 4090, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])); // may cross pages
   * ```
   */
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
}

// ---------------------------------------------------------------- the gated operations
// Module functions, not closures, so that a call through gated() allocates nothing.

function vmallocOp(ctx: VmContext, size: number, options?: VmallocAllocOptions): number | null {
  return allocate(ctx, 'vmalloc', size, options, false, 0);
}

function vzallocOp(
  ctx: VmContext,
  size: number,
  options?: Omit<VmallocAllocOptions, 'zero'>,
): number | null {
  return allocate(ctx, 'vzalloc', size, options, true, 0);
}

function vmallocHugeOp(ctx: VmContext, size: number, options?: VmallocAllocOptions) {
  return allocate(ctx, 'vmalloc_huge', size, options, false, VmFlags.VM_ALLOW_HUGE_VMAP);
}

/**
 * Set by vfreeOp and vunmapOp once the area is unlinked: a recovery then frees it (it is on
 * no busy list), so the call must not look the address up again, where a new area may live
 * by now. Per thread (module state).
 */
let unlinked = false;
const wasUnlinked = (): boolean => unlinked;

function vfreeOp(ctx: VmContext, addr: number): void {
  unlinked = false;
  const va = unlinkForFree(ctx, 'vfree', addr);
  unlinked = true;
  const vm = ctx.vmOf(va);
  releaseArea(ctx, va, vm, freesPagesOnVfree(ctx, vm));
}

function vunmapOp(ctx: VmContext, addr: number): void {
  unlinked = false;
  const va = unlinkForFree(ctx, 'vunmap', addr);
  unlinked = true;
  const vm = ctx.vmOf(va);
  releaseArea(ctx, va, vm, (ctx.vms.flags(vm) & VmFlags.VM_MAP_PUT_PAGES) !== 0);
}

function purgeOp(ctx: VmContext): void {
  ctx.areas.reclaimAndPurge(ctx.cpu);
}

/**
 * Creates a vmalloc subsystem, with this thread as cpu `options.cpu` (0 by default): workers
 * attach with the other ids, or this instance detaches first to lend its id. See
 * VmallocOptions for the other defaults.
 * @throws VmallocError EINVAL for a bad or unknown option (named in the message), or
 * `shared: true` where the platform has no SharedArrayBuffer.
 * @example
 * ```ts
 * const vm = createVmalloc({ nrCpus: 4, design: 'nodes' });
 * const p = vm.vmalloc(3 * 4096)!;
 * vm.write(p, new Uint8Array([1, 2, 3]));
 * vm.vfree(p);
 * ```
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
 * @example
 * ```ts
 * // main thread: new Worker(url, { workerData: { handle: vm.handle } }); in the worker:
 * const vm = attachVmalloc(workerData.handle, { cpu: 1 });
 * ```
 */
export function attachVmalloc(handle: VmallocHandle, options: AttachOptions): Vmalloc {
  return new Vmalloc(attachContext(handle, options));
}

export { VmFlags };
export type {
  PercpuInfo,
  AttachOptions,
  CreateVmallocOptions,
  VmallocAllocOptions,
  VmArea,
  VmapOptions,
  VmallocHandle,
  VmallocStats,
};
