/**
 * Vmap-area records: the kernel's `struct vmap_area`, one 64-byte record per id.
 *
 * Holds: one record per range (free block, busy area, lazy area, pooled area, or the head of
 * an rb-tree + list pair), addressed by a small integer id; id 0 is "none".
 * Invariant: a record is in at most one tree and one list at a time; ids on the free-id stack
 * are not referenced by any tree or list; record 0 is never written after construction, so a
 * missing child (id 0) reads as black with smax 0 and the tree code needs no null tests there.
 * Callers: the rb-tree (rbtree.ts), the free tree (free-tree.ts), the busy tree (busy-tree.ts),
 * the checker, and every layer above that keeps vmap areas.
 *
 * Kernel: struct vmap_area, vmap_area_cachep (the free-id stack plays the slab cache).
 * Differs from kernel: `rb_node` is `pc` (parent id << 1 | colour, as the kernel packs
 * __rb_parent_color), `left` and `right`; `list` is `prev`/`next`; the union of
 * `subtree_max_size` and `vm` is two fields.
 *
 * Memory layout: the records are an array of structs in one growable buffer, read through a
 * Float64 view `f` and an Int32 view `i` of the same bytes; a record is one cache line, like
 * the kernel's (and the C yardstick's) node.
 *
 *   byte  0        8        16       24   28   32    36    40    44    48    52   64
 *        +--------+--------+--------+----+-----+-----+-----+-----+-----+-----+----+
 *   id x | start  | end    | smax   | pc | left|right| prev| next|flags| vm  | -- |
 *        +--------+--------+--------+----+-----+-----+-----+-----+-----+-----+----+
 *         f[(x << 3) + F_*]           i[(x << 4) + I_*]
 *
 *   start/end: half-open range, exact integers below 2^53.   smax: free tree only.
 *   pc: parent << 1 | colour (0 red, 1 black).   Free-id stack: a separate Int32 buffer.
 *
 * Why not one typed array per field: measured on `bench kva`, a tree step then touches four
 * cache lines instead of one (the cost at a million areas grew 6.5x from a thousand, against
 * the C model's 4x), and V8 checks every distinct typed array it touches in a function or loop
 * iteration (map, base, length), so two views cost fewer checks than ten.
 *
 * Hot code (rbtree, rb-list, free-tree, busy-tree) indexes `f` and `i` directly with the F_ and
 * I_ offsets below; everything else uses the accessor methods. Growth replaces the views:
 * code must not keep a view in a local across a call that can allocate a record.
 */

import {
  type ArenaBuffers,
  type ArenaOptions,
  RecordArena,
  createArenaBuffers,
} from '../shared/record-arena.js';

/** Colour bit of `pc`, as lib/rbtree.c. */
export const RB_RED = 0;
export const RB_BLACK = 1;

export const RECORD_BYTES = 64;
/** Float64 word offsets within a record: record x's field is f[(x << 3) + F_*]. */
export const F_START = 0;
export const F_END = 1;
export const F_SMAX = 2;
/** Int32 word offsets within a record: record x's field is i[(x << 4) + I_*]. */
export const I_PC = 6;
export const I_LEFT = 7;
export const I_RIGHT = 8;
export const I_PREV = 9;
export const I_NEXT = 10;
export const I_FLAGS = 11;
export const I_VM = 12;

/**
 * va->flags bits, defined here once for every layer.
 *
 *   bit 0      VMAP_RAM: a vm_map_ram area (no vm_struct)
 *   bit 1      VMAP_BLOCK: with VMAP_RAM, the area of a per-CPU vmap block
 *   bit 2      LEGACY_LAZY_FREE: design 'legacy' only: lazily freed, still in the busy tree
 *              (4.19's VM_LAZY_FREE; its own bit, so that no later kernel's bit is read as it)
 *   bit 3      PCPU: an area made by pcpu_get_vm_areas() (library-only: the kernel keeps no
 *              such bit; it lets vfree() and check() tell these areas apart)
 *   bits 8..   the 6.9+ vmap node id + 1 (encode_vn_id()); 0: none
 */
export const VaFlags = {
  VMAP_RAM: 0x1,
  VMAP_BLOCK: 0x2,
  LEGACY_LAZY_FREE: 0x4,
  PCPU: 0x8,
  /** va->flags >> VN_ID_SHIFT is the node id + 1. */
  VN_ID_SHIFT: 8,
} as const;

/** Default ceiling on records: 2^25 records (2 GiB of address space reserved, not used). */
export const DEFAULT_MAX_RECORDS = 1 << 25;

export type VaStoreBuffers = ArenaBuffers;
export type VaStoreOptions = ArenaOptions;

export class VaStore extends RecordArena {
  /** A new, empty store. */
  static create(options: VaStoreOptions = {}): VaStore {
    return new VaStore(VaStore.createBuffers(options));
  }

  /** The buffers of a new, empty store (for sharing: attach each thread with `new VaStore`). */
  static createBuffers(options: VaStoreOptions = {}): VaStoreBuffers {
    const buffers = createArenaBuffers(RECORD_BYTES, DEFAULT_MAX_RECORDS, options);
    new Int32Array(buffers.records)[I_PC] = RB_BLACK; // record 0 reads as a black leaf
    return buffers;
  }

  // Accessors for code off the hot paths.
  start(x: number): number {
    return this.f[(x << 3) + F_START]!;
  }
  end(x: number): number {
    return this.f[(x << 3) + F_END]!;
  }
  /** end - start */
  size(x: number): number {
    const o = x << 3;
    return this.f[o + F_END]! - this.f[o + F_START]!;
  }
  setRange(x: number, start: number, end: number): void {
    const o = x << 3;
    this.f[o + F_START] = start;
    this.f[o + F_END] = end;
  }
  smax(x: number): number {
    return this.f[(x << 3) + F_SMAX]!;
  }
  pc(x: number): number {
    return this.i[(x << 4) + I_PC]!;
  }
  parent(x: number): number {
    return this.i[(x << 4) + I_PC]! >> 1;
  }
  isRed(x: number): boolean {
    return x !== 0 && (this.i[(x << 4) + I_PC]! & 1) === RB_RED;
  }
  left(x: number): number {
    return this.i[(x << 4) + I_LEFT]!;
  }
  right(x: number): number {
    return this.i[(x << 4) + I_RIGHT]!;
  }
  prev(x: number): number {
    return this.i[(x << 4) + I_PREV]!;
  }
  next(x: number): number {
    return this.i[(x << 4) + I_NEXT]!;
  }
  flags(x: number): number {
    return this.i[(x << 4) + I_FLAGS]!;
  }
  setFlags(x: number, v: number): void {
    this.i[(x << 4) + I_FLAGS] = v;
  }
  vm(x: number): number {
    return this.i[(x << 4) + I_VM]!;
  }
  setVm(x: number, v: number): void {
    this.i[(x << 4) + I_VM] = v;
  }
}
