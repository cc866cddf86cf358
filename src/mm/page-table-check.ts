/**
 * The page-table checker: the enumeration of mapped runs and the structural check behind
 * PageTable.entries() and PageTable.check().
 *
 * Holds: mappedRuns(), checkTables() and checkExpected() (the comparison with the mappings
 * the caller expects).
 * Invariant (what checkTables() verifies): the header keeps its magic and page shift; every
 * non-zero upper entry names a table in [first, next) that no other entry names; a table that
 * no entry names is all zeros; every pte is pfn + 1 or 0; with expected ranges, the mapped
 * pages are exactly those, with those pfns.
 * Callers: PageTable.entries() and PageTable.check() (src/mm/page-table.ts); reads the tables
 * as they are, so run it while no thread maps or unmaps.
 */

import { invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import {
  H_LIMIT,
  H_MAGIC,
  H_NEXT,
  H_SHIFT,
  LOW_SPAN,
  MAGIC,
  PTRS_PER_TABLE,
  PUD_SPAN,
} from './page-table-format.js';

/** A run of consecutive mapped virtual pages, in address order. */
export interface MappedRun {
  readonly addr: number;
  /** The pfn of each page of the run. */
  readonly pfns: Int32Array;
}

/** What check() counted. */
export interface PageTableCheck {
  /** Mapped pages (non-zero pte entries). */
  readonly pages: number;
  /** Lower tables allocated, and those an upper entry names. */
  readonly tables: number;
  readonly referencedTables: number;
}

/** Where the tables of a page table are, as its PageTable sees them. */
export interface TablesGeometry {
  /** Entries of the pgd (the header starts there). */
  readonly top: number;
  /** Index of the first lower table. */
  readonly first: number;
  /** Whole tables the view `v` covers. */
  readonly viewTables: number;
  readonly pageShift: number;
}

/** What the comparison with the expected mappings needs of the page table. */
export interface ExpectedLookup {
  readonly pageSize: number;
  lookup(addr: number): number;
  entries(): Iterable<MappedRun>;
}

/**
 * Every run of consecutive mapped pages, in address order (runs join across tables). For the
 * checker and debugging; reads the tables as they are (run it while no thread maps). `v` is a
 * view of the whole buffer, `top` the pgd's entries.
 */
export function* mappedRuns(
  v: Int32Array,
  top: number,
  pageSize: number,
): IterableIterator<MappedRun> {
  let runAddr = -1;
  let run: number[] = [];
  let nextX = -1;
  for (let g = 0; g < top; g++) {
    const pud = v[g]!;
    if (pud === 0) continue;
    for (let a = 0; a < PTRS_PER_TABLE; a++) {
      const pmd = v[(pud << 9) | a]!;
      if (pmd === 0) continue;
      for (let b = 0; b < PTRS_PER_TABLE; b++) {
        const pte = v[(pmd << 9) | b]!;
        if (pte === 0) continue;
        const x0 = g * LOW_SPAN + a * PUD_SPAN + b * PTRS_PER_TABLE;
        for (let c = 0; c < PTRS_PER_TABLE; c++) {
          const e = v[(pte << 9) | c]!;
          if (e === 0) continue;
          const x = x0 + c;
          if (x !== nextX && run.length > 0) {
            yield { addr: runAddr, pfns: Int32Array.from(run) };
            run = [];
          }
          if (run.length === 0) runAddr = x * pageSize;
          run.push((e - 1) | 0);
          nextX = x + 1;
        }
      }
    }
  }
  if (run.length > 0) yield { addr: runAddr, pfns: Int32Array.from(run) };
}

/**
 * The mapped pages (non-zero pte entries), counted by walking the tables: O(tables), for the
 * checker and statistics. There is no shared counter: map and unmap would update it on every
 * call from every worker, one contended cache line for all of them.
 */
export function countMapped(v: Int32Array, top: number): number {
  let pages = 0;
  for (let g = 0; g < top; g++) {
    const pud = v[g]!;
    if (pud === 0) continue;
    for (let a = 0; a < PTRS_PER_TABLE; a++) {
      const pmd = v[(pud << 9) | a]!;
      if (pmd === 0) continue;
      for (let b = 0; b < PTRS_PER_TABLE; b++) {
        const pte = v[(pmd << 9) | b]!;
        if (pte === 0) continue;
        for (let c = 0; c < PTRS_PER_TABLE; c++) if (v[(pte << 9) | c] !== 0) pages++;
      }
    }
  }
  return pages;
}

/**
 * Checks the tables' structure (`v`: a view of the whole buffer, just re-made). Throws
 * EINVARIANT. Run it while no thread maps or unmaps.
 */
export function checkTables(v: Int32Array, geometry: TablesGeometry): PageTableCheck {
  const { top, first, viewTables, pageShift } = geometry;
  if (v[top + H_MAGIC] !== MAGIC || v[top + H_SHIFT] !== pageShift) {
    invariantFailure('page table: the header lost its magic or page shift');
  }
  const next = v[top + H_NEXT]!;
  const limit = v[top + H_LIMIT]!;
  if (!(next >= first && next <= limit && next <= viewTables)) {
    invariantFailure(
      `page table: next table ${next} outside [${first}, min(${limit}, ${viewTables})]`,
    );
  }
  const named = new Uint8Array(next);
  const name = (t: number, where: string): void => {
    if (t < first || t >= next) {
      invariantFailure(`page table: ${where} names table ${t}, outside [${first}, ${next})`);
    }
    if (named[t] !== 0) invariantFailure(`page table: table ${t} is named twice (${where})`);
    named[t] = 1;
  };
  let pages = 0;
  for (let g = 0; g < top; g++) {
    const pud = v[g]!;
    if (pud === 0) continue;
    name(pud, `pgd[${g}]`);
    for (let a = 0; a < PTRS_PER_TABLE; a++) {
      const pmd = v[(pud << 9) | a]!;
      if (pmd === 0) continue;
      name(pmd, `pud ${pud}[${a}]`);
      for (let b = 0; b < PTRS_PER_TABLE; b++) {
        const pte = v[(pmd << 9) | b]!;
        if (pte === 0) continue;
        name(pte, `pmd ${pmd}[${b}]`);
        for (let c = 0; c < PTRS_PER_TABLE; c++) {
          const e = v[(pte << 9) | c]!;
          if (e === 0) continue;
          if (e < 0 && e !== -0x80000000) {
            invariantFailure(`page table: pte ${pte}[${c}] holds ${e}, not pfn + 1`);
          }
          pages++;
        }
      }
    }
  }
  let referenced = 0;
  for (let t = first; t < next; t++) {
    if (named[t] !== 0) {
      referenced++;
      continue;
    }
    const words = v.subarray(t << 9, (t + 1) << 9);
    if (words.some((w) => w !== 0)) {
      invariantFailure(`page table: table ${t} is named by no entry but is not empty`);
    }
  }
  return { pages, tables: next - first, referencedTables: referenced };
}

/**
 * Every expected page maps to its pfn, and nothing else is mapped (`pages` in all, as
 * checkTables() counted them); the expected ranges must not overlap. Throws EINVARIANT.
 */
export function checkExpected(
  pt: ExpectedLookup,
  expected: Iterable<{ addr: number; pfns: ArrayLike<number> }>,
  pages: number,
): void {
  const ranges = [...expected].sort((p, q) => p.addr - q.addr);
  let total = 0;
  let prevEnd = 0;
  for (const { addr, pfns } of ranges) {
    if (addr < prevEnd) {
      invariantFailure(`page table check: expected ranges overlap at ${hex(addr)}`);
    }
    for (let k = 0; k < pfns.length; k++) {
      const a = addr + k * pt.pageSize;
      const got = pt.lookup(a);
      if (got !== pfns[k]) {
        invariantFailure(
          `page table: page ${hex(a)} should map pfn ${pfns[k]}, ` +
            (got < 0 ? 'is not mapped' : `maps pfn ${got}`),
        );
      }
    }
    total += pfns.length;
    prevEnd = addr + pfns.length * pt.pageSize;
  }
  if (total !== pages) {
    let stray = '';
    const inside = (a: number): boolean =>
      ranges.some((r) => a >= r.addr && a < r.addr + r.pfns.length * pt.pageSize);
    search: for (const run of pt.entries()) {
      for (let k = 0; k < run.pfns.length; k++) {
        const a = run.addr + k * pt.pageSize;
        if (!inside(a)) {
          stray = ` (e.g. pfn ${run.pfns[k]} at ${hex(a)})`;
          break search;
        }
      }
    }
    invariantFailure(
      `page table: ${pages} pages are mapped, ${total} expected: stray mappings${stray}`,
    );
  }
}
