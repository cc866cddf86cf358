/**
 * The percpu allocator's chunk records and their allocation maps, in one shared buffer.
 *
 * Holds: PcpuChunks: the layout of the buffer (a header, then one record per chunk slot), the
 * accessors of a record, and the bitmap work inside a chunk: the first fit of an aligned run,
 * marking and clearing an allocation, the largest free run (the contig hint).
 * Recovery (src/mm/recovery-percpu.ts) reads the slot states and the map change in flight.
 * Invariant (with pcpu_alloc_mutex held, between calls): in a live chunk, the alloc map's set
 * bits are exactly the allocated 4-byte units; the bound map has a bit at the first unit of
 * each allocation and nowhere else; freeBits counts the clear alloc bits, contig is the
 * longest run of them, nrAlloc the bound bits; a populated page is mapped in every unit.
 * Callers: src/mm/percpu.ts (allocation, free, populate) and its checker.
 *
 * Kernel: struct pcpu_chunk (alloc_map, bound_map, free_bytes, contig_bits, populated),
 * pcpu_find_block_fit() / pcpu_alloc_area() / pcpu_free_area() in spirit (PCPU_MIN_ALLOC_SIZE
 * is 4 bytes here as there).
 * Differs from kernel: no per-block hints (metadata blocks): the whole map is scanned, by
 * words; the contig hint is recomputed exactly after every change, and the last request that
 * found no aligned fit is remembered until a free (the kernel's scan hints play that part).
 *
 *   buffer:  | header (16 words) | chunk 0 | chunk 1 | ...            (grows by whole slots)
 *   header:  | slots live created destroyed populated | op chunk start bits (in flight) | - |
 *   chunk:   | state freeBits contig nrAlloc base(f64) nrPopulated - | populated bits |
 *            | alloc map (mapWords) | bound map (mapWords) |
 */

import { type AnyBuffer, growBuffer, makeGrowableBuffer } from '../shared/buffers.js';
import { S_PCPU_CLEARING, S_PCPU_MARKING, stepHook } from '../shared/step-hook.js';

/** PCPU_MIN_ALLOC_SIZE: the allocation unit of a chunk's maps. */
export const PCPU_MIN_ALLOC_SIZE = 4;
/** PCPU_MIN_UNIT_SIZE: the largest allocation (32 KiB). */
export const PCPU_MIN_UNIT_SIZE = 32 * 1024;

/** Header words. */
const H_SLOTS = 0; // chunk slots the buffer holds records for (grown, never shrunk)
const H_LIVE = 1; // live chunks
const H_CREATED = 2;
const H_DESTROYED = 3;
const H_POPULATED = 4; // populated pages, every unit counted
/**
 * The map change in flight (one at a time, under pcpu_alloc_mutex): its kind (0: none, 1: a
 * mark, 2: a clear), chunk, first unit and units, written before the maps; recovery undoes a
 * mark and finishes a clear from them.
 */
const H_OP = 5;
const H_OP_CHUNK = 6;
const H_OP_START = 7;
const H_OP_BITS = 8;
export const PCPU_OP_MARK = 1;
export const PCPU_OP_CLEAR = 2;
const HEADER_WORDS = 16;

/** Record words. */
const C_STATE = 0; // a ChunkState
const C_FREE = 1;
const C_CONTIG = 2;
const C_NR_ALLOC = 3;
const C_BASE = 4; // float64 at words 4-5
const C_POPULATED = 6;
/** The last request that found no fit (bits, align bits): any as demanding fails too. */
const C_FAIL_BITS = 7;
const C_FAIL_ALIGN = 8;
const C_BITS = 10; // populated bitmap, then alloc map, then bound map

/**
 * A slot's state. CREATING and DESTROYING mark a chunk whose areas are being made or freed
 * (pcpu_alloc_mutex held): a holder killed there leaves a chunk recovery drops whole.
 */
export const ChunkState = {
  FREE: 0,
  LIVE: 1,
  /** base recorded (or still 0 before pcpu_get_vm_areas found one), not initialised */
  CREATING: 2,
  /** being depopulated and its areas freed */
  DESTROYING: 3,
} as const;

/** The geometry every thread derives from the configuration. */
export interface PcpuGeometry {
  pageSize: number;
  nrCpus: number;
  /** Bytes of one CPU's copy of a chunk. */
  unitSize: number;
  unitPages: number;
  /** Bits of a chunk's maps: unitSize / PCPU_MIN_ALLOC_SIZE. */
  mapBits: number;
  maxChunks: number;
}

export function pcpuGeometry(pageSize: number, nrCpus: number): PcpuGeometry {
  const unitPages = Math.max(32, (128 * 1024) / pageSize);
  const unitSize = unitPages * pageSize;
  const mapBits = unitSize / PCPU_MIN_ALLOC_SIZE;
  const recordBytes = recordWords(unitPages, mapBits) * 4;
  return {
    pageSize,
    nrCpus,
    unitSize,
    unitPages,
    mapBits,
    maxChunks: Math.min(4096, Math.floor(2 ** 26 / recordBytes)),
  };
}

function recordWords(unitPages: number, mapBits: number): number {
  const words = C_BITS + Math.ceil(unitPages / 32) + 2 * (mapBits / 32);
  return Math.ceil(words / 16) * 16; // whole cache lines, so base stays 8-byte aligned
}

/** A fresh buffer (no chunk slots yet). */
export function createPcpuBuffer(pageSize: number, nrCpus: number, shared: boolean): AnyBuffer {
  const g = pcpuGeometry(pageSize, nrCpus);
  const max = HEADER_WORDS * 4 + g.maxChunks * recordWords(g.unitPages, g.mapBits) * 4;
  return makeGrowableBuffer(HEADER_WORDS * 4, max, shared);
}

/** Index of the lowest set bit of a non-zero word. */
function ctz(w: number): number {
  return 31 - Math.clz32(w & -w);
}

export class PcpuChunks {
  readonly g: PcpuGeometry;
  private readonly buf: AnyBuffer;
  /**
   * Fixed-length views, re-made by refresh() when the buffer grew (V8 reads a length-tracking
   * view of a growable buffer several times slower).
   */
  private w: Int32Array;
  private d: Float64Array;
  private readonly recWords: number;
  private readonly popWords: number;
  private readonly mapWords: number;

  constructor(buf: AnyBuffer, g: PcpuGeometry) {
    this.g = g;
    this.buf = buf;
    this.w = new Int32Array(buf, 0, buf.byteLength >> 2);
    this.d = new Float64Array(buf, 0, buf.byteLength >> 3);
    this.recWords = recordWords(g.unitPages, g.mapBits);
    this.popWords = Math.ceil(g.unitPages / 32);
    this.mapWords = g.mapBits / 32;
  }

  /** Brings the views up to the buffer's length (another thread may have grown it). */
  refresh(): void {
    const bytes = this.buf.byteLength;
    if (bytes === this.w.byteLength) return;
    this.w = new Int32Array(this.buf, 0, bytes >> 2);
    this.d = new Float64Array(this.buf, 0, bytes >> 3);
  }

  // ---------------------------------------------------------------- header

  get slots(): number {
    return this.w[H_SLOTS]!;
  }
  get live(): number {
    return this.w[H_LIVE]!;
  }
  get created(): number {
    return this.w[H_CREATED]!;
  }
  get destroyed(): number {
    return this.w[H_DESTROYED]!;
  }
  get populatedPages(): number {
    return this.w[H_POPULATED]!;
  }

  private rec(c: number): number {
    return HEADER_WORDS + c * this.recWords;
  }

  /** A free slot for a new chunk (the buffer grown if needed), or -1 at the ceiling. */
  freeSlot(): number {
    const n = this.slots;
    for (let c = 0; c < n; c++) if (this.w[this.rec(c) + C_STATE] === 0) return c;
    if (n >= this.g.maxChunks) return -1;
    growBuffer(this.buf, (HEADER_WORDS + (n + 1) * this.recWords) * 4);
    this.refresh();
    this.w[H_SLOTS] = n + 1;
    return n;
  }

  /**
   * Claims free slot `c` for a chunk being made (base 0: not found yet); its state says so
   * before any area is made, so that a holder killed half-way leaves a chunk recovery drops.
   */
  setCreating(c: number, base: number): void {
    const o = this.rec(c);
    this.d[(o + C_BASE) >> 1] = base;
    this.w[o + C_STATE] = ChunkState.CREATING;
  }

  /** Makes CREATING slot `c` a live, empty chunk whose unit 0 starts at `base`. */
  init(c: number, base: number): void {
    const o = this.rec(c);
    // Every word but the state and the base first; the state goes LIVE last.
    this.w.fill(0, o + 1, o + C_BASE);
    this.w.fill(0, o + C_BASE + 2, o + this.recWords);
    this.w[o + C_FREE] = this.g.mapBits;
    this.w[o + C_CONTIG] = this.g.mapBits;
    this.d[(o + C_BASE) >> 1] = base;
    this.w[o + C_STATE] = ChunkState.LIVE;
    this.w[H_LIVE]!++;
    this.w[H_CREATED]!++;
  }

  /** Live chunk `c` is being destroyed (it leaves the live ones; release() ends it). */
  setDestroying(c: number): void {
    this.w[this.rec(c) + C_STATE] = ChunkState.DESTROYING;
  }

  /** The slot's state (a ChunkState, or garbage if a record was half written). */
  state(c: number): number {
    return this.w[this.rec(c) + C_STATE]!;
  }

  /** Slot `c` is free again (its pages and areas are gone). */
  release(c: number): void {
    const o = this.rec(c);
    this.w[o + C_STATE] = ChunkState.FREE;
    this.w[H_LIVE]!--;
    this.w[H_DESTROYED]!++;
  }

  isLive(c: number): boolean {
    return this.w[this.rec(c) + C_STATE] === 1;
  }
  base(c: number): number {
    return this.d[(this.rec(c) + C_BASE) >> 1]!;
  }
  freeBits(c: number): number {
    return this.w[this.rec(c) + C_FREE]!;
  }
  contig(c: number): number {
    return this.w[this.rec(c) + C_CONTIG]!;
  }
  nrAlloc(c: number): number {
    return this.w[this.rec(c) + C_NR_ALLOC]!;
  }
  nrPopulated(c: number): number {
    return this.w[this.rec(c) + C_POPULATED]!;
  }

  /** The live chunk whose unit 0 contains `addr`, or -1. */
  chunkOf(addr: number): number {
    const n = this.slots;
    const unit = this.g.unitSize;
    for (let c = 0; c < n; c++) {
      const o = this.rec(c);
      if (this.w[o + C_STATE] !== 1) continue;
      const base = this.d[(o + C_BASE) >> 1]!;
      if (addr >= base && addr < base + unit) return c;
    }
    return -1;
  }

  /** The live chunk with one of its units starting at `addr`, or -1. */
  chunkOfArea(addr: number): number {
    const n = this.slots;
    const span = this.g.unitSize * this.g.nrCpus;
    for (let c = 0; c < n; c++) {
      if (!this.isLive(c)) continue;
      const off = addr - this.base(c);
      if (off >= 0 && off < span && off % this.g.unitSize === 0) return c;
    }
    return -1;
  }

  // ---------------------------------------------------------------- populated pages

  isPopulated(c: number, page: number): boolean {
    return (this.w[this.rec(c) + C_BITS + (page >>> 5)]! & (1 << (page & 31))) !== 0;
  }

  setPopulated(c: number, page: number, on: boolean): void {
    const o = this.rec(c);
    const at = o + C_BITS + (page >>> 5);
    const bit = 1 << (page & 31);
    if (on === ((this.w[at]! & bit) !== 0)) return;
    this.w[at] = on ? this.w[at]! | bit : this.w[at]! & ~bit;
    this.w[o + C_POPULATED]! += on ? 1 : -1;
    this.w[H_POPULATED]! += on ? this.g.nrCpus : -this.g.nrCpus;
  }

  // ---------------------------------------------------------------- maps

  private allocMap(c: number): number {
    return this.rec(c) + C_BITS + this.popWords;
  }
  private boundMap(c: number): number {
    return this.allocMap(c) + this.mapWords;
  }

  private bit(o: number, i: number): boolean {
    return (this.w[o + (i >>> 5)]! & (1 << (i & 31))) !== 0;
  }

  /** First bit >= from (below limit) that is set (`one`) or clear; limit when none. */
  private next(o: number, from: number, limit: number, one: boolean): number {
    const w = this.w;
    let i = from;
    while (i < limit) {
      const word = one ? w[o + (i >>> 5)]! : ~w[o + (i >>> 5)]!;
      const rest = word >>> (i & 31);
      if (rest !== 0) return Math.min(i + ctz(rest), limit);
      i = (i | 31) + 1;
    }
    return limit;
  }

  private fill(o: number, from: number, to: number, on: boolean): void {
    const w = this.w;
    for (let i = from; i < to;) {
      const k = o + (i >>> 5);
      const lo = i & 31;
      const n = Math.min(32 - lo, to - i);
      const mask = n === 32 ? -1 : ((1 << n) - 1) << lo;
      w[k] = on ? w[k]! | mask : w[k]! & ~mask;
      i += n;
    }
  }

  /** The first unit of an aligned run of `bits` free units, or -1. */
  findFit(c: number, bits: number, alignBits: number): number {
    const r = this.rec(c);
    const w = this.w;
    const contig = w[r + C_CONTIG]!;
    if (contig < bits) return -1;
    // A run of bits + alignBits - 1 always holds an aligned fit; below that, a request at
    // least as demanding as one that failed since the last free fails too.
    const failBits = w[r + C_FAIL_BITS]!;
    if (
      contig < bits + alignBits - 1 &&
      failBits !== 0 &&
      bits >= failBits &&
      alignBits >= w[r + C_FAIL_ALIGN]!
    )
      return -1;
    const at = this.scanFit(c, bits, alignBits);
    if (at < 0) {
      w[r + C_FAIL_BITS] = bits;
      w[r + C_FAIL_ALIGN] = alignBits;
    }
    return at;
  }

  private scanFit(c: number, bits: number, alignBits: number): number {
    const o = this.allocMap(c);
    const limit = this.g.mapBits;
    let pos = this.next(o, 0, limit, false);
    while (pos < limit) {
      const runEnd = this.next(o, pos, limit, true);
      const start = Math.ceil(pos / alignBits) * alignBits;
      if (start + bits <= runEnd) return start;
      pos = this.next(o, runEnd, limit, false);
    }
    return -1;
  }

  /** Marks [start, start + bits) allocated. Kernel: pcpu_alloc_area(). */
  mark(c: number, start: number, bits: number): void {
    const o = this.rec(c);
    this.intend(PCPU_OP_MARK, c, start, bits);
    this.fill(this.allocMap(c), start, start + bits, true);
    if (stepHook !== null) stepHook(S_PCPU_MARKING);
    this.fill(this.boundMap(c), start, start + 1, true);
    this.w[o + C_FREE]! -= bits;
    this.w[o + C_NR_ALLOC]!++;
    this.w[o + C_CONTIG] = this.largestRun(c);
    this.w[H_OP] = 0;
  }

  /** Records the map change about to be made (see H_OP). */
  private intend(kind: number, c: number, start: number, bits: number): void {
    this.w[H_OP_CHUNK] = c;
    this.w[H_OP_START] = start;
    this.w[H_OP_BITS] = bits;
    this.w[H_OP] = kind;
  }

  /**
   * Recovery: the map change a killed holder left in flight, [kind, chunk, start, bits], or
   * null; and forgets it.
   */
  takeInflight(): [number, number, number, number] | null {
    const kind = this.w[H_OP]!;
    this.w[H_OP] = 0;
    if (kind !== PCPU_OP_MARK && kind !== PCPU_OP_CLEAR) return null;
    return [kind, this.w[H_OP_CHUNK]!, this.w[H_OP_START]!, this.w[H_OP_BITS]!];
  }

  /**
   * Recovery: undoes a mark (kind MARK) or finishes a clear (CLEAR) of [start, start + bits)
   * in live chunk `c`, maps only (repairMaps() recounts). False when the words are not a range
   * of the chunk.
   */
  settle(kind: number, c: number, start: number, bits: number): boolean {
    if (!(c >= 0 && c < this.slots && this.isLive(c))) return false;
    if (!(start >= 0 && bits >= 1 && start + bits <= this.g.mapBits)) return false;
    void kind; // both end with the range free
    this.fill(this.allocMap(c), start, start + bits, false);
    this.fill(this.boundMap(c), start, start + 1, false);
    return true;
  }

  /**
   * The units of the allocation starting at `start`: up to the next bound bit or free unit.
   * 0 when no allocation starts there.
   */
  extent(c: number, start: number): number {
    if (start < 0 || start >= this.g.mapBits || !this.bit(this.boundMap(c), start)) return 0;
    const limit = this.g.mapBits;
    const nextBound = this.next(this.boundMap(c), start + 1, limit, true);
    const nextFree = this.next(this.allocMap(c), start, limit, false);
    return Math.min(nextBound, nextFree) - start;
  }

  /** Clears the allocation at `start` of `bits` units. Kernel: pcpu_free_area(). */
  clear(c: number, start: number, bits: number): void {
    const o = this.rec(c);
    this.intend(PCPU_OP_CLEAR, c, start, bits);
    this.fill(this.allocMap(c), start, start + bits, false);
    if (stepHook !== null) stepHook(S_PCPU_CLEARING);
    this.fill(this.boundMap(c), start, start + 1, false);
    this.w[o + C_FREE]! += bits;
    this.w[o + C_NR_ALLOC]!--;
    this.w[o + C_FAIL_BITS] = 0;
    this.w[o + C_CONTIG] = this.largestRun(c);
    this.w[H_OP] = 0;
  }

  /** Allocated units in [from, to). */
  usedIn(c: number, from: number, to: number): number {
    const o = this.allocMap(c);
    let n = 0;
    for (let i = this.next(o, from, to, true); i < to; i = this.next(o, i + 1, to, true)) n++;
    return n;
  }

  /** The longest run of free units. */
  largestRun(c: number): number {
    const o = this.allocMap(c);
    const limit = this.g.mapBits;
    let best = 0;
    let pos = this.next(o, 0, limit, false);
    while (pos < limit) {
      const runEnd = this.next(o, pos, limit, true);
      if (runEnd - pos > best) best = runEnd - pos;
      pos = this.next(o, runEnd, limit, false);
    }
    return best;
  }

  // ---------------------------------------------------------------- recovery

  /**
   * Recovery (world stopped): makes live chunk `c`'s maps agree with each other, dropping what
   * a killed mark() or clear() left half-written (a bound bit on a free unit; allocated units
   * that no bound bit starts), and recomputes its counters. Returns the units dropped.
   */
  repairMaps(c: number): number {
    const o = this.rec(c);
    const a = this.allocMap(c);
    const b = this.boundMap(c);
    const limit = this.g.mapBits;
    let dropped = 0;
    let free = 0;
    let bounds = 0;
    let inAlloc = false;
    for (let i = 0; i < limit; i++) {
      const used = this.bit(a, i);
      const bound = this.bit(b, i);
      if (bound && !used) this.fill(b, i, i + 1, false);
      if (!used) {
        free++;
        inAlloc = false;
        continue;
      }
      if (bound) {
        bounds++;
        inAlloc = true;
      } else if (!inAlloc) {
        this.fill(a, i, i + 1, false);
        dropped++;
        free++;
      }
    }
    this.w[o + C_FREE] = free;
    this.w[o + C_NR_ALLOC] = bounds;
    this.w[o + C_FAIL_BITS] = 0;
    this.w[o + C_FAIL_ALIGN] = 0;
    this.w[o + C_CONTIG] = this.largestRun(c);
    return dropped;
  }

  /** Clears populated bit `page` without the counters (recount() follows). */
  clearPopulatedBit(c: number, page: number): void {
    const at = this.rec(c) + C_BITS + (page >>> 5);
    this.w[at] = this.w[at]! & ~(1 << (page & 31));
  }

  /** Frees slot `c` without the counters (recount() follows). */
  drop(c: number): void {
    this.w[this.rec(c) + C_STATE] = ChunkState.FREE;
  }

  /** Recomputes every live chunk's populated count and the header's live and populated. */
  recount(): void {
    let live = 0;
    let pages = 0;
    for (let c = 0; c < this.slots; c++) {
      if (!this.isLive(c)) continue;
      live++;
      let pop = 0;
      for (let p = 0; p < this.g.unitPages; p++) if (this.isPopulated(c, p)) pop++;
      this.w[this.rec(c) + C_POPULATED] = pop;
      pages += pop * this.g.nrCpus;
    }
    this.w[H_LIVE] = live;
    this.w[H_POPULATED] = pages;
  }

  /** Checks a live chunk's maps and counters; the first problem, or null. */
  checkMaps(c: number): string | null {
    const a = this.allocMap(c);
    const b = this.boundMap(c);
    let free = 0;
    let bounds = 0;
    for (let i = 0; i < this.g.mapBits; i++) {
      const used = this.bit(a, i);
      const bound = this.bit(b, i);
      if (!used) free++;
      if (bound) bounds++;
      if (bound && !used) return `unit ${i} starts an allocation but is free`;
      if (used && !bound && (i === 0 || !this.bit(a, i - 1)))
        return `unit ${i} is allocated after a free unit but starts no allocation`;
    }
    if (free !== this.freeBits(c)) return `freeBits is ${this.freeBits(c)}, the map has ${free}`;
    if (bounds !== this.nrAlloc(c)) return `nrAlloc is ${this.nrAlloc(c)}, the map has ${bounds}`;
    if (this.largestRun(c) !== this.contig(c))
      return `the contig hint is ${this.contig(c)}, the longest free run ${this.largestRun(c)}`;
    let pop = 0;
    for (let p = 0; p < this.g.unitPages; p++) if (this.isPopulated(c, p)) pop++;
    if (pop !== this.nrPopulated(c))
      return `nrPopulated is ${this.nrPopulated(c)}, the bitmap has ${pop}`;
    return null;
  }
}
