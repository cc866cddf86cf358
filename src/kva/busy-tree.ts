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
  const link = findVaLinks(s, h, s.start[va]!, s.end[va]!, 0);
  if (link < 0) return false;
  linkVa(s, h, va, link, false);
  return true;
}

/** The busy area containing `addr` (start <= addr < end), or 0. */
export function findVmapArea(s: VaStore, h: number, addr: number): number {
  let n = s.left[h]!;
  while (n !== 0) {
    if (addr < s.start[n]!) n = s.left[n]!;
    else if (addr >= s.end[n]!) n = s.right[n]!;
    else return n;
  }
  return 0;
}

/** Removes `va` from the busy tree and list. */
export function unlinkVmapArea(s: VaStore, h: number, va: number): void {
  unlinkVa(s, h, va, false);
}
