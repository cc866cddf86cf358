/**
 * The pools of page arrays: for every vm_struct, the list of its page frame numbers.
 *
 * Holds: one pool per CPU (up to MAX_POOLS; CPUs share pools beyond that). A pool is a
 * growable Int32 buffer of slots whose ranges are handed out by a concurrent VmapSpace (this
 * library's own range allocator, with pageSize 1). A slot id is global: pool * slotsPerPool +
 * offset, so a free from any CPU finds its pool.
 * Arrays of up to a page of entries (MAX_CACHED pfns) are kmalloc-sized: their range is
 * rounded up to a power of two slots, as kmalloc rounds area->pages up to one of its size
 * classes (kmalloc-8 .. kmalloc-4096). In front of the pools, each CPU keeps a small cache
 * of freed arrays per class (the slab allocator's per-CPU array_cache): most vmalloc/vfree
 * pairs then take and return their pages array with a few loads and stores on this CPU's
 * own cache lines, with no pool lock and no range-tree walk. Longer arrays (vmalloc'd in
 * the kernel) are exact ranges of the pool, not cached.
 *
 *   cache words, per cpu (CPU_WORDS Int32 words: 10 cache lines, written by that cpu alone):
 *   | 1 slot: count | slot ... (CACHE_DEPTH) | 2 slots: count | slot ... | ... | 512 slots ... |
 *
 * Invariant: every live range belongs to exactly one vm_struct or sits in exactly one cpu's
 * cache under its class; a range's length is lengthFor() of its array's pfns; a pool's
 * buffer covers every slot its allocator has handed out.
 * Callers: the vmalloc layer (area->pages); the checker and recovery read and reset the caches
 * while every other thread is stopped.
 *
 * Kernel: area->pages, kmalloc'd from per-CPU slab caches (above a page it is itself vmalloc'd:
 * that nested area is modelled by the vmalloc layer; the pfns stay here). One pool per CPU
 * keeps this from becoming a lock every worker waits on.
 */

import { invariantFailure } from '../debug.js';
import {
  type AnyBuffer,
  growBuffer,
  makeFixedBuffer,
  makeGrowableBuffer,
} from '../shared/buffers.js';
import { VmapSpace, type VmapSpaceHandle } from '../kva/vmap-space.js';
import type { Lock, LockTable } from '../shared/lock.js';

const MAX_POOLS = 64;
/** Size classes of 1, 2, 4, ... MAX_CACHED slots, each cached per cpu. */
const CACHE_CLASSES = 10;
/** The longest kmalloc-sized array: a page of 8-byte entries. */
const MAX_CACHED = 1 << (CACHE_CLASSES - 1);
/** Words per class: its count, then up to CACHE_DEPTH slots. */
const CLASS_WORDS = 16;
const CACHE_DEPTH = CLASS_WORDS - 1;
/** Words per cpu: a multiple of a 64-byte line, so no two cpus write one line. */
const CPU_WORDS = CACHE_CLASSES * CLASS_WORDS;

export interface PagesPoolHandle {
  readonly spaces: readonly VmapSpaceHandle[];
  readonly buffers: readonly AnyBuffer[];
  readonly slotsPerPool: number;
  /** The per-cpu caches of freed arrays (CPU_WORDS Int32 words per cpu). */
  readonly cache: AnyBuffer;
  /**
   * Without shared memory the pools cannot be attached (nothing else can reach them): the one
   * context that exists uses these instances directly.
   */
  readonly local: readonly VmapSpace[] | null;
}

export class PagesPool {
  readonly slotsPerPool: number;
  private readonly spaces: VmapSpace[];
  private readonly buffers: readonly AnyBuffer[];
  private readonly views: Int32Array[];
  /** The pool this cpu allocates from. */
  private readonly home: number;
  /** Every cpu's cache words; this cpu's start at `mine`. */
  private readonly cw: Int32Array;
  private readonly mine: number;

  /**
   * This cpu's view of the pools. `liveness`: the subsystem's lock table, whose record of
   * dead cpus the pools' locks read too (their lockers are the subsystem's cpus): a survivor
   * waiting on a pool lock a dead worker held gives up at once (EOWNERDEAD) and recovers.
   */
  constructor(handle: PagesPoolHandle, cpu: number, liveness: LockTable) {
    this.slotsPerPool = handle.slotsPerPool;
    this.buffers = handle.buffers;
    this.spaces = handle.local?.slice() ?? handle.spaces.map((h) => VmapSpace.attach(h, { cpu }));
    for (const s of this.spaces) s.shareLivenessOf(liveness);
    this.views = handle.buffers.map((b) => new Int32Array(b, 0, b.byteLength / 4));
    this.home = cpu % handle.spaces.length;
    this.cw = new Int32Array(handle.cache);
    this.mine = cpu * CPU_WORDS;
  }

  static createHandle(nrCpus: number, maxPagesPerPool: number, shared: boolean): PagesPoolHandle {
    const pools = Math.min(nrCpus, MAX_POOLS);
    const slotsPerPool = Math.min(Math.floor(2 ** 31 / pools) - 1, 2 * maxPagesPerPool + 4096);
    const local: VmapSpace[] = [];
    const buffers: AnyBuffer[] = [];
    for (let p = 0; p < pools; p++) {
      local.push(
        new VmapSpace({ start: 0, end: slotsPerPool, pageSize: 1, shared, concurrent: shared }),
      );
      buffers.push(makeGrowableBuffer(16 * 1024, slotsPerPool * 4, shared));
    }
    const spaces = local.map((s) => s.handle);
    const cache = makeFixedBuffer(nrCpus * CPU_WORDS * 4, shared);
    return { spaces, buffers, slotsPerPool, cache, local: shared ? null : local };
  }

  /** The length of the range that holds an array of `n` pfns (see the module header). */
  lengthFor(n: number): number {
    return n >= 1 && n <= MAX_CACHED ? 1 << (32 - Math.clz32(n - 1)) : n;
  }

  /**
   * A range for an array of `n` pfns (its global id; lengthFor(n) slots): from this cpu's
   * cache when it holds one of that class, else from this cpu's pool; -1 when the pool is
   * full even after this cpu's cache went back to it.
   */
  alloc(n: number): number {
    let len = n;
    if (n >= 1 && n <= MAX_CACHED) {
      const c = 32 - Math.clz32(n - 1);
      len = 1 << c;
      const w = this.cw;
      const at = this.mine + c * CLASS_WORDS;
      const count = w[at]!;
      if (count > 0) {
        w[at] = count - 1;
        return w[at + count]!;
      }
    }
    const got = this.poolAlloc(len);
    // Full: the arrays parked in this cpu's cache go back first (the slab shrinks its
    // per-CPU caches under pressure), then one more try.
    return got >= 0 || this.drainCache() === 0 ? got : this.poolAlloc(len);
  }

  /** `n` slots from this cpu's pool, or -1. */
  private poolAlloc(n: number): number {
    const p = this.home;
    const at = this.spaces[p]!.alloc(n);
    if (at === null) return -1;
    const buf = this.buffers[p]!;
    if ((at + n) * 4 > buf.byteLength)
      growBuffer(buf, Math.min(this.slotsPerPool * 4, Math.max((at + n) * 4, buf.byteLength * 2)));
    return p * this.slotsPerPool + at;
  }

  /** Every array in this cpu's cache back to its pool; returns how many went. */
  drainCache(): number {
    const w = this.cw;
    let moved = 0;
    for (let c = 0; c < CACHE_CLASSES; c++) {
      const at = this.mine + c * CLASS_WORDS;
      for (let count = w[at]!; count > 0; count--) {
        const slot = w[at + count]!;
        w[at] = count - 1;
        const p = Math.floor(slot / this.slotsPerPool);
        this.spaces[p]!.free(slot - p * this.slotsPerPool);
        moved++;
      }
    }
    return moved;
  }

  /**
   * Frees the range starting at global slot `slot`. `n`: the number of pfns the array was
   * allocated for, when the caller knows it exactly (it then may go to this cpu's cache),
   * else 0.
   */
  free(slot: number, n = 0): void {
    if (n > 0 && n <= MAX_CACHED) {
      const w = this.cw;
      const at = this.mine + (32 - Math.clz32(n - 1)) * CLASS_WORDS;
      const count = w[at]!;
      if (count < CACHE_DEPTH) {
        w[at + count + 1] = slot;
        w[at] = count + 1;
        return;
      }
    }
    const p = Math.floor(slot / this.slotsPerPool);
    this.spaces[p]!.free(slot - p * this.slotsPerPool);
  }

  /** The slots of the pool holding global slot `slot` (index them with offset(slot) + k). */
  view(slot: number): Int32Array {
    const p = Math.floor(slot / this.slotsPerPool);
    let v = this.views[p]!;
    const buf = this.buffers[p]!;
    if (v.length * 4 !== buf.byteLength) {
      v = new Int32Array(buf, 0, buf.byteLength / 4);
      this.views[p] = v;
    }
    return v;
  }

  /** Where global slot `slot` is in its pool's view. */
  offset(slot: number): number {
    return slot % this.slotsPerPool;
  }

  /** Live ranges as global slots (for the checker). */
  ranges(): { start: number; end: number }[] {
    return this.spaces.flatMap((s, p) =>
      [...s.busyAreas()].map((r) => ({
        start: p * this.slotsPerPool + r.start,
        end: p * this.slotsPerPool + r.end,
      })),
    );
  }

  /** Every cpu's cached arrays: global slot -> length (every other thread stopped). */
  cached(): Map<number, number> {
    const out = new Map<number, number>();
    const w = this.cw;
    for (let base = 0; base < w.length; base += CPU_WORDS)
      for (let c = 0; c < CACHE_CLASSES; c++) {
        const at = base + c * CLASS_WORDS;
        const count = w[at]!;
        if (!(count >= 0 && count <= CACHE_DEPTH))
          invariantFailure(`pages array cache of cpu ${base / CPU_WORDS}: count ${count}`);
        for (let k = 1; k <= count; k++) {
          const slot = w[at + k]!;
          if (out.has(slot))
            invariantFailure(`pages array slot ${slot} is cached twice (cpu ${base / CPU_WORDS})`);
          out.set(slot, 1 << c);
        }
      }
    return out;
  }

  /**
   * Recovery (src/mm/recovery-parts.ts): every pool rebuilt with exactly the live ranges
   * `keep` (global slot, pfns of its array: the range is lengthFor() that), its lock freed, every cpu's cache emptied (the arrays in it
   * are not kept). Every other thread is outside the pools.
   */
  rebuild(keep: readonly { slot: number; n: number }[]): void {
    this.cw.fill(0);
    const per = this.spaces.map(() => [] as { start: number; end: number }[]);
    for (const k of keep) {
      const p = Math.floor(k.slot / this.slotsPerPool);
      const at = k.slot - p * this.slotsPerPool;
      per[p]!.push({ start: at, end: at + this.lengthFor(k.n) });
    }
    this.spaces.forEach((space, p) => space.rebuild(per[p]!.sort((a, b) => a.start - b.start)));
  }

  /** Every pool's lock (for a dead holder's at re-attach: CpuClaims.claim). */
  locks(): Lock[] {
    return this.spaces.flatMap((s) => s.locks());
  }

  /** Recovery: frees every pool's lock (see VmapSpace.releaseLock). */
  releaseLocks(): void {
    for (const space of this.spaces) space.releaseLock();
  }

  /** Each pool's own check, and every cached array a live range of its class's length. */
  check(): void {
    for (const s of this.spaces) s.check();
    const live = new Map(this.ranges().map((r) => [r.start, r.end - r.start]));
    for (const [slot, n] of this.cached())
      if (live.get(slot) !== n)
        invariantFailure(`cached pages array (slot ${slot}) is not a live pool range of ${n}`);
  }
}
