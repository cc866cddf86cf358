/**
 * The per-CPU vmap block allocator behind vm_map_ram(): small mappings (up to VMAP_MAX_ALLOC
 * pages) carved out of blocks of VMAP_BBMAP_BITS pages, so that mapping and unmapping a few
 * pages does not take the vmap-area locks each time.
 *
 * Holds: VmapBlocks: the block records (a RecordArena in shared memory, a lock in each
 * record: kernel vb->lock), the per-CPU free lists (vmap_block_queue, each under its lock),
 * the block lookup (one global hash under one lock, or one hash per CPU chosen by
 * (addr / VMAP_BLOCK_SIZE) % nrCpus, each under its own lock: the vmapBlockHash option),
 * vb_alloc / new_vmap_block, vb_free / free_vmap_block. The geometry and record layout are in
 * vmap-block-layout.ts, the fragmented purge and _vm_unmap_aliases in vmap-block-purge.ts, the
 * checks in vmap-block-check.ts; page mapping is the caller's (src/mm/vm-map-ram.ts).
 * Invariant (outside an operation): a block is in exactly one hash, under its key; it is on
 * its owner CPU's free list iff free > 0; its set used_map bits are the pages of its live
 * mappings rounded up to powers of two; BITS - free = live bits + dirty; a block with
 * dirty == BITS is gone (its area freed lazily, its record freed). See vmap-block-check.ts.
 * Callers: src/mm/vm-map-ram.ts (vm_map_ram, vm_unmap_ram, vm_unmap_aliases), the core's
 * reclaim (the fragmented purge, through VmapAreas.fragmentedPurge), the checker.
 *
 * Lock order: vmap_purge_lock, a hash lock, a vbq lock, a block lock; a block's area is
 * allocated and freed with none of them held but vmap_purge_lock.
 * Differs from kernel: no RCU. Lookups read the hash chains without the lock and then
 * confirm the block under its own lock (its key and live word), falling back to a locked
 * lookup, so the hash locks are taken only to insert and erase, as the kernel's xa_lock; the
 * free lists are walked under their vbq lock instead of under rcu_read_lock. Each record
 * also keeps the page count of every live mapping at its first page (one byte), so that
 * vm_unmap_ram refuses an address that is not a mapping's start or a wrong count instead of
 * corrupting the block.
 */

import { VaFlags } from '../kva/vmap-area.js';
import { Lock, LockClass, type LockTable } from '../shared/lock.js';
import { RecordArena, type ArenaBuffers } from '../shared/record-arena.js';
import { invariantFailure } from '../debug.js';
import {
  S_VB_CARVED,
  S_VB_DIRTY,
  S_VB_HASHED,
  S_VB_UNHASHED,
  stepHook,
} from '../shared/step-hook.js';
import type { VmallocConfig } from './config.js';
import {
  QUEUE_STRIDE,
  type VbDecl,
  type VbDeps,
  type VbGeometry,
  VbCount,
  W_CPU,
  W_DIRTY,
  W_DMAX,
  W_DMIN,
  W_FNEXT,
  W_FPREV,
  W_FREE,
  W_HNEXT,
  W_KEY,
  W_LIVE,
  W_LOCK,
  W_MAP,
  W_ONLIST,
  W_VA,
  roundupPow2,
} from './vmap-block-layout.js';

export {
  type AliasFlush,
  type VbDecl,
  type VbGeometry,
  type VbInfo,
  QUEUE_STRIDE,
  VMAP_MAX_ALLOC,
  VbCount,
  vbGeometry,
} from './vmap-block-layout.js';

export class VmapBlocks {
  readonly geo: VbGeometry;
  readonly decl: VbDecl;
  readonly arena: RecordArena;
  readonly ctl: Int32Array;
  /** Int32 words of a record. */
  readonly W: number;
  private readonly W_CNT: number;
  readonly hashLocks: readonly Lock[];
  readonly queueLocks: readonly Lock[];
  readonly blockLock: LockClass;
  private readonly cacheLock: Lock;
  /** For the purges (vmap-block-purge.ts): the context, configuration and this cpu. */
  readonly deps: VbDeps;
  readonly cfg: VmallocConfig;
  readonly cpu: number;

  constructor(
    buffers: ArenaBuffers,
    ctl: Int32Array,
    table: LockTable,
    decl: VbDecl,
    config: VmallocConfig,
    cpu: number,
    deps: VbDeps,
  ) {
    this.geo = decl.geo;
    this.decl = decl;
    this.ctl = ctl;
    this.cfg = config;
    this.cpu = cpu;
    this.deps = deps;
    this.arena = new RecordArena(buffers);
    this.cacheLock = new Lock(table, decl.cacheLock, 'vmap_block_cachep');
    this.arena.bindCpu(cpu, this.cacheLock);
    this.W = buffers.recordBytes / 4;
    this.W_CNT = W_MAP + decl.geo.bits / 32;
    const hashName = decl.perCpuHash ? '&xa->xa_lock#1' : 'vmap_blocks.xa_lock';
    const hl: Lock[] = [];
    for (let h = 0; h < decl.nHash; h++) hl.push(new Lock(table, decl.hashLock + h, hashName));
    this.hashLocks = hl;
    const ql: Lock[] = [];
    for (let c = 0; c < config.nrCpus; c++)
      ql.push(new Lock(table, decl.queueLock + c, '&vbq->lock'));
    this.queueLocks = ql;
    this.blockLock = new LockClass(table, decl.blockClass, '&vb->lock');
  }

  /** Every lock (not the block locks: a class), for lock_stat and the cpu claims. */
  locks(): Lock[] {
    return [...this.hashLocks, ...this.queueLocks, this.cacheLock];
  }

  /** The Int32 word of record `id` (views made current when another thread grew the arena). */
  at(id: number): number {
    if ((id + 1) * this.W > this.arena.i.length) this.arena.refreshViews();
    return id * this.W;
  }

  count(k: number): number {
    return Atomics.load(this.ctl, this.decl.counters + k);
  }

  /** Which hash a block key belongs to, and the word of its bucket head. */
  hashOf(key: number): number {
    return this.decl.perCpuHash ? key % this.decl.nHash : 0;
  }

  headOf(key: number): number {
    const d = this.decl;
    const slot = d.perCpuHash ? Math.floor(key / d.nHash) : key;
    return d.heads + this.hashOf(key) * d.buckets + (slot & (d.buckets - 1));
  }

  /** The chain walk, without the lock: a candidate id (confirm under the block lock), or 0. */
  private walk(key: number): number {
    let id = Atomics.load(this.ctl, this.headOf(key));
    for (let n = 0; id !== 0 && n <= this.arena.highWater; n++) {
      const b = this.at(id);
      const i = this.arena.i;
      if (i[b + W_KEY] === key && i[b + W_LIVE] === 1) return id;
      id = i[b + W_HNEXT]!;
    }
    return 0;
  }

  /**
   * The block holding `addr`, its lock taken by this cpu, or 0. Kernel: xa_load() under RCU
   * then spin_lock(&vb->lock); the locked lookup only when the record changed meanwhile.
   */
  lockBlockOf(addr: number): number {
    const key = Math.floor(addr / this.geo.blockSize);
    const cpu = this.cpu;
    let id = this.walk(key);
    if (id !== 0) {
      const b = this.at(id);
      const i = this.arena.i;
      this.blockLock.lock(cpu, i, b + W_LOCK);
      if (i[b + W_KEY] === key && i[b + W_LIVE] === 1) return id;
      this.blockLock.unlock(i, b + W_LOCK);
    }
    const hl = this.hashLocks[this.hashOf(key)]!;
    hl.lock(cpu);
    id = this.walk(key);
    if (id !== 0) this.blockLock.lock(cpu, this.arena.i, this.at(id) + W_LOCK);
    hl.unlock();
    return id;
  }

  unlockBlock(id: number): void {
    this.blockLock.unlock(this.arena.i, this.at(id) + W_LOCK);
  }

  /** Start address of block `id`. */
  startOf(id: number): number {
    const b = this.at(id); // (first: it may remake the view read next)
    return this.arena.i[b + W_KEY]! * this.geo.blockSize;
  }

  /** The count byte of page `off` of block at word `b` (0: no mapping starts there). */
  countAt(b: number, off: number): number {
    return (this.arena.i[b + this.W_CNT + (off >> 2)]! >>> ((off & 3) << 3)) & 0xff;
  }

  /** Sets the count byte of page `off` (block lock held, or the world stopped: recovery). */
  setCount(b: number, off: number, c: number): void {
    const i = this.arena.i;
    const w = b + this.W_CNT + (off >> 2);
    const sh = (off & 3) << 3;
    i[w] = (i[w]! & ~(0xff << sh)) | (c << sh);
  }

  /** Sets (on) or clears the used_map bits [off, off + n) of the block at word `b` (likewise). */
  setBits(b: number, off: number, n: number, on: boolean): void {
    const i = this.arena.i;
    for (let k = off; k < off + n; k++) {
      const w = b + W_MAP + (k >> 5);
      if (on) i[w] = i[w]! | (1 << (k & 31));
      else i[w] = i[w]! & ~(1 << (k & 31));
    }
  }

  /**
   * `count` pages (rounded up to a power of two) from this CPU's blocks, or a new block: the
   * address, or 0 when no block can be made. Kernel: vb_alloc().
   */
  alloc(count: number): number {
    const n = roundupPow2(count);
    const cpu = this.cpu;
    const bits = this.geo.bits;
    const q = this.queueLocks[cpu]!;
    const qAt = this.decl.queues + cpu * QUEUE_STRIDE;
    const lk = this.blockLock;
    q.lock(cpu);
    let id = this.ctl[qAt]!;
    while (id !== 0) {
      const b = this.at(id);
      const i = this.arena.i;
      if (i[b + W_FREE]! >= n) {
        lk.lock(cpu, i, b + W_LOCK);
        const free = i[b + W_FREE]!;
        if (free >= n) {
          const off = bits - free;
          i[b + W_FREE] = free - n;
          this.setBits(b, off, n, true);
          if (stepHook !== null) stepHook(S_VB_CARVED);
          this.setCount(b, off, count);
          if (free === n) this.unlist(id, b);
          lk.unlock(i, b + W_LOCK);
          q.unlock();
          return i[b + W_KEY]! * this.geo.blockSize + off * this.cfg.pageSize;
        }
        lk.unlock(i, b + W_LOCK);
      }
      id = i[b + W_FNEXT]!;
    }
    q.unlock();
    return this.newBlock(count, n);
  }

  /** Kernel: new_vmap_block(): a block whose first `n` pages are handed out at once. */
  private newBlock(count: number, n: number): number {
    const cpu = this.cpu;
    const geo = this.geo;
    const id = this.arena.alloc();
    if (id === 0) return 0;
    const va = this.deps.areas.alloc(
      cpu,
      geo.blockSize,
      geo.blockSize,
      this.cfg.vmallocStart,
      this.cfg.vmallocEnd,
      VaFlags.VMAP_RAM | VaFlags.VMAP_BLOCK,
    );
    if (va === 0) {
      this.arena.free(id);
      return 0;
    }
    const start = this.deps.s.start(va);
    const key = start / geo.blockSize;
    const b = this.at(id);
    const i = this.arena.i;
    i.fill(0, b + W_VA, b + this.W); // (the lock words are zero: released at the last free)
    i[b + W_VA] = va;
    i[b + W_FREE] = geo.bits - n;
    i[b + W_DMIN] = geo.bits;
    i[b + W_CPU] = cpu;
    i[b + W_KEY] = key;
    this.setBits(b, 0, n, true);
    this.setCount(b, 0, count);
    // Into the hash (kernel: xa_insert), then onto this CPU's free list.
    const hl = this.hashLocks[this.hashOf(key)]!;
    const head = this.headOf(key);
    hl.lock(cpu);
    i[b + W_HNEXT] = this.ctl[head]!;
    i[b + W_LIVE] = 1;
    Atomics.store(this.ctl, head, id);
    if (stepHook !== null) stepHook(S_VB_HASHED);
    hl.unlock();
    const q = this.queueLocks[cpu]!;
    q.lock(cpu);
    this.enlist(id, b, cpu);
    q.unlock();
    Atomics.add(this.ctl, this.decl.counters + VbCount.BLOCKS, 1);
    Atomics.add(this.ctl, this.decl.counters + VbCount.CREATED, 1);
    return start;
  }

  /** Appends block `id` to `cpu`'s free list (its vbq lock held, or the world stopped). */
  enlist(id: number, b: number, cpu: number): void {
    const i = this.arena.i;
    const qAt = this.decl.queues + cpu * QUEUE_STRIDE;
    const tail = this.ctl[qAt + 1]!;
    i[b + W_FPREV] = tail;
    i[b + W_FNEXT] = 0;
    i[b + W_ONLIST] = 1;
    if (tail === 0) this.ctl[qAt] = id;
    else {
      const t = this.at(tail); // may remake the views: index the current one
      this.arena.i[t + W_FNEXT] = id;
    }
    this.ctl[qAt + 1] = id;
  }

  /** Removes block `id` from its owner's free list (that vbq lock held). */
  unlist(id: number, b: number): void {
    const i = this.arena.i;
    const qAt = this.decl.queues + i[b + W_CPU]! * QUEUE_STRIDE;
    const prev = i[b + W_FPREV]!;
    const next = i[b + W_FNEXT]!;
    // at() may remake the arena's views (a block another thread made since): each store goes
    // through the view current after it, never through `i`, which may no longer cover it.
    if (prev === 0) this.ctl[qAt] = next;
    else {
      const p = this.at(prev);
      this.arena.i[p + W_FNEXT] = next;
    }
    if (next === 0) this.ctl[qAt + 1] = prev;
    else {
      const n = this.at(next);
      this.arena.i[n + W_FPREV] = prev;
    }
    i[b + W_FPREV] = 0;
    i[b + W_FNEXT] = 0;
    i[b + W_ONLIST] = 0;
  }

  /**
   * The first half of vb_free(), with the block lock held (lockBlockOf): the mapping at page
   * `off` leaves used_map. Its pages are then unmapped by the caller, and finishFree() counts
   * them dirty: until then they are neither free nor dirty, so no purge can take the block.
   */
  clearMapping(id: number, off: number, count: number): void {
    const b = this.at(id);
    this.setBits(b, off, roundupPow2(count), false);
    this.setCount(b, off, 0);
  }

  /**
   * The second half of vb_free(): the pages are dirty; the block goes (lazily) when all of
   * it is. Kernel: vb_free() after vunmap_range_noflush(), free_vmap_block().
   */
  finishFree(id: number, off: number, count: number): void {
    const n = roundupPow2(count);
    const b = this.at(id);
    const i = this.arena.i;
    this.blockLock.lock(this.cpu, i, b + W_LOCK);
    i[b + W_DMIN] = Math.min(i[b + W_DMIN]!, off);
    i[b + W_DMAX] = Math.max(i[b + W_DMAX]!, off + n);
    const dirty = i[b + W_DIRTY]! + n;
    i[b + W_DIRTY] = dirty;
    if (stepHook !== null) stepHook(S_VB_DIRTY);
    this.blockLock.unlock(i, b + W_LOCK);
    if (dirty === this.geo.bits) this.freeBlock(id);
  }

  /** Kernel: free_vmap_block(): out of the hash, the area freed lazily, the record freed. */
  freeBlock(id: number): void {
    const cpu = this.cpu;
    const b = this.at(id);
    const i = this.arena.i;
    const key = i[b + W_KEY]!;
    const hl = this.hashLocks[this.hashOf(key)]!;
    hl.lock(cpu);
    const head = this.headOf(key);
    let prev = 0;
    let x = this.ctl[head]!;
    while (x !== 0 && x !== id) {
      prev = x;
      const bx = this.at(x);
      x = this.arena.i[bx + W_HNEXT]!;
    }
    if (x === 0) {
      hl.unlock();
      invariantFailure(`vmap block #${id} is not in its hash`);
    }
    const next = i[b + W_HNEXT]!;
    if (prev === 0) Atomics.store(this.ctl, head, next);
    else {
      const bp = this.at(prev);
      this.arena.i[bp + W_HNEXT] = next;
    }
    i[b + W_LIVE] = 0;
    hl.unlock();
    if (stepHook !== null) stepHook(S_VB_UNHASHED);
    const va = i[b + W_VA]!;
    const areas = this.deps.areas;
    if (areas.findUnlink(cpu, key * this.geo.blockSize, false) !== va)
      invariantFailure(`the area of vmap block #${id} is not busy`);
    areas.freeLazy(cpu, va);
    this.arena.free(id);
    Atomics.sub(this.ctl, this.decl.counters + VbCount.BLOCKS, 1);
    Atomics.add(this.ctl, this.decl.counters + VbCount.FREED, 1);
  }
}
