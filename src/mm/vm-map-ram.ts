/**
 * vm_map_ram(), vm_unmap_ram() and vm_unmap_aliases(): the checked entries, the pages'
 * mapping, and the large mappings that bypass the vmap blocks.
 *
 * Holds: vmMapRam / vmUnmapRam / vmUnmapAliases behind the façade methods of those names.
 * Counts up to VMAP_MAX_ALLOC pages come from the per-CPU vmap blocks (vmap-block.ts); larger
 * ones get an area of their own from the area allocator, with no guard page and no vm_struct
 * (flag VMAP_RAM: "vm_map_ram" in vmallocinfo).
 * Invariant: every argument is checked, and the mapping to unmap found and confirmed (its
 * start, its count), before anything changes; a mapped page counts as one more map of its
 * user frame (as vmap() without VM_MAP_PUT_PAGES), so freePages() refuses it while mapped.
 * Callers: the façade (src/api/vmalloc.ts), test_vmalloc's vm_map_ram_test.
 *
 * Kernel: vm_map_ram(), vm_unmap_ram(), vm_unmap_aliases().
 * Differs from kernel: the kernel BUGs (or corrupts a block) on a bad vm_unmap_ram; here an
 * address that starts no live mapping, or the wrong count, throws VmallocError.
 */

import { VmallocError, checkInteger } from '../errors.js';
import { VaFlags } from '../kva/vmap-area.js';
import { kernelHex } from '../shared/layout.js';
import {
  S_RAM_COUNTED,
  S_RAM_UNLINKED,
  S_RAM_UNMAPPED,
  S_VB_CLEARED,
  stepHook,
} from '../shared/step-hook.js';
import { WORK, W_PAGES } from '../shared/sim-hook.js';
import { checkAddr, throwEinval } from './args.js';
import { FRAME_AREA, FRAME_FREE, FRAME_NONE, FRAME_USER } from './page-alloc.js';
import { PTRS_PER_TABLE } from './page-table-format.js';
import type { VmContext } from './shared-state.js';
import { VMAP_MAX_ALLOC, type AliasFlush } from './vmap-block-layout.js';
import { unmapAliases } from './vmap-block-purge.js';

/** The pfns of a block mapping, copied for the page table (one worker: one module). */
const scratch = new Int32Array(VMAP_MAX_ALLOC);
/** At most this many vmap areas map one frame (the owner word must not overflow). */
const MAX_MAPS = 2 ** 30;
const RAM_MASK = VaFlags.VMAP_RAM | VaFlags.VMAP_BLOCK;

/** A count of pages: a positive integer whose pages fit in the vmalloc window. */
function checkCount(ctx: VmContext, fn: string, count: unknown): number {
  if (typeof count !== 'number' || !Number.isSafeInteger(count)) checkInteger(fn, 'count', count);
  const n = count as number;
  if (n <= 0) throwEinval(fn, 'count must be positive', n);
  const windowPages = Math.floor(
    (ctx.config.vmallocEnd + 1 - ctx.config.vmallocStart) / ctx.pageSize,
  );
  if (n > windowPages)
    throwEinval(fn, `count must not exceed the pages of the vmalloc window (${windowPages})`, n);
  return n;
}

/**
 * Maps the first `count` frames of `pages` (from allocPages) at a new address: the address,
 * or null when no address space can be found. Kernel: vm_map_ram().
 */
export function vmMapRam(ctx: VmContext, pages: unknown, count: unknown): number | null {
  const fn = 'vm_map_ram';
  const n = checkCount(ctx, fn, count);
  if (
    pages === null ||
    typeof pages !== 'object' ||
    typeof (pages as ArrayLike<number>).length !== 'number'
  )
    throwEinval(fn, 'pages must be an array of page frame numbers', pages);
  const list = pages as ArrayLike<number>;
  if (!(list.length >= n))
    throwEinval(fn, `pages must hold at least count (${n}) page frames`, list.length);
  const frames = ctx.frames;
  for (let k = 0; k < n; k++) {
    const pfn = list[k];
    const owner = frames.frameOwner(pfn);
    if (owner >= FRAME_USER && owner < MAX_MAPS) continue;
    if (owner === FRAME_FREE || owner === FRAME_NONE)
      throwEinval(fn, `pages[${k}] must be an allocated page frame`, pfn);
    const why =
      owner === FRAME_AREA
        ? "is an area's own page (vfree() of that area frees it)"
        : owner >= MAX_MAPS
          ? 'is mapped by 2^30 areas already'
          : 'is being freed or handed to an area by another call';
    throw new VmallocError(
      'EBUSY',
      `Cannot ${fn}: pages[${k}] must be a page frame of the caller's no area holds, got pfn ${String(pfn)}, which ${why}`,
    );
  }
  const pfns = n <= VMAP_MAX_ALLOC ? scratch : new Int32Array(n);
  for (let k = 0; k < n; k++) pfns[k] = list[k]!;
  let addr: number;
  if (n <= VMAP_MAX_ALLOC) {
    addr = ctx.vb.alloc(n);
    if (addr === 0) return null;
  } else {
    const va = ctx.areas.alloc(
      ctx.cpu,
      n * ctx.pageSize,
      ctx.pageSize,
      ctx.vmallocStart,
      ctx.vmallocEnd,
      VaFlags.VMAP_RAM,
    );
    if (va === 0) return null;
    addr = ctx.s.start(va);
  }
  for (let k = 0; k < n; k++) frames.addMap(pfns[k]!, 1);
  if (stepHook !== null) stepHook(S_RAM_COUNTED);
  WORK[W_PAGES] = WORK[W_PAGES]! + n; // (the simulator's cost model: pages mapped)
  const x = addr * ctx.pageTable.invPage; // (region, pte index): small integers, no heap number
  ctx.pageTable.mapRegion(Math.floor(x * (1 / PTRS_PER_TABLE)), x & 511, pfns, 0, n);
  return addr;
}

/**
 * Set by vmUnmapRam() once it has changed something: from then on its mapping is gone,
 * whatever stops it (a lock held by a dead cpu: the recovery then counts the pages dirty or
 * frees the area), so the façade's retry after a recovery must not unmap again, and reports
 * success. Per thread (module state).
 */
export let unmapStarted = false;

/**
 * Unmaps the `count` pages vm_map_ram() mapped at `addr` (the same count). Kernel:
 * vm_unmap_ram().
 */
export function vmUnmapRam(ctx: VmContext, addr: unknown, count: unknown): void {
  const fn = 'vm_unmap_ram';
  unmapStarted = false;
  const a = checkAddr(fn, addr);
  if (a % ctx.pageSize !== 0)
    throwEinval(fn, `addr must be page-aligned (a multiple of ${ctx.pageSize})`, kernelHex(a));
  const n = checkCount(ctx, fn, count);
  const vb = ctx.vb;
  if (n <= VMAP_MAX_ALLOC) {
    const id = vb.lockBlockOf(a);
    if (id === 0) refuse(ctx, a, n);
    const off = (a - vb.startOf(id)) / ctx.pageSize;
    const mapped = vb.countAt(vb.at(id), off);
    if (mapped !== n) {
      vb.unlockBlock(id);
      refuse(ctx, a, n);
    }
    vb.clearMapping(id, off, n);
    unmapStarted = true;
    if (stepHook !== null) stepHook(S_VB_CLEARED);
    vb.unlockBlock(id);
    unmapPages(ctx, a, n);
    if (stepHook !== null) stepHook(S_RAM_UNMAPPED);
    vb.finishFree(id, off, n);
    return;
  }
  const va = ctx.areas.find(ctx.cpu, a);
  const s = ctx.s;
  if (
    va === 0 ||
    s.start(va) !== a ||
    s.vm(va) !== 0 ||
    (s.flags(va) & RAM_MASK) !== VaFlags.VMAP_RAM ||
    s.size(va) !== n * ctx.pageSize
  )
    refuse(ctx, a, n);
  if (ctx.areas.findUnlink(ctx.cpu, a, false) !== va)
    throw new VmallocError(
      'ENOENT',
      `Cannot ${fn}: addr must be the start of a live vm_map_ram mapping, got ${kernelHex(a)} (another call unmapped it)`,
    );
  unmapStarted = true;
  if (stepHook !== null) stepHook(S_RAM_UNLINKED);
  unmapPages(ctx, a, n);
  ctx.areas.freeLazy(ctx.cpu, va);
}

/** Why (a, n) names no live mapping: the rule, and what is there instead. Changes nothing. */
function refuse(ctx: VmContext, a: number, n: number): never {
  const fn = 'vm_unmap_ram';
  const wrongCount = (was: number): never => {
    throw new VmallocError(
      'EINVAL',
      `Cannot ${fn}: count must be the count ${kernelHex(a)} was mapped with (${was}), got ${n}`,
    );
  };
  const vb = ctx.vb;
  const id = vb.lockBlockOf(a);
  if (id !== 0) {
    const was = vb.countAt(vb.at(id), (a - vb.startOf(id)) / ctx.pageSize);
    vb.unlockBlock(id);
    if (was !== 0) wrongCount(was);
  } else {
    const va = ctx.areas.find(ctx.cpu, a);
    const s = ctx.s;
    if (
      va !== 0 &&
      s.start(va) === a &&
      s.vm(va) === 0 &&
      (s.flags(va) & RAM_MASK) === VaFlags.VMAP_RAM
    )
      wrongCount(s.size(va) / ctx.pageSize);
  }
  throw new VmallocError(
    'ENOENT',
    `Cannot ${fn}: addr must be the start of a live vm_map_ram mapping, got ${kernelHex(a)} (no mapping starts there: never mapped, unmapped already, or inside a mapping)`,
  );
}

/** Drops the frames' maps and the page-table entries of [a, a + n pages). */
function unmapPages(ctx: VmContext, a: number, n: number): void {
  const ps = ctx.pageSize;
  const pt = ctx.pageTable;
  const frames = ctx.frames;
  for (let k = 0; k < n; k++) {
    const pfn = pt.lookup(a + k * ps);
    if (pfn >= 0) frames.addMap(pfn, -1);
  }
  pt.unmap(a, n);
  WORK[W_PAGES] = WORK[W_PAGES]! + n; // (the simulator's cost model: pages unmapped)
  ctx.tlbFlushRange(a, n * ps);
}

/** Kernel: vm_unmap_aliases(): what was flushed (for tests and the curious). */
export function vmUnmapAliases(ctx: VmContext): AliasFlush {
  return unmapAliases(ctx.vb);
}
