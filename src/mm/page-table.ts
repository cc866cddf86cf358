/**
 * Page tables: the translation virtual page -> page frame number (pfn) of every mapped range,
 * a four-level radix tree like the kernel's init_mm tables (pgd -> pud -> pmd -> pte).
 *
 * Holds: every table in one growable buffer of Int32 words (a SharedArrayBuffer when shared,
 * so every worker attached to it translates and maps at once): the top table (pgd) at word 0,
 * a small header after it, then lower tables of 512 entries each, addressed by index.
 * A pte entry is pfn + 1 (0: not mapped); an upper entry is the index of the next-level table
 * (0: none yet). The pgd always exists; lower tables are made on first use, never freed: the
 * buffer, this thread's view and the allocation of tables are the base class, PageTableAlloc
 * (src/mm/page-table-alloc.ts); this module is the walk over them.
 * Invariant: the tables' own (see page-table-alloc.ts); a walk-cache entry names the pte table
 * its region's upper entries name (never stale: tables never move). No shared counter is
 * kept on the map/unmap path (every worker would write its cache line on every call): `pages`
 * counts by a walk. Independent of vm_structs: the checker compares the translations with the
 * areas that should hold them.
 * Callers: the vmalloc layer: vmalloc, vmap, vm_map_ram and the percpu mappings map their pages
 * through it and unmap them at free; read/write and vmalloc_to_page translate through it.
 *
 * Kernel: vmap_range_noflush / vmap_pages_range (vmap_pud_range, vmap_pmd_range,
 * vmap_pte_range) are map(); vunmap_range_noflush (vunmap_pte_range ...) is unmap();
 * vmalloc_to_page / vmalloc_to_pfn are lookup(); the walk's pud_alloc / pmd_alloc /
 * __pte_alloc_kernel are the base class's child().
 * Differs from kernel: no p4d (4-level paging), no huge (pmd/pud block) mappings, no TLB, a
 * top level as wide as the page size leaves it (see the format). map() overwrites a mapped
 * pte (set_pte_at, as vmap_range for ioremap does) rather than WARN.
 *
 * The address geometry, the memory layout of the buffer and its header, making a buffer and
 * the argument checks are in src/mm/page-table-format.ts; the checker behind check() and
 * entries() in src/mm/page-table-check.ts.
 *
 * Walk cache: each thread remembers the pte tables of its last 64 regions of 512 pages (an
 * MMU's paging-structure cache), so a map, unmap or lookup in a recently used region skips the
 * three upper levels. It never goes stale, since a published table is never freed or moved.
 */

import type { AnyBuffer } from '../shared/buffers.js';
import {
  type MappedRun,
  type PageTableCheck,
  checkExpected,
  checkTables,
  countMapped,
  mappedRuns,
} from './page-table-check.js';
import { PageTableAlloc } from './page-table-alloc.js';
import * as format from './page-table-format.js';
import {
  DEFAULT_MAX_TABLES,
  checkMapSource,
  createPageTableBuffer,
  einval,
  hasSharedMemory,
} from './page-table-format.js';

export type { MappedRun, PageTableCheck } from './page-table-check.js';

// The format's constants the walk, lookup() and mapped() use, bound as this module's own:
// V8 folds a module's own constants into the code but loads imported ones at every use.
const PTRS_PER_TABLE = format.PTRS_PER_TABLE;
const ADDRESS_LIMIT = format.ADDRESS_LIMIT;
const LOW_SPAN = format.LOW_SPAN;
const INV_LOW_SPAN = format.INV_LOW_SPAN;
const PUD_SPAN = format.PUD_SPAN;
/** A region (512 pages, one pte table) number: its bits below the pgd index (pud, pmd). */
const REGION_MID_BITS = 18;
const REGION_MID_MASK = (1 << REGION_MID_BITS) - 1;
/** Entries of a thread's walk cache (a power of two). */
const WALK_CACHE = 64;

/** What to send to another thread to attach to a page table (structured-cloneable). */
export interface PageTableHandle {
  readonly buffer: AnyBuffer;
  readonly pageSize: number;
}

export class PageTable extends PageTableAlloc {
  /** Pages in the address space: 2^48 / pageSize. */
  readonly nrPages: number;
  /**
   * 1 / pageSize (exact: a power of two). Public so that the vmalloc layer can turn an
   * address into (region, pte index), two small integers, before calling mapRegion /
   * unmapRegion: an address above 2^31 passed into a call is a heap number each time.
   */
  readonly invPage: number;
  /**
   * This thread's walk cache (an MMU's paging-structure cache): for a few 512-page regions,
   * the word index of their pte table. Entries never go stale, since a published table is
   * never freed or moved. Tag = region + 1 (0: empty), direct-mapped by the region's low bits.
   */
  private readonly walkTag = new Int32Array(WALK_CACHE);
  private readonly walkPte = new Int32Array(WALK_CACHE);

  /**
   * The buffer of a new, empty page table for `pageSize` (shared: a SharedArrayBuffer that any
   * worker can attach to with `new PageTable(buffer, pageSize)`). At most `maxTables` lower
   * tables (2 KiB each) may ever be made; the buffer reserves that much and grows on demand.
   */
  static createBuffer(
    pageSize: number,
    shared: boolean,
    maxTables = DEFAULT_MAX_TABLES,
  ): AnyBuffer {
    return createPageTableBuffer(pageSize, shared, maxTables);
  }

  /** A new, empty page table (shared by default when the platform can share memory). */
  static create(
    pageSize: number,
    options: { shared?: boolean; maxTables?: number } = {},
  ): PageTable {
    const shared = options.shared ?? hasSharedMemory;
    return new PageTable(PageTable.createBuffer(pageSize, shared, options.maxTables), pageSize);
  }

  /** Attaches to a page table made by createBuffer (in this thread or any other). */
  constructor(buffer: AnyBuffer, pageSize: number) {
    super(buffer, pageSize);
    this.nrPages = ADDRESS_LIMIT / pageSize;
    this.invPage = 1 / pageSize;
  }

  /** Plain data to post to a worker, which attaches with `PageTable.attach(handle)`. */
  get handle(): PageTableHandle {
    return { buffer: this.buffer, pageSize: this.pageSize };
  }

  static attach(handle: PageTableHandle): PageTable {
    return new PageTable(handle.buffer, handle.pageSize);
  }

  /** Pages mapped (non-zero pte entries), counted by a walk of the tables: O(tables). */
  get pages(): number {
    return countMapped(this.refresh(), this.top);
  }

  // ---- the walk --------------------------------------------------------------------------

  /**
   * Word index of the pte table of `region` (page number >> 9, a small integer: < 2^29, so it
   * crosses calls unboxed where a page number above 2^31 would be a heap number), made if
   * missing. Region bits: pgd index = region >> 18, pud index = (region >> 9) & 511, pmd
   * index = region & 511.
   */
  private pteTable(region: number): number {
    const k = region & (WALK_CACHE - 1);
    if (this.walkTag[k] === region + 1) return this.walkPte[k]!;
    const mid = region & REGION_MID_MASK;
    const pud = this.child(region >>> REGION_MID_BITS);
    const pmd = this.child((pud << 9) | (mid >>> 9));
    const base = this.child((pmd << 9) | (mid & 511)) << 9;
    this.walkTag[k] = region + 1;
    this.walkPte[k] = base;
    return base;
  }

  /** Word index of the pte table of `region`, or 0 when it does not exist (unmap). */
  private existingPteTable(region: number): number {
    const k = region & (WALK_CACHE - 1);
    if (this.walkTag[k] === region + 1) return this.walkPte[k]!;
    const mid = region & REGION_MID_MASK;
    const pud = Atomics.load(this.v, region >>> REGION_MID_BITS);
    if (pud === 0) return 0;
    const pmd = this.entry(pud, mid >>> 9);
    if (pmd === 0) return 0;
    const pte = this.entry(pmd, mid & 511);
    if (pte === 0) return 0;
    // The pte table itself may be one another thread made since this view: reach it before
    // it is cached (a cached index past the view reads undefined: "mapped", pfn 0, and an
    // unmap through it writes nothing).
    if (pte >= this.viewTables) this.reach(pte);
    this.walkTag[k] = region + 1;
    this.walkPte[k] = pte << 9;
    return pte << 9;
  }

  // ---- argument checks -------------------------------------------------------------------

  /** Page number of an aligned address with `count` pages after it inside the space. */
  private alignedPage(action: string, addr: number, count: number): number {
    const x = addr * this.invPage;
    if (!(x >= 0 && x < this.nrPages && x === Math.floor(x))) {
      if (!(addr >= 0 && addr < ADDRESS_LIMIT) || typeof addr !== 'number') {
        einval(action, 'addr', 'lie within [0, 2^48)', addr);
      }
      einval(action, 'addr', `be a multiple of the page size (${this.pageSize})`, addr);
    }
    this.checkCount(action, x, count);
    return x;
  }

  private checkCount(action: string, x: number, count: number): void {
    if (!(count >= 0 && count === Math.floor(count))) {
      einval(action, 'count', 'be an integer >= 0', count);
    }
    if (count > this.nrPages - x) {
      einval(
        action,
        'count',
        `not take the range past 2^48 (${this.nrPages - x} pages left)`,
        count,
      );
    }
  }

  // ---- the operations --------------------------------------------------------------------

  /**
   * Maps `count` pages from the page-aligned `addr` to pfns[offset .. offset + count): one walk
   * per pte table, then a run of stores. A mapped pte is overwritten. Kernel: vmap_range_noflush.
   * Throws EINVAL (nothing changed) for bad arguments, ENOMEM when the tables run out (the pages
   * before that point are mapped; the caller unmaps the range, as vmap_pages_range's callers do).
   */
  map(addr: number, pfns: Int32Array, offset: number, count: number): void {
    const x0 = this.alignedPage('map', addr, count);
    checkMapSource(pfns, offset, count);
    this.store(Math.floor(x0 * (1 / PTRS_PER_TABLE)), x0 & 511, pfns, offset, count);
  }

  /**
   * map() for the vmalloc layer's own calls, whose arguments are valid by construction: a
   * page-aligned address in the space, given as its region (page number / 512) and pte index
   * (page number % 512), and pfns from the page allocator (vmalloc) or checked by vmap().
   * Skips map()'s checks, which would cost a second pass over the pfns.
   */
  mapRegion(region: number, first: number, pfns: Int32Array, offset: number, count: number) {
    this.store(region, first, pfns, offset, count);
  }

  /** Stores the ptes from pte `first` of `region` on (small integers: see pteTable()). */
  private store(region: number, first: number, pfns: Int32Array, offset: number, count: number) {
    let r = region;
    let i = first;
    let src = offset;
    const end = offset + count;
    while (src < end) {
      const base = this.pteTable(r);
      const n = Math.min(PTRS_PER_TABLE - i, end - src);
      const v = this.v;
      for (let j = base + i, stop = base + i + n; j < stop; j++) {
        v[j] = pfns[src++]! + 1; // pfn 2^31 - 1 wraps to -2^31; lookup unwraps it
      }
      r++;
      i = 0;
    }
  }

  /**
   * Unmaps `count` pages from the page-aligned `addr` (unmapped pages are skipped, missing
   * tables skipped whole). Tables stay. Kernel: vunmap_range_noflush.
   */
  unmap(addr: number, count: number): void {
    const x = this.alignedPage('unmap', addr, count);
    this.unmapRegion(Math.floor(x * (1 / PTRS_PER_TABLE)), x & 511, count);
  }

  /**
   * unmap() for the vmalloc layer's own calls (arguments valid by construction), from pte
   * `first` of `region` (small integers, as mapRegion takes them).
   */
  unmapRegion(region: number, first: number, count: number): void {
    let x = region * PTRS_PER_TABLE + first;
    const end = x + count;
    while (x < end) {
      const i = x & 511; // x < 2^38: & works on its low 32 bits, which hold the pte index
      let step = PTRS_PER_TABLE - i;
      const base = this.existingPteTable(Math.floor(x * (1 / PTRS_PER_TABLE)));
      if (base !== 0) {
        const v = this.v;
        const stop = base + i + Math.min(step, end - x);
        for (let j = base + i; j < stop; j++) v[j] = 0;
      } else {
        // No pte table here: skip the whole span of the highest missing level.
        const g = Math.floor(x * INV_LOW_SPAN);
        const low = (x - g * LOW_SPAN) | 0;
        const pud = Atomics.load(this.v, g);
        if (pud === 0) step = LOW_SPAN - low;
        else if (this.entry(pud, low >>> 18) === 0) step = PUD_SPAN - (low & (PUD_SPAN - 1));
      }
      x += step;
    }
  }

  /**
   * The pfn mapped at the page holding `addr`, or -1. Kernel: vmalloc_to_pfn. A handful of
   * loads and no allocation; a lookup racing with the map of the same page may see either.
   */
  lookup(addr: number): number {
    if (!(addr >= 0 && addr < ADDRESS_LIMIT))
      einval('lookup', 'addr', 'lie within [0, 2^48)', addr);
    const x = addr * this.invPage;
    const region = Math.floor(x * (1 / PTRS_PER_TABLE));
    if (this.walkTag[region & (WALK_CACHE - 1)] === region + 1) {
      return (this.v[this.walkPte[region & (WALK_CACHE - 1)]! + (x & 511)]! - 1) | 0;
    }
    const g = Math.floor(x * INV_LOW_SPAN);
    const low = (x - g * LOW_SPAN) | 0;
    // A table index past this thread's view: re-make the view. Still past it can only be a
    // table published this instant by a map racing with this lookup: not mapped yet.
    let v = this.v;
    let t = v[g]!;
    if (t === 0) return -1;
    if (t >= this.viewTables) {
      v = this.refresh();
      if (t >= this.viewTables) return -1;
    }
    t = v[(t << 9) | (low >>> 18)]!;
    if (t === 0) return -1;
    if (t >= this.viewTables) {
      v = this.refresh();
      if (t >= this.viewTables) return -1;
    }
    t = v[(t << 9) | ((low >>> 9) & 511)]!;
    if (t === 0) return -1;
    if (t >= this.viewTables) {
      v = this.refresh();
      if (t >= this.viewTables) return -1;
    }
    return (v[(t << 9) | (low & 511)]! - 1) | 0;
  }

  /**
   * How many of the `count` pages from the page holding `addr` are mapped before the first
   * unmapped one (count when all are). For range checks of read/write.
   */
  mapped(addr: number, count: number): number {
    if (!(addr >= 0 && addr < ADDRESS_LIMIT))
      einval('mapped', 'addr', 'lie within [0, 2^48)', addr);
    const x0 = Math.floor(addr * this.invPage);
    this.checkCount('mapped', x0, count);
    let x = x0;
    const end = x0 + count;
    while (x < end) {
      const base = this.existingPteTable(Math.floor(x * (1 / PTRS_PER_TABLE)));
      if (base === 0) break;
      const v = this.v;
      const i = x & 511;
      const stop = base + i + Math.min(PTRS_PER_TABLE - i, end - x);
      let j = base + i;
      while (j < stop && v[j] !== 0) j++;
      x += j - (base + i);
      if (j < stop) break;
    }
    return x - x0;
  }

  // ---- the checker (page-table-check.ts) ---------------------------------------------------

  /**
   * Every run of consecutive mapped pages, in address order (runs join across tables). For the
   * checker and debugging; reads the tables as they are (run it while no thread maps).
   */
  *entries(): IterableIterator<MappedRun> {
    yield* mappedRuns(this.refresh(), this.top, this.pageSize);
  }

  /**
   * Checks the tables' structure and, when `expected` is given, that the mapped pages are
   * exactly those ranges with those pfns (the ranges must not overlap). Throws EINVARIANT.
   * Run it while no thread maps or unmaps.
   */
  check(expected?: Iterable<{ addr: number; pfns: ArrayLike<number> }>): PageTableCheck {
    const v = this.refresh();
    const found = checkTables(v, {
      top: this.top,
      first: this.first,
      viewTables: this.viewTables,
      pageShift: this.pageShift,
    });
    if (expected !== undefined) checkExpected(this, expected, found.pages);
    return found;
  }
}
