/**
 * Recovery's part for vm_map_ram: the vmap blocks (records, hashes, per-CPU free lists, the
 * lock in each record) and the large vm_map_ram areas, rebuilt from the kept block areas and
 * the page table after a worker died, possibly holding a block's lock (vb->lock) half-way
 * through changing it.
 *
 * Holds: vmapBlockPart (a RecoveryPart; recovery-parts.ts lists it after the areas part, so
 * run.keptVa is decided, and before the frames and page-table parts, so the pages it unmaps
 * are neither counted as mapped nor left in the page table), and holdsBlockLock() for
 * survive().
 * Invariant: afterwards vmap-block-check.ts holds: every kept block is hashed under its key,
 * on its owner's free list iff it has fresh pages, its used_map is exactly its complete
 * mappings rounded up, BITS - free - dirty counts them, and no record's lock is held by a
 * dead cpu (released; taken only inside gated operations, none is held by a live one).
 * Callers: recover() through recoveryParts() (src/mm/recovery-parts.ts); survive().
 *
 * What is kept: a block whose area the areas part kept and whose record is live (LIVE = 1,
 * key and area agree, not a free id); in it, every mapping whose count byte is set and all of
 * whose pages the page table maps. A mapping that was half made (count set, pages not all
 * mapped: its vm_map_ram never returned) or half unmapped (count cleared, pages still
 * mapped: vm_unmap_ram stopped before its unmap) loses its pages: they are unmapped and
 * become dirty, as a finished vm_unmap_ram leaves them; the fresh pages past the bump
 * pointer stay fresh. A block left fully dirty, a block area with no live record (new_vmap_block
 * or free_vmap_block stopped half-way) and a large vm_map_ram area not fully mapped are
 * dropped: their ranges are free afterwards. Dropped mappings were the dead (or aborted)
 * caller's: no one else knows their addresses.
 */

import { VaFlags } from '../kva/vmap-area.js';
import { LOCK_WORDS } from '../shared/lock.js';
import type { RecoveryPart, RecoveryRun } from './recovery.js';
import type { VmContext } from './shared-state.js';
import {
  QUEUE_STRIDE,
  VbCount,
  W_LOCK,
  W_MAP,
  readVbRecord,
  roundupPow2,
  usedBit,
  writeVbRecord,
} from './vmap-block-layout.js';

const RAM_MASK = VaFlags.VMAP_RAM | VaFlags.VMAP_BLOCK;

function bump(run: RecoveryRun, kind: string, n = 1): void {
  if (n !== 0) run.counts[kind] = (run.counts[kind] ?? 0) + n;
}

/** A kept block and what its rebuild writes (decided in collect, written in restore). */
interface KeptBlock {
  id: number;
  /** Offsets of the kept mappings' first pages, and their page counts. */
  offs: number[];
  counts: number[];
  /** Page addresses to unmap (pages of no kept mapping that the page table maps). */
  unmap: number[];
}

/** Decided by collect, written by restore (one run at a time per thread). */
let kept: KeptBlock[] = [];

export const vmapBlockPart: RecoveryPart = {
  name: 'vmap blocks',

  collect(run) {
    const ctx = run.ctx;
    const vb = ctx.vb;
    const s = ctx.s;
    const pt = ctx.pageTable;
    const ps = ctx.pageSize;
    const geo = vb.geo;
    vb.arena.refreshViews();
    const hwm = vb.arena.highWater;
    const freeIds = new Uint8Array(hwm);
    for (const id of vb.arena.freeIdList()) if (id > 0 && id < hwm) freeIds[id] = 1;
    // The live record of each kept block area.
    const keptSet = new Set(run.keptVa);
    const recordOf = new Map<number, number>();
    for (let id = 1; id < hwm; id++) {
      if (freeIds[id] === 1) continue;
      const r = readVbRecord(vb.arena.i, vb.at(id));
      const va = r.va;
      if (r.live !== 1 || !keptSet.has(va) || recordOf.has(va)) continue;
      if ((s.flags(va) & RAM_MASK) !== RAM_MASK || s.vm(va) !== 0) continue;
      if (s.start(va) !== r.key * geo.blockSize || s.size(va) !== geo.blockSize) continue;
      recordOf.set(va, id);
    }
    kept = [];
    const drop = new Set<number>();
    for (const va of run.keptVa) {
      if (s.vm(va) !== 0) continue;
      const f = s.flags(va) & RAM_MASK;
      if (f === VaFlags.VMAP_RAM) {
        // A large mapping: complete when every page is mapped.
        if (pt.mapped(s.start(va), s.size(va) / ps) !== s.size(va) / ps) {
          drop.add(va);
          bump(run, 'half-made vm_map_ram areas');
        }
        continue;
      }
      if (f !== RAM_MASK) continue;
      const id = recordOf.get(va);
      if (id === undefined) {
        drop.add(va);
        bump(run, 'half-made or half-freed vmap blocks');
        continue;
      }
      const k = collectBlock(run, id);
      if (k === null) {
        drop.add(va);
        bump(run, 'fully dirty vmap blocks');
      } else kept.push(k);
    }
    if (drop.size > 0) run.keptVa = run.keptVa.filter((va) => !drop.has(va));
  },

  reset(run) {
    const vb = run.ctx.vb;
    vb.arena.refreshViews();
    // Every record lock a dead cpu holds (or with no owner recorded) released, as recover()
    // does with the lock table's: the world is stopped, so no live thread holds one (they
    // are taken inside gated operations only) or waits on one; a sleeper is woken anyway.
    const table = run.ctx.lockTable;
    const hwm = vb.arena.highWater;
    for (let id = 1; id < hwm; id++) {
      const b = vb.at(id);
      const i = vb.arena.i;
      if (Atomics.load(i, b + W_LOCK) === 0) continue;
      const owner = Atomics.load(i, b + W_LOCK + 1) - 1;
      if (owner >= 0 && !table.isCpuDead(owner)) continue;
      for (let w = 1; w < LOCK_WORDS; w++) Atomics.store(i, b + W_LOCK + w, 0);
      Atomics.store(i, b + W_LOCK, 0);
      Atomics.notify(i, b + W_LOCK);
    }
    const used = new Uint8Array(hwm);
    for (const k of kept) used[k.id] = 1;
    bump(run, 'vmap block records', vb.arena.rebuildFree(used));
    const d = vb.decl;
    for (let w = 0; w < d.nHash * d.buckets; w++) Atomics.store(vb.ctl, d.heads + w, 0);
    for (let c = 0; c < run.ctx.config.nrCpus; c++) {
      Atomics.store(vb.ctl, d.queues + c * QUEUE_STRIDE, 0);
      Atomics.store(vb.ctl, d.queues + c * QUEUE_STRIDE + 1, 0);
    }
  },

  restore(run) {
    const ctx = run.ctx;
    const vb = ctx.vb;
    const geo = vb.geo;
    const bits = geo.bits;
    const nrCpus = ctx.config.nrCpus;
    const d = vb.decl;
    let unmapped = 0;
    for (const k of kept) {
      for (const addr of k.unmap) ctx.pageTable.unmap(addr, 1);
      unmapped += k.unmap.length;
      const b = vb.at(k.id);
      const i = vb.arena.i;
      const r = readVbRecord(i, b);
      const oldDirty = r.dirty;
      const free = r.free;
      const top = bits - free;
      i.fill(0, b + W_MAP, b + vb.W); // used_map and the count bytes
      let live = 0;
      k.offs.forEach((off, j) => {
        const c = k.counts[j]!;
        const n = roundupPow2(c);
        vb.setBits(b, off, n, true);
        vb.setCount(b, off, c);
        live += n;
      });
      const dirty = top - live;
      r.dirty = dirty;
      if (dirty === 0) {
        r.dmin = bits;
        r.dmax = 0;
      } else if (dirty !== oldDirty || !validRange(r.dmin, r.dmax, bits, top)) {
        // Pages that became dirty here: the dirty range covers every page not in use.
        let lo = bits;
        let hi = 0;
        for (let p = 0; p < top; p++) {
          if (!usedBit(i, b, p)) {
            if (p < lo) lo = p;
            hi = p + 1;
          }
        }
        r.dmin = lo;
        r.dmax = hi;
      }
      // Into the hash (head insertion) and, with fresh pages, onto the owner's free list.
      const head = vb.headOf(r.key);
      r.hnext = vb.ctl[head]!;
      vb.ctl[head] = k.id;
      if (!(r.cpu >= 0 && r.cpu < nrCpus)) r.cpu = ctx.cpu;
      r.fnext = 0;
      r.fprev = 0;
      r.onList = 0;
      writeVbRecord(i, b, r);
      if (free > 0) vb.enlist(k.id, b, r.cpu);
    }
    bump(run, 'vm_map_ram pages unmapped', unmapped);
    Atomics.store(vb.ctl, d.counters + VbCount.BLOCKS, kept.length);
    kept = [];
  },
};

/**
 * The kept mappings of block `id` and the pages to unmap; null when the block keeps no
 * mapping and has no fresh page left (fully dirty: it goes).
 */
function collectBlock(run: RecoveryRun, id: number): KeptBlock | null {
  const ctx = run.ctx;
  const vb = ctx.vb;
  const pt = ctx.pageTable;
  const ps = ctx.pageSize;
  const bits = vb.geo.bits;
  const b = vb.at(id);
  const r = readVbRecord(vb.arena.i, b);
  if (!(r.free >= 0 && r.free <= bits)) {
    r.free = 0; // (never: written under the lock)
    writeVbRecord(vb.arena.i, b, r);
  }
  const free = r.free;
  const bumpAt = bits - free;
  const start = r.key * vb.geo.blockSize;
  const k: KeptBlock = { id, offs: [], counts: [], unmap: [] };
  const inKept = new Uint8Array(bits);
  for (let off = 0; off < bumpAt;) {
    const c = vb.countAt(b, off);
    if (c === 0) {
      off++;
      continue;
    }
    const n = roundupPow2(c);
    const fits = off + n <= bumpAt;
    const complete = fits && pt.mapped(start + off * ps, c) === c;
    if (complete) {
      k.offs.push(off);
      k.counts.push(c);
      inKept.fill(1, off, off + n);
      off += n;
    } else {
      bump(run, 'half-made vm_map_ram mappings');
      off++;
    }
  }
  // Pages the page table maps in the block that no kept mapping covers (or that only the
  // rounding of one covers): what a stopped vm_map_ram or vm_unmap_ram left mapped.
  for (let p = 0; p < bits; p++) {
    const addr = start + p * ps;
    if (pt.lookup(addr) < 0) continue;
    const j = k.offs.length === 0 ? -1 : lastAtOrBefore(k.offs, p);
    if (inKept[p] === 1 && j >= 0 && p < k.offs[j]! + k.counts[j]!) continue;
    k.unmap.push(addr);
  }
  if (k.offs.length === 0 && free === 0) {
    // Fully dirty: the block goes with its area (the pages the page table still maps there
    // are unmapped by the page-table part, as the area is not kept).
    return null;
  }
  return k;
}

/**
 * Does `cpu` hold the lock of some vmap block record? For survive(): a thread that gives up
 * holding one must look dead to that lock's waiters until the recovery releases it.
 */
export function holdsBlockLock(ctx: VmContext, cpu: number): boolean {
  const vb = ctx.vb;
  vb.arena.refreshViews();
  const hwm = vb.arena.highWater;
  for (let id = 1; id < hwm; id++) {
    const b = vb.at(id);
    if (Atomics.load(vb.arena.i, b + W_LOCK + 1) === cpu + 1) return true;
  }
  return false;
}

/** Is [dmin, dmax) a dirty range as the checker wants it (empty: bits, 0)? */
function validRange(dmin: number, dmax: number, bits: number, top: number): boolean {
  return dmax === 0 ? dmin === bits : dmin < dmax && dmax <= top;
}

/** Index of the last element of ascending `a` that is <= x, or -1. */
function lastAtOrBefore(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length - 1;
  let r = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! <= x) {
      r = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return r;
}
