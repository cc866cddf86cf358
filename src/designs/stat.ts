/**
 * Event counters of the vmap-area layer, one block of Float64 words per cpu.
 *
 * Holds: the counter indices (defined here once) and bump().
 * Invariant: a cpu writes only its own block (no cache line written by two workers); a reader
 * sums the blocks. Counters only grow, except when the user resets nothing: there is no reset.
 * Callers: the designs and their shared core (src/designs/vmap-areas.ts) count; the statistics
 * module of the vmalloc layer (src/mm/statistics.ts) reads.
 */

export const VaStat = {
  PURGES: 0,
  PURGED_AREAS: 1,
  TLB_FLUSHES: 2,
  ALLOC_FAILURES: 3,
  ALLOC_RETRIES: 4,
  NOTIFIER_CALLS: 5,
  DRAINS: 6,
  POOL_HITS: 7,
  POOL_MISSES: 8,
  POOL_REFILLS: 9,
  DECAYED: 10,
  PURGE_HELPERS: 11,
} as const;

/** Float64 words of one cpu's block (two cache lines). */
export const VA_STAT_WORDS = 16;

export function bump(stat: Float64Array, k: number, by = 1): void {
  stat[k] = stat[k]! + by;
}

/** The counters summed over every cpu's block of `all`. */
export function sumStats(all: Float64Array): Float64Array {
  const st = new Float64Array(VA_STAT_WORDS);
  for (let k = 0; k < all.length; k++) st[k % VA_STAT_WORDS] = st[k % VA_STAT_WORDS]! + all[k]!;
  return st;
}
