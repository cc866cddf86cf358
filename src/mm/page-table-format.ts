/**
 * The format of a page-table buffer: the address geometry (which bits of an address index
 * which level), the words of the header, where the lower tables start; making a new buffer and
 * recognising one to attach to.
 *
 * Holds: the constants of the format, createPageTableBuffer() and checkPageTableBuffer(), the
 * argument checks they share, and map()'s check of its source pfns (checkMapSource): EINVAL,
 * nothing changed.
 * Invariant: a buffer made here has the magic and page shift in its header, next = first
 * table, the limit first + maxTables, no mapped page, and room for INITIAL_TABLES tables.
 * Callers: src/mm/page-table.ts (PageTable.createBuffer, its argument checks through einval(),
 * and the walk, which binds the geometry constants as its own), src/mm/page-table-alloc.ts
 * (the constructor's checkPageTableBuffer, the header words) and src/mm/page-table-check.ts.
 *
 * Address bits with 4 KiB pages (the kernel's x86_64 4-level layout):
 *
 *    47        39 38        30 29        21 20        12 11          0
 *   +------------+------------+------------+------------+-------------+
 *   | pgd index  | pud index  | pmd index  | pte index  | page offset |
 *   +------------+------------+------------+------------+-------------+
 *     512 entries  512 entries  512 entries  512 entries   4096 bytes
 *     (spans 512 GiB each, 1 GiB, 2 MiB, 4 KiB)
 *
 *   The top level is as wide as the page size leaves it: 48 - log2(pageSize) page-number
 *   bits, 9 for each of pud, pmd and pte, the rest for the pgd (the kernel's x86_64 pgd is 9):
 *   1 KiB pages: pgd 11 bits (2048 entries), then 9/9/9, offset 10.
 *   64 KiB pages: pgd 5 bits (32 entries), then 9/9/9, offset 16.
 *
 * Memory layout (Int32 words; table t starts at word t * 512):
 *
 *   word 0             TOP          TOP + 8                 first * 512       t * 512
 *   | pgd[TOP entries] | header (8) | pad to a table bound | table first | ... | table t | ...
 *
 *   header: magic, page shift, next table index (the bump counter), table limit, a reserved
 *   word (0: the mapped pages are counted by a walk, not kept in a shared counter)
 */

import { type AnyBuffer, isSharedBuffer, makeGrowableBuffer } from '../shared/buffers.js';
import { VmallocError, hex } from '../errors.js';

/** Entries of a lower table (9 bits of the page number), and its size. */
export const PTRS_PER_TABLE = 512;
export const TABLE_BYTES = PTRS_PER_TABLE * 4;
/** Library addresses are below 2^48. */
export const ADDRESS_LIMIT = 2 ** 48;
/** Page sizes the tables support. */
export const MIN_PAGE_SIZE = 1024;
export const MAX_PAGE_SIZE = 65536;
/** Most lower tables a page table may hold (2 GiB of tables); the default ceiling. */
export const MAX_TABLES = (1 << 20) - 16;
export const DEFAULT_MAX_TABLES = MAX_TABLES;

/** Whether the platform can share memory (guarded: a page without isolation has no global). */
export const hasSharedMemory = typeof SharedArrayBuffer !== 'undefined';

/** Header words, at word TOP + H_*. */
export const H_MAGIC = 0;
export const H_SHIFT = 1;
export const H_NEXT = 2; // next table index to hand out: tables [first, next) exist
export const H_LIMIT = 3; // tables [first, limit) may exist
export const H_PAGES = 4; // reserved, 0 (see countMapped())
export const HEADER_WORDS = 8;
export const MAGIC = 0x50475442; // "PGTB"

/** Lower tables made room for at creation. */
export const INITIAL_TABLES = 16;

/** Page-number bits below the pgd index (pud + pmd + pte). */
export const LOW_BITS = 27;
export const LOW_SPAN = 2 ** LOW_BITS;
export const INV_LOW_SPAN = 2 ** -LOW_BITS;
export const PUD_SPAN = 1 << 18; // pages under one pud entry

/** Throws EINVAL: "Cannot <action>: <arg> must <rule>, got <value>". */
export function einval(action: string, arg: string, rule: string, value: unknown): never {
  const shown = typeof value === 'number' && value >= 2 ** 16 ? `${value} (${hex(value)})` : value;
  throw new VmallocError('EINVAL', `Cannot ${action}: ${arg} must ${rule}, got ${String(shown)}`);
}

/** log2(pageSize), or EINVAL when the tables do not support that page size. */
export function checkPageSize(action: string, pageSize: number): number {
  if (
    typeof pageSize !== 'number' ||
    !(pageSize >= MIN_PAGE_SIZE && pageSize <= MAX_PAGE_SIZE) ||
    (pageSize & (pageSize - 1)) !== 0
  ) {
    einval(
      action,
      'pageSize',
      `be a power of two from ${MIN_PAGE_SIZE} to ${MAX_PAGE_SIZE}`,
      pageSize,
    );
  }
  return Math.log2(pageSize);
}

/** Words of the pgd for `shift` (log2 of the page size). */
export function topEntries(shift: number): number {
  return 2 ** (48 - shift - LOW_BITS);
}

/** Index of the first lower table: the pgd and the header fill the slots before it. */
export function firstTable(shift: number): number {
  return Math.ceil((topEntries(shift) + HEADER_WORDS) / PTRS_PER_TABLE);
}

/**
 * The buffer of a new, empty page table for `pageSize` (shared: a SharedArrayBuffer). At most
 * `maxTables` lower tables may ever be made; the buffer reserves that much and grows on demand.
 */
export function createPageTableBuffer(
  pageSize: number,
  shared: boolean,
  maxTables = DEFAULT_MAX_TABLES,
): AnyBuffer {
  const shift = checkPageSize('create a page table', pageSize);
  if (!Number.isInteger(maxTables) || maxTables < 3 || maxTables > MAX_TABLES) {
    einval('create a page table', 'maxTables', `be an integer from 3 to ${MAX_TABLES}`, maxTables);
  }
  if (shared && !hasSharedMemory) {
    throw new VmallocError(
      'EINVAL',
      'Cannot create a page table: shared needs SharedArrayBuffer, which this platform lacks',
    );
  }
  const first = firstTable(shift);
  const limit = first + maxTables;
  const initial = first + Math.min(maxTables, INITIAL_TABLES);
  const buffer = makeGrowableBuffer(initial * TABLE_BYTES, limit * TABLE_BYTES, shared);
  const h = new Int32Array(buffer, topEntries(shift) * 4, HEADER_WORDS);
  h[H_SHIFT] = shift;
  h[H_NEXT] = first;
  h[H_LIMIT] = limit;
  h[H_PAGES] = 0;
  Atomics.store(h, H_MAGIC, MAGIC);
  return buffer;
}

/**
 * log2(pageSize) for attaching to `buffer`, or EINVAL when it is not a page-table buffer made
 * by createPageTableBuffer for that page size.
 */
export function checkPageTableBuffer(buffer: AnyBuffer, pageSize: number): number {
  const shift = checkPageSize('attach a page table', pageSize);
  const top = topEntries(shift);
  if (
    !(buffer instanceof ArrayBuffer || isSharedBuffer(buffer)) ||
    buffer.byteLength < (top + HEADER_WORDS) * 4 ||
    new Int32Array(buffer, top * 4, HEADER_WORDS)[H_MAGIC] !== MAGIC ||
    new Int32Array(buffer, top * 4, HEADER_WORDS)[H_SHIFT] !== shift
  ) {
    einval(
      'attach a page table',
      'buffer',
      `be a page-table buffer made by PageTable.createBuffer for page size ${pageSize}`,
      buffer,
    );
  }
  return shift;
}

/**
 * map()'s source: pfns[offset .. offset + count) within an Int32Array, every pfn >= 0. The
 * public map() checks them (vmap's pages come from its caller); the vmalloc layer's own pages
 * skip this pass (PageTable.mapRegion).
 */
export function checkMapSource(pfns: Int32Array, offset: number, count: number): void {
  if (!(pfns instanceof Int32Array)) einval('map', 'pfns', 'be an Int32Array', pfns);
  if (count > pfns.length) einval('map', 'count', `not exceed pfns.length (${pfns.length})`, count);
  if (!(offset >= 0 && offset === Math.floor(offset) && offset <= pfns.length - count)) {
    einval(
      'map',
      'offset',
      `be an integer in [0, pfns.length - count] (${pfns.length - count})`,
      offset,
    );
  }
  let bits = 0;
  for (let k = offset, end = offset + count; k < end; k++) bits |= pfns[k]!;
  if (bits < 0) {
    const k = pfns.subarray(offset, offset + count).findIndex((p) => p < 0);
    einval('map', `pfns[${offset + k}]`, 'be a pfn >= 0', pfns[offset + k]);
  }
}
