/**
 * The memory of a page table: its buffer of tables, this thread's view of it, and the
 * allocation of lower tables (pud, pmd, pte) shared by every thread that maps.
 *
 * Holds: PageTableAlloc, the base of PageTable (src/mm/page-table.ts): the buffer, its
 * geometry (page shift, the pgd's entries, the first lower table), this thread's view and the
 * tables it covers, the accounting (tables, bytes, lost races), and allocTable() / child() /
 * reach() / entry(), through which the walk reaches or makes the table an entry names.
 * Invariant: every non-zero upper entry names a table in [first, next) that no other entry
 * names; a table that no entry names is all zeros (a spare, see below); tables are never
 * freed or moved, so an index once published stays valid. The view covers whole tables and
 * is re-made only to reach an index past its end.
 * Callers: PageTable's walk (map, unmap, lookup, mapped) and its checker, through the
 * protected members; its accessors are PageTable's public ones.
 *
 * Kernel: pud_alloc / pmd_alloc / __pte_alloc_kernel are allocTable() + child(). As
 * __pte_alloc_kernel allocates a page, then populates the pmd only if it is still none and
 * frees its page otherwise, a thread here bumps the shared table counter, then
 * compare-and-swaps the parent entry from 0 to its table; the loser keeps its (still zero)
 * table as a spare for its next allocation instead of freeing it.
 * Differs from kernel: tables come from one bump counter in one buffer, never freed (the
 * kernel never frees the page tables of the vmalloc range either).
 *
 * Growth: the buffer grows (doubling) when the bump counter passes its end; a view made
 * before stays valid for the tables it covers, so a thread re-makes its view only when it
 * meets a table index past its view's end. A base class rather than a member object: the
 * walk reads `this.v` in its inner loops, and one object keeps those loads direct.
 */

import { type AnyBuffer, growBuffer } from '../shared/buffers.js';
import { invariantFailure } from '../debug.js';
import { VmallocError } from '../errors.js';
import * as format from './page-table-format.js';
import { checkPageTableBuffer, firstTable, topEntries } from './page-table-format.js';

// Bound as this module's own: V8 folds a module's own constants into the code but loads
// imported ones at every use.
const PTRS_PER_TABLE = format.PTRS_PER_TABLE;
const TABLE_BYTES = format.TABLE_BYTES;
const H_NEXT = format.H_NEXT;
const H_LIMIT = format.H_LIMIT;

export class PageTableAlloc {
  readonly buffer: AnyBuffer;
  readonly pageSize: number;
  /** log2(pageSize). */
  readonly pageShift: number;
  /** Entries of the pgd, and where the header starts. */
  protected readonly top: number;
  /** Index of the first lower table. */
  protected readonly first: number;
  /** This thread's view of the tables, and how many whole tables it covers. */
  protected v!: Int32Array;
  protected viewTables = 0;
  /** A table this thread allocated but lost the race to publish: still zero, used next. */
  private spare = 0;
  /** Races this thread lost when publishing a table. */
  private lost = 0;

  /** Attaches to a page-table buffer (createPageTableBuffer) in this thread. */
  constructor(buffer: AnyBuffer, pageSize: number) {
    const shift = checkPageTableBuffer(buffer, pageSize);
    this.buffer = buffer;
    this.pageSize = pageSize;
    this.pageShift = shift;
    this.top = topEntries(shift);
    this.first = firstTable(shift);
    this.refresh();
  }

  /** Re-makes this thread's view over the whole buffer as it is now. */
  protected refresh(): Int32Array {
    const tables = Math.floor(this.buffer.byteLength / TABLE_BYTES);
    if (tables !== this.viewTables) {
      this.v = new Int32Array(this.buffer, 0, tables * PTRS_PER_TABLE);
      this.viewTables = tables;
    }
    return this.v;
  }

  /** Lower tables (pud, pmd, pte) allocated so far, spares included. */
  get tables(): number {
    return Atomics.load(this.v, this.top + H_NEXT) - this.first;
  }

  /** Most lower tables this page table may hold. */
  get maxTables(): number {
    return this.v[this.top + H_LIMIT]! - this.first;
  }

  /** Bytes in use: the pgd and header slots and every allocated table. */
  get bytes(): number {
    return Atomics.load(this.v, this.top + H_NEXT) * TABLE_BYTES;
  }

  /** Bytes the buffer holds now (in use or not yet). */
  get bufferBytes(): number {
    return this.buffer.byteLength;
  }

  /** Races to publish a new table this instance (thread) lost: a statistic for tests. */
  get lostRaces(): number {
    return this.lost;
  }

  /**
   * A new lower table (all zeros, not yet named by any entry): this thread's spare, or the
   * next index of the shared bump counter, with the buffer grown to hold it.
   */
  private allocTable(): number {
    const s = this.spare;
    if (s !== 0) {
      this.spare = 0;
      return s;
    }
    const v = this.v;
    const at = this.top + H_NEXT;
    const limit = v[this.top + H_LIMIT]!;
    let t = Atomics.load(v, at);
    for (;;) {
      if (t >= limit) {
        throw new VmallocError(
          'ENOMEM',
          `Cannot map: the page table is full (${limit - this.first} tables of ${TABLE_BYTES} bytes)`,
        );
      }
      const seen = Atomics.compareExchange(v, at, t, t + 1);
      if (seen === t) break;
      t = seen;
    }
    const need = (t + 1) * TABLE_BYTES;
    const buf = this.buffer;
    if (buf.byteLength < need) {
      growBuffer(buf, Math.max(need, Math.min(limit * TABLE_BYTES, buf.byteLength * 2)));
    }
    if (t >= this.viewTables) this.refresh();
    return t;
  }

  /**
   * The table named by entry `slot` (a word index), made and published first if the entry is
   * still 0. Atomics.load pairs with the publishing compareExchange of another thread, so the
   * grown buffer length is visible once its index is.
   */
  protected child(slot: number): number {
    let t = Atomics.load(this.v, slot);
    if (t === 0) {
      const fresh = this.allocTable();
      t = Atomics.compareExchange(this.v, slot, 0, fresh);
      if (t === 0) {
        t = fresh;
      } else {
        this.spare = fresh; // another thread populated it first: keep ours for next time
        this.lost++;
      }
    }
    if (t >= this.viewTables) this.reach(t);
    return t;
  }

  /**
   * Re-makes the view to cover table `t`, whose index this thread loaded atomically: the
   * buffer grew before `t` was published, so the view must reach it now.
   */
  protected reach(t: number): void {
    this.refresh();
    if (t >= this.viewTables) {
      invariantFailure(`page table: table ${t} is past the buffer (${this.viewTables} tables)`);
    }
  }

  /** Entry `i` of table `t` (an atomic load), the view re-made if `t` is past it. */
  protected entry(t: number, i: number): number {
    if (t >= this.viewTables) this.reach(t);
    return Atomics.load(this.v, (t << 9) | i);
  }
}
