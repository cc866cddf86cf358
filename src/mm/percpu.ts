/**
 * A small percpu allocator: alloc_percpu() / free_percpu() / per_cpu_ptr() over chunks whose
 * address space comes from pcpu_get_vm_areas().
 *
 * Holds: allocPercpu(), freePercpu(), perCpuPtr(), the chunk's life (created when no live
 * chunk has room, pages populated on demand, destroyed when empty unless it is the only empty
 * one), the façade's pcpu_get_vm_areas() / pcpu_free_vm_areas() entries, and the checker's
 * view of the chunks.
 * Invariant (pcpu_alloc_mutex held between calls): a live chunk owns nrCpus busy pcpu areas
 * at base + cpu * unitSize, each unitSize long; page p of every unit is mapped exactly when
 * the chunk's populated bit p is set, to a frame owned by the area.
 * Callers: the façade (src/api/vmalloc.ts), test_vmalloc's pcpu_alloc_test, check().
 *
 * Kernel: mm/percpu.c: pcpu_alloc() (__alloc_percpu), free_percpu(), per_cpu_ptr(),
 * pcpu_create_chunk() / pcpu_destroy_chunk() of percpu-vm.c, pcpu_populate_chunk(),
 * pcpu_balance_free() (one empty chunk kept).
 * Recovery: a holder of pcpu_alloc_mutex killed at any step leaves what
 * src/mm/recovery-percpu.ts rebuilds (chunk states CREATING / DESTROYING say which chunk was
 * being made or destroyed).
 * Differs from kernel: a percpu pointer is the address of CPU 0's copy, and CPU c's copy is
 * c * unitSize above it (the kernel offsets from pcpu_base_addr by unit_offsets[]); one unit
 * per CPU, the units of a chunk adjacent (one group, no NUMA groups); no first (embedded)
 * chunk and no atomic allocations; pages are populated on demand but depopulated only when
 * the chunk is destroyed; one lock (pcpu_alloc_mutex) plays both pcpu_alloc_mutex and
 * pcpu_lock; memory is zeroed on every allocation, as __alloc_percpu() does.
 */

import { VmallocError, checkInteger } from '../errors.js';
import { kernelHex } from '../shared/layout.js';
import { ADDRESS_LIMIT, checkCpu, throwEinval } from './args.js';
import { FRAME_AREA } from './page-alloc.js';
import {
  S_PCPU_CLEARED,
  S_PCPU_CREATING,
  S_PCPU_DEPOPULATED,
  S_PCPU_DESTROYING,
  S_PCPU_MAPPING,
  S_PCPU_MARKED,
  S_PCPU_POPULATED,
  S_PCPU_UNMAPPING,
  stepHook,
} from '../shared/step-hook.js';
import { PCPU_MIN_ALLOC_SIZE, PCPU_MIN_UNIT_SIZE } from './percpu-chunk.js';
import {
  checkPcpuFree,
  checkPcpuRequest,
  pcpuFreeChecked,
  pcpuGetVmAreasChecked,
  pcpuSeamOf,
} from './pcpu-vm-areas.js';
import type { VmContext } from './shared-state.js';

/** One page frame number, for mapChecked (made once per thread). */
const scratch = new Int32Array(1);

/** Takes pcpu_alloc_mutex and brings this thread's views of the chunks up to date. */
function lockPcpu(ctx: VmContext): void {
  ctx.pcpuLock.lock(ctx.cpu);
  ctx.pcpu.refresh();
}

// ---------------------------------------------------------------- pcpu_get_vm_areas entries

/** pcpu_get_vm_areas(): the areas' vm_struct ids, or null when no base fits. */
export function pcpuGetVmAreas(
  ctx: VmContext,
  offsets: unknown,
  sizes: unknown,
  align: unknown,
): number[] | null {
  return pcpuGetVmAreasChecked(ctx, checkPcpuRequest(ctx, offsets, sizes, align));
}

/** pcpu_free_vm_areas() of the areas starting at `addrs` (the percpu chunks' own refused). */
export function pcpuFreeVmAreas(ctx: VmContext, addrs: unknown): void {
  const fn = 'pcpu_free_vm_areas';
  if (!Array.isArray(addrs)) throwEinval(fn, 'areas must be an array of areas or addresses', addrs);
  const list: number[] = [];
  for (let i = 0; i < addrs.length; i++) {
    const a: unknown = addrs[i];
    const addr = typeof a === 'object' && a !== null ? (a as { addr?: unknown }).addr : a;
    if (
      typeof addr !== 'number' ||
      !Number.isSafeInteger(addr) ||
      addr < 0 ||
      addr >= ADDRESS_LIMIT
    )
      throwEinval(fn, `areas[${i}] must be an area pcpu_get_vm_areas() returned, or its addr`, a);
    list.push(addr);
  }
  lockPcpu(ctx);
  try {
    checkPcpuFree(ctx, fn, list, (addr) =>
      ctx.pcpu.chunkOfArea(addr) >= 0 ? 'a chunk of the percpu allocator' : null,
    );
    pcpuFreeChecked(ctx, list);
  } finally {
    ctx.pcpuLock.unlock();
  }
}

// ---------------------------------------------------------------- alloc / free

/**
 * A zeroed object of `size` bytes, aligned to `align`, one copy per CPU: the address of CPU
 * 0's copy (see perCpuPtr), or null when no chunk can be made or populated.
 * Kernel: __alloc_percpu() -> pcpu_alloc().
 */
export function allocPercpu(ctx: VmContext, size: unknown, align: unknown): number | null {
  const fn = 'alloc_percpu';
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > PCPU_MIN_UNIT_SIZE)
    throwEinval(
      fn,
      `size must be an integer from 1 to ${PCPU_MIN_UNIT_SIZE} (PCPU_MIN_UNIT_SIZE)`,
      size,
    );
  if (
    typeof align !== 'number' ||
    !Number.isInteger(align) ||
    align < 1 ||
    align > ctx.pageSize ||
    (align & (align - 1)) !== 0
  )
    throwEinval(
      fn,
      `align must be a power of two from 1 to the page size (${ctx.pageSize})`,
      align,
    );
  pcpuSeamOf(ctx, fn);
  const bits = Math.ceil(size / PCPU_MIN_ALLOC_SIZE);
  const alignBits = Math.max(align, PCPU_MIN_ALLOC_SIZE) / PCPU_MIN_ALLOC_SIZE;
  const chunks = ctx.pcpu;
  lockPcpu(ctx);
  try {
    for (let c = 0; c < chunks.slots; c++) {
      if (!chunks.isLive(c)) continue;
      const at = chunks.findFit(c, bits, alignBits);
      if (at >= 0) return allocIn(ctx, c, at, bits, size);
    }
    const c = createChunk(ctx);
    if (c < 0) return null;
    const at = chunks.findFit(c, bits, alignBits);
    return at < 0 ? null : allocIn(ctx, c, at, bits, size);
  } finally {
    ctx.pcpuLock.unlock();
  }
}

/** Marks, populates and zeroes an allocation; null (nothing kept) when pages run out. */
function allocIn(ctx: VmContext, c: number, at: number, bits: number, size: number): number | null {
  const chunks = ctx.pcpu;
  const off = at * PCPU_MIN_ALLOC_SIZE;
  if (!populate(ctx, c, off, size)) return null;
  if (stepHook !== null) stepHook(S_PCPU_POPULATED);
  chunks.mark(c, at, bits);
  if (stepHook !== null) stepHook(S_PCPU_MARKED);
  const base = chunks.base(c);
  const unit = chunks.g.unitSize;
  for (let cpu = 0; cpu < chunks.g.nrCpus; cpu++) zeroRange(ctx, base + cpu * unit + off, size);
  return base + off;
}

/**
 * Maps the unpopulated pages of [off, off + size) in every unit. On a shortage of frames the
 * pages this call populated are given back and false returned. Kernel: pcpu_populate_chunk().
 */
function populate(ctx: VmContext, c: number, off: number, size: number): boolean {
  const chunks = ctx.pcpu;
  const pageSize = ctx.pageSize;
  const first = Math.floor(off / pageSize);
  const last = Math.floor((off + size - 1) / pageSize);
  for (let p = first; p <= last; p++) {
    if (chunks.isPopulated(c, p)) continue;
    if (!populatePage(ctx, c, p)) {
      // The pages populated by this call hold no allocation yet (one on a page populates it).
      for (let q = first; q < p; q++)
        if (chunks.isPopulated(c, q) && pageIsIdle(ctx, c, q)) depopulatePage(ctx, c, q);
      return false;
    }
  }
  return true;
}

/** No allocation covers any byte of page `p` of chunk `c`. */
function pageIsIdle(ctx: VmContext, c: number, p: number): boolean {
  const per = ctx.pageSize / PCPU_MIN_ALLOC_SIZE;
  return ctx.pcpu.usedIn(c, p * per, (p + 1) * per) === 0;
}

/** One page of every unit: a zeroed frame each, mapped. */
function populatePage(ctx: VmContext, c: number, p: number): boolean {
  const chunks = ctx.pcpu;
  const base = chunks.base(c);
  const unit = chunks.g.unitSize;
  const pageSize = ctx.pageSize;
  for (let cpu = 0; cpu < chunks.g.nrCpus; cpu++) {
    const pfn = ctx.frames.alloc(FRAME_AREA);
    if (pfn < 0) {
      for (let k = 0; k < cpu; k++) unmapPage(ctx, base + k * unit + p * pageSize);
      return false;
    }
    ctx.frames.zero(pfn);
    scratch[0] = pfn;
    ctx.pageTable.map(base + cpu * unit + p * pageSize, scratch, 0, 1);
    if (stepHook !== null && cpu === 0) stepHook(S_PCPU_MAPPING);
  }
  chunks.setPopulated(c, p, true);
  return true;
}

function unmapPage(ctx: VmContext, addr: number): void {
  const pfn = ctx.pageTable.lookup(addr);
  ctx.pageTable.unmap(addr, 1);
  ctx.tlbFlushRange(addr, ctx.pageSize);
  if (pfn >= 0) ctx.frames.free(pfn);
}

function depopulatePage(ctx: VmContext, c: number, p: number): void {
  const chunks = ctx.pcpu;
  const base = chunks.base(c);
  for (let cpu = 0; cpu < chunks.g.nrCpus; cpu++) {
    unmapPage(ctx, base + cpu * chunks.g.unitSize + p * ctx.pageSize);
    if (stepHook !== null && cpu === 0) stepHook(S_PCPU_UNMAPPING);
  }
  chunks.setPopulated(c, p, false);
}

function zeroRange(ctx: VmContext, addr: number, size: number): void {
  const pageSize = ctx.pageSize;
  ctx.frames.refresh();
  const mem = ctx.frames.bytes();
  let at = addr;
  const end = addr + size;
  while (at < end) {
    const inPage = at % pageSize;
    const n = Math.min(pageSize - inPage, end - at);
    const p = ctx.pageTable.lookup(at - inPage) * pageSize + inPage;
    mem.fill(0, p, p + n);
    at += n;
  }
}

/** A new chunk: nrCpus adjacent units from pcpu_get_vm_areas(); its slot, or -1. */
function createChunk(ctx: VmContext): number {
  const g = ctx.pcpu.g;
  const offsets: number[] = [];
  const sizes: number[] = [];
  for (let cpu = 0; cpu < g.nrCpus; cpu++) {
    offsets.push(cpu * g.unitSize);
    sizes.push(g.unitSize);
  }
  const slot = ctx.pcpu.freeSlot();
  if (slot < 0) return -1;
  const r = checkPcpuRequest(ctx, offsets, sizes, ctx.pageSize);
  // The slot is CREATING, with the base before any area is busy: a holder killed in between
  // leaves a chunk that recovery recognises and drops with its areas.
  ctx.pcpu.setCreating(slot, 0);
  const vms = pcpuGetVmAreasChecked(ctx, r, -1, (base) => ctx.pcpu.setCreating(slot, base));
  if (vms === null) {
    ctx.pcpu.drop(slot);
    return -1;
  }
  if (stepHook !== null) stepHook(S_PCPU_CREATING);
  ctx.pcpu.init(slot, ctx.vms.addr(vms[0]!));
  return slot;
}

/** Unmaps and frees a chunk's pages, frees its areas, releases its slot. */
function destroyChunk(ctx: VmContext, c: number): void {
  const chunks = ctx.pcpu;
  // DESTROYING first: a holder killed from here on leaves a chunk recovery drops whole.
  chunks.setDestroying(c);
  for (let p = 0; p < chunks.g.unitPages; p++)
    if (chunks.isPopulated(c, p)) depopulatePage(ctx, c, p);
  if (stepHook !== null) stepHook(S_PCPU_DEPOPULATED);
  const base = chunks.base(c);
  for (let cpu = 0; cpu < chunks.g.nrCpus; cpu++) {
    pcpuFreeChecked(ctx, [base + cpu * chunks.g.unitSize]);
    if (stepHook !== null && cpu === 0) stepHook(S_PCPU_DESTROYING);
  }
  chunks.release(c);
}

/** An integer in the address space. */
function checkPtr(fn: string, ptr: unknown): number {
  const p = checkInteger(fn, 'ptr', ptr);
  if (p < 0 || p >= ADDRESS_LIMIT)
    throwEinval(fn, 'ptr must lie in the address space [0, 2^48)', p);
  return p;
}

/** The chunk and unit index of a live percpu pointer; throws (nothing changed) otherwise. */
function locate(ctx: VmContext, fn: string, ptr: number): [number, number] {
  const chunks = ctx.pcpu;
  const c = chunks.chunkOf(ptr);
  const rule = `Cannot ${fn}: ptr must be a live pointer alloc_percpu() returned, got ${kernelHex(ptr)}`;
  if (c < 0) throw new VmallocError('ENOENT', `${rule} (no percpu chunk's first unit holds it)`);
  const off = ptr - chunks.base(c);
  const at = off / PCPU_MIN_ALLOC_SIZE;
  if (!Number.isInteger(at) || chunks.extent(c, at) === 0)
    throw new VmallocError('ENOENT', `${rule} (no allocation starts there: freed, or inside one)`);
  return [c, at];
}

/**
 * Whether this thread's last freePercpu() cleared its allocation (read by the façade when the
 * call threw EOWNERDEAD: before the clear it retries, after it the object is gone).
 */
export let pcpuFreeCleared = false;

/**
 * Frees an object allocPercpu() returned (every CPU's copy). null / undefined / 0 are ignored.
 * An emptied chunk is destroyed unless it is the only empty one. Kernel: free_percpu().
 */
export function freePercpu(ctx: VmContext, ptr: unknown): void {
  if (ptr === null || ptr === undefined || ptr === 0) return;
  const p = checkPtr('free_percpu', ptr);
  const chunks = ctx.pcpu;
  pcpuFreeCleared = false;
  lockPcpu(ctx);
  try {
    const [c, at] = locate(ctx, 'free_percpu', p);
    chunks.clear(c, at, chunks.extent(c, at));
    pcpuFreeCleared = true;
    if (stepHook !== null) stepHook(S_PCPU_CLEARED);
    if (chunks.nrAlloc(c) === 0) {
      let empty = 0;
      for (let k = 0; k < chunks.slots; k++)
        if (chunks.isLive(k) && chunks.nrAlloc(k) === 0) empty++;
      if (empty > 1) destroyChunk(ctx, c);
    }
  } finally {
    ctx.pcpuLock.unlock();
  }
}

/** CPU `cpu`'s copy of the object at `ptr`. Kernel: per_cpu_ptr(). */
export function perCpuPtr(ctx: VmContext, ptr: unknown, cpu: unknown): number {
  const p = checkPtr('per_cpu_ptr', ptr);
  checkCpu('per_cpu_ptr', cpu, ctx.config.nrCpus);
  const chunks = ctx.pcpu;
  lockPcpu(ctx);
  try {
    const c = chunks.chunkOf(p);
    if (c < 0)
      throw new VmallocError(
        'ENOENT',
        `Cannot per_cpu_ptr: ptr must point into an object alloc_percpu() returned, got ${kernelHex(p)} (no percpu chunk's first unit holds it)`,
      );
    return p + cpu * chunks.g.unitSize;
  } finally {
    ctx.pcpuLock.unlock();
  }
}

/** What the percpu allocator holds now. */
export interface PercpuInfo {
  /** False in designs without pcpu_get_vm_areas() ('legacy', 'rfc2018'): every call refuses. */
  supported: boolean;
  unitSize: number;
  chunks: number;
  allocations: number;
  freeBytes: number;
  /** Pages mapped for percpu chunks, every CPU's counted. */
  populatedPages: number;
  chunksCreated: number;
  chunksDestroyed: number;
}

export function percpuInfo(ctx: VmContext): PercpuInfo {
  const chunks = ctx.pcpu;
  chunks.refresh();
  let allocations = 0;
  let freeBytes = 0;
  for (let c = 0; c < chunks.slots; c++) {
    if (!chunks.isLive(c)) continue;
    allocations += chunks.nrAlloc(c);
    freeBytes += chunks.freeBits(c) * PCPU_MIN_ALLOC_SIZE;
  }
  return {
    supported: ctx.areas.design.pcpu !== undefined,
    unitSize: chunks.g.unitSize,
    chunks: chunks.live,
    allocations,
    freeBytes,
    populatedPages: chunks.populatedPages,
    chunksCreated: chunks.created,
    chunksDestroyed: chunks.destroyed,
  };
}
