/**
 * The checker's part for vm_map_ram: the vmap blocks and the large vm_map_ram areas.
 *
 * Holds: checkVmMapRam(), which verifies from the shared state (no operation running) that
 * every hash holds exactly the live blocks, each under its key and in its bucket; every block
 * area (VMAP_RAM | VMAP_BLOCK, busy, not lazy) has its block and the other way round; each
 * block's used_map against its counts (set bits = BITS - free - dirty, nothing set past the
 * bump pointer, the set bits exactly the live mappings rounded up to powers of two), its
 * dirty range, its place on its owner's free list (iff free > 0); the page table maps each
 * live mapping's pages and nothing else in a block; a large vm_map_ram area maps all of its
 * pages. It counts every mapped page and every map of a user frame for the whole-state check.
 * Also blockInfo(), a snapshot of one block for tests and debugging.
 * Callers: checkAll() (src/mm/checker.ts); tests.
 */

import { VaFlags } from '../kva/vmap-area.js';
import { invariantFailure } from '../debug.js';
import { kernelHex } from '../shared/layout.js';
import type { VmContext } from './shared-state.js';
import {
  QUEUE_STRIDE,
  VbCount,
  readVbRecord,
  usedBit,
  type VbInfo,
  type VbRecord,
} from './vmap-block-layout.js';
import type { VmapBlocks } from './vmap-block.js';

const RAM_MASK = VaFlags.VMAP_RAM | VaFlags.VMAP_BLOCK;

/** Checks the vm_map_ram state; returns the pages it maps, adding each frame's maps to `maps`. */
export function checkVmMapRam(
  ctx: VmContext,
  busy: readonly number[],
  lazy: readonly number[],
  maps: Map<number, number>,
): number {
  const vb = ctx.vb;
  vb.arena.refreshViews();
  const s = ctx.s;
  const ps = ctx.pageSize;
  const geo = vb.geo;
  const lazySet = new Set(lazy);
  const blockAreas = new Set<number>();
  let mapped = 0;
  const mapPage = (addr: number, where: string): void => {
    const pfn = ctx.pageTable.lookup(addr);
    if (pfn < 0) invariantFailure(`${where}: page ${kernelHex(addr)} is not mapped`);
    if (!ctx.frames.isInUse(pfn))
      invariantFailure(`${where} maps pfn ${pfn}, which is not allocated`);
    maps.set(pfn, (maps.get(pfn) ?? 0) + 1);
    mapped++;
  };
  for (const va of busy) {
    if (lazySet.has(va) || s.vm(va) !== 0) continue;
    const f = s.flags(va) & RAM_MASK;
    if (f === RAM_MASK) blockAreas.add(va);
    else if (f === VaFlags.VMAP_RAM) {
      const where = `vm_map_ram area ${kernelHex(s.start(va))}`;
      for (let a = s.start(va); a < s.end(va); a += ps) mapPage(a, where);
    }
  }
  // Every hash, every chain.
  const d = vb.decl;
  const seen = new Set<number>();
  for (let h = 0; h < d.nHash; h++) {
    for (let k = 0; k < d.buckets; k++) {
      const word = d.heads + h * d.buckets + k;
      let id = vb.ctl[word]!;
      while (id !== 0) {
        if (seen.has(id)) invariantFailure(`vmap block #${id} is twice in the hashes (a cycle?)`);
        seen.add(id);
        const b = vb.at(id);
        const r = readVbRecord(vb.arena.i, b);
        const key = r.key;
        if (r.live !== 1) invariantFailure(`vmap block #${id} is hashed but not live`);
        if (vb.headOf(key) !== word)
          invariantFailure(`vmap block #${id} (key ${key}) is in the wrong hash bucket`);
        const va = r.va;
        if (!blockAreas.has(va))
          invariantFailure(`vmap block #${id}: its area #${va} is not a busy vmap block area`);
        if (s.start(va) !== key * geo.blockSize || s.size(va) !== geo.blockSize)
          invariantFailure(`vmap block #${id}: its area is not the block's range`);
        checkBlock(ctx, id, b, r, mapPage);
        id = r.hnext;
      }
    }
  }
  if (seen.size !== blockAreas.size)
    invariantFailure(`${blockAreas.size} vmap block areas are busy, the hashes hold ${seen.size}`);
  if (vb.count(VbCount.BLOCKS) !== seen.size)
    invariantFailure(
      `the block count is ${vb.count(VbCount.BLOCKS)}, the hashes hold ${seen.size}`,
    );
  if (vb.arena.live !== seen.size)
    invariantFailure(`${vb.arena.live} vmap block records are live, the hashes hold ${seen.size}`);
  checkFreeLists(ctx, seen);
  return mapped;
}

/** One block's counts, bitmap and mappings (mapPage counts its mapped pages). */
function checkBlock(
  ctx: VmContext,
  id: number,
  b: number,
  r: VbRecord,
  mapPage: (addr: number, where: string) => void,
): void {
  const vb = ctx.vb;
  const i = vb.arena.i;
  const bits = vb.geo.bits;
  const free = r.free;
  const dirty = r.dirty;
  const start = r.key * vb.geo.blockSize;
  const where = `vmap block ${kernelHex(start)}`;
  if (free < 0 || dirty < 0 || free + dirty > bits || dirty === bits)
    invariantFailure(`${where}: free ${free}, dirty ${dirty} of ${bits}`);
  const bit = (k: number): boolean => usedBit(i, b, k);
  let set = 0;
  for (let k = 0; k < bits; k++) if (bit(k)) set++;
  if (set !== bits - free - dirty)
    invariantFailure(
      `${where}: ${set} used_map bits, but ${bits} - free - dirty = ${bits - free - dirty}`,
    );
  const dmin = r.dmin;
  const dmax = r.dmax;
  if (dmax === 0 ? dmin !== bits : !(dmin < dmax && dmax <= bits - free))
    invariantFailure(`${where}: dirty range [${dmin}, ${dmax}) is not a range of used pages`);
  let k = 0;
  while (k < bits) {
    const c = vb.countAt(b, k);
    if (c === 0) {
      if (bit(k)) invariantFailure(`${where}: page ${k} is used by no mapping`);
      if (ctx.pageTable.lookup(start + k * ctx.pageSize) >= 0)
        invariantFailure(`${where}: page ${k} is mapped by no mapping`);
      k++;
      continue;
    }
    const n = 2 ** Math.ceil(Math.log2(c));
    if (k + n > bits - free)
      invariantFailure(`${where}: a mapping at page ${k} passes the bump pointer`);
    for (let j = 0; j < n; j++) {
      if (!bit(k + j)) invariantFailure(`${where}: page ${k + j} of a live mapping is not used`);
      if (j > 0 && vb.countAt(b, k + j) !== 0)
        invariantFailure(`${where}: a mapping starts at page ${k + j}, inside another`);
      const addr = start + (k + j) * ctx.pageSize;
      if (j < c) mapPage(addr, where);
      else if (ctx.pageTable.lookup(addr) >= 0)
        invariantFailure(`${where}: page ${k + j} (rounding of a ${c}-page mapping) is mapped`);
    }
    k += n;
  }
  if ((r.onList === 1) !== free > 0)
    invariantFailure(`${where}: free ${free}, ${r.onList === 1 ? 'on' : 'off'} its free list`);
  if (!(r.cpu >= 0 && r.cpu < ctx.config.nrCpus)) invariantFailure(`${where}: owner cpu ${r.cpu}`);
}

/** Each CPU's free list: linked both ways, its own blocks, exactly those with free space. */
function checkFreeLists(ctx: VmContext, live: Set<number>): void {
  const vb = ctx.vb;
  let onLists = 0;
  for (let c = 0; c < ctx.config.nrCpus; c++) {
    const q = vb.decl.queues + c * QUEUE_STRIDE;
    let prev = 0;
    let id = vb.ctl[q]!;
    while (id !== 0) {
      if (!live.has(id))
        invariantFailure(`cpu ${c}'s vmap block free list holds dead block #${id}`);
      const b = vb.at(id);
      const r = readVbRecord(vb.arena.i, b);
      if (r.cpu !== c)
        invariantFailure(`vmap block #${id} is on cpu ${c}'s list, owned by ${r.cpu}`);
      if (r.fprev !== prev) invariantFailure(`vmap block #${id}: free list back link broken`);
      if (++onLists > live.size) invariantFailure(`cpu ${c}'s vmap block free list has a cycle`);
      prev = id;
      id = r.fnext;
    }
    if (vb.ctl[q + 1] !== prev) invariantFailure(`cpu ${c}'s vmap block free list tail is wrong`);
  }
  let withFree = 0;
  for (const id of live) {
    const b = vb.at(id); // (first: it may remake the view read next)
    if (readVbRecord(vb.arena.i, b).free > 0) withFree++;
  }
  if (withFree !== onLists)
    invariantFailure(`${withFree} vmap blocks have free space, ${onLists} are on free lists`);
}

/** A snapshot of the block holding `addr`, or null (for tests and debugging). */
export function blockInfo(vb: VmapBlocks, addr: number): VbInfo | null {
  const id = vb.lockBlockOf(addr);
  if (id === 0) return null;
  const b = vb.at(id);
  const i = vb.arena.i;
  const r = readVbRecord(i, b);
  const used: number[] = [];
  for (let k = 0; k < vb.geo.bits; k++) if (usedBit(i, b, k)) used.push(k);
  const info: VbInfo = {
    start: r.key * vb.geo.blockSize,
    free: r.free,
    dirty: r.dirty,
    dirtyMin: r.dmin,
    dirtyMax: r.dmax,
    cpu: r.cpu,
    onFreeList: r.onList === 1,
    hash: vb.hashOf(r.key),
    used,
  };
  vb.unlockBlock(id);
  return info;
}
