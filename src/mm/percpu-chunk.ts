/**
 * The percpu allocator's chunk records, in one shared buffer.
 *
 * Holds: PcpuChunks: the slots and their states, a record's accessors, the header's counters,
 * the populated-page bitmap, and the allocation map change in flight; the buffer's layout
 * (a header, then one record per chunk slot) and the geometry are in percpu-layout.ts, the
 * map itself (first fit, mark, clear, repair, check) in percpu-bitmap.ts, over the words the
 * layout gives it.
 * Recovery (src/mm/recovery-percpu.ts) reads the slot states and the map change in flight.
 * Invariant (with pcpu_alloc_mutex held, between calls): a slot is FREE, LIVE, or CREATING /
 * DESTROYING while its holder makes or frees its areas; a live chunk's map holds the
 * allocation map invariant (percpu-bitmap.ts); nrPopulated counts its populated bits, and a
 * populated page is mapped in every unit; the header's live and populated sum the records.
 * Callers: src/mm/percpu.ts (allocation, free, populate) and its checker; recovery.
 *
 * Kernel: struct pcpu_chunk (base_addr, populated, nr_populated, and through the map
 * alloc_map, bound_map, free_bytes, contig_bits) and pcpu_slot[].
 * Differs from kernel: chunks live in slots of a shared buffer, found by a scan of the slots
 * (the kernel keeps lists by free size); the map's words sit inside the record (the buffer's
 * layout and the geometry are in percpu-layout.ts).
 */

import { type AnyBuffer, growBuffer } from '../shared/buffers.js';
import {
  M_FREE,
  M_NR_ALLOC,
  allocExtent,
  checkMap,
  countSet,
  fillBits,
  findFit,
  initMap,
  releaseRange,
  repairMap,
  setAlloc,
  testBit,
  usedUnits,
} from './percpu-bitmap.js';
import {
  C_BASE,
  C_BITS,
  C_POPULATED,
  C_STATE,
  HEADER_WORDS,
  H_CREATED,
  H_DESTROYED,
  H_LIVE,
  H_OP,
  H_OP_BITS,
  H_OP_CHUNK,
  H_OP_START,
  H_POPULATED,
  H_SLOTS,
  PCPU_OP_CLEAR,
  PCPU_OP_MARK,
  recordWords,
  type PcpuGeometry,
} from './percpu-layout.js';

export {
  PCPU_MIN_ALLOC_SIZE,
  PCPU_MIN_UNIT_SIZE,
  PCPU_OP_CLEAR,
  PCPU_OP_MARK,
  createPcpuBuffer,
  pcpuGeometry,
  type PcpuGeometry,
} from './percpu-layout.js';

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
  /** Where a record's allocation map starts (after the populated bits). */
  private readonly mapAt: number;

  constructor(buf: AnyBuffer, g: PcpuGeometry) {
    this.g = g;
    this.buf = buf;
    this.w = new Int32Array(buf, 0, buf.byteLength >> 2);
    this.d = new Float64Array(buf, 0, buf.byteLength >> 3);
    this.recWords = recordWords(g.unitPages, g.mapBits);
    this.mapAt = C_BITS + Math.ceil(g.unitPages / 32);
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
    initMap(this.w, o + this.mapAt, this.g.mapBits);
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
    return this.w[this.map(c) + M_FREE]!;
  }
  nrAlloc(c: number): number {
    return this.w[this.map(c) + M_NR_ALLOC]!;
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
    return testBit(this.w, this.rec(c) + C_BITS, page);
  }

  setPopulated(c: number, page: number, on: boolean): void {
    const o = this.rec(c);
    if (on === testBit(this.w, o + C_BITS, page)) return;
    fillBits(this.w, o + C_BITS, page, page + 1, on);
    this.w[o + C_POPULATED]! += on ? 1 : -1;
    this.w[H_POPULATED]! += on ? this.g.nrCpus : -this.g.nrCpus;
  }

  /** Populated pages of chunk `c`, counted in its bitmap. */
  private countPopulated(c: number): number {
    return countSet(this.w, this.rec(c) + C_BITS, 0, this.g.unitPages);
  }

  // ---------------------------------------------------------------- maps

  /** The allocation map of chunk `c` (see percpu-bitmap.ts). */
  private map(c: number): number {
    return this.rec(c) + this.mapAt;
  }

  /** The first unit of an aligned run of `bits` free units, or -1. */
  findFit(c: number, bits: number, alignBits: number): number {
    return findFit(this.w, this.map(c), this.g.mapBits, bits, alignBits);
  }

  /** Marks [start, start + bits) allocated. Kernel: pcpu_alloc_area(). */
  mark(c: number, start: number, bits: number): void {
    this.intend(PCPU_OP_MARK, c, start, bits);
    setAlloc(this.w, this.map(c), this.g.mapBits, start, bits, true);
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
    releaseRange(this.w, this.map(c), this.g.mapBits, start, bits);
    return true;
  }

  /**
   * The units of the allocation starting at `start`: up to the next bound bit or free unit.
   * 0 when no allocation starts there.
   */
  extent(c: number, start: number): number {
    return allocExtent(this.w, this.map(c), this.g.mapBits, start);
  }

  /** Clears the allocation at `start` of `bits` units. Kernel: pcpu_free_area(). */
  clear(c: number, start: number, bits: number): void {
    this.intend(PCPU_OP_CLEAR, c, start, bits);
    setAlloc(this.w, this.map(c), this.g.mapBits, start, bits, false);
    this.w[H_OP] = 0;
  }

  /** Allocated units in [from, to). */
  usedIn(c: number, from: number, to: number): number {
    return usedUnits(this.w, this.map(c), from, to);
  }

  // ---------------------------------------------------------------- recovery

  /**
   * Recovery (world stopped): makes live chunk `c`'s maps agree with each other, dropping what
   * a killed mark() or clear() left half-written (a bound bit on a free unit; allocated units
   * that no bound bit starts), and recomputes its counters. Returns the units dropped.
   */
  repairMaps(c: number): number {
    return repairMap(this.w, this.map(c), this.g.mapBits);
  }

  /** Clears populated bit `page` without the counters (recount() follows). */
  clearPopulatedBit(c: number, page: number): void {
    fillBits(this.w, this.rec(c) + C_BITS, page, page + 1, false);
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
      const pop = this.countPopulated(c);
      this.w[this.rec(c) + C_POPULATED] = pop;
      pages += pop * this.g.nrCpus;
    }
    this.w[H_LIVE] = live;
    this.w[H_POPULATED] = pages;
  }

  /** Checks a live chunk's maps and counters; the first problem, or null. */
  checkMaps(c: number): string | null {
    const broken = checkMap(this.w, this.map(c), this.g.mapBits);
    if (broken !== null) return broken;
    const pop = this.countPopulated(c);
    if (pop !== this.nrPopulated(c))
      return `nrPopulated is ${this.nrPopulated(c)}, the bitmap has ${pop}`;
    return null;
  }
}
