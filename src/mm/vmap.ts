/**
 * vmap() and the vm_struct-level calls: get_vm_area, find_vm_area, remove_vm_area, and the
 * page frames users bring to vmap (alloc_pages_bulk, __free_page).
 *
 * Holds: the functions behind those façade methods and the VmArea snapshot of a vm_struct.
 * Invariant: a vmap area maps exactly the frames it was given, each an allocated frame of the
 * user's, counted in the frame's owner word (or owned by the area with VM_MAP_PUT_PAGES); a
 * frame is freed only when nothing maps or owns it; every argument is checked before anything
 * is reserved or freed.
 * Callers: the façade (src/api/vmalloc.ts).
 *
 * Kernel: vmap(), get_vm_area_caller(), find_vm_area(), remove_vm_area(), alloc_pages_bulk(),
 * __free_page().
 */

import { VmallocError, checkInteger } from '../errors.js';
import { kernelHex } from '../shared/layout.js';
import { getVmAreaNode, freeVmAreaUnused } from './alloc-path.js';
import { callerId, checkOptionNames, defaultCaller, throwEinval } from './args.js';
import { findUnlinkWithVm, releaseArea } from './free-path.js';
import { refuseRcuPending } from './rcu-guard.js';
import { FRAME_AREA, FRAME_FREE, FRAME_NONE, FRAME_USER } from './page-alloc.js';
import type { VmContext } from './shared-state.js';
import { VmFlags } from './vm-struct.js';
import { S_VMAP_MAPPED, stepHook } from '../shared/step-hook.js';

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

export interface VmapOptions {
  /** VM_* flags besides VM_MAP. */
  flags?: number;
  caller?: string;
}

const VMAP_OPTIONS = ['flags', 'caller'];
const GET_VM_AREA_OPTIONS = ['caller', 'physAddr'];

/** Flags only the vmalloc path itself may set. */
const VMALLOC_ONLY = VmFlags.VM_ALLOC | VmFlags.VM_UNINITIALIZED;
/** Every VM_* bit. */
const ALL_VM_FLAGS = Object.values(VmFlags).reduce((a, b) => a | b, 0);

function checkVmFlags(fn: string, flags: unknown): number {
  if (typeof flags !== 'number' || !Number.isInteger(flags) || flags < 0 || flags > 0x7fffffff)
    throwEinval(fn, 'flags must be VM_* bits', flags);
  if ((flags & ~ALL_VM_FLAGS) !== 0) throwEinval(fn, 'flags must be VM_* bits', flags);
  if ((flags & VMALLOC_ONLY) !== 0)
    throwEinval(
      fn,
      'flags must not include VM_ALLOC or VM_UNINITIALIZED (vmalloc sets them)',
      flags,
    );
  return flags;
}

/**
 * Maps the given page frames into a new area: the address, or null. Kernel: vmap().
 */
export function vmap(
  ctx: VmContext,
  pages: ArrayLike<number>,
  options?: VmapOptions,
): number | null {
  if (pages === null || typeof pages !== 'object' || typeof pages.length !== 'number')
    throwEinval('vmap', 'pages must be an array of page frame numbers', pages);
  if (options !== undefined) {
    if (options === null || typeof options !== 'object' || Array.isArray(options))
      throwEinval('vmap', 'options must be an object', options);
    checkOptionNames('vmap', options, VMAP_OPTIONS);
  }
  let flags = checkVmFlags('vmap', options?.flags === undefined ? 0 : options.flags);
  if ((flags & VmFlags.VM_FLUSH_RESET_PERMS) !== 0)
    throwEinval('vmap', 'flags must not include VM_FLUSH_RESET_PERMS', flags);
  const count = pages.length;
  if (!Number.isSafeInteger(count) || count < 0)
    throwEinval('vmap', 'pages.length must be a non-negative integer', count);
  if (count === 0) throwEinval('vmap', 'pages must not be empty', count);
  const putPages = (flags & VmFlags.VM_MAP_PUT_PAGES) !== 0;
  for (let k = 0; k < count; k++) checkVmapPage(ctx, pages, k, putPages);
  if (putPages)
    checkNoDuplicate(
      ctx,
      'vmap',
      'pages',
      pages,
      count,
      'VM_MAP_PUT_PAGES hands a frame over once',
    );
  const caller =
    options?.caller === undefined
      ? defaultCaller(ctx, 'vmap')
      : callerId(ctx, 'vmap', options.caller);
  if ((flags & VmFlags.VM_NO_GUARD) !== 0) {
    ctx.log.always('vmap: VM_NO_GUARD is not allowed and was removed');
    flags &= ~VmFlags.VM_NO_GUARD;
  }
  if (count > ctx.frames.nrFrames) return null;
  const vm = getVmAreaNode(
    ctx,
    count * ctx.pageSize,
    1,
    VmFlags.VM_MAP | flags,
    ctx.vmallocStart,
    ctx.vmallocEnd,
    caller,
    count * ctx.pageSize,
  );
  if (vm === 0) return null;
  const slot = ctx.pool.alloc(count);
  if (slot < 0) {
    ctx.log.warn('vmap', `vmap error: failed to allocate a pages array for ${count} pages`);
    freeVmAreaUnused(ctx, vm);
    return null;
  }
  const slots = ctx.pool.view(slot);
  const at = ctx.pool.offset(slot);
  // The frames change hands only now that the area exists: to the area with
  // VM_MAP_PUT_PAGES, else the area becomes one more user of each.
  const frames = ctx.frames;
  for (let k = 0; k < count; k++) {
    const pfn = pages[k]!;
    slots[at + k] = pfn;
    if (putPages) frames.setOwner(pfn, FRAME_AREA);
    else frames.addMap(pfn, 1);
  }
  ctx.vms.setPages(vm, slot);
  ctx.vms.setNrPages(vm, count);
  ctx.pageTable.map(ctx.vms.addr(vm), slots, at, count);
  if (stepHook !== null) stepHook(S_VMAP_MAPPED);
  return ctx.vms.addr(vm);
}

/**
 * Reserves an area of `bytes` (plus guard page) with no pages: the vm_struct id, or 0.
 * Every argument is checked first. Kernel: get_vm_area_caller().
 */
export function getVmArea(
  ctx: VmContext,
  bytes: number,
  flags: unknown,
  options?: { caller?: string; physAddr?: number },
): number {
  const f = checkVmFlags('get_vm_area', flags);
  if (options !== undefined) {
    if (options === null || typeof options !== 'object' || Array.isArray(options))
      throwEinval('get_vm_area', 'options must be an object', options);
    checkOptionNames('get_vm_area', options, GET_VM_AREA_OPTIONS);
  }
  const caller =
    options?.caller === undefined
      ? defaultCaller(ctx, 'get_vm_area_caller')
      : callerId(ctx, 'get_vm_area', options.caller);
  let phys = 0;
  if (options?.physAddr !== undefined) {
    phys = checkInteger('get_vm_area', 'physAddr', options.physAddr);
    if (phys < 0) throwEinval('get_vm_area', 'physAddr must not be negative', phys);
  }
  const vm = getVmAreaNode(
    ctx,
    Math.ceil(bytes / ctx.pageSize) * ctx.pageSize,
    1,
    f,
    ctx.vmallocStart,
    ctx.vmallocEnd,
    caller,
    bytes,
  );
  if (vm !== 0 && phys !== 0) ctx.vms.setPhysAddr(vm, phys);
  return vm;
}

/** The vm_struct of the live area containing `addr`, or 0. Kernel: find_vm_area(). */
export function findVm(ctx: VmContext, addr: number): number {
  return ctx.vmOf(ctx.areas.find(ctx.cpu, addr));
}

/**
 * Removes the area starting at `addr` without freeing its pages (the caller owns them): the
 * vm_struct it had, or null when no area starts there. Kernel: remove_vm_area().
 */
export function removeVmArea(ctx: VmContext, addr: number): VmArea | null {
  if (addr % ctx.pageSize !== 0) {
    ctx.log.always(`Trying to vfree() bad address (${kernelHex(addr)})`);
    return null;
  }
  if (ctx.rcu.anyPending()) refuseRcuPending(ctx, 'remove_vm_area', addr);
  const va = findUnlinkWithVm(ctx, addr);
  if (va <= 0) return null;
  const vm = ctx.vmOf(va);
  const snap = snapshot(ctx, vm);
  releaseArea(ctx, va, vm, false);
  return snap;
}

export function snapshot(ctx: VmContext, vm: number): VmArea {
  const vms = ctx.vms;
  const n = vms.nrPages(vm);
  const pages: number[] = [];
  for (let k = 0; k < n; k++) pages.push(ctx.pfnAt(vm, k));
  return {
    addr: vms.addr(vm),
    size: vms.size(vm),
    flags: vms.flags(vm),
    nrPages: n,
    caller: ctx.strings.text(vms.caller(vm)),
    physAddr: vms.physAddr(vm),
    pages,
  };
}

/**
 * Up to `n` page frames, the user's (fewer when memory runs out: the short count is the
 * answer, as alloc_pages_bulk() returns how many it filled). Asking for more frames than the
 * physical memory has at all is a bug in the caller, not a shortage: EINVAL.
 * Kernel: alloc_pages_bulk().
 */
export function allocPages(ctx: VmContext, n: unknown): Int32Array {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throwEinval('alloc_pages_bulk', 'n must be a non-negative integer', n);
  const total = ctx.frames.nrFrames;
  if (n > total)
    throwEinval(
      'alloc_pages_bulk',
      `n must not exceed the frames of physical memory (${total})`,
      n,
    );
  const out = new Int32Array(Math.min(n, ctx.frames.freeFrames));
  const got = ctx.frames.allocBulk(out.length, out, 0, FRAME_USER);
  return got === out.length ? out : out.slice(0, got);
}

/**
 * Returns page frames from allocPages. The whole list is checked before any frame is freed:
 * each must be the user's (EINVAL for a number that is no allocated frame, and for a frame
 * listed twice: the second would be a double free), and no vmap area may still map it
 * (EBUSY), nor may it be an area's own page (EBUSY: vfree frees those). Kernel: __free_page().
 */
export function freePages(ctx: VmContext, pfns: ArrayLike<number>): void {
  if (pfns === null || typeof pfns !== 'object' || typeof pfns.length !== 'number')
    throwEinval('__free_page', 'pfns must be an array of page frame numbers', pfns);
  const count = pfns.length;
  if (!Number.isSafeInteger(count) || count < 0)
    throwEinval('__free_page', 'pfns.length must be a non-negative integer', count);
  const frames = ctx.frames;
  for (let k = 0; k < count; k++) {
    const pfn = pfns[k];
    const owner = frames.frameOwner(pfn);
    if (owner === FRAME_USER) continue;
    if (owner === FRAME_FREE || owner === FRAME_NONE)
      throwEinval('__free_page', `pfns[${k}] must be an allocated page frame`, pfn);
    busy('__free_page', `pfns[${k}]`, pfn as number, owner);
  }
  checkNoDuplicate(ctx, '__free_page', 'pfns', pfns, count, 'a frame is freed once');
  for (let k = 0; k < count; k++) frames.free(pfns[k]!);
}

/** pages[k] may go into a vmap area: an allocated frame of the user's (see page-alloc.ts). */
function checkVmapPage(
  ctx: VmContext,
  pages: ArrayLike<number>,
  k: number,
  putPages: boolean,
): void {
  const pfn = pages[k];
  const owner = ctx.frames.frameOwner(pfn);
  if (owner >= FRAME_USER && owner < MAX_MAPS) {
    // VM_MAP_PUT_PAGES hands the frame to the area, which vfree() will free: nothing else
    // may map it then.
    if (!putPages || owner === FRAME_USER) return;
    busy('vmap', `pages[${k}]`, pfn as number, owner, ' (VM_MAP_PUT_PAGES hands it to the area)');
  }
  if (owner === FRAME_FREE || owner === FRAME_NONE)
    throwEinval('vmap', `pages[${k}] must be an allocated page frame`, pfn);
  if (owner >= MAX_MAPS)
    throwEinval('vmap', `pages[${k}] must be mapped by fewer than 2^30 areas`, pfn);
  busy('vmap', `pages[${k}]`, pfn as number, owner);
}

/** At most this many vmap areas map one frame (the owner word must not overflow). */
const MAX_MAPS = 2 ** 30;

function busy(fn: string, arg: string, pfn: number, owner: number, why = ''): never {
  const maps = owner - FRAME_USER;
  const holder =
    owner === FRAME_AREA
      ? "is an area's own page (vfree() of that area frees it)"
      : owner > FRAME_USER
        ? `is still mapped by ${maps} vmap area${maps === 1 ? '' : 's'}${why}`
        : 'is being freed or handed to an area by another call';
  throw new VmallocError(
    'EBUSY',
    `Cannot ${fn}: ${arg} must be a page frame no area holds, got pfn ${pfn}, which ${holder}`,
  );
}

/**
 * Refuses a frame listed twice (all are allocated user frames, checked before). Each frame is
 * marked in turn with a word no owner has and every mark is undone before returning, so
 * nothing is allocated and, thrown or not, the owner words end as they were.
 */
function checkNoDuplicate(
  ctx: VmContext,
  fn: string,
  arg: string,
  pfns: ArrayLike<number>,
  count: number,
  rule: string,
): void {
  const frames = ctx.frames;
  let k = 0;
  let dup = -1;
  for (; k < count; k++) {
    const pfn = pfns[k]!;
    if (frames.frameOwner(pfn) === FRAME_MARK) {
      dup = k;
      break;
    }
    frames.setOwner(pfn, FRAME_MARK);
  }
  for (let j = 0; j < k; j++) frames.setOwner(pfns[j]!, FRAME_USER);
  if (dup >= 0) {
    const first = Array.prototype.indexOf.call(pfns, pfns[dup]);
    throwEinval(fn, `${arg}[${dup}] must not repeat ${arg}[${first}] (${rule})`, pfns[dup]);
  }
}

/** A transient owner word that marks a frame already seen by checkNoDuplicate. */
const FRAME_MARK = -3;
