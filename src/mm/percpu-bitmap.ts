/**
 * A percpu chunk's allocation map: bit runs over Int32 words of the chunks' shared buffer, the
 * pair of maps that records a chunk's allocations, and the summary words kept beside them.
 *
 * Holds: free functions over (words, offset of a map's first word): test, next set or clear
 * bit, fill a range, the first aligned clear run, the longest clear run, a count. Over a
 * chunk's map, given as (m: its first word, limit: its bits, a multiple of 32): the first fit
 * (with the failed-request hint), mark and clear of an allocation (with their step points),
 * an allocation's extent, the repair of a map a killed writer left half-written, its check.
 *
 *   map:        | summary (MAP_HEADER) | alloc map (limit / 32) | bound map (limit / 32) |
 *   summary:    | free units | contig | allocations | failed bits | failed align |
 *   alloc map:  a set bit per allocated 4-byte unit
 *   bound map:  a set bit at the first unit of each allocation
 *
 * Invariant (with pcpu_alloc_mutex held, between calls): the alloc map's set bits are exactly
 * the allocated units; the bound map has a bit at the first unit of each allocation and nowhere
 * else; `free` counts the clear alloc bits, `contig` is the longest run of them, `allocations`
 * the bound bits; a request at least as demanding as the failed one (bits and align) finds no
 * fit. The functions keep no state, allocate nothing and touch only the words they are given.
 * Callers: PcpuChunks (src/mm/percpu-chunk.ts), which owns the buffer's layout and passes its
 * view and the offset of a chunk's map.
 *
 * Kernel: the bitmap half of mm/percpu.c: pcpu_find_block_fit() / pcpu_alloc_area() /
 * pcpu_free_area() over alloc_map and bound_map (find_next_zero_bit, bitmap_set, ...),
 * free_bytes and contig_bits. PCPU_MIN_ALLOC_SIZE is 4 bytes here as there.
 * Differs from kernel: no per-block hints (pcpu_block_md): the whole map is scanned, by
 * words; the contig hint is recomputed exactly after every change, and the last request that
 * found no aligned fit is remembered until a free (the kernel's scan hints play that part).
 */

import { S_PCPU_CLEARING, S_PCPU_MARKING, stepHook } from '../shared/step-hook.js';

/** The summary words of a map, from its first word. */
export const M_FREE = 0;
const M_CONTIG = 1;
export const M_NR_ALLOC = 2;
/** The last request that found no fit (bits, align bits): any as demanding fails too. */
const M_FAIL_BITS = 3;
const M_FAIL_ALIGN = 4;
const MAP_HEADER = 5;

/** Words of a map of `limit` bits (a multiple of 32). */
export function mapWords(limit: number): number {
  return MAP_HEADER + 2 * (limit >>> 5);
}

/** The alloc map's first word. */
function allocOf(m: number): number {
  return m + MAP_HEADER;
}

/** The bound map's first word. */
function boundOf(m: number, limit: number): number {
  return m + MAP_HEADER + (limit >>> 5);
}

/** Index of the lowest set bit of a non-zero word. */
function ctz(w: number): number {
  return 31 - Math.clz32(w & -w);
}

/** Is bit `i` of the map at word `o` set? */
export function testBit(w: Int32Array, o: number, i: number): boolean {
  return (w[o + (i >>> 5)]! & (1 << (i & 31))) !== 0;
}

/** The first bit >= from (below limit) that is set (`one`) or clear; limit when none. */
export function nextBit(
  w: Int32Array,
  o: number,
  from: number,
  limit: number,
  one: boolean,
): number {
  let i = from;
  while (i < limit) {
    const word = one ? w[o + (i >>> 5)]! : ~w[o + (i >>> 5)]!;
    const rest = word >>> (i & 31);
    if (rest !== 0) return Math.min(i + ctz(rest), limit);
    i = (i | 31) + 1;
  }
  return limit;
}

/** Sets (`on`) or clears bits [from, to), a word at a time. */
export function fillBits(w: Int32Array, o: number, from: number, to: number, on: boolean): void {
  for (let i = from; i < to;) {
    const k = o + (i >>> 5);
    const lo = i & 31;
    const n = Math.min(32 - lo, to - i);
    const mask = n === 32 ? -1 : ((1 << n) - 1) << lo;
    w[k] = on ? w[k]! | mask : w[k]! & ~mask;
    i += n;
  }
}

/**
 * The first bit of a run of `bits` clear bits below `limit` that starts at a multiple of
 * `alignBits`, or -1. First fit, as pcpu_find_zero_area() with its align mask.
 */
export function findAlignedRun(
  w: Int32Array,
  o: number,
  limit: number,
  bits: number,
  alignBits: number,
): number {
  let pos = nextBit(w, o, 0, limit, false);
  while (pos < limit) {
    const runEnd = nextBit(w, o, pos, limit, true);
    const start = Math.ceil(pos / alignBits) * alignBits;
    if (start + bits <= runEnd) return start;
    pos = nextBit(w, o, runEnd, limit, false);
  }
  return -1;
}

/** The length of the longest run of clear bits below `limit` (the chunk's contig hint). */
export function largestClearRun(w: Int32Array, o: number, limit: number): number {
  let best = 0;
  let pos = nextBit(w, o, 0, limit, false);
  while (pos < limit) {
    const runEnd = nextBit(w, o, pos, limit, true);
    if (runEnd - pos > best) best = runEnd - pos;
    pos = nextBit(w, o, runEnd, limit, false);
  }
  return best;
}

/** Set bits in [from, to). */
export function countSet(w: Int32Array, o: number, from: number, to: number): number {
  let n = 0;
  for (let i = nextBit(w, o, from, to, true); i < to; i = nextBit(w, o, i + 1, to, true)) n++;
  return n;
}

// ---------------------------------------------------------------- the pair (alloc, bound)

/**
 * The units of the allocation starting at `start` in map `m`: up to the next bound
 * bit or clear alloc bit. 0 when no allocation starts there.
 */
export function allocExtent(w: Int32Array, m: number, limit: number, start: number): number {
  const a = allocOf(m);
  const b = boundOf(m, limit);
  if (start < 0 || start >= limit || !testBit(w, b, start)) return 0;
  const nextBound = nextBit(w, b, start + 1, limit, true);
  const nextFree = nextBit(w, a, start, limit, false);
  return Math.min(nextBound, nextFree) - start;
}

/**
 * Recovery: makes the pair at (a, b) agree, dropping what a killed mark or clear left
 * half-written: a bound bit on a free unit is cleared; allocated units that no bound bit
 * starts (after a free unit) are freed. Returns the units freed.
 */
function repairPair(w: Int32Array, a: number, b: number, limit: number): number {
  let dropped = 0;
  let inAlloc = false;
  for (let i = 0; i < limit; i++) {
    const used = testBit(w, a, i);
    const bound = testBit(w, b, i);
    if (bound && !used) fillBits(w, b, i, i + 1, false);
    if (!used) {
      inAlloc = false;
    } else if (bound) {
      inAlloc = true;
    } else if (!inAlloc) {
      fillBits(w, a, i, i + 1, false);
      dropped++;
    }
  }
  return dropped;
}

/** The pair's structure (what repairPair() fixes): the first problem, or null. */
function checkPair(w: Int32Array, a: number, b: number, limit: number): string | null {
  for (let i = 0; i < limit; i++) {
    const used = testBit(w, a, i);
    const bound = testBit(w, b, i);
    if (bound && !used) return `unit ${i} starts an allocation but is free`;
    if (used && !bound && (i === 0 || !testBit(w, a, i - 1)))
      return `unit ${i} is allocated after a free unit but starts no allocation`;
  }
  return null;
}

// ---------------------------------------------------------------- a chunk's map

/** An empty map's summary (the maps themselves must be all clear). */
export function initMap(w: Int32Array, m: number, limit: number): void {
  w[m + M_FREE] = limit;
  w[m + M_CONTIG] = limit;
  w[m + M_NR_ALLOC] = 0;
  w[m + M_FAIL_BITS] = 0;
  w[m + M_FAIL_ALIGN] = 0;
}

/** The first unit of an aligned run of `bits` free units, or -1. */
export function findFit(
  w: Int32Array,
  m: number,
  limit: number,
  bits: number,
  alignBits: number,
): number {
  const contig = w[m + M_CONTIG]!;
  if (contig < bits) return -1;
  // A run of bits + alignBits - 1 always holds an aligned fit; below that, a request at
  // least as demanding as one that failed since the last free fails too.
  const failBits = w[m + M_FAIL_BITS]!;
  if (
    contig < bits + alignBits - 1 &&
    failBits !== 0 &&
    bits >= failBits &&
    alignBits >= w[m + M_FAIL_ALIGN]!
  )
    return -1;
  const at = findAlignedRun(w, allocOf(m), limit, bits, alignBits);
  if (at < 0) {
    w[m + M_FAIL_BITS] = bits;
    w[m + M_FAIL_ALIGN] = alignBits;
  }
  return at;
}

/**
 * Marks units [start, start + bits) allocated (`on`), or clears the allocation of `bits` units
 * at `start`: both maps, then the summary (a clear also forgets the last failed request, which
 * may fit now). Kernel: pcpu_alloc_area() / pcpu_free_area().
 */
export function setAlloc(
  w: Int32Array,
  m: number,
  limit: number,
  start: number,
  bits: number,
  on: boolean,
): void {
  const a = allocOf(m);
  fillBits(w, a, start, start + bits, on);
  if (stepHook !== null) stepHook(on ? S_PCPU_MARKING : S_PCPU_CLEARING);
  fillBits(w, boundOf(m, limit), start, start + 1, on);
  if (on) {
    w[m + M_FREE]! -= bits;
    w[m + M_NR_ALLOC]!++;
  } else {
    w[m + M_FREE]! += bits;
    w[m + M_NR_ALLOC]!--;
    w[m + M_FAIL_BITS] = 0;
  }
  w[m + M_CONTIG] = largestClearRun(w, a, limit);
}

/**
 * Recovery: frees units [start, start + bits) in the maps only, whether a mark or a clear was
 * in flight there (both end with the range free); repairMap() recounts.
 */
export function releaseRange(
  w: Int32Array,
  m: number,
  limit: number,
  start: number,
  bits: number,
): void {
  fillBits(w, allocOf(m), start, start + bits, false);
  fillBits(w, boundOf(m, limit), start, start + 1, false);
}

/** Allocated units in [from, to). */
export function usedUnits(w: Int32Array, m: number, from: number, to: number): number {
  return countSet(w, allocOf(m), from, to);
}

/**
 * Recovery: makes the map agree with itself and recomputes its summary (repairPair(), then a recount). Returns the units freed.
 */
export function repairMap(w: Int32Array, m: number, limit: number): number {
  const a = allocOf(m);
  const b = boundOf(m, limit);
  const dropped = repairPair(w, a, b, limit);
  w[m + M_FREE] = limit - countSet(w, a, 0, limit);
  w[m + M_NR_ALLOC] = countSet(w, b, 0, limit);
  w[m + M_FAIL_BITS] = 0;
  w[m + M_FAIL_ALIGN] = 0;
  w[m + M_CONTIG] = largestClearRun(w, a, limit);
  return dropped;
}

/** Checks the map and its summary: the first problem, or null. */
export function checkMap(w: Int32Array, m: number, limit: number): string | null {
  const a = allocOf(m);
  const b = boundOf(m, limit);
  const broken = checkPair(w, a, b, limit);
  if (broken !== null) return broken;
  const free = limit - countSet(w, a, 0, limit);
  const bounds = countSet(w, b, 0, limit);
  const contig = largestClearRun(w, a, limit);
  if (free !== w[m + M_FREE]) return `freeBits is ${w[m + M_FREE]}, the map has ${free}`;
  if (bounds !== w[m + M_NR_ALLOC]) return `nrAlloc is ${w[m + M_NR_ALLOC]}, the map has ${bounds}`;
  if (contig !== w[m + M_CONTIG])
    return `the contig hint is ${w[m + M_CONTIG]}, the longest free run ${contig}`;
  return null;
}
