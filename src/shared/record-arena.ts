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
 *
 * Shared between workers, an arena has per-CPU caches (the kernel's per-CPU slabs): each CPU
 * takes ids from and returns ids to its own small stack, and only a refill or a drain of that
 * stack (a batch of PCPU_BATCH ids) takes the arena's lock. A cpu's stack is touched by that
 * cpu alone, so it needs no lock (a worker is a CPU: one thread per cpu id).
 *
 *   pcpu:  | cpu 0: count, ids[PCPU_CAP] | cpu 1: count, ids[PCPU_CAP] | ...
 */

import { type AnyBuffer, growBuffer, makeFixedBuffer, makeGrowableBuffer } from './buffers.js';
import type { Lock } from './lock.js';
import { S_CACHE_DRAIN, S_CACHE_REFILL, stepHook } from './step-hook.js';

/**
 * Indices into `meta`. CAP is read by every operation of every thread (refreshViews) and
 * written only when the arena grows; HWM and NFREE are written by every shared-stack
 * allocation. They sit on different cache lines (16 words = 64 bytes apart), so that one
 * worker's allocation does not make every other worker's next read of CAP a cache miss.
 */
const CAP = 0; // records the buffer holds now
const HWM = 16; // ids [1, HWM) have been handed out at least once
const NFREE = 17; // depth of the free-id stack
const META_WORDS = 32;
/** Bytes of an arena's meta buffer (attach checks a handle's against it). */
export const ARENA_META_BYTES = META_WORDS * 4;

/**
 * Per-CPU cache: ids a cpu keeps, and how many move at a refill or a drain. A cpu's block
 * is a whole number of 64-byte lines (count, 63 ids), so no two cpus write one line.
 */
const PCPU_CAP = 63;
const PCPU_BATCH = 32;
const PCPU_WORDS = PCPU_CAP + 1;

/** The buffers behind an arena; structured-cloneable, so a worker can attach to them. */
export interface ArenaBuffers {
  readonly meta: AnyBuffer;
  readonly records: AnyBuffer;
  readonly freeIds: AnyBuffer;
  /** Per-CPU id caches, or null for an arena used by one thread (or under one lock). */
  readonly pcpu: AnyBuffer | null;
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
  /** Give each of this many CPUs its own id cache (for sharing between workers). */
  perCpu?: number;
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
    pcpu: options.perCpu ? makeFixedBuffer(options.perCpu * PCPU_WORDS * 4, shared) : null,
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
  /** Per-CPU caches (null: a single-thread arena) and this thread's offset in them. */
  private readonly pcpu: Int32Array | null;
  private pcpuBase = 0;
  private cpu = 0;
  private lock: Lock | null = null;

  constructor(buffers: ArenaBuffers) {
    this.buffers = buffers;
    this.meta = new Int32Array(buffers.meta);
    this.pcpu = buffers.pcpu === null ? null : new Int32Array(buffers.pcpu);
    this.refreshViews();
  }

  /**
   * Makes this instance (this thread's view of a shared arena) allocate as `cpu`, with `lock`
   * guarding the shared stack. Required before alloc/free on an arena with per-CPU caches.
   */
  bindCpu(cpu: number, lock: Lock): void {
    if (this.pcpu === null) throw new Error('this arena has no per-CPU caches');
    if ((cpu + 1) * PCPU_WORDS > this.pcpu.length)
      throw new RangeError(`cpu ${cpu} has no cache in this arena`);
    this.cpu = cpu;
    this.pcpuBase = cpu * PCPU_WORDS;
    this.lock = lock;
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

  /** Records handed out and not returned (ids in per-CPU caches count as returned). */
  get live(): number {
    return this.meta[HWM]! - 1 - this.meta[NFREE]! - this.cachedCount();
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
    const pc = this.pcpu;
    if (pc === null) return this.allocShared();
    const base = this.pcpuBase;
    const n = pc[base]!;
    if (n === 0) return this.refill();
    pc[base] = n - 1;
    const id = pc[base + n]!;
    if (id >= this.viewCap) this.refreshViews();
    return id;
  }

  /** Returns a record. Kernel: kmem_cache_free(). */
  free(id: number): void {
    const pc = this.pcpu;
    if (pc === null) {
      this.freeShared(id);
      return;
    }
    const base = this.pcpuBase;
    const n = pc[base]!;
    if (n === PCPU_CAP) this.drain();
    const m = pc[base]!;
    pc[base + 1 + m] = id;
    pc[base] = m + 1;
  }

  /** The shared stack (or the high-water mark). The caller holds the lock if there is one. */
  private allocShared(): number {
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

  private freeShared(id: number): void {
    const meta = this.meta;
    const nfree = meta[NFREE]!;
    if (nfree >= this.ids.length) this.refreshViews();
    this.ids[nfree] = id;
    meta[NFREE] = nfree + 1;
  }

  /** Takes a batch from the shared stack into this cpu's cache; returns one id (0: none). */
  private refill(): number {
    const pc = this.pcpu!;
    const base = this.pcpuBase;
    this.lock!.lock(this.cpu);
    this.refreshViews();
    let n = 0;
    for (; n < PCPU_BATCH; n++) {
      const id = this.allocShared();
      if (id === 0) break;
      pc[base + 1 + n] = id;
      if (n === 1) if (stepHook !== null) stepHook(S_CACHE_REFILL);
    }
    this.lock!.unlock();
    if (n === 0) return 0;
    pc[base] = n - 1;
    return pc[base + n]!;
  }

  /** Moves the older half of this cpu's cache back to the shared stack. */
  private drain(): void {
    const pc = this.pcpu!;
    const base = this.pcpuBase;
    this.lock!.lock(this.cpu);
    this.refreshViews();
    for (let k = 0; k < PCPU_BATCH; k++) {
      this.freeShared(pc[base + 1 + k]!);
      if (k === 1) if (stepHook !== null) stepHook(S_CACHE_DRAIN);
    }
    this.lock!.unlock();
    pc.copyWithin(base + 1, base + 1 + PCPU_BATCH, base + 1 + PCPU_CAP);
    pc[base] = PCPU_CAP - PCPU_BATCH;
  }

  /**
   * Returns every id of this cpu's cache to the shared stack, for a thread that stops being
   * this cpu (detach): no id stays parked in the cache of a cpu nobody may use again.
   * Returns how many moved.
   */
  drainCpu(): number {
    const pc = this.pcpu;
    if (pc === null) return 0;
    const base = this.pcpuBase;
    const n = pc[base]!;
    if (n === 0) return 0;
    this.lock!.lock(this.cpu);
    this.refreshViews();
    for (let k = 1; k <= n; k++) this.freeShared(pc[base + k]!);
    pc[base] = 0;
    this.lock!.unlock();
    return n;
  }

  /**
   * Recovery (src/mm/recovery.ts), with every thread outside the arena: every id below the
   * high-water mark that `used` does not mark (used[id] !== 0) goes on the shared stack, and
   * every per-CPU cache is emptied. Whatever a dead thread left half-done in the stack or in
   * a cache is forgotten. Returns the number of ids that were live and are free now.
   */
  rebuildFree(used: Uint8Array): number {
    this.refreshViews();
    const before = this.live;
    const hwm = this.meta[HWM]!;
    let n = 0;
    for (let id = 1; id < hwm; id++) if (used[id] === 0) this.ids[n++] = id;
    this.meta[NFREE] = n;
    const pc = this.pcpu;
    if (pc !== null) for (let base = 0; base < pc.length; base += PCPU_WORDS) pc[base] = 0;
    return before - this.live;
  }

  private cachedCount(): number {
    const pc = this.pcpu;
    if (pc === null) return 0;
    let n = 0;
    for (let base = 0; base < pc.length; base += PCPU_WORDS) n += pc[base]!;
    return n;
  }

  /** Every id not in use: the shared stack and every per-CPU cache (for the checkers). */
  freeIdList(): Int32Array {
    this.refreshViews();
    const shared = this.ids.subarray(0, this.meta[NFREE]!);
    const pc = this.pcpu;
    if (pc === null) return shared;
    const all: number[] = [...shared];
    for (let base = 0; base < pc.length; base += PCPU_WORDS) {
      for (let k = 1; k <= pc[base]!; k++) all.push(pc[base + k]!);
    }
    return Int32Array.from(all);
  }
}
