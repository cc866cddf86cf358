/**
 * The allocation path: from vmalloc() to a mapped area with its pages.
 *
 * Holds: allocate() (the checked entry of vmalloc, vzalloc, vmalloc_huge and their per-call
 * options), vmallocNodeRange() (an area, its pages array, its pages, their mapping),
 * getVmAreaNode() (a vm_struct and its address range), and the undo of a half-made area.
 * Invariant: an allocation either returns a complete area (vm_struct, pages, page-table
 * entries, VM_UNINITIALIZED cleared) or leaves nothing behind (a warning was logged).
 * Callers: the façade (vmalloc, vmalloc_huge, vzalloc, get_vm_area) and vmap.ts.
 *
 * Kernel: __vmalloc_node_range(), __get_vm_area_node(), __vmalloc_area_node(),
 * vmap_pages_range().
 *
 *   vmalloc(size)
 *     -> __get_vm_area_node: vm_struct, size + guard page, alloc_vmap_area (busy)
 *     -> __vmalloc_area_node: pages array (kmalloc, or a nested vmalloc above a page),
 *        nrPages frames, zeroed for vzalloc, mapped in the page table
 */

import { invariantFailure } from '../debug.js';
import { callerId, checkAlign, checkByteSize, defaultCaller, throwEinval } from './args.js';
import { releaseArea } from './free-path.js';
import { FRAME_AREA } from './page-alloc.js';
import { PTRS_PER_TABLE } from './page-table-format.js';
import type { VmContext } from './shared-state.js';
import { VmFlags } from './vm-struct.js';
import {
  S_COMPLETE,
  S_FRAMES,
  S_MAPPED,
  S_PAGES_ARRAY,
  S_VM_ATTACHED,
  S_VM_RESERVED,
  S_VM_TAKEN,
  stepHook,
} from '../shared/step-hook.js';
import { WORK, W_BYTES, W_PAGES } from '../shared/sim-hook.js';

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

/**
 * The entry of vmalloc(), vzalloc() and vmalloc_huge(): checks the size and the per-call
 * options (an array is refused; unknown keys are ignored: a key loop here would cost every
 * call), then allocates; the address or null. A huge request (VM_ALLOW_HUGE_VMAP, at least a
 * PMD) is tried PMD-aligned first.
 */
export function allocate(
  ctx: VmContext,
  fn: string,
  size: number,
  options: VmallocAllocOptions | undefined,
  zeroed: boolean,
  vmFlags: number,
): number | null {
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
  const start = ctx.vmallocStart;
  const end = ctx.vmallocEnd;
  let addr: number | null;
  const pmd = ctx.pageSize * (ctx.pageSize / 8);
  if (vmFlags !== 0 && bytes >= pmd) {
    const huge = Math.ceil(bytes / pmd) * pmd;
    addr = vmallocNodeRange(ctx, huge, Math.max(align, pmd), start, end, zero, vmFlags, caller);
    addr ??= vmallocNodeRange(ctx, bytes, align, start, end, zero, vmFlags, caller);
  } else {
    addr = vmallocNodeRange(ctx, bytes, align, start, end, zero, 0, caller);
  }
  return addr;
}

/**
 * Kernel: __vmalloc_node_range(): the area, its pages array, its pages, their mapping.
 * Returns the address, or null (address space, page frames or page arrays ran out).
 */
export function vmallocNodeRange(
  ctx: VmContext,
  realSize: number,
  align: number,
  start: number,
  end: number,
  zero: boolean,
  vmFlags: number,
  caller: number,
): number | null {
  const pageSize = ctx.pageSize;
  const size = Math.ceil(realSize / pageSize) * pageSize;
  if (size / pageSize > ctx.frames.nrFrames) {
    ctx.log.warn('__vmalloc_node_range', `vmalloc error: size ${realSize}, exceeds total pages`);
    return null;
  }
  const vm = getVmAreaNode(
    ctx,
    size,
    align,
    VmFlags.VM_ALLOC | VmFlags.VM_UNINITIALIZED | vmFlags,
    start,
    end,
    caller,
    realSize,
  );
  if (vm === 0) {
    ctx.log.warn(
      '__vmalloc_node_range',
      `vmalloc error: size ${realSize}, vm_struct allocation failed`,
    );
    return null;
  }
  if (!allocAreaPages(ctx, vm, zero)) return null;
  // The area is complete: show it in vmallocinfo from now on.
  ctx.vms.setFlags(vm, ctx.vms.flags(vm) & ~VmFlags.VM_UNINITIALIZED);
  if (stepHook !== null) stepHook(S_COMPLETE);
  return ctx.vms.addr(vm);
}

/**
 * Reserves address space for a vm_struct: size + a guard page unless VM_NO_GUARD. Returns the
 * vm_struct id, or 0. Kernel: __get_vm_area_node().
 */
export function getVmAreaNode(
  ctx: VmContext,
  size: number,
  align: number,
  flags: number,
  start: number,
  end: number,
  caller: number,
  requested: number,
): number {
  const vms = ctx.vms;
  if ((flags & VmFlags.VM_IOREMAP) !== 0) {
    // ioremap areas are aligned to their (power-of-two rounded) size, within limits.
    const order = Math.min(
      Math.max(Math.ceil(Math.log2(size)), Math.log2(ctx.pageSize)),
      7 + Math.log2(ctx.pageSize),
    );
    align = 2 ** order;
  }
  const vm = vms.allocZeroed();
  if (vm === 0) return 0;
  if (stepHook !== null) stepHook(S_VM_TAKEN);
  const total = (flags & VmFlags.VM_NO_GUARD) !== 0 ? size : size + ctx.pageSize;
  vms.setFlags(vm, flags);
  vms.setCaller(vm, caller);
  vms.setRequestedSize(vm, requested);
  const va = ctx.areas.alloc(ctx.cpu, total, align, start, end, 0);
  if (va === 0) {
    vms.free(vm);
    return 0;
  }
  if (stepHook !== null) stepHook(S_VM_RESERVED);
  const s = ctx.s;
  vms.setArea(vm, s.start(va), s.size(va));
  vms.setVa(vm, va);
  s.setVm(va, vm);
  if (stepHook !== null) stepHook(S_VM_ATTACHED);
  return vm;
}

/**
 * The pages array and the pages of a VM_ALLOC area, mapped; on failure everything is
 * released and false returned. Kernel: __vmalloc_area_node().
 */
function allocAreaPages(ctx: VmContext, vm: number, zero: boolean): boolean {
  const vms = ctx.vms;
  const pageSize = ctx.pageSize;
  const nrPages = vms.areaSize(vm, pageSize) / pageSize;
  const arrayBytes = nrPages * 8;
  // The array of page pointers itself: kmalloc'd up to a page, vmalloc'd above (a second
  // area right after this one, shown as "vpages" in vmallocinfo).
  if (arrayBytes > pageSize) {
    const nested = vmallocNodeRange(
      ctx,
      arrayBytes,
      1,
      ctx.vmallocStart,
      ctx.vmallocEnd,
      false,
      0,
      vms.caller(vm),
    );
    if (nested === null) {
      ctx.log.warn(
        '__vmalloc_area_node',
        `vmalloc error: size ${vms.areaSize(vm, pageSize)}, failed to allocated page array size ${arrayBytes}`,
      );
      freeVmAreaUnused(ctx, vm);
      return false;
    }
    const nva = ctx.areas.find(ctx.cpu, nested);
    vms.setPagesVm(vm, ctx.vmOf(nva));
  }
  const slot = ctx.pool.alloc(nrPages);
  if (slot < 0) {
    // The pages array could not be allocated (kmalloc failed): undo as vfree would.
    ctx.log.warn(
      '__vmalloc_area_node',
      `vmalloc error: size ${nrPages * pageSize}, failed to allocated page array size ${arrayBytes}`,
    );
    unlinkAndRelease(ctx, vm);
    return false;
  }
  vms.setPages(vm, slot);
  if (stepHook !== null) stepHook(S_PAGES_ARRAY);
  const view = ctx.pool.view(slot);
  const at = ctx.pool.offset(slot);
  const got = ctx.frames.allocBulk(nrPages, view, at, FRAME_AREA);
  vms.setNrPages(vm, got);
  if (got < nrPages) {
    ctx.log.warn(
      '__vmalloc_area_node',
      `vmalloc error: size ${nrPages * pageSize}, page order 0, failed to allocate pages`,
    );
    // As the kernel's vfree(area->addr): unlink from the busy tree, free what was got.
    unlinkAndRelease(ctx, vm);
    return false;
  }
  if (stepHook !== null) stepHook(S_FRAMES);
  if (zero) for (let k = 0; k < nrPages; k++) ctx.frames.zero(view[at + k]!);
  // (region, pte index) are small integers: the address itself would be boxed by the call.
  const x = vms.addr(vm) * ctx.pageTable.invPage;
  ctx.pageTable.mapRegion(Math.floor(x * (1 / PTRS_PER_TABLE)), x & 511, view, at, nrPages);
  if (stepHook !== null) stepHook(S_MAPPED);
  // The simulator's cost model (see WORK): pages allocated and mapped, bytes zeroed.
  WORK[W_PAGES] = WORK[W_PAGES]! + nrPages;
  if (zero) WORK[W_BYTES] = WORK[W_BYTES]! + nrPages * pageSize;
  return true;
}

/** vfree() of a half-made area: its pages so far (not mapped yet) and everything it holds. */
function unlinkAndRelease(ctx: VmContext, vm: number): void {
  const va = ctx.vms.va(vm);
  if (ctx.areas.findUnlink(ctx.cpu, ctx.s.start(va), true) !== va)
    invariantFailure(`area #${va} vanished from the busy tree`);
  releaseArea(ctx, va, vm, true, false);
}

/** Undoes getVmAreaNode for an area that has no pages yet (its range goes back at once). */
export function freeVmAreaUnused(ctx: VmContext, vm: number): void {
  const va = ctx.vms.va(vm);
  const found = ctx.areas.findUnlink(ctx.cpu, ctx.s.start(va), false);
  if (found !== va) invariantFailure(`area #${va} vanished from the busy tree`);
  ctx.s.setVm(va, 0);
  ctx.vms.free(vm);
  ctx.areas.freeNow(ctx.cpu, va);
}
