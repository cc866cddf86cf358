/**
 * Vmap-area records: the kernel's `struct vmap_area`, as struct-of-arrays typed arrays.
 *
 * Holds: one record per range (free block, busy area, lazy area, pooled area, or the head of
 * an rb-tree + list pair), addressed by a small integer id; id 0 is "none".
 * Invariant: a record is in at most one tree and one list at a time; ids in the free-id stack
 * are not referenced by any tree or list; record 0 is never written after construction, so
 * `smax[0] == 0` and `pc[0]` says black, and the tree code may read a missing child's fields.
 * Callers: the rb-tree (rbtree.ts), the free tree (free-tree.ts), the busy tree (busy-tree.ts)
 * and every layer above that keeps vmap areas.
 *
 * Kernel: struct vmap_area, vmap_area_cachep (the free-id stack plays the slab cache).
 * Differs from kernel: the `rb_node` is split into `pc` (parent id << 1 | colour, as the kernel
 * packs __rb_parent_color), `left` and `right`; `list` into `prev`/`next`; the union of
 * `subtree_max_size` and `vm` is two fields.
 *
 * Memory layout: each field is its own growable buffer indexed by id.
 *
 *        id:     0      1      2      3    ...  cap-1
 *   start[]   | 0    | s1   | s2   | s3   | ... |        Float64 (exact integers < 2^53)
 *   end[]     | 0    | e1   | ...                         Float64, half-open [start, end)
 *   smax[]    | 0    | ...                                Float64, free tree only
 *   pc[]      | 1    | p<<1|c ...                         Int32, c: 0 red, 1 black
 *   left[] right[] prev[] next[] flags[] vm[]             Int32
 *   freeIds[] | stack of recycled ids, meta[NFREE] deep |
 *   meta[]    | CAP | HWM | NFREE | LIVE |                Int32, fixed size
 *
 * Growth replaces this object's views. Code must not keep a view in a local across a call that
 * can allocate a record; `reserve(n)` before an operation guarantees n allocations without growth.
 */

import {
  type AnyBuffer,
  growBuffer,
  makeFixedBuffer,
  makeGrowableBuffer,
} from '../shared/buffers.js';

/** Colour bit of `pc`, as lib/rbtree.c. */
export const RB_RED = 0;
export const RB_BLACK = 1;

/** Indices into `meta`. */
const CAP = 0; // records the field buffers hold now
const HWM = 1; // ids [1, HWM) have been handed out at least once
const NFREE = 2; // depth of the free-id stack
const LIVE = 3; // records handed out and not yet returned
const META_WORDS = 8;

const INITIAL_CAPACITY = 1024;
/** Default ceiling on records (each costs 56 bytes): 2^25 records, 1.75 GiB reserved, not used. */
export const DEFAULT_MAX_RECORDS = 1 << 25;

/** The buffers behind a store; structured-cloneable, so a worker can attach to the same records. */
export interface VaStoreBuffers {
  readonly meta: AnyBuffer;
  readonly start: AnyBuffer;
  readonly end: AnyBuffer;
  readonly smax: AnyBuffer;
  readonly pc: AnyBuffer;
  readonly left: AnyBuffer;
  readonly right: AnyBuffer;
  readonly prev: AnyBuffer;
  readonly next: AnyBuffer;
  readonly flags: AnyBuffer;
  readonly vm: AnyBuffer;
  readonly freeIds: AnyBuffer;
  readonly maxRecords: number;
}

export interface VaStoreOptions {
  /** Use SharedArrayBuffer (default when available). */
  shared?: boolean;
  /** Most records the store may ever hold. */
  maxRecords?: number;
  /** Records to make room for at once. */
  initialCapacity?: number;
}

export class VaStore {
  readonly buffers: VaStoreBuffers;
  readonly meta: Int32Array;
  start!: Float64Array;
  end!: Float64Array;
  smax!: Float64Array;
  pc!: Int32Array;
  left!: Int32Array;
  right!: Int32Array;
  prev!: Int32Array;
  next!: Int32Array;
  flags!: Int32Array;
  vm!: Int32Array;
  freeIds!: Int32Array;
  /** Capacity the views were made for; compared with meta[CAP] to notice growth by others. */
  viewCap = 0;

  constructor(buffers: VaStoreBuffers) {
    this.buffers = buffers;
    this.meta = new Int32Array(buffers.meta);
    this.refreshViews();
  }

  /** A new, empty store. */
  static create(options: VaStoreOptions = {}): VaStore {
    const shared = options.shared ?? typeof SharedArrayBuffer === 'function';
    const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
    const cap = Math.min(maxRecords, options.initialCapacity ?? INITIAL_CAPACITY);
    const f64 = () => makeGrowableBuffer(cap * 8, maxRecords * 8, shared);
    const i32 = () => makeGrowableBuffer(cap * 4, maxRecords * 4, shared);
    const buffers: VaStoreBuffers = {
      meta: makeFixedBuffer(META_WORDS * 4, shared),
      start: f64(),
      end: f64(),
      smax: f64(),
      pc: i32(),
      left: i32(),
      right: i32(),
      prev: i32(),
      next: i32(),
      flags: i32(),
      vm: i32(),
      freeIds: i32(),
      maxRecords,
    };
    const meta = new Int32Array(buffers.meta);
    meta[CAP] = cap;
    meta[HWM] = 1;
    new Int32Array(buffers.pc)[0] = RB_BLACK;
    return new VaStore(buffers);
  }

  /** Re-makes the views when the shared capacity moved (growth by this or another thread). */
  refreshViews(): void {
    const cap = Atomics.load(this.meta, CAP);
    if (cap === this.viewCap) return;
    const b = this.buffers;
    this.start = new Float64Array(b.start, 0, cap);
    this.end = new Float64Array(b.end, 0, cap);
    this.smax = new Float64Array(b.smax, 0, cap);
    this.pc = new Int32Array(b.pc, 0, cap);
    this.left = new Int32Array(b.left, 0, cap);
    this.right = new Int32Array(b.right, 0, cap);
    this.prev = new Int32Array(b.prev, 0, cap);
    this.next = new Int32Array(b.next, 0, cap);
    this.flags = new Int32Array(b.flags, 0, cap);
    this.vm = new Int32Array(b.vm, 0, cap);
    this.freeIds = new Int32Array(b.freeIds, 0, cap);
    this.viewCap = cap;
  }

  get capacity(): number {
    return this.meta[CAP]!;
  }

  /** Records handed out and not returned (tree heads included). */
  get live(): number {
    return this.meta[LIVE]!;
  }

  /** Ids ever handed out plus one: every live id is below it. */
  get highWater(): number {
    return this.meta[HWM]!;
  }

  get maxRecords(): number {
    return this.buffers.maxRecords;
  }

  /** Records obtainable without growing. */
  get available(): number {
    return this.meta[NFREE]! + this.meta[CAP]! - this.meta[HWM]!;
  }

  /**
   * Makes sure `n` records can be allocated without growing, so an operation that needs up to
   * `n` records may keep using its views. Returns false when the ceiling is reached.
   */
  reserve(n: number): boolean {
    if (this.available >= n) return true;
    return this.grow(this.meta[HWM]! + n - this.meta[NFREE]!);
  }

  /** Grows the buffers to hold at least `need` records (doubling). */
  private grow(need: number): boolean {
    const max = this.buffers.maxRecords;
    if (need > max) return false;
    let cap = this.meta[CAP]!;
    while (cap < need) cap = Math.min(max, cap * 2);
    const b = this.buffers;
    for (const buf of [b.start, b.end, b.smax]) growBuffer(buf, cap * 8);
    for (const buf of [b.pc, b.left, b.right, b.prev, b.next, b.flags, b.vm, b.freeIds]) {
      growBuffer(buf, cap * 4);
    }
    Atomics.store(this.meta, CAP, cap);
    this.refreshViews();
    return true;
  }

  /**
   * A fresh record (flags and vm 0, not linked anywhere), or 0 when the ceiling is reached.
   * Kernel: kmem_cache_alloc(vmap_area_cachep).
   */
  alloc(): number {
    const meta = this.meta;
    let id: number;
    const nfree = meta[NFREE]!;
    if (nfree > 0) {
      id = this.freeIds[nfree - 1]!;
      meta[NFREE] = nfree - 1;
    } else {
      id = meta[HWM]!;
      if (id >= meta[CAP]! && !this.grow(id + 1)) return 0;
      meta[HWM] = id + 1;
    }
    meta[LIVE] = meta[LIVE]! + 1;
    // Links need no clearing: a record's links are zero when it is new, and unlinkVa clears
    // them; linkVa sets all of them.
    this.flags[id] = 0;
    this.vm[id] = 0;
    return id;
  }

  /** Returns a record to the free-id stack. Kernel: kmem_cache_free(vmap_area_cachep). */
  free(id: number): void {
    const meta = this.meta;
    const nfree = meta[NFREE]!;
    this.freeIds[nfree] = id;
    meta[NFREE] = nfree + 1;
    meta[LIVE] = meta[LIVE]! - 1;
  }

  /** The ids currently on the free-id stack (for the invariant checker). */
  freeIdList(): Int32Array {
    return this.freeIds.subarray(0, this.meta[NFREE]!);
  }
}
