/**
 * A growable arena of fixed-size records addressed by small integer ids (id 0 = none), with a
 * stack of recycled ids: the kernel's kmem_cache for one struct type.
 *
 * Holds: the records buffer (read through a Float64 view `f` and an Int32 view `i` of the same
 * bytes), the free-id stack, and a small meta block (capacity, high-water mark, stack depth).
 * Invariant: every id in [1, highWater) is either live or on the free-id stack, never both;
 * the buffers only grow, so views made for a smaller capacity stay valid for the ids they cover.
 * Callers: VaStore (vmap areas), VmStore (vm_structs).
 *
 * Each record is `recordBytes` bytes (a multiple of 8): record x's Float64 words are
 * f[x * (recordBytes / 8) + k], its Int32 words i[x * (recordBytes / 4) + k].
 */

import { type AnyBuffer, growBuffer, makeFixedBuffer, makeGrowableBuffer } from './buffers.js';

/** Indices into `meta`. */
const CAP = 0; // records the buffer holds now
const HWM = 1; // ids [1, HWM) have been handed out at least once
const NFREE = 2; // depth of the free-id stack
const META_WORDS = 4;

/** The buffers behind an arena; structured-cloneable, so a worker can attach to them. */
export interface ArenaBuffers {
  readonly meta: AnyBuffer;
  readonly records: AnyBuffer;
  readonly freeIds: AnyBuffer;
  readonly recordBytes: number;
  readonly maxRecords: number;
}

export interface ArenaOptions {
  /** Use SharedArrayBuffer (default when available). */
  shared?: boolean;
  /** Most records the arena may ever hold. */
  maxRecords?: number;
  /** Records to make room for at once. */
  initialCapacity?: number;
}

const INITIAL_CAPACITY = 1024;

export function createArenaBuffers(
  recordBytes: number,
  defaultMax: number,
  options: ArenaOptions = {},
): ArenaBuffers {
  const shared = options.shared ?? typeof SharedArrayBuffer === 'function';
  const maxRecords = options.maxRecords ?? defaultMax;
  const cap = Math.min(maxRecords, options.initialCapacity ?? INITIAL_CAPACITY);
  const buffers: ArenaBuffers = {
    meta: makeFixedBuffer(META_WORDS * 4, shared),
    records: makeGrowableBuffer(cap * recordBytes, maxRecords * recordBytes, shared),
    freeIds: makeGrowableBuffer(cap * 4, maxRecords * 4, shared),
    recordBytes,
    maxRecords,
  };
  const meta = new Int32Array(buffers.meta);
  meta[CAP] = cap;
  meta[HWM] = 1;
  return buffers;
}

export class RecordArena {
  readonly buffers: ArenaBuffers;
  readonly meta: Int32Array;
  /** Float64 view of all records. */
  f!: Float64Array;
  /** Int32 view of all records. */
  i!: Int32Array;
  private ids!: Int32Array;
  /** Capacity the views were made for; compared with meta[CAP] to notice growth by others. */
  private viewCap = 0;

  constructor(buffers: ArenaBuffers) {
    this.buffers = buffers;
    this.meta = new Int32Array(buffers.meta);
    this.refreshViews();
  }

  /** Re-makes the views when the shared capacity moved (growth by this or another thread). */
  refreshViews(): void {
    const cap = Atomics.load(this.meta, CAP);
    if (cap === this.viewCap) return;
    const b = this.buffers;
    this.f = new Float64Array(b.records, 0, cap * (b.recordBytes / 8));
    this.i = new Int32Array(b.records, 0, cap * (b.recordBytes / 4));
    this.ids = new Int32Array(b.freeIds, 0, cap);
    this.viewCap = cap;
  }

  get capacity(): number {
    return this.meta[CAP]!;
  }

  /** Records handed out and not returned. */
  get live(): number {
    return this.meta[HWM]! - 1 - this.meta[NFREE]!;
  }

  /** Ids ever handed out plus one: every live id is below it. */
  get highWater(): number {
    return this.meta[HWM]!;
  }

  get maxRecords(): number {
    return this.buffers.maxRecords;
  }

  /** Grows the buffers to hold at least `need` records (doubling). */
  private grow(need: number): boolean {
    const max = this.buffers.maxRecords;
    if (need > max) return false;
    let cap = this.meta[CAP]!;
    while (cap < need) cap = Math.min(max, cap * 2);
    growBuffer(this.buffers.records, cap * this.buffers.recordBytes);
    growBuffer(this.buffers.freeIds, cap * 4);
    Atomics.store(this.meta, CAP, cap);
    this.refreshViews();
    return true;
  }

  /**
   * A record for a new use (its fields hold whatever its previous use left), or 0 when the
   * ceiling is reached. Kernel: kmem_cache_alloc().
   */
  alloc(): number {
    const meta = this.meta;
    let id: number;
    const nfree = meta[NFREE]!;
    if (nfree > 0) {
      id = this.ids[nfree - 1]!;
      meta[NFREE] = nfree - 1;
    } else {
      id = meta[HWM]!;
      if (id >= meta[CAP]! && !this.grow(id + 1)) return 0;
      meta[HWM] = id + 1;
    }
    return id;
  }

  /** Returns a record to the free-id stack. Kernel: kmem_cache_free(). */
  free(id: number): void {
    const meta = this.meta;
    const nfree = meta[NFREE]!;
    this.ids[nfree] = id;
    meta[NFREE] = nfree + 1;
  }

  /** The ids currently on the free-id stack (for the invariant checkers). */
  freeIdList(): Int32Array {
    return this.ids.subarray(0, this.meta[NFREE]!);
  }
}
