/**
 * Loading a real machine's /proc/vmallocinfo: its busy layout rebuilt in this allocator, at
 * the same addresses, with the same sizes, callers and kinds.
 *
 * Holds: loadVmallocinfo(ctx, text), which parses the text (vmallocinfo-parse.ts), decides
 * where each area goes (placeLines: the printed addresses, moved to this window when the
 * kernel's was elsewhere, or dense placement when the kernel hid them), checks that the pages
 * fit, then makes each area: a vm_struct at its exact range, its pages allocated and mapped
 * (vmalloc areas, and areas printed with pages=), its caller, phys= and flags; "unpurged
 * vm_area" ranges become lazily freed ranges; a "vpages" area is linked to its pages array's
 * area when the text has it.
 * Invariant: either every line is loaded and check() holds, or nothing is (a failure after
 * some areas were made frees them and purges, then throws).
 * Callers: Vmalloc.loadVmallocinfo() (src/api/vmalloc-maps.ts).
 *
 * Differs from kernel: every area of a vmalloc line maps all of its pages here (the checker's
 * rule), so a line whose pages= is smaller (a huge or partly populated area) gets the full
 * count, with a warning; vm_map_ram lines become vm_structs with no pages and the caller
 * "vm_map_ram" (printed the same), not vmap blocks.
 *
 *   kernel (4-level x86_64, KASLR)         this allocator
 *   0xffffb3a1c0000000 vmalloc_base   ->   0xffffc90000000000 VMALLOC_START   (moved by a
 *   ... areas keep their offsets ...        multiple of 1 GiB: alignments up to 1 GiB kept)
 *   0xffffffffc0000000 modules        ->   0xffffffffc0000000 (same place, outside the window)
 */

import { VmallocError } from '../errors.js';
import { KERNEL_BASE, kernelHex } from '../shared/layout.js';
import { getVmAreaNode } from './alloc-path.js';
import { callerId } from './args.js';
import { vfreeArea } from './free-path.js';
import { FRAME_AREA } from './page-alloc.js';
import type { VmContext } from './shared-state.js';
import {
  type VmallocinfoKind,
  type VmallocinfoLine,
  parseVmallocinfo,
} from './vmallocinfo-parse.js';
import { VmFlags } from './vm-struct.js';

/** How the printed addresses were used. */
export type VmallocinfoAddresses =
  /** As printed: they lie in this allocator's window (or the modules area). */
  | 'exact'
  /** Moved, by a multiple of 1 GiB, from the kernel's vmalloc area to this window. */
  | 'rebased'
  /** Hidden (all zero, kptr_restrict): placed densely in the text's order. */
  | 'zeroed'
  /** Not usable (hashed pointers, or inconsistent): placed densely in the text's order. */
  | 'hashed'
  /** Real, but spanning more than this window: placed densely in the text's order. */
  | 'too-wide';

export interface ImportedArea {
  /** 1-based line of the text. */
  line: number;
  kind: VmallocinfoKind;
  /** Where it is now (a library address) and its size, guard page included. */
  addr: number;
  size: number;
  caller: string;
  /** Pages allocated and mapped for it. */
  pages: number;
}

export interface VmallocinfoImport {
  addresses: VmallocinfoAddresses;
  /** True when the printed addresses were not used (zeroed, hashed, too-wide). */
  dense: boolean;
  /** What was adjusted or could not be kept, one sentence each. */
  warnings: string[];
  /** Every line, in the text's order. */
  areas: ImportedArea[];
  /** Busy areas made and lazily freed ranges made. */
  busy: number;
  lazy: number;
  /** Page frames allocated for the areas. */
  pages: number;
}

/** x86_64's kernel image and modules (__START_KERNEL_map and up): kept where they are. */
const KERNEL_IMAGE = 0xffffffff80000000n;
const GIB = 2n ** 30n;
const MAX_PAGE_WARNINGS = 3;

/** The pages an area gets: a vmalloc area all of its own (its size without the guard page). */
export function pagesOfLine(l: VmallocinfoLine, pageSize: number): number {
  if (l.kind === 'unpurged' || l.kind === 'vm_map_ram') return 0;
  if ((l.flags & VmFlags.VM_ALLOC) !== 0) return l.size / pageSize - 1;
  return l.pages;
}

/** Page frames a text's areas need (for sizing physicalMemory before loading). */
export function vmallocinfoPages(text: string, pageSize = 4096): number {
  let n = 0;
  for (const l of parseVmallocinfo(text, pageSize)) n += pagesOfLine(l, pageSize);
  return n;
}

interface Placement {
  addrs: number[];
  addresses: VmallocinfoAddresses;
  warnings: string[];
}

/** Why the printed addresses cannot be real ones, or null when they can. */
function hiddenReason(lines: readonly VmallocinfoLine[]): string | null {
  for (const l of lines) {
    if (l.start === 0n) return `line ${l.line} starts at 0`;
    if (l.start < 2n ** 63n)
      return `line ${l.line} starts below the kernel half of the address space`;
    if (l.end - l.start !== BigInt(l.size))
      return `line ${l.line}: its end minus its start is ${l.end - l.start}, its size ${l.size}`;
  }
  const sorted = [...lines].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  for (let k = 1; k < sorted.length; k++) {
    if (sorted[k]!.start < sorted[k - 1]!.end)
      return `lines ${sorted[k - 1]!.line} and ${sorted[k]!.line} overlap`;
  }
  return null;
}

function placeDensely(
  ctx: VmContext,
  lines: readonly VmallocinfoLine[],
  addresses: VmallocinfoAddresses,
  why: string,
): Placement {
  const addrs: number[] = [];
  let at = ctx.vmallocStart;
  for (const l of lines) {
    addrs.push(at);
    at += l.size;
  }
  if (at > ctx.vmallocEnd)
    throw new VmallocError(
      'EINVAL',
      `Cannot load vmallocinfo: its areas take ${at - ctx.vmallocStart} bytes, more than the vmalloc window's ${ctx.vmallocEnd - ctx.vmallocStart}`,
    );
  return {
    addrs,
    addresses,
    warnings: [
      `${why}: the ${lines.length} areas are placed densely from VMALLOC_START (${kernelHex(ctx.vmallocStart)}) in the text's order, with their sizes`,
    ],
  };
}

/** Where each line goes (library addresses, in the text's order). */
function placeLines(ctx: VmContext, lines: readonly VmallocinfoLine[]): Placement {
  if (lines.length === 0) return { addrs: [], addresses: 'exact', warnings: [] };
  if (lines.every((l) => l.start === 0n && l.end === 0n))
    return placeDensely(
      ctx,
      lines,
      'zeroed',
      'the addresses are hidden (all zero: kptr_restrict; read /proc/vmallocinfo as root for the real ones)',
    );
  const reason = hiddenReason(lines);
  if (reason !== null)
    return placeDensely(
      ctx,
      lines,
      'hashed',
      `the addresses are not real kernel addresses (${reason}; hashed pointers?)`,
    );
  const cfg = ctx.config;
  const low = lines.filter((l) => l.start < KERNEL_IMAGE);
  const winStart = KERNEL_BASE + BigInt(ctx.vmallocStart);
  const winEnd = KERNEL_BASE + BigInt(ctx.vmallocEnd);
  let shift = 0n; // kernel address - shift = this allocator's kernel address
  let addresses: VmallocinfoAddresses = 'exact';
  const warnings: string[] = [];
  if (low.length > 0 && !low.every((l) => l.start >= winStart && l.end <= winEnd)) {
    const min = low.reduce((m, l) => (l.start < m ? l.start : m), low[0]!.start);
    const base = min - (min % GIB);
    shift = base - winStart;
    const max = low.reduce((m, l) => (l.end > m ? l.end : m), 0n);
    if (max - shift > winEnd)
      return placeDensely(
        ctx,
        lines,
        'too-wide',
        `the areas span ${kernelSpan(max - base)} from ${hex(base)}, more than this vmalloc window`,
      );
    addresses = 'rebased';
    warnings.push(
      `the kernel's vmalloc areas start at ${hex(base)} (KASLR, or another layout), not at this window's ${hex(winStart)}: moved there by ${kernelSpan(shift < 0n ? -shift : shift)}, alignments up to 1 GiB kept`,
    );
  }
  const addrs: number[] = [];
  const spaceStart = KERNEL_BASE + BigInt(cfg.spaceStart);
  const spaceEnd = KERNEL_BASE + BigInt(cfg.spaceEnd);
  for (const l of lines) {
    const k = l.start < KERNEL_IMAGE ? l.start - shift : l.start;
    if (k < spaceStart || k + BigInt(l.size) > spaceEnd)
      return placeDensely(
        ctx,
        lines,
        'too-wide',
        `line ${l.line} (${hex(l.start)}) lies outside this allocator's address space`,
      );
    addrs.push(Number(k - KERNEL_BASE));
  }
  return { addrs, addresses, warnings };
}

const hex = (k: bigint): string => `0x${k.toString(16).padStart(16, '0')}`;
const kernelSpan = (n: bigint): string =>
  n % GIB === 0n ? `${n / GIB} GiB` : `${(Number(n) / 2 ** 30).toFixed(1)} GiB`;

/**
 * Rebuilds the layout of a /proc/vmallocinfo text in `ctx`'s allocator (see the module header).
 * @throws VmallocError EINVAL for a bad line (its number and what was wrong) or a text whose
 * areas do not fit the window; ENOMEM when their pages exceed the free frames; EBUSY when an
 * area's range is taken already (an allocator that is not fresh). Nothing is left on a throw.
 */
export function loadVmallocinfo(ctx: VmContext, text: string): VmallocinfoImport {
  const pageSize = ctx.pageSize;
  const lines = parseVmallocinfo(text, pageSize);
  const place = placeLines(ctx, lines);
  let need = 0;
  for (const l of lines) need += pagesOfLine(l, pageSize);
  if (need > ctx.frames.freeFrames)
    throw new VmallocError(
      'ENOMEM',
      `Cannot load vmallocinfo: its areas hold ${need} pages, physical memory has ${ctx.frames.freeFrames} free frames; create the allocator with physicalMemory of at least ${(need + 1024) * pageSize} bytes`,
    );
  const warnings = place.warnings;
  const callers = lines.map((l) => {
    if (l.caller === '') return 0;
    try {
      return callerId(ctx, 'load_vmallocinfo', l.caller);
    } catch (e) {
      if (!(e instanceof VmallocError)) throw e;
      throw new VmallocError(e.code, `Cannot load vmallocinfo: line ${l.line}: ${e.message}`);
    }
  });
  const made: number[] = []; // vm_structs, in the order made
  const lazy: number[] = []; // busy areas without a vm_struct, to free lazily at the end
  const vmOfLine: number[] = [];
  const areas: ImportedArea[] = [];
  let pages = 0;
  let pageWarnings = 0;
  try {
    for (let k = 0; k < lines.length; k++) {
      const l = lines[k]!;
      const addr = place.addrs[k]!;
      const taken = (): never => {
        throw new VmallocError(
          'EBUSY',
          `Cannot load vmallocinfo: line ${l.line}: ${kernelHex(addr)}-${kernelHex(addr + l.size)} is not free in this allocator (load into a fresh one)`,
        );
      };
      if (l.kind === 'unpurged') {
        const va = ctx.areas.alloc(ctx.cpu, l.size, 1, addr, addr + l.size, 0);
        if (va === 0) taken();
        lazy.push(va);
        vmOfLine.push(0);
        areas.push({ line: l.line, kind: l.kind, addr, size: l.size, caller: '', pages: 0 });
        continue;
      }
      const ramLine = l.kind === 'vm_map_ram';
      const bytes = ramLine ? l.size : l.size - pageSize;
      // VM_IOREMAP would make getVmAreaNode align the area to its size: the kernel did that
      // already, or did not on this architecture; the printed place is kept either way.
      const n = pagesOfLine(l, pageSize);
      // A vmap area printed with pages= had them handed over (VM_MAP_PUT_PAGES): it owns them.
      const putPages = (l.flags & VmFlags.VM_MAP) !== 0 && n > 0 ? VmFlags.VM_MAP_PUT_PAGES : 0;
      const flags =
        (ramLine ? VmFlags.VM_NO_GUARD : l.flags & ~VmFlags.VM_IOREMAP) |
        putPages |
        VmFlags.VM_UNINITIALIZED;
      const caller = ramLine ? callerId(ctx, 'load_vmallocinfo', 'vm_map_ram') : callers[k]!;
      if (bytes === 0) {
        throw new VmallocError(
          'EINVAL',
          `Cannot load vmallocinfo: line ${l.line}: a ${l.kind} area of ${l.size} bytes has nothing besides its guard page`,
        );
      }
      const vm = getVmAreaNode(ctx, bytes, 1, flags, addr, addr + l.size, caller, bytes);
      if (vm === 0) taken();
      made.push(vm);
      vmOfLine.push(vm);
      if (n !== l.pages && (l.flags & VmFlags.VM_ALLOC) !== 0 && pageWarnings++ < MAX_PAGE_WARNINGS)
        warnings.push(
          `line ${l.line}: ${l.pages === 0 ? 'no pages=' : `pages=${l.pages}`} for a vmalloc area of ${n} pages: all ${n} are mapped (a vmalloc area here maps every page)`,
        );
      if (n > 0) mapNewPages(ctx, vm, addr, n, l.line);
      if (l.phys !== 0) ctx.vms.setPhysAddr(vm, l.phys);
      ctx.vms.setFlags(
        vm,
        (ctx.vms.flags(vm) & ~VmFlags.VM_UNINITIALIZED) | (l.flags & VmFlags.VM_IOREMAP),
      );
      pages += n;
      areas.push({ line: l.line, kind: l.kind, addr, size: l.size, caller: l.caller, pages: n });
    }
  } catch (e) {
    undo(ctx, made, lazy);
    throw e;
  }
  if (pageWarnings > MAX_PAGE_WARNINGS)
    warnings.push(`... and ${pageWarnings - MAX_PAGE_WARNINGS} more lines like these`);
  linkPagesArrays(ctx, lines, vmOfLine, warnings);
  // As vfree's tail does: out of the busy tree, then onto the lazy list.
  for (const va of lazy)
    ctx.areas.freeLazy(ctx.cpu, ctx.areas.findUnlink(ctx.cpu, ctx.s.start(va), false));
  const dense = place.addresses !== 'exact' && place.addresses !== 'rebased';
  return {
    addresses: place.addresses,
    dense,
    warnings,
    areas,
    busy: made.length,
    lazy: lazy.length,
    pages,
  };
}

/** Frames for a new area, its pages array, its mapping (as __vmalloc_area_node, no nesting). */
function mapNewPages(ctx: VmContext, vm: number, addr: number, n: number, line: number): void {
  const slot = ctx.pool.alloc(n);
  if (slot < 0)
    throw new VmallocError(
      'ENOMEM',
      `Cannot load vmallocinfo: line ${line}: no room for a pages array of ${n} pages`,
    );
  ctx.vms.setPages(vm, slot);
  const view = ctx.pool.view(slot);
  const at = ctx.pool.offset(slot);
  const got = ctx.frames.allocBulk(n, view, at, FRAME_AREA);
  ctx.vms.setNrPages(vm, got);
  if (got < n)
    throw new VmallocError(
      'ENOMEM',
      `Cannot load vmallocinfo: line ${line}: only ${got} of its ${n} pages could be allocated`,
    );
  ctx.pageTable.map(addr, view, at, n);
}

/** Frees what a failed load made: its areas (with their pages), then purges their ranges. */
function undo(ctx: VmContext, made: readonly number[], lazy: readonly number[]): void {
  for (let k = made.length - 1; k >= 0; k--) {
    const vm = made[k]!;
    // A half-made area (no pages mapped yet, or some) is still VM_UNINITIALIZED: clear it,
    // so that its frames go back with it.
    ctx.vms.setFlags(vm, ctx.vms.flags(vm) & ~VmFlags.VM_UNINITIALIZED);
    const n = ctx.vms.nrPages(vm);
    if (n > 0 && ctx.pageTable.lookup(ctx.vms.addr(vm)) < 0)
      ctx.pageTable.map(
        ctx.vms.addr(vm),
        ctx.pool.view(ctx.vms.pages(vm)),
        ctx.pool.offset(ctx.vms.pages(vm)),
        n,
      );
    vfreeArea(ctx, ctx.vms.addr(vm));
  }
  for (const va of lazy) {
    ctx.areas.findUnlink(ctx.cpu, ctx.s.start(va), false);
    ctx.areas.freeNow(ctx.cpu, va);
  }
  ctx.areas.reclaimAndPurge(ctx.cpu);
}

/**
 * "vpages": the area's pages array was itself vmalloc'd. Its area, a vmalloc line of the same
 * caller sized for the array (8 bytes a page, plus the guard page), becomes the area's pagesVm,
 * as __vmalloc_area_node() leaves it; without one in the text the word is dropped.
 */
function linkPagesArrays(
  ctx: VmContext,
  lines: readonly VmallocinfoLine[],
  vmOfLine: readonly number[],
  warnings: string[],
): void {
  const pageSize = ctx.pageSize;
  const used = new Set<number>();
  for (let k = 0; k < lines.length; k++) {
    const l = lines[k]!;
    if (!l.vpages || vmOfLine[k] === 0) continue;
    const arrayBytes = Math.ceil(((l.size / pageSize - 1) * 8) / pageSize) * pageSize + pageSize;
    let found = -1;
    for (let j = 0; j < lines.length && found < 0; j++) {
      const c = lines[j]!;
      if (j === k || used.has(j) || c.kind !== 'vmalloc' || c.vpages) continue;
      if (c.size === arrayBytes && c.caller === l.caller) found = j;
    }
    if (found < 0) {
      warnings.push(
        `line ${l.line}: vpages, but no vmalloc area of ${arrayBytes} bytes with its caller holds its pages array: shown without vpages`,
      );
      continue;
    }
    used.add(found);
    ctx.vms.setPagesVm(vmOfLine[k]!, vmOfLine[found]!);
  }
}
