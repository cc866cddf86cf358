/**
 * Free space as the October 2018 RFC keeps it ("mm/vmalloc: keep track of free blocks for
 * allocation", patch 1/2): free blocks in a plain (not augmented) rb-tree + address-sorted
 * list, allocation by first fit over the list, merge on free, and the cache of spare records.
 *
 * Holds: the first-fit walk and clip (FL/LE/RE/NE), the merge of a freed range with its list
 * neighbours, the padding rule, and free_va_cache (a stack of spare records in shared words).
 * Invariant (between calls, under the caller's lock): free blocks are disjoint, sorted and
 * fully coalesced; the in-order walk of the tree equals the list; every record on the spare
 * stack belongs to no tree and the stack never holds more than its cap.
 * Callers: the 'rfc2018' design (src/designs/rfc2018.ts), under its vmap_area_lock.
 *
 * The walk is O(number of free blocks below the result): that is the cost the 2019 augmented
 * tree (src/kva/free-tree.ts) removed. The tree serves only to find a freed range's place.
 *
 * Padding: for an alignment up to VMALLOC_MAX_PADDING (THREAD_ALIGN: 4 pages on x86_64) the
 * RFC carves ALIGN(size, align) out of the free block, keeps the area itself `size` long and
 * gives the whole carved range back on free, so aligned requests do not leave slivers. The
 * carved end is kept in the area's record (word F_RESV, unused outside the augmented tree).
 *
 * Differs from the RFC: the RFC resumes the walk at `last_free_area` (the block of the last
 * allocation) while requests get no more permissive; its reset test `size < free_va_max_size`
 * keeps the marker when the size equals the largest hole skipped, so an equal request can land
 * above a hole it fits. This walk always starts at the lowest block (plain first fit, the lowest
 * fit), which is what the RFC describes. Kernel: alloc_vmalloc_area(), __merge_add_free_va_area(),
 * __put_free_va_to_cache(), __get_free_va_from_cache() (RFC code, never merged).
 */

import { findVaLinks, linkVa, unlinkVa } from '../kva/rb-list.js';
import type { VaStore } from '../kva/vmap-area.js';
import { WORK, W_STEPS } from '../shared/sim-hook.js';

// The record layout of vmap-area.ts, as this module's own constants (V8 folds them).
const F_START = 0,
  F_END = 1,
  /** The end of the range an area carved out of free space (its end rounded up by padding). */
  F_RESV = 2;
const I_PREV = 9,
  I_NEXT = 10,
  /** A spare word of the record: the link of the spare-record stack and of the purge list. */
  I_LINK = 14;

export { F_RESV, I_LINK };

/** Failure values of the walk and clip (addresses are >= 0). */
export const FF_ENOENT = -1; // no block holds the request inside the window
export const FF_ENOMEM = -2; // a no-edge split needed a record and none was left

/** The spare-record stack's words: ctl[at] top record (0: empty), ctl[at + 1] depth. */
export const CACHE_WORDS = 2;

/** Puts `va` on the spare stack, or back into the store when the stack is full. */
export function putSpare(s: VaStore, ctl: Int32Array, at: number, cap: number, va: number): void {
  const n = ctl[at + 1]!;
  if (n >= cap) {
    s.free(va);
    return;
  }
  s.i[(va << 4) + I_LINK] = ctl[at]!;
  ctl[at] = va;
  ctl[at + 1] = n + 1;
}

/** A record from the spare stack, else a new one from the store; 0 when none is left. */
function getSpare(s: VaStore, ctl: Int32Array, at: number): number {
  const top = ctl[at]!;
  if (top === 0) return s.alloc();
  ctl[at] = s.i[(top << 4) + I_LINK]!;
  ctl[at + 1] = ctl[at + 1]! - 1;
  return top;
}

/** The records on the spare stack, top first (for check()). */
export function spareIds(s: VaStore, ctl: Int32Array, at: number): number[] {
  const out: number[] = [];
  for (let x = ctl[at]!; x !== 0 && out.length <= s.highWater; x = s.i[(x << 4) + I_LINK]!)
    out.push(x);
  return out;
}

/** The length carved out of free space for `size` at `align`: the RFC's padding rule. */
export function paddedSize(size: number, align: number, maxPadding: number): number {
  return align <= maxPadding ? Math.ceil(size / align) * align : size;
}

/**
 * First fit: walks the free list from its lowest block to the first one that holds
 * `psize` bytes at an `align`-aligned start at or above vstart, ending at or below vend, and
 * carves [nstart, nstart + psize) out of it. Sets record `nva` to [nstart, nstart + size) with
 * F_RESV = nstart + psize. Returns 0, or a negative FF_ value (nothing changed).
 *
 * The walk stops at the first block whose candidate start would end past vend: the list is
 * sorted, so no later block can do better. Kernel (RFC): alloc_vmalloc_area().
 *
 *      |<------------- block ------------->|
 *   FL |###################################|   the block leaves the list (its record is spared)
 *   LE |########|                          |   start moves up
 *   RE |                          |########|   end moves down
 *   NE |          |########|               |   split: the left part gets a spare record
 */
export function firstFitAlloc(
  s: VaStore,
  h: number,
  nva: number,
  size: number,
  psize: number,
  align: number,
  vstart: number,
  vend: number,
  ctl: Int32Array,
  spare: number,
  spareCap: number,
): number {
  let f = s.f;
  const i = s.i;
  const inv = 1 / align; // exact for a power of two
  let nstart = align === 1 ? vstart : Math.ceil(vstart * inv) * align;
  let va = i[(h << 4) + I_NEXT]! | 0;
  let steps = 0; // free blocks walked, for the simulator's cost model (WORK)
  for (; va !== h; va = i[(va << 4) + I_NEXT]! | 0) {
    steps++;
    const bs = f[(va << 3) + F_START]!;
    if (bs > vstart) nstart = align === 1 ? bs : Math.ceil(bs * inv) * align;
    if (nstart + psize > vend) break;
    if (nstart + psize <= f[(va << 3) + F_END]!) break;
  }
  WORK[W_STEPS] = WORK[W_STEPS]! + steps;
  if (va === h || nstart + psize > vend) return FF_ENOENT;
  const bs = f[(va << 3) + F_START]!;
  const be = f[(va << 3) + F_END]!;
  const nend = nstart + psize;
  if (bs === nstart) {
    if (be === nend) {
      unlinkVa(s, h, va, false);
      putSpare(s, ctl, spare, spareCap, va);
    } else {
      f[(va << 3) + F_START] = nend;
    }
  } else if (be === nend) {
    f[(va << 3) + F_END] = nstart;
  } else {
    const lva = getSpare(s, ctl, spare);
    if (lva === 0) return FF_ENOMEM;
    f = s.f; // a new record may have grown the views
    f[(lva << 3) + F_START] = bs;
    f[(lva << 3) + F_END] = nstart;
    f[(va << 3) + F_START] = nend;
    // The left part goes just before `va`: search down from va's node, not from the root.
    linkVa(s, h, lva, findVaLinks(s, h, lva, va), false);
  }
  f[(nva << 3) + F_START] = nstart;
  f[(nva << 3) + F_END] = nstart + size;
  f[(nva << 3) + F_RESV] = nend;
  return 0;
}

/**
 * Gives the range an area carved out ([start, F_RESV)) back to free space, merging it with the
 * list neighbours found from its place in the tree. Records merged away go to the spare stack.
 * Returns the record that now holds the range, or 0 when it overlaps a free block (a bug in
 * the caller; nothing changed). Kernel (RFC): __merge_add_free_va_area().
 *
 *   before:   [ prev ]      [ va ]      [ next ]
 *   next:     [ prev ]      [ va ][ next ]          -> next.start = va.start, va spared
 *   prev:     [ prev ][ va ]        [ next ]        -> prev.end = va.end, va spared
 *   both:     [ prev ][ va ][ next ]                -> next grown, then prev takes it all
 */
export function mergeFree(
  s: VaStore,
  h: number,
  va: number,
  ctl: Int32Array,
  spare: number,
  spareCap: number,
): number {
  const f = s.f;
  const i = s.i;
  f[(va << 3) + F_END] = f[(va << 3) + F_RESV]!; // the padding comes back too
  const link = findVaLinks(s, h, va, 0);
  if (link < 0) return 0;
  const start = f[(va << 3) + F_START]!;
  const end = f[(va << 3) + F_END]!;
  const parent = link >> 1;
  const next = parent === 0 ? h : (link & 1) !== 0 ? parent : i[(parent << 4) + I_NEXT]!;
  const prev = i[(next << 4) + I_PREV]!;
  let cur = va;
  let linked = false; // is `cur` in the tree?
  if (next !== h && f[(next << 3) + F_START] === end) {
    f[(next << 3) + F_START] = start;
    putSpare(s, ctl, spare, spareCap, va);
    cur = next;
    linked = true;
  }
  if (prev !== h && f[(prev << 3) + F_END] === start) {
    f[(prev << 3) + F_END] = f[(cur << 3) + F_END]!;
    if (linked) unlinkVa(s, h, cur, false);
    putSpare(s, ctl, spare, spareCap, cur);
    return prev;
  }
  if (!linked) linkVa(s, h, va, link, false);
  return cur;
}
