/**
 * check(): every invariant of the subsystem, verified from the shared state.
 *
 * Holds: the whole-state check: the design's structures and record accounting (through the
 * core), every vm_struct against its area, every page owned once, the page table against the
 * areas' pages (and nothing else mapped), the page allocator, the page-array pool.
 * Invariant checked: see Vmalloc.check(); throws VmallocError EINVARIANT naming the first
 * violation.
 * Callers: the façade (check(), and the checked mode after every operation).
 */

import { invariantFailure } from '../debug.js';
import { kernelHex } from '../shared/layout.js';
import { VaFlags } from '../kva/vmap-area.js';
import { checkRcu } from './kvfree-rcu.js';
import { FRAME_AREA, FRAME_USER } from './page-alloc.js';
import { checkPercpu } from './percpu-check.js';
import type { VmContext } from './shared-state.js';
import { VmFlags, type VmStore } from './vm-struct.js';
import { checkVmMapRam } from './vmap-block-check.js';

export function checkAll(ctx: VmContext): void {
  ctx.refreshAll();
  const s = ctx.s;
  const vms = ctx.vms;
  const cfg = ctx.config;
  const pageSize = ctx.pageSize;
  const { busy, lazy } = ctx.areas.check(cfg.spaceStart, cfg.spaceEnd);
  // Frames an area owns (vmalloc, VM_MAP_PUT_PAGES), and how many vmap areas map each user frame.
  const owner = new Map<number, number>();
  const maps = new Map<number, number>();
  const liveVms: number[] = [];
  const poolRanges = new Map(ctx.pool.ranges().map((r) => [r.start, r.end - r.start]));
  const cached = ctx.pool.cached();
  let mappedPages = 0;
  for (const va of busy) {
    const vm = s.vm(va);
    if (vm === 0) continue;
    liveVms.push(vm);
    const where = `vm_struct #${vm} of area ${kernelHex(s.start(va))}`;
    if (vms.va(vm) !== va) invariantFailure(`${where} points to area #${vms.va(vm)}`);
    if (vms.addr(vm) !== s.start(va) || vms.size(vm) !== s.size(va))
      invariantFailure(
        `${where}: addr/size ${vms.addr(vm)}/${vms.size(vm)} differ from the area's`,
      );
    const flags = vms.flags(vm);
    if ((flags & VmFlags.VM_UNINITIALIZED) !== 0)
      invariantFailure(`${where} is still VM_UNINITIALIZED`);
    const nrPages = vms.nrPages(vm);
    if ((s.flags(va) & VaFlags.PCPU) !== 0) {
      // pcpu_get_vm_areas(): no pages array; a percpu chunk maps pages itself (checked below).
      if (flags !== VmFlags.VM_ALLOC || nrPages !== 0 || vms.size(vm) !== s.size(va))
        invariantFailure(`${where}: a pcpu area must be VM_ALLOC with no pages array`);
      continue;
    }
    const areaBytes = vms.areaSize(vm, pageSize);
    if ((flags & VmFlags.VM_ALLOC) !== 0 && nrPages !== areaBytes / pageSize)
      invariantFailure(`${where} has ${nrPages} pages for ${areaBytes} bytes`);
    if (nrPages === 0) continue;
    const slot = vms.pages(vm);
    const slots = ctx.pool.view(slot);
    const at = ctx.pool.offset(slot);
    if (cached.has(slot))
      invariantFailure(`${where}: its pages array (slot ${slot}) is also in a cpu's free cache`);
    if (poolRanges.get(slot) !== ctx.pool.lengthFor(nrPages))
      invariantFailure(
        `${where}: its pages array (slot ${slot}) is not a live pool range of ${ctx.pool.lengthFor(nrPages)}`,
      );
    const addr = vms.addr(vm);
    const ownsPages = (flags & VmFlags.VM_MAP) === 0 || (flags & VmFlags.VM_MAP_PUT_PAGES) !== 0;
    for (let k = 0; k < nrPages; k++) {
      const pfn = slots[at + k]!;
      if (!ctx.frames.isInUse(pfn))
        invariantFailure(`${where} maps pfn ${pfn}, which is not allocated`);
      const pte = ctx.pageTable.lookup(addr + k * pageSize);
      if (pte !== pfn)
        invariantFailure(
          `${where}: the page table maps page ${k} to ${pte < 0 ? 'nothing' : `pfn ${pte}`}, its pages array to pfn ${pfn}`,
        );
      if (ownsPages) {
        if (owner.has(pfn))
          invariantFailure(
            `pfn ${pfn} belongs to two vmalloc areas (#${owner.get(pfn)} and #${vm})`,
          );
        owner.set(pfn, vm);
      } else {
        maps.set(pfn, (maps.get(pfn) ?? 0) + 1);
      }
    }
    if (
      addr + nrPages * pageSize < s.end(va) &&
      ctx.pageTable.lookup(addr + nrPages * pageSize) >= 0
    )
      invariantFailure(`${where}: the page after its mapped pages (the guard page) is mapped`);
    mappedPages += nrPages;
  }
  mappedPages += checkVmMapRam(ctx, busy, lazy, maps);
  const pcpu = checkPercpu(ctx);
  mappedPages += pcpu.mapped;
  for (const [pfn, vm] of pcpu.frames) {
    if (!ctx.frames.isInUse(pfn))
      invariantFailure(`percpu maps pfn ${pfn}, which is not allocated`);
    if (owner.has(pfn))
      invariantFailure(`pfn ${pfn} belongs to a percpu chunk and to vm_struct #${owner.get(pfn)}`);
    owner.set(pfn, vm);
  }
  const ptPages = ctx.pageTable.pages;
  if (ptPages !== mappedPages)
    invariantFailure(
      `the page table maps ${ptPages} pages, the live areas ${mappedPages} (a stale mapping)`,
    );
  checkOwnerWords(ctx, owner, maps);
  checkVmStore(vms, liveVms);
  const problems = ctx.frames.checkProblems();
  if (problems.length > 0) invariantFailure(`page allocator: ${problems[0]}`);
  ctx.pool.check();
  checkRcu(ctx);
}

/** Every frame's owner word says what the live areas say of it (see page-alloc.ts). */
function checkOwnerWords(
  ctx: VmContext,
  owner: Map<number, number>,
  maps: Map<number, number>,
): void {
  const words = ctx.frames.owners();
  for (let pfn = 0; pfn < words.length; pfn++) {
    const word = words[pfn]!;
    if (word === FRAME_AREA) {
      if (!owner.has(pfn))
        invariantFailure(`pfn ${pfn} is marked as an area's page, but no live area owns it`);
    } else if (owner.has(pfn)) {
      invariantFailure(`pfn ${pfn} is owned by vm_struct #${owner.get(pfn)}, its word is ${word}`);
    } else if (word >= FRAME_USER && word - FRAME_USER !== (maps.get(pfn) ?? 0)) {
      invariantFailure(
        `pfn ${pfn} is counted as mapped by ${word - FRAME_USER} vmap areas, ${maps.get(pfn) ?? 0} map it`,
      );
    }
  }
}

function checkVmStore(vms: VmStore, live: number[]): void {
  const hwm = vms.highWater;
  const mark = new Uint8Array(hwm);
  for (const vm of live) mark[vm] = 1;
  for (const vm of vms.freeIdList()) {
    if (mark[vm] !== 0) invariantFailure(`vm_struct #${vm} is both live and free`);
    mark[vm] = 2;
  }
  for (let vm = 1; vm < hwm; vm++) {
    if (mark[vm] === 0)
      invariantFailure(`vm_struct #${vm} is neither attached to an area nor free (a leak)`);
  }
}
