/**
 * Memory access: reading and writing mapped pages through the page table, as a kernel load
 * or store goes through the MMU.
 *
 * Holds: read/write of byte ranges, of single bytes and of pointers, and vmalloc_to_page();
 * the per-worker translation cache in front of the page table; the fault messages.
 * Invariant: a byte is read or written only through a page-table entry that maps it; an
 * access that touches any unmapped page changes nothing and throws EFAULT.
 * Callers: the façade (src/api/vmalloc.ts).
 *
 * Kernel: the page-table walk of vmalloc_to_page(); the MMU for loads and stores.
 * A two-entry translation cache (this worker's "TLB") answers for the pages used last, so a
 * store right after a vmalloc costs no page-table walk and no lock, as a kernel store takes
 * no vmalloc lock. This worker's own unmaps drop their pages from it, and every purge (the
 * only way a freed range is handed out again) bumps a shared generation that empties every
 * worker's cache, as flush_tlb_kernel_range() reaches every CPU. As in the kernel, touching
 * an area after it was freed is a use-after-free the caller must avoid.
 */

import { VmallocError, checkInteger } from '../errors.js';
import { kernelHex } from '../shared/layout.js';
import { ADDRESS_LIMIT } from './args.js';
import type { VmContext } from './shared-state.js';

/**
 * The offset in the frames of [addr, addr + n), which must lie in one mapped page. Throws
 * EFAULT otherwise.
 */
export function physOffset(ctx: VmContext, op: string, addr: number, n: number): number {
  if (typeof addr !== 'number' || !(addr >= 0 && addr < ADDRESS_LIMIT) || !Number.isInteger(addr))
    badAddr(op, addr);
  const pageSize = ctx.pageSize;
  const inPage = addr % pageSize;
  if (inPage + n > pageSize) crossesPage(op, addr, n);
  const pfn = translate(ctx, op, addr, addr - inPage, n);
  ctx.frames.refresh();
  return pfn * pageSize + inPage;
}

/** The frame mapped at the page starting at `page`; throws EFAULT when none is. */
function translate(ctx: VmContext, op: string, addr: number, page: number, n: number): number {
  ctx.tlbSync();
  const t = ctx.tlb;
  if (t[0] === page) return t[1]!;
  if (t[2] === page) return t[3]!;
  const pfn = ctx.pageTable.lookup(page);
  if (pfn < 0) fault(ctx, op, addr, n);
  t[2] = t[0]!;
  t[3] = t[1]!;
  t[0] = page;
  t[1] = pfn;
  return pfn;
}

/** Copies between `buf` and [addr, addr + buf.length): out = read. */
export function copy(
  ctx: VmContext,
  op: string,
  addr: number,
  buf: Uint8Array,
  out: boolean,
): void {
  if (checkMapped(ctx, op, addr, buf.length)) copyMapped(ctx, addr, buf, out);
}

/**
 * The `length` bytes at `addr`, in a new array made only once every page is known to be
 * mapped (a wrong length must not first cost a buffer of that size).
 */
export function readBytes(ctx: VmContext, op: string, addr: number, length: number): Uint8Array {
  const out = new Uint8Array(checkMapped(ctx, op, addr, length) ? length : 0);
  if (length > 0) copyMapped(ctx, addr, out, true);
  return out;
}

/**
 * Checks that [addr, addr + len) lies in mapped pages (EINVAL for a bad address, EFAULT for
 * an unmapped page); false when there is nothing to copy.
 */
function checkMapped(ctx: VmContext, op: string, addr: number, len: number): boolean {
  if (typeof addr !== 'number' || !(addr >= 0 && addr < ADDRESS_LIMIT) || !Number.isInteger(addr))
    badAddr(op, addr);
  if (len === 0) return false;
  // Nothing is mapped at the top of the space (the managed space ends below 2^48).
  if (addr + len > ADDRESS_LIMIT) fault(ctx, op, addr, 0, len);
  const pageSize = ctx.pageSize;
  const first = addr - (addr % pageSize);
  const pages = Math.ceil((addr + len - first) / pageSize);
  // All or nothing: every page must be mapped before a byte moves.
  const mapped = ctx.pageTable.mapped(first, pages);
  if (mapped < pages) fault(ctx, op, addr, 0, len);
  return true;
}

/** The copy itself, over pages checkMapped() found mapped. */
function copyMapped(ctx: VmContext, addr: number, buf: Uint8Array, out: boolean): void {
  const len = buf.length;
  const pageSize = ctx.pageSize;
  ctx.frames.refresh();
  const mem = ctx.frames.bytes();
  let at = addr;
  let done = 0;
  while (done < len) {
    const inPage = at % pageSize;
    const n = Math.min(pageSize - inPage, len - done);
    const p = ctx.pageTable.lookup(at - inPage) * pageSize + inPage;
    if (out) buf.set(mem.subarray(p, p + n), done);
    else mem.set(buf.subarray(done, done + n), p);
    done += n;
    at += n;
  }
}

/** The page frame mapped at `addr`, or null. Kernel: vmalloc_to_page(). */
export function vmallocToPage(ctx: VmContext, addr: number): number | null {
  const pfn = ctx.pageTable.lookup(addr - (addr % ctx.pageSize));
  return pfn < 0 ? null : pfn;
}

function badAddr(op: string, addr: unknown): never {
  const n = checkInteger(op, 'addr', addr);
  throw new VmallocError(
    'EINVAL',
    `Cannot ${op}: addr must lie in the address space [0, 2^48), got ${n}`,
  );
}

function crossesPage(op: string, addr: number, n: number): never {
  throw new VmallocError(
    'EFAULT',
    `Cannot ${op}: addr .. addr + ${n} must lie in one page (read/write copy across pages), got ${kernelHex(addr)}`,
  );
}

/**
 * Says why [addr, addr + n) is not mapped (no area, a guard page, past the mapped pages): the
 * rule first, the reason after. `n` is 0 for the copies, whose message names their length.
 */
function fault(ctx: VmContext, op: string, addr: number, n: number, len = n): never {
  const span = n === 0 ? 'addr .. addr + length' : `addr .. addr + ${n}`;
  const rule = `Cannot ${op}: ${span} must lie in the mapped pages of a live vm area, got ${kernelHex(addr)}${n === 0 ? ` and length ${len}` : ''}`;
  const va = ctx.areas.find(ctx.cpu, addr);
  if (va === 0) throw new VmallocError('EFAULT', `${rule} (no live vm area contains it)`);
  const s = ctx.s;
  const vm = ctx.vmOf(va);
  const range = `${kernelHex(s.start(va))}-${kernelHex(s.end(va))}`;
  if (vm === 0) {
    throw new VmallocError('EFAULT', `${rule} (no page is mapped there in the area ${range})`);
  }
  const vms = ctx.vms;
  const start = vms.addr(vm);
  const mappedEnd = start + vms.nrPages(vm) * ctx.pageSize;
  const guard = addr >= start + vms.areaSize(vm, ctx.pageSize);
  throw new VmallocError(
    'EFAULT',
    `${rule} (${
      guard
        ? 'that is the guard page'
        : addr < mappedEnd
          ? 'the range runs past the mapped pages'
          : 'no page is mapped there'
    } of the vm area ${range})`,
  );
}
