/**
 * VmapSpace's contract: its option, handle and result types, and the constructor's options
 * checked and resolved (every default filled in) into a SpaceConfig; the checks of the
 * operations' arguments are in vmap-space-args.ts, the handle is made and checked in
 * vmap-space-handle.ts.
 *
 * Invariant: resolveSpaceOptions() checks every option before the space makes anything, and
 * throws VmallocError (EINVAL) naming the option and the rule.
 * Callers: VmapSpace (src/kva/vmap-space.ts), vmap-space-handle.ts, space-pools-layout.ts.
 */

import { hex, isPowerOfTwo } from '../errors.js';
import type { AnyBuffer } from '../shared/buffers.js';
import type { ArenaBuffers } from '../shared/record-arena.js';
import { DEFAULT_MAX_RECORDS } from './vmap-area.js';
import { checkBound, checkOptionsBag, einval, refuse } from './vmap-space-args.js';

export interface VmapSpaceOptions {
  /** First address of the space (inclusive). An integer in [0, 2^53). */
  start: number;
  /**
   * End of the space (exclusive). An integer in (start, 2^53] with room for at least one page:
   * end - start >= pageSize. (Addresses need not be page-aligned: the page size is the granule
   * of sizes, and an area starts where the search puts it, aligned as the request asks.)
   */
  end: number;
  /** Allocation granule: sizes must be multiples of it. A power of two from 1 to 2^30. */
  pageSize?: number;
  /** Keep the records in SharedArrayBuffers (default: whenever the platform has them). */
  shared?: boolean;
  /**
   * Ceiling on records (record 0, two tree heads, one spare, one per busy area and free
   * block): an integer from MIN_RECORDS (6: enough for a first allocation) to MAX_RECORDS
   * (2^26: 4 GiB of records, the largest growable buffer). @defaultValue 2^25
   */
  maxRecords?: number;
  /**
   * Take a lock (in shared memory) around every operation, so that workers attached with
   * VmapSpace.attach() can use the space at the same time. @defaultValue false
   */
  concurrent?: boolean;
  /**
   * With `concurrent`: how long a worker waits for the lock before throwing VmallocError
   * ETIMEDOUT (the holder's worker may have died), in milliseconds, from 1 to 2^31 - 1.
   * Ignored (but checked) without `concurrent`. @defaultValue 10000
   */
  lockTimeoutMs?: number;
  /**
   * How a request with `align` above the page size is placed. 'kernel': the kernel's rule,
   * which prunes the search by `size + align - 1` and so may pass over a smaller free block
   * whose start happens to be aligned (O(log n)). 'exact': the truly lowest address that can
   * hold the request; the search may test every free block of at least `size` bytes below it
   * (slower under many misaligned blocks, less fragmentation). @defaultValue 'kernel'
   */
  fit?: 'kernel' | 'exact';
  /**
   * With `concurrent`: put per-worker caches of ready ranges in front of the free tree (the
   * kernel's vmap nodes design for range users), so that most alloc/free pairs take no
   * shared lock. A freed range is not free at once: it waits on its worker's lazy list until
   * a purge (when the list reaches `lazyMax`, or when an allocation finds no room) moves it to
   * that worker's pool of its size, from which an allocation of exactly that size takes it,
   * or back into the free tree; each purge takes a quarter of each of the purging worker's
   * pools back to the tree (at that worker's next trip to the tree, or its next purge; an
   * allocation that finds no room purges every worker's lists and pools). An allocation whose pool is empty cuts
   * `refill` ranges of its size from the tree at once, returns the first and pools the rest
   * (in a space with homes).
   * A worker's allocations from the free tree take the lowest fit in its own home first (the
   * space is cut into `caches` equal homes, home c for cache c; in a space too small for
   * homes, with homes under 512 pages, there are none) and the lowest fit in the whole window
   * when its home has no room: so workers' areas stay apart and their operations touch no
   * common cache line. So addresses are no longer the lowest possible. `true` takes the
   * defaults.
   * @defaultValue false
   */
  pools?: boolean | VmapSpacePoolOptions;
}

export interface VmapSpacePoolOptions {
  /**
   * Number of caches, a power of two from 1 to 64: a worker attached with `cpu` uses cache
   * `cpu % caches` (give workers distinct cpus: two workers on one cache share its lock).
   * @defaultValue 8
   */
  caches?: number;
  /** Largest pooled size, in pages, from 1 to 256 (the kernel's limit). @defaultValue 64 */
  classes?: number;
  /** Lazily freed ranges a cache holds before its next free purges, 1 to 65536. @defaultValue 128 */
  lazyMax?: number;
  /**
   * Ranges an allocation cuts from the free tree when its pool is empty, 1 to 64: the one it
   * returns and `refill - 1` more of its size, next to it in the worker's home, put in the
   * pool for the next allocations of that size (one trip under the space's shared lock for
   * `refill` allocations). Only for requests of a pooled size with no `align` and no window
   * (any other request cuts one range), in a space with homes (see `pools`), and only when
   * the home has room for all of them. 1: every miss cuts one range. @defaultValue 8
   */
  refill?: number;
}

/** What a worker needs to attach to a space: structured-cloneable (postMessage it). */
export interface VmapSpaceHandle {
  readonly kind: 'VmapSpace';
  readonly start: number;
  readonly end: number;
  readonly pageSize: number;
  readonly store: ArenaBuffers;
  readonly ctl: AnyBuffer;
  readonly stat: AnyBuffer;
  readonly locks: AnyBuffer | null;
  /** The caches, lazy lists and busy shards of a space made with `pools` (else null). */
  readonly pools: AnyBuffer | null;
}

export interface VmapSpaceAttachOptions {
  /** This worker's id in the lock's owner word: an integer from 0 to 65535. @defaultValue 0 */
  cpu?: number;
}

export interface AllocOptions {
  /** Power of two the address must be a multiple of; default 1. */
  align?: number;
  /** Lowest acceptable address (inclusive), in [start, end); default the space's start. */
  vstart?: number;
  /** Highest acceptable end address (exclusive), in (start, end]; default the space's end. */
  vend?: number;
}

/** A half-open range [start, end). */
export interface Range {
  start: number;
  end: number;
}

export interface VmapSpaceStats {
  /** end - start */
  size: number;
  busyCount: number;
  busyBytes: number;
  freeCount: number;
  freeBytes: number;
  /** Largest single free block: the largest request with align 1 that can succeed. */
  largestFree: number;
  /** Records handed out by the store (areas, blocks, heads, spare). */
  records: number;
  /** Records the store can hold before it grows. */
  capacity: number;
  /** Ranges freed and waiting for a purge (spaces with `pools`; else 0), and their bytes. */
  lazyCount: number;
  lazyBytes: number;
  /** Ranges ready in the pools (spaces with `pools`; else 0), and their bytes. */
  pooledCount: number;
  pooledBytes: number;
}

/** One past the largest address: 2^53, the end of the exact integers in a double. */
export const MAX_END = 2 ** 53;
/**
 * Records a space needs for its first allocation: record 0 (never used), the two tree heads,
 * the free block, the area and the spare a split may take.
 */
export const MIN_RECORDS = 6;
/** 2^26 records of 64 bytes: 4 GiB, the largest growable buffer V8 makes. */
export const MAX_RECORDS = 2 ** 26;
const MAX_PAGE_SIZE = 2 ** 30;
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

const CREATE_CALL = 'create VmapSpace';
const KNOWN_OPTIONS = [
  'start',
  'end',
  'pageSize',
  'shared',
  'maxRecords',
  'concurrent',
  'lockTimeoutMs',
  'fit',
  'pools',
];
const POOL_OPTIONS = ['caches', 'classes', 'lazyMax', 'refill'];
/** Default ranges cut from the free tree at a pool miss (vmap-space-options' `refill`). */
export const DEFAULT_REFILL = 8;

/** The constructor's options, checked and with every default filled in. */
export interface SpaceConfig {
  start: number;
  end: number;
  pageSize: number;
  shared: boolean;
  maxRecords: number;
  concurrent: boolean;
  /** undefined: the lock table's default. */
  lockTimeoutMs: number | undefined;
  /** fit: 'exact' */
  exact: boolean;
  /** The pools' settings, or null without `pools`. */
  pools: PoolConfig | null;
}

export interface PoolConfig {
  caches: number;
  classes: number;
  lazyMax: number;
  refill: number;
}

function checkBoolean(name: string, value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean')
    einval(CREATE_CALL, `${name} must be true or false`, value);
  return value;
}

/** Checks every constructor option, before anything is created. */
export function resolveSpaceOptions(options: unknown): SpaceConfig {
  const opts = checkOptionsBag(CREATE_CALL, options);
  if (opts === undefined)
    einval(CREATE_CALL, 'options must be an object with start and end', options);
  for (const key of Object.keys(opts)) {
    if (!KNOWN_OPTIONS.includes(key))
      einval(CREATE_CALL, `options may hold only ${KNOWN_OPTIONS.join(', ')}`, key);
  }
  const ps = opts.pageSize === undefined ? 4096 : opts.pageSize;
  if (typeof ps !== 'number' || !isPowerOfTwo(ps) || ps > MAX_PAGE_SIZE)
    einval(CREATE_CALL, 'pageSize must be a power of two from 1 to 2^30', ps);
  const pageSize = ps;
  // + 0: a start of -0 is 0 (else the first area's address would read as -0).
  const start =
    checkBound(CREATE_CALL, 'start', opts.start, 0, MAX_END - 1, 'lie within [0, 2^53)') + 0;
  const end = checkBound(
    CREATE_CALL,
    'end',
    opts.end,
    start + 1,
    MAX_END,
    `lie within (start, 2^53], start being ${hex(start)}`,
  );
  if (end - start < pageSize) {
    einval(
      CREATE_CALL,
      `the space [start, end) must hold at least one page (pageSize ${pageSize}): end - start`,
      end - start,
    );
  }
  const shared = checkBoolean('shared', opts.shared) ?? typeof SharedArrayBuffer === 'function';
  const concurrent = checkBoolean('concurrent', opts.concurrent) ?? false;
  const mr = opts.maxRecords;
  const maxRecords =
    mr === undefined
      ? DEFAULT_MAX_RECORDS
      : checkBound(
          CREATE_CALL,
          'maxRecords',
          mr,
          MIN_RECORDS,
          MAX_RECORDS,
          `be from ${MIN_RECORDS} (record 0, two tree heads, a spare, a free block and an area) to 2^26 (4 GiB of records)`,
        );
  const t = opts.lockTimeoutMs;
  const lockTimeoutMs =
    t === undefined
      ? undefined
      : checkBound(
          CREATE_CALL,
          'lockTimeoutMs',
          t,
          1,
          MAX_TIMEOUT_MS,
          'be from 1 to 2^31 - 1 (milliseconds)',
        );
  if (concurrent && !shared && opts.shared === undefined)
    // Not asked for: the platform has no SharedArrayBuffer. Say how a browser page gets one.
    refuse(
      CREATE_CALL,
      'concurrent: true needs SharedArrayBuffer, which this platform does not have (a browser page must be cross-origin isolated: served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp); leave concurrent off for a single-thread space',
    );
  if (concurrent && !shared)
    refuse(
      CREATE_CALL,
      'concurrent must be false when shared is false (a concurrent space needs shared memory), got concurrent: true and shared: false',
    );
  const fit = opts.fit;
  if (fit !== undefined && fit !== 'kernel' && fit !== 'exact')
    einval(CREATE_CALL, "fit must be 'kernel' or 'exact'", fit);
  const pools = resolvePools(opts.pools, concurrent);
  return {
    start,
    end,
    pageSize,
    shared,
    maxRecords,
    concurrent,
    lockTimeoutMs,
    exact: fit === 'exact',
    pools,
  };
}

/** The `pools` option: false/undefined (null), true (the defaults) or a bag of settings. */
function resolvePools(value: unknown, concurrent: boolean): PoolConfig | null {
  if (value === undefined || value === false) return null;
  if (value !== true) {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      einval(CREATE_CALL, 'pools must be true, false or an object of pool settings', value);
  }
  const opts = (value === true ? {} : value) as Record<string, unknown>;
  for (const key of Object.keys(opts)) {
    if (!POOL_OPTIONS.includes(key))
      einval(CREATE_CALL, `pools must hold only ${POOL_OPTIONS.join(', ')}`, key);
  }
  const caches = opts.caches === undefined ? 8 : opts.caches;
  if (typeof caches !== 'number' || !isPowerOfTwo(caches) || caches > 64)
    einval(CREATE_CALL, 'pools.caches must be a power of two from 1 to 64', caches);
  const classes =
    opts.classes === undefined
      ? 64
      : checkBound(CREATE_CALL, 'pools.classes', opts.classes, 1, 256, 'be from 1 to 256 (pages)');
  const lazyMax =
    opts.lazyMax === undefined
      ? 128
      : checkBound(CREATE_CALL, 'pools.lazyMax', opts.lazyMax, 1, 65536, 'be from 1 to 65536');
  const refill =
    opts.refill === undefined
      ? DEFAULT_REFILL
      : checkBound(CREATE_CALL, 'pools.refill', opts.refill, 1, 64, 'be from 1 to 64');
  if (!concurrent) {
    refuse(
      CREATE_CALL,
      'pools must come with concurrent: true (the pools serve workers sharing the space), got pools without concurrent',
    );
  }
  return { caches, classes, lazyMax, refill };
}
