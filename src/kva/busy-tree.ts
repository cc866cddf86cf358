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
import { WORK, W_STEPS } from '../shared/sim-hook.js';

// The record layout of vmap-area.ts, as this module's own constants: V8 folds a module's
// own constants into the code but loads imported ones at every use (checked by a test).
const F_START = 0,
  F_END = 1;
const I_LEFT = 7,
  I_RIGHT = 8;

/** Inserts `va`; false (nothing changed) when it overlaps a busy area. */
export function insertVmapArea(s: VaStore, h: number, va: number): boolean {
  const link = findVaLinks(s, h, va, 0);
  if (link < 0) return false;
  linkVa(s, h, va, link, false);
  return true;
}

/** The busy area containing `addr` (start <= addr < end), or 0. */
export function findVmapArea(s: VaStore, h: number, addr: number): number {
  const f = s.f;
  const i = s.i;
  // `| 0` and `+` keep ids in int32 and addr in float64 registers through the loop (V8).
  const a = +addr;
  let n = i[(h << 4) + I_LEFT]! | 0;
  let steps = 0; // nodes visited, for the simulator's cost model (see WORK)
  while (n !== 0) {
    steps++;
    if (a < f[(n << 3) + F_START]!) n = i[(n << 4) + I_LEFT]! | 0;
    else if (a >= f[(n << 3) + F_END]!) n = i[(n << 4) + I_RIGHT]! | 0;
    else break;
  }
  WORK[W_STEPS] = WORK[W_STEPS]! + steps;
  return n;
}

/** Removes `va` from the busy tree and list. */
export function unlinkVmapArea(s: VaStore, h: number, va: number): void {
  unlinkVa(s, h, va, false);
}
