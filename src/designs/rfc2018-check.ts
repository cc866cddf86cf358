/**
 * The invariants of the 'rfc2018' design that the shared checks do not cover: the purge list
 * against the marked areas of the busy tree, and the tiling of the vmalloc window by free
 * blocks and the carved ranges (padding included) of busy and lazy areas.
 *
 * Holds: checkRfcTiling(), product code run by check(), never on hot paths.
 * Invariant checked: see rfc2018.ts; throws VmallocError EINVARIANT naming the first breach.
 * Callers: Rfc2018Design.check().
 */

import { invariant } from '../debug.js';
import { hex } from '../errors.js';
import type { VaStore } from '../kva/vmap-area.js';
import { F_RESV } from './rfc2018-free.js';

/** The most an area's carved range exceeds the area (VMALLOC_MAX_PADDING less a page). */
const MAX_PAD_BYTES = 16384;

/**
 * `chain` (vmap_purge_list) must hold exactly the `lazy` areas, once each; every busy and lazy
 * area's carved end lies in [end, end + padding); free blocks and carved ranges tile [lo, hi).
 */
export function checkRfcTiling(
  s: VaStore,
  free: readonly number[],
  busy: readonly number[],
  lazy: readonly number[],
  chain: readonly number[],
  lo: number,
  hi: number,
): void {
  const onChain = new Set(chain);
  invariant(onChain.size === chain.length, () => 'vmap_purge_list holds an area twice');
  invariant(
    chain.length === lazy.length && lazy.every((x) => onChain.has(x)),
    () =>
      `vmap_purge_list holds ${chain.length} areas, the busy tree marks ${lazy.length} as lazily freed`,
  );
  const ranges: [number, number, number][] = [];
  for (const x of free) ranges.push([s.start(x), s.end(x), x]);
  for (const list of [busy, lazy]) {
    for (const x of list) {
      const resv = s.f[(x << 3) + F_RESV]!;
      invariant(
        resv >= s.end(x) && resv - s.end(x) < MAX_PAD_BYTES,
        () => `area #${x} [${hex(s.start(x))}, ${hex(s.end(x))}) carved up to ${hex(resv)}`,
      );
      ranges.push([s.start(x), resv, x]);
    }
  }
  ranges.sort((a, b) => a[0] - b[0]);
  let at = lo;
  for (const [start, end, x] of ranges) {
    invariant(start === at, () =>
      start < at
        ? `vmalloc window: #${x} at ${hex(start)} overlaps the range before it (which ends at ${hex(at)})`
        : `vmalloc window: nothing covers [${hex(at)}, ${hex(start)})`,
    );
    at = end;
  }
  invariant(at === hi, () => `vmalloc window: nothing covers [${hex(at)}, ${hex(hi)})`);
}
