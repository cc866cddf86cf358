/**
 * pcpu_get_vm_areas() / pcpu_free_vm_areas(): several areas at one common base, for the
 * percpu allocator's chunks, found top-down in the free tree.
 *
 * Holds: the argument checks (the kernel's BUG_ONs, refused with VmallocError EINVAL before
 * anything changes), the congruent top-down search, the clip of every area with recovery and
 * one reclaim-and-retry, the vm_structs (VM_ALLOC, no guard page, caller pcpu_get_vm_areas),
 * and the free of such areas.
 * Invariant: a call either makes every area (each busy, with its vm_struct and VaFlags.PCPU)
 * or leaves the free tree exactly as it found it (save what the one reclaim purged).
 * Callers: the percpu allocator (src/mm/percpu.ts) and the façade.
 *
 * Kernel: pcpu_get_vm_areas(), pvm_find_va_enclose_addr(), pvm_determine_end_from_reverse(),
 * pcpu_free_vm_areas() (6.7 logic, kept in 6.9+ with per-node busy trees).
 * Differs from kernel: the BUGs are EINVAL errors (the kernel accepts unsorted offsets, and
 * so does this; overlapping areas are refused); an area larger than the window is EINVAL, not
 * a WARN and NULL; the areas carry VaFlags.PCPU. Designs without a free tree ('legacy',
 * 'rfc2018') refuse the call.
 *
 *   offsets:   0        u        2u       3u          base is the highest multiple of align
 *   areas:     [ vm 0 ] [ vm 1 ] [ vm 2 ] [ vm 3 ]    whose areas all lie in free blocks,
 *              ^base                      ^last area  with base >= vstart, end <= vend
 */

import { VmallocError } from '../errors.js';
import type { PcpuSeam } from '../designs/design.js';
import { VaFlags, type VaStore } from '../kva/vmap-area.js';
import { kernelHex } from '../shared/layout.js';
import { ADDRESS_LIMIT, defaultCaller, throwEinval } from './args.js';
import { S_PCPU_VMS_BUSY, stepHook } from '../shared/step-hook.js';
import { releaseArea } from './free-path.js';
import type { VmContext } from './shared-state.js';
import { VmFlags } from './vm-struct.js';

const FN = 'pcpu_get_vm_areas';
/** More areas than this in one call is certainly a mistake (the kernel has one per group). */
export const PCPU_MAX_VMS = 65536;

/** The checked arguments of one call. */
interface PcpuRequest {
  offsets: number[];
  sizes: number[];
  align: number;
  /** Index of the area with the highest offset (the first such). */
  last: number;
  /** offsets[last] + sizes[last] */
  lastEnd: number;
  vstart: number;
  vend: number;
}

/** The design's free-tree access, or a refusal naming the design. */
export function pcpuSeamOf(ctx: VmContext, fn: string): PcpuSeam {
  const seam = ctx.areas.design.pcpu;
  if (seam === undefined)
    throw new VmallocError(
      'EINVAL',
      `Cannot ${fn}: design '${ctx.areas.design.name}' keeps no free tree (the <= 5.1 busy-list search is not modelled), use design 'nodes', 'global' or 'offload2023'`,
    );
  return seam;
}

function numbers(name: string, v: unknown): number[] {
  if (!Array.isArray(v)) throwEinval(FN, `${name} must be an array of integers`, v);
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
      throwEinval(FN, `${name}[${i}] must be a non-negative integer`, x);
    out.push(x);
  }
  return out;
}

/** Every check of the kernel's BUG_ONs and WARN, before anything changes. */
export function checkPcpuRequest(
  ctx: VmContext,
  offsetsArg: unknown,
  sizesArg: unknown,
  alignArg: unknown,
): PcpuRequest {
  const pageSize = ctx.pageSize;
  const offsets = numbers('offsets', offsetsArg);
  const sizes = numbers('sizes', sizesArg);
  const n = offsets.length;
  if (n === 0) throwEinval(FN, 'offsets must hold at least one area (nr_vms >= 1)', '[]');
  if (n > PCPU_MAX_VMS) throwEinval(FN, `offsets must hold at most ${PCPU_MAX_VMS} areas`, n);
  if (sizes.length !== n)
    throwEinval(FN, `sizes must have as many entries as offsets (${n})`, sizes.length);
  if (
    typeof alignArg !== 'number' ||
    !Number.isSafeInteger(alignArg) ||
    alignArg < pageSize ||
    alignArg > 2 ** 47 ||
    2 ** Math.round(Math.log2(alignArg)) !== alignArg
  )
    throwEinval(
      FN,
      `align must be a power of two and a multiple of the page size (${pageSize}), at most 2^47`,
      alignArg,
    );
  const align = alignArg;
  let last = 0;
  for (let i = 0; i < n; i++) {
    if (offsets[i]! % align !== 0)
      throwEinval(FN, `offsets[${i}] must be a multiple of align (${align})`, offsets[i]);
    if (sizes[i] === 0) throwEinval(FN, `sizes[${i}] must be positive`, 0);
    if (sizes[i]! % align !== 0)
      throwEinval(FN, `sizes[${i}] must be a multiple of align (${align})`, sizes[i]);
    if (offsets[i]! > offsets[last]!) last = i;
  }
  // Overlaps, in offset order (the kernel compares every pair; sorted, neighbours suffice).
  const order = offsets.map((_, i) => i).sort((a, b) => offsets[a]! - offsets[b]! || a - b);
  for (let k = 1; k < n; k++) {
    const a = order[k - 1]!;
    const b = order[k]!;
    if (offsets[b]! < offsets[a]! + sizes[a]!)
      throw new VmallocError(
        'EINVAL',
        `Cannot ${FN}: offsets and sizes must not make two areas overlap, got area ${a} [${offsets[a]}, ${offsets[a]! + sizes[a]!}) and area ${b} [${offsets[b]}, ${offsets[b]! + sizes[b]!})`,
      );
  }
  const lastEnd = offsets[last]! + sizes[last]!;
  const cfg = ctx.config;
  const vstart = Math.ceil(cfg.vmallocStart / align) * align;
  const vend = Math.floor(cfg.vmallocEnd / align) * align;
  if (lastEnd > ADDRESS_LIMIT || vend < vstart || vend - vstart < lastEnd)
    throwEinval(
      FN,
      `sizes must keep the areas inside the vmalloc window (${Math.max(vend - vstart, 0)} bytes at align ${align}): the last area ends at offset ${lastEnd}`,
      lastEnd,
    );
  pcpuSeamOf(ctx, FN);
  return { offsets, sizes, align, last, lastEnd, vstart, vend };
}

// ---------------------------------------------------------------- the search (free lock held)

/**
 * The free block containing `addr`, its end counted in (va_end >= addr), else the highest
 * block starting at or below addr; 0 if none. Kernel: pvm_find_va_enclose_addr().
 */
export function findVaEncloseAddr(s: VaStore, h: number, addr: number): number {
  let n = s.left(h);
  let va = 0;
  while (n !== 0) {
    if (s.start(n) <= addr) {
      va = n;
      if (s.end(n) >= addr) break;
      n = s.right(n);
    } else {
      n = s.left(n);
    }
  }
  return va;
}

/**
 * From block `va` down the free list: the first block whose aligned top (its end rounded
 * down, at most vend) is above its start. Sets cur[0] to that block (0: none) and returns
 * the top (0: none). Kernel: pvm_determine_end_from_reverse().
 */
function determineEndFromReverse(
  s: VaStore,
  h: number,
  cur: Int32Array,
  align: number,
  vend: number,
): number {
  for (let va = cur[0]!; va !== 0 && va !== h; va = s.prev(va)) {
    const top = Math.min(Math.floor(s.end(va) / align) * align, vend);
    if (s.start(va) < top) {
      cur[0] = va;
      return top;
    }
  }
  cur[0] = 0;
  return 0;
}

/**
 * The highest base at which every area lies in a free block, or -1. Walks the areas as a
 * ring from the last one down; whenever the base moves, the area that moved it becomes the
 * terminal one and the ring is checked again from there.
 */
function searchBase(s: VaStore, h: number, r: PcpuRequest): number {
  const n = r.offsets.length;
  const cur = new Int32Array(1);
  let area = r.last;
  let term = area;
  let start = r.offsets[area]!;
  let end = start + r.sizes[area]!;
  cur[0] = findVaEncloseAddr(s, h, r.vend);
  let base = determineEndFromReverse(s, h, cur, r.align, r.vend) - end;
  for (;;) {
    if (base < r.vstart) return -1; // below the window (the kernel's wrap check)
    const va = cur[0]!;
    if (va === 0) return -1;
    if (base + end > s.end(va)) {
      // The area runs past this block's end: move base down under the block's aligned top.
      base = determineEndFromReverse(s, h, cur, r.align, r.vend) - end;
      term = area;
      continue;
    }
    if (base + start < s.start(va)) {
      // The area starts below this block: try under the block before it.
      const prev = s.prev(va);
      cur[0] = prev === h ? 0 : prev;
      base = determineEndFromReverse(s, h, cur, r.align, r.vend) - end;
      term = area;
      continue;
    }
    area = (area + n - 1) % n;
    if (area === term) return base;
    start = r.offsets[area]!;
    end = start + r.sizes[area]!;
    cur[0] = findVaEncloseAddr(s, h, base + end);
  }
}

// ---------------------------------------------------------------- allocate and free

/**
 * Makes the areas of a checked request: their vm_struct ids in argument order, or null when
 * no base fits even after one reclaim. `faultAt` (tests only) makes the clip of that area fail,
 * on every attempt, to exercise the recovery. `onBase` (the percpu allocator) learns the base
 * before any area is busy, so that recovery can tell a half-made chunk's areas by it.
 */
export function pcpuGetVmAreasChecked(
  ctx: VmContext,
  r: PcpuRequest,
  faultAt = -1,
  onBase: ((base: number) => void) | null = null,
): number[] | null {
  const seam = pcpuSeamOf(ctx, FN);
  const s = ctx.s;
  const vms = ctx.vms;
  const n = r.offsets.length;
  const vas = new Array<number>(n).fill(0);
  const vmIds = new Array<number>(n).fill(0);
  const releaseAll = (): null => {
    for (let i = 0; i < n; i++) {
      if (vas[i] !== 0) s.free(vas[i]!);
      if (vmIds[i] !== 0) vms.free(vmIds[i]!);
    }
    return null;
  };
  // The records up front, before any lock (the kernel's kzalloc of vas[] and vms[]).
  for (let i = 0; i < n; i++) {
    vmIds[i] = vms.allocZeroed();
    vas[i] = s.alloc();
    if (vmIds[i] === 0 || vas[i] === 0) return releaseAll();
  }
  let purged = false;
  let base = -1;
  for (;;) {
    for (let i = 0; i < n; i++) if (vas[i] === 0 && (vas[i] = s.alloc()) === 0) return releaseAll();
    seam.preload(ctx.cpu);
    ctx.areas.take(seam.lock, ctx.cpu);
    const h = seam.head;
    base = searchBase(s, h, r);
    let clipped = 0;
    if (base >= 0) {
      for (; clipped < n; clipped++) {
        const at = base + r.offsets[clipped]!;
        const nva = vas[clipped]!;
        s.setRange(nva, at, at + r.sizes[clipped]!);
        const va = findVaEncloseAddr(s, h, at);
        if (va === 0 || clipped === faultAt || seam.clipLocked(ctx.cpu, va, nva) !== 0) break;
      }
      if (clipped < n) {
        // Recovery: the areas clipped so far go back (their records may be consumed).
        for (let i = 0; i < clipped; i++) {
          seam.mergeLocked(vas[i]!);
          vas[i] = 0;
        }
        base = -1;
      }
    }
    seam.lock.unlock();
    if (base >= 0) break;
    if (purged) return releaseAll();
    ctx.areas.reclaimAndPurge(ctx.cpu);
    purged = true;
  }
  if (onBase !== null) onBase(base);
  const caller = defaultCaller(ctx, FN);
  for (let i = 0; i < n; i++) {
    const va = vas[i]!;
    const vm = vmIds[i]!;
    s.setFlags(va, VaFlags.PCPU);
    s.setVm(va, vm);
    vms.setFlags(vm, VmFlags.VM_ALLOC);
    vms.setArea(vm, s.start(va), s.size(va));
    vms.setCaller(vm, caller);
    vms.setVa(vm, va);
    seam.insertBusy(ctx.cpu, va);
    if (stepHook !== null && n > 1 && i === 0) stepHook(S_PCPU_VMS_BUSY);
  }
  return vmIds;
}

/**
 * Checks that every address starts a live pcpu_get_vm_areas area, each once; returns the
 * addresses. Nothing changes. `owned(addr)` names the owner refusing the free (the percpu
 * allocator's chunks), or null.
 */
export function checkPcpuFree(
  ctx: VmContext,
  fn: string,
  addrs: readonly number[],
  owned: (addr: number) => string | null,
): void {
  const seen = new Set<number>();
  for (let i = 0; i < addrs.length; i++) {
    const addr = addrs[i]!;
    const va = ctx.areas.find(ctx.cpu, addr);
    if (va === 0 || ctx.s.start(va) !== addr || (ctx.s.flags(va) & VaFlags.PCPU) === 0)
      throw new VmallocError(
        'ENOENT',
        `Cannot ${fn}: areas[${i}] must be a live area made by pcpu_get_vm_areas(), got ${kernelHex(addr)}`,
      );
    if (seen.has(addr))
      throw new VmallocError(
        'EINVAL',
        `Cannot ${fn}: areas must list each area once, got ${kernelHex(addr)} twice`,
      );
    seen.add(addr);
    const owner = owned(addr);
    if (owner !== null)
      throw new VmallocError(
        'EBUSY',
        `Cannot ${fn}: areas[${i}] must not be an area of ${owner} (it frees its areas itself), got ${kernelHex(addr)}`,
      );
  }
}

/**
 * Frees areas known to be live pcpu areas (checked): unlinked, their vm_structs freed, their
 * ranges lazily freed. Their pages must be unmapped already. Kernel: pcpu_free_vm_areas() ->
 * free_vm_area().
 */
export function pcpuFreeChecked(ctx: VmContext, addrs: readonly number[]): void {
  for (const addr of addrs) {
    const va = ctx.areas.findUnlink(ctx.cpu, addr, false);
    if (va <= 0) throw new VmallocError('ENOENT', `pcpu area ${kernelHex(addr)} vanished`);
    releaseArea(ctx, va, ctx.vmOf(va), false, false);
  }
}
