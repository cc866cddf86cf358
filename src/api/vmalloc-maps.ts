/**
 * The façade's maps of pages: vmap() and get_vm_area() over frames the caller owns, the page
 * allocator's frames themselves, vm_map_ram() with its per-CPU vmap blocks, and
 * pcpu_get_vm_areas() with the percpu allocator built on it.
 *
 * Holds: VmallocMaps, a middle class of Vmalloc (vmalloc.ts), between VmallocBase and
 * VmallocRcu: thin methods that check nothing themselves, delegate to src/mm/ (vmap.ts, vm-map-ram.ts, percpu.ts)
 * inside the recovery gate (gated(), src/mm/recovery-gate.ts) and end with afterOp().
 * Invariant: as Vmalloc's: a method completes or throws before changing anything (misuse),
 * and a call that meets a dead lock holder recovers (survive) and then fails or retries.
 * Callers: library users through Vmalloc.
 */

import { checkAddr, checkByteSize } from '../mm/args.js';
import { Recovered, gated } from '../mm/recovery-gate.js';
import { unmapStarted, vmMapRam, vmUnmapAliases, vmUnmapRam } from '../mm/vm-map-ram.js';
import { type VmallocinfoImport, loadVmallocinfo } from '../mm/vmallocinfo-import.js';
import {
  type PercpuInfo,
  allocPercpu,
  pcpuFreeCleared,
  freePercpu,
  pcpuFreeVmAreas,
  pcpuGetVmAreas,
  perCpuPtr,
  percpuInfo,
} from '../mm/percpu.js';
import {
  type VmArea,
  type VmapOptions,
  allocPages,
  freePages,
  getVmArea,
  removeVmArea,
  snapshot,
  vmap,
} from '../mm/vmap.js';
import { VmallocBase } from './vmalloc-base.js';

// The flags the mm layer sets once a call has passed its point of no return (see gated()).
const wasUnmapStarted = (): boolean => unmapStarted;
const wasPcpuFreeCleared = (): boolean => pcpuFreeCleared;

/** The maps of pages of one thread's view of a vmalloc subsystem (see the module header). */
export class VmallocMaps extends VmallocBase {
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
    const addr = gated(this.ctx, Recovered.RETRY, vmap, pages, options);
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
    const vm = gated(this.ctx, Recovered.RETRY, getVmArea, bytes, flags, options);
    this.afterOp();
    return vm === 0 ? null : snapshot(this.ctx, vm);
  }

  /**
   * Removes the area starting at `addr` without freeing its pages: the vm_struct it had (its
   * `pages` are now the caller's, to freePages()), or null when no area starts there.
   * Kernel: remove_vm_area().
   */
  removeVmArea(addr: number): VmArea | null {
    const at = checkAddr('remove_vm_area', addr);
    // After a recovery, whether the area was removed (its pages then freed by the recovery)
    // or is still live cannot be told without a lookup another thread may race with: THROW.
    const snap = gated(this.ctx, Recovered.THROW, removeVmArea, at);
    this.afterOp();
    return snap;
  }

  /**
   * Up to `n` page frames (fewer when memory runs out), the caller's until freePages().
   * @throws VmallocError EINVAL when `n` exceeds the frames of physical memory.
   * Kernel: alloc_pages_bulk().
   */
  allocPages(n: number): Int32Array {
    const out = gated(this.ctx, Recovered.RETRY, allocPages, n);
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
    // zone->lock held by a dead cpu: recover, then report it (some frames may be free
    // already, and may be another thread's again by now: no retry).
    gated(this.ctx, Recovered.THROW, freePages, pfns);
    this.afterOp();
  }

  /**
   * Maps the first `count` frames of `pages` (from allocPages) at a new address: the address,
   * or null when no address space is left. Up to 64 pages (VMAP_MAX_ALLOC) come from this
   * cpu's vmap blocks; more get an area of their own (no guard page). The frames stay the
   * caller's; freePages() refuses them while mapped.
   * @throws VmallocError EINVAL for a count that is not a positive integer or exceeds the
   * vmalloc window, or pages that are not an array of at least count allocated frames;
   * EBUSY for an area's own page.
   * Kernel: vm_map_ram().
   */
  vmMapRam(pages: ArrayLike<number>, count: number): number | null {
    // After a recovery nothing was mapped (a lock is met only before the pages are mapped,
    // and the recovery drops a mapping not fully mapped): retry.
    const addr = gated(this.ctx, Recovered.RETRY, vmMapRam, pages, count);
    this.afterOp();
    return addr;
  }

  /**
   * Unmaps what vmMapRam() mapped at `addr`, with the same `count`.
   * @throws VmallocError ENOENT when no mapping starts at `addr` (never mapped, unmapped
   * already, inside a mapping); EINVAL for another count, or a bad address or count.
   * Kernel: vm_unmap_ram().
   */
  vmUnmapRam(addr: number, count: number): void {
    // A dead lock holder met before anything changed: retried; after (unmapStarted), the
    // mapping is gone and the recovery finished the unmap.
    gated(this.ctx, wasUnmapStarted, vmUnmapRam, addr, count);
    this.afterOp();
  }

  /**
   * Flushes the lazily unmapped vm_map_ram pages everywhere: purges fragmented vmap blocks
   * and the lazily freed areas. Kernel: vm_unmap_aliases().
   */
  vmUnmapAliases(): void {
    gated(this.ctx, Recovered.THROW, vmUnmapAliases);
    this.afterOp();
  }

  // ---------------------------------------------------------------- percpu

  /**
   * Reserves `offsets.length` areas (no guard page, no pages) whose starts are base +
   * offsets[i] for one common base, the highest that fits below the end of the vmalloc window:
   * their vm_structs in argument order, or null when no base fits even after a purge. Offsets
   * need not be sorted; areas must not overlap; align is a power of two and a page multiple,
   * and every offset and size a multiple of it.
   * @throws VmallocError EINVAL for bad arguments, or a design without a free tree ('legacy',
   * 'rfc2018').
   * Kernel: pcpu_get_vm_areas().
   */
  pcpuGetVmAreas(
    offsets: readonly number[],
    sizes: readonly number[],
    align: number,
  ): VmArea[] | null {
    const vms = gated(this.ctx, Recovered.THROW, pcpuGetVmAreas, offsets, sizes, align);
    this.afterOp();
    return vms === null ? null : vms.map((vm) => snapshot(this.ctx, vm));
  }

  /**
   * Frees areas pcpuGetVmAreas() made (the VmArea objects or their addresses), all or none.
   * @throws VmallocError ENOENT for one that is not a live pcpu area, EINVAL for one listed
   * twice, EBUSY for an area of a percpu allocator chunk. Kernel: pcpu_free_vm_areas().
   */
  pcpuFreeVmAreas(areas: readonly (VmArea | number)[]): void {
    gated(this.ctx, Recovered.THROW, pcpuFreeVmAreas, areas);
    this.afterOp();
  }

  /**
   * `size` zeroed bytes (1 to 32 KiB) aligned to `align` (a power of two up to the page size),
   * one copy per CPU: a percpu pointer (CPU 0's copy; perCpuPtr() gives the others), or null
   * when memory or address space runs out. Kernel: __alloc_percpu().
   */
  allocPercpu(size: number, align = 1): number | null {
    // After a recovery (what this call had half made is dropped): retry.
    const ptr = gated(this.ctx, Recovered.RETRY, allocPercpu, size, align);
    this.afterOp();
    return ptr;
  }

  /**
   * Frees an allocPercpu() object (every CPU's copy); null, undefined and 0 are ignored.
   * @throws VmallocError ENOENT for anything else. Kernel: free_percpu().
   */
  freePercpu(ptr: number | null | undefined): void {
    // After a recovery: not cleared yet, retry; cleared, the object is gone (whatever the
    // call had left to do, destroying its chunk, the recovery finished or undid).
    gated(this.ctx, wasPcpuFreeCleared, freePercpu, ptr);
    this.afterOp();
  }

  /**
   * CPU `cpu`'s copy of the percpu object at `ptr`: an address to read() and write().
   * Kernel: per_cpu_ptr().
   */
  perCpuPtr(ptr: number, cpu: number): number {
    return perCpuPtr(this.ctx, ptr, cpu);
  }

  /** The percpu allocator's chunks, allocations and pages. */
  percpuInfo(): PercpuInfo {
    return percpuInfo(this.ctx);
  }

  // ---------------------------------------------------------------- a machine's layout

  /**
   * Rebuilds the busy layout of a /proc/vmallocinfo text (a real machine's, or
   * vmallocinfo()'s) in this allocator, meant to be fresh: each area at its printed range
   * (moved as a whole into this window when the kernel's lay elsewhere), with its size,
   * caller, flags, phys= and pages (allocated and mapped); "unpurged vm_area" lines become
   * lazily freed ranges. When the kernel hid the addresses (zeros, hashed pointers) the areas
   * keep their order and sizes and are placed densely from VMALLOC_START: the result says so
   * (`dense`, `warnings`).
   * @throws VmallocError EINVAL naming the line number and what was wrong with it; ENOMEM when
   * the pages exceed the free frames; EBUSY when a range is taken. Nothing is left on a throw.
   * Kernel: the reverse of vmalloc_info_show(). See src/mm/vmallocinfo-import.ts.
   */
  loadVmallocinfo(text: string): VmallocinfoImport {
    const r = gated(this.ctx, Recovered.THROW, loadVmallocinfo, text);
    this.afterOp();
    return r;
  }
}
