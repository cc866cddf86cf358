/**
 * The free path: vfree(), vunmap(), remove_vm_area(), down to the lazy free of the range.
 *
 * Holds: the busy lookup that refuses what is not the start of a live vm area (naming the
 * argument and the rule, with the kernel's wording as context), and releaseArea(): unmap, free the pages and the pages array, free the
 * vm_struct, hand the range to the lazy list.
 * Invariant: nothing changes before the address is known to start a live vm area; after
 * releaseArea() no page of the range is mapped and no translation of it is cached here.
 * Callers: the façade (vfree, vunmap, removeVmArea) and the allocation path's error paths.
 *
 * Kernel: vfree(), vunmap(), remove_vm_area() -> find_unlink_vmap_area(),
 * vunmap_range_noflush(), free_unmap_vmap_area(), free_vmap_area_noflush().
 * Differs from kernel: vfree of an address inside an area throws ENOENT (the kernel would
 * unlink by containment and then WARN).
 */

import { VmallocError, checkInteger } from '../errors.js';
import { VaFlags } from '../kva/vmap-area.js';
import { kernelHex } from '../shared/layout.js';
import { ADDRESS_LIMIT, checkAddr } from './args.js';
import { FRAME_USER } from './page-alloc.js';
import { PTRS_PER_TABLE } from './page-table-format.js';
import { refuseRcuPending } from './rcu-guard.js';
import type { VmContext } from './shared-state.js';
import { VmFlags } from './vm-struct.js';
import {
  S_ARRAY_FREED,
  S_FRAMES_FREED,
  S_NESTED_FREED,
  S_UNLINKED,
  S_UNMAPPED,
  S_VM_FREED,
  stepHook,
} from '../shared/step-hook.js';
import { WORK, W_PAGES } from '../shared/sim-hook.js';

/** findUnlinkWithVm's results besides an area id. */
const UNLINK_NONE = 0;
const UNLINK_INSIDE = -1;
const UNLINK_NO_VM = -2;

/**
 * Checks `addr` and unlinks its area from the busy tree; throws (the rule, then the kernel's
 * wording) when it is not the start of a live vm area (nothing changes then).
 * Kernel: remove_vm_area() -> find_unlink_vmap_area().
 */
export function unlinkForFree(
  ctx: VmContext,
  fn: 'vfree' | 'vunmap' | 'remove_vm_area',
  addr: number,
): number {
  if (typeof addr !== 'number' || !Number.isSafeInteger(addr)) checkInteger(fn, 'addr', addr);
  if (addr < 0 || addr >= ADDRESS_LIMIT) checkAddr(fn, addr);
  const name = fn === 'vunmap' ? 'vunmap' : 'vfree';
  if (addr % ctx.pageSize !== 0) {
    throw new VmallocError(
      'EINVAL',
      `Cannot ${fn}: addr must be page-aligned (a multiple of ${ctx.pageSize}), got ${kernelHex(addr)} (the kernel: "Trying to ${name}() bad address")`,
    );
  }
  if (fn === 'vunmap') refuseVmallocArea(ctx, addr);
  if (ctx.rcu.anyPending()) refuseRcuPending(ctx, fn, addr);
  const va = findUnlinkWithVm(ctx, addr);
  if (va > 0) return va;
  const kernel = `(the kernel: "Trying to ${name}() nonexistent vm area")`;
  const rule = `Cannot ${fn}: addr must be the start of a live vm area, got ${kernelHex(addr)}`;
  if (va === UNLINK_NONE) throw new VmallocError('ENOENT', `${rule} ${kernel}`);
  const s = ctx.s;
  const found = lastFound;
  const at = `${kernelHex(s.start(found))}-${kernelHex(s.end(found))}`;
  if (va === UNLINK_INSIDE) {
    throw new VmallocError(
      'ENOENT',
      `${rule}, which lies inside the vm area ${at}: pass its start ${kernel}`,
    );
  }
  if ((s.flags(found) & VaFlags.PCPU) !== 0)
    throw new VmallocError(
      'ENOENT',
      `${rule}, which starts the pcpu_get_vm_areas area ${at}: use pcpu_free_vm_areas() (free_percpu() for a percpu object)`,
    );
  throw new VmallocError(
    'ENOENT',
    `${rule}, which starts the vm_map_ram area ${at}: use vm_unmap_ram() ${kernel}`,
  );
}

/**
 * vunmap() of a vmalloc area would leave its pages owned by no one (the kernel leaks them):
 * refused, with the call that frees it. One more lookup, on vunmap only.
 */
function refuseVmallocArea(ctx: VmContext, addr: number): void {
  const va = ctx.areas.find(ctx.cpu, addr);
  if (va === 0 || ctx.s.start(va) !== addr) return;
  const vm = ctx.vmOf(va);
  if (vm !== 0 && (ctx.vms.flags(vm) & VmFlags.VM_ALLOC) !== 0)
    throw new VmallocError(
      'EINVAL',
      `Cannot vunmap: addr must not be a vmalloc area (free it with vfree()), got ${kernelHex(addr)}`,
    );
}

/** The area found by the last refused lookup (for the error message). */
let lastFound = 0;

/**
 * Unlinks the busy area starting at addr if it has a vm_struct and returns it; else an
 * UNLINK_ code (nothing changed). An address inside an area, or a vm_map_ram area, is
 * refused: the kernel would unlink and orphan it.
 */
export function findUnlinkWithVm(ctx: VmContext, addr: number): number {
  const va = ctx.areas.findUnlink(ctx.cpu, addr, true);
  if (va >= 0) return va;
  lastFound = -va;
  return ctx.s.start(-va) !== addr ? UNLINK_INSIDE : UNLINK_NO_VM;
}

/**
 * Unmaps an unlinked area (unless it was never `mapped`), frees its pages (when `freePages`),
 * its pages array and vm_struct, and hands its range to the lazy list. Kernel: the tail of vfree() + free_unmap_vmap_area().
 */
export function releaseArea(
  ctx: VmContext,
  va: number,
  vm: number,
  freePages: boolean,
  mapped = true,
): void {
  if (stepHook !== null) stepHook(S_UNLINKED);
  const vms = ctx.vms;
  const nrPages = vms.nrPages(vm);
  const addr = vms.addr(vm);
  if (mapped && nrPages > 0) {
    // (region, pte index) are small integers: the address itself would be boxed by the call.
    const x = addr * ctx.pageTable.invPage;
    ctx.pageTable.unmapRegion(Math.floor(x * (1 / PTRS_PER_TABLE)), x & 511, nrPages);
    ctx.tlbFlushRange(addr, nrPages * ctx.pageSize);
    if (stepHook !== null) stepHook(S_UNMAPPED);
  }
  if (nrPages > 0 || (vms.flags(vm) & (VmFlags.VM_ALLOC | VmFlags.VM_MAP)) !== 0) {
    const slot = vms.pages(vm);
    if (nrPages > 0) releasePages(ctx, vm, slot, nrPages, freePages);
    if (stepHook !== null) stepHook(S_FRAMES_FREED);
    // The array's length is known exactly when every page came (it was made for the area's
    // size): it may then go to this cpu's cache of free arrays.
    if (nrPages > 0 || slot !== 0)
      ctx.pool.free(slot, nrPages === vms.areaSize(vm, ctx.pageSize) / ctx.pageSize ? nrPages : 0);
    if (stepHook !== null) stepHook(S_ARRAY_FREED);
  }
  const pagesVm = vms.pagesVm(vm);
  vms.free(vm);
  if (stepHook !== null) stepHook(S_VM_FREED);
  ctx.s.setVm(va, 0);
  ctx.areas.freeLazy(ctx.cpu, va);
  if (pagesVm !== 0) {
    if (stepHook !== null) stepHook(S_NESTED_FREED);
    vfreeArea(ctx, vms.addr(pagesVm));
  }
}

/**
 * The pages of an area that goes away: freed (`free`), or left to the user. A vmap area
 * without VM_MAP_PUT_PAGES only drops its map of each user frame; an area that owned its
 * pages (vmalloc, VM_MAP_PUT_PAGES) and does not free them hands them to the user
 * (remove_vm_area, vunmap of such an area), who may then freePages() them.
 */
function releasePages(
  ctx: VmContext,
  vm: number,
  slot: number,
  nrPages: number,
  free: boolean,
): void {
  const frames = ctx.frames;
  const slots = ctx.pool.view(slot);
  const at = ctx.pool.offset(slot);
  if (free) {
    WORK[W_PAGES] = WORK[W_PAGES]! + nrPages; // (the simulator's cost model)
    for (let k = 0; k < nrPages; k++) frames.free(slots[at + k]!);
    return;
  }
  const flags = ctx.vms.flags(vm);
  const owned = (flags & VmFlags.VM_MAP) === 0 || (flags & VmFlags.VM_MAP_PUT_PAGES) !== 0;
  if (owned) for (let k = 0; k < nrPages; k++) frames.setOwner(slots[at + k]!, FRAME_USER);
  else for (let k = 0; k < nrPages; k++) frames.addMap(slots[at + k]!, -1);
}

/** vfree() of a known-good address (the nested pages array of an area). */
export function vfreeArea(ctx: VmContext, addr: number): void {
  const va = unlinkForFree(ctx, 'vfree', addr);
  const vm = ctx.vmOf(va);
  releaseArea(ctx, va, vm, freesPagesOnVfree(ctx, vm));
}

/** vfree() frees the pages of a vmalloc area, and of a vmap area only with VM_MAP_PUT_PAGES. */
export function freesPagesOnVfree(ctx: VmContext, vm: number): boolean {
  const flags = ctx.vms.flags(vm);
  return (flags & VmFlags.VM_MAP) === 0 || (flags & VmFlags.VM_MAP_PUT_PAGES) !== 0;
}
