/**
 * Busy areas: a plain rb-tree + sorted list of allocated ranges, looked up by containment.
 *
 * Holds: insert, lookup and unlink of busy vmap areas.
 * Invariant: busy areas are disjoint, sorted by start; no augmentation.
 * Callers: VmapSpace, and the vmalloc layer's busy trees (global or per node).
 *
 * Kernel: insert_vmap_area(), __find_vmap_area(), unlink_va().
 */

import { findVaLinks, linkVa, unlinkVa } from './rb-list.js';
import type { VaStore } from './vmap-area.js';

/** Inserts `va`; false (nothing changed) when it overlaps a busy area. */
export function insertVmapArea(s: VaStore, h: number, va: number): boolean {
  const link = findVaLinks(s, h, va, 0);
  if (link < 0) return false;
  linkVa(s, h, va, link, false);
  return true;
}

/** The busy area containing `addr` (start <= addr < end), or 0. */
export function findVmapArea(s: VaStore, h: number, addr: number): number {
  const vaStart = s.start;
  const vaEnd = s.end;
  const left = s.left;
  const right = s.right;
  // `| 0` and `+` keep ids in int32 and addr in float64 registers through the loop (V8).
  const a = +addr;
  let n = left[h]! | 0;
  while (n !== 0) {
    if (a < vaStart[n]!) n = left[n]! | 0;
    else if (a >= vaEnd[n]!) n = right[n]! | 0;
    else return n;
  }
  return 0;
}

/** Removes `va` from the busy tree and list. */
export function unlinkVmapArea(s: VaStore, h: number, va: number): void {
  unlinkVa(s, h, va, false);
}
