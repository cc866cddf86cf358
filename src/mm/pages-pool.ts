/**
 * The pools of page arrays: for every vm_struct, the list of its page frame numbers.
 *
 * Holds: one pool per CPU (up to MAX_POOLS; CPUs share pools beyond that). A pool is a
 * growable Int32 buffer of slots whose ranges are handed out by a concurrent VmapSpace (this
 * library's own range allocator, with pageSize 1). A slot id is global: pool * slotsPerPool +
 * offset, so a free from any CPU finds its pool.
 * Invariant: every live range belongs to exactly one vm_struct; a pool's buffer covers every
 * slot its allocator has handed out.
 * Callers: the vmalloc layer (area->pages).
 *
 * Kernel: area->pages, kmalloc'd from per-CPU slab caches (above a page it is itself vmalloc'd:
 * that nested area is modelled by the vmalloc layer; the pfns stay here). One pool per CPU
 * keeps this from becoming a lock every worker waits on.
 */

import { type AnyBuffer, growBuffer, makeGrowableBuffer } from '../shared/buffers.js';
import { VmapSpace, type VmapSpaceHandle } from '../kva/vmap-space.js';
import type { Lock, LockTable } from '../shared/lock.js';

const MAX_POOLS = 64;

export interface PagesPoolHandle {
  readonly spaces: readonly VmapSpaceHandle[];
  readonly buffers: readonly AnyBuffer[];
  readonly slotsPerPool: number;
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
    return { spaces, buffers, slotsPerPool, local: shared ? null : local };
  }

  /** A range of `n` slots in this cpu's pool (its global id), or -1 when the pool is full. */
  alloc(n: number): number {
    const p = this.home;
    const at = this.spaces[p]!.alloc(n);
    if (at === null) return -1;
    const buf = this.buffers[p]!;
    if ((at + n) * 4 > buf.byteLength)
      growBuffer(buf, Math.min(this.slotsPerPool * 4, Math.max((at + n) * 4, buf.byteLength * 2)));
    return p * this.slotsPerPool + at;
  }

  /** Frees the range starting at global slot `slot`. */
  free(slot: number): void {
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

  /**
   * Recovery (src/mm/recovery-parts.ts): every pool rebuilt with exactly the live ranges
   * `keep` (global slot, length), its lock freed. Every other thread is outside the pools.
   */
  rebuild(keep: readonly { slot: number; n: number }[]): void {
    const per = this.spaces.map(() => [] as { start: number; end: number }[]);
    for (const k of keep) {
      const p = Math.floor(k.slot / this.slotsPerPool);
      const at = k.slot - p * this.slotsPerPool;
      per[p]!.push({ start: at, end: at + k.n });
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

  check(): void {
    for (const s of this.spaces) s.check();
  }
}
