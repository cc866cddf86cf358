/**
 * The per-CPU vmap block allocator behind vm_map_ram(): small mappings (up to VMAP_MAX_ALLOC
 * pages) carved out of blocks of VMAP_BBMAP_BITS pages, so that mapping and unmapping a few
 * pages does not take the vmap-area locks each time.
 *
 * Holds: the block geometry (vbGeometry), the block records (a RecordArena in shared memory,
 * a lock in each record: kernel vb->lock), the per-CPU free lists (vmap_block_queue, each
 * under its lock), the block lookup (one global hash under one lock, or one hash per CPU
 * chosen by (addr / VMAP_BLOCK_SIZE) % nrCpus, each under its own lock: the vmapBlockHash
 * option), vb_alloc / new_vmap_block, vb_free / free_vmap_block, the fragmented-block purge
 * and _vm_unmap_aliases. Page mapping is the caller's (src/mm/vm-map-ram.ts).
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

import type { VaStore } from '../kva/vmap-area.js';
import { VaFlags } from '../kva/vmap-area.js';
import { PurgeMode } from '../designs/design.js';
import type { VmapAreas } from '../designs/vmap-areas.js';
import type { ControlLayout } from '../shared/control-layout.js';
import { Lock, LockClass, type LockTable } from '../shared/lock.js';
import { RecordArena, createArenaBuffers, type ArenaBuffers } from '../shared/record-arena.js';
import { invariantFailure } from '../debug.js';
import type { VmallocConfig } from './config.js';

/** VMAP_MAX_ALLOC: BITS_PER_LONG pages (64-bit). */
export const VMAP_MAX_ALLOC = 64;
/** VMALLOC_SPACE: the kernel's 64-bit guess at the vmalloc size, 128 GiB. */
const VMALLOC_SPACE = 128 * 2 ** 30;

export interface VbGeometry {
  /** VMAP_BBMAP_BITS: pages of a block. */
  bits: number;
  /** VMAP_BLOCK_SIZE in bytes. */
  blockSize: number;
  /** VMAP_PURGE_THRESHOLD: bits / 4. */
  purgeThreshold: number;
}

const roundupPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(n));

/** The kernel's VMAP_BBMAP_BITS from CONFIG_NR_CPUS and the page size. */
export function vbGeometry(pageSize: number, configNrCpus: number): VbGeometry {
  const raw = Math.floor(VMALLOC_SPACE / pageSize / roundupPow2(configNrCpus) / 16);
  const bits = Math.min(1024, Math.max(2 * VMAP_MAX_ALLOC, raw));
  return { bits, blockSize: bits * pageSize, purgeThreshold: bits / 4 };
}

// A block record, in Int32 words.
export const W_LOCK = 0; // 4 words (LOCK_WORDS): vb->lock
export const W_VA = 4; // the block's vmap_area
export const W_FREE = 5; // pages never handed out, counted from the end
export const W_DIRTY = 6; // pages handed out and returned, not yet flushed
export const W_DMIN = 7; // dirty range [dmin, dmax) in pages; empty: bits, 0
export const W_DMAX = 8;
export const W_CPU = 9; // owner CPU (whose free list)
export const W_FNEXT = 10; // free list links (record ids, 0: none)
export const W_FPREV = 11;
export const W_ONLIST = 12;
export const W_HNEXT = 13; // hash chain
export const W_KEY = 14; // addr / blockSize
export const W_LIVE = 15; // 1 while in the hash
export const W_MAP = 16; // used_map: bits / 32 words, then the count bytes (bits / 4 words)

/** Offsets of the allocator's shared words and locks. */
export interface VbDecl {
  geo: VbGeometry;
  perCpuHash: boolean;
  nHash: number;
  buckets: number;
  heads: number;
  queues: number;
  counters: number;
  hashLock: number;
  queueLock: number;
  blockClass: number;
  cacheLock: number;
}

/** Shared counters (one line). */
export const VbCount = { BLOCKS: 0, CREATED: 1, FREED: 2, PURGED: 3 } as const;

/** A line of Int32 words per CPU for its free list's head and tail. */
export const QUEUE_STRIDE = 16;

/** What the allocator uses of a thread's context (VmContext has all of it). */
export interface VbDeps {
  readonly s: VaStore;
  readonly areas: VmapAreas;
}

/** A block as blockInfo() shows it. */
export interface VbInfo {
  start: number;
  free: number;
  dirty: number;
  dirtyMin: number;
  dirtyMax: number;
  cpu: number;
  onFreeList: boolean;
  /** Which hash holds it (0 with the global hash). */
  hash: number;
  /** used_map: the pages of live mappings, rounded up to powers of two. */
  used: number[];
}

/** What _vm_unmap_aliases flushed: [start, end) (start > end: nothing) and whether it did. */
export interface AliasFlush {
  start: number;
  end: number;
  flushed: boolean;
}

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
  private readonly deps: VbDeps;
  private readonly cfg: VmallocConfig;
  private readonly cpu: number;

  static declare(layout: ControlLayout, config: VmallocConfig): VbDecl {
    const geo = vbGeometry(config.pageSize, config.configNrCpus);
    const n = config.nrCpus;
    const perCpuHash = config.vmapBlockHash === 'percpu';
    const nHash = perCpuHash ? n : 1;
    const buckets = perCpuHash ? Math.max(16, roundupPow2(Math.ceil(1024 / n))) : 1024;
    return {
      geo,
      perCpuHash,
      nHash,
      buckets,
      heads: layout.lines(nHash * buckets),
      queues: layout.lines(n * QUEUE_STRIDE),
      counters: layout.lines(16),
      // The kernel's lock_stat names: the global xarray's lock (before 6.4) and the lock of
      // the per-CPU xarrays (one class: they are initialised at one site).
      hashLock: perCpuHash
        ? layout.lockArray('&xa->xa_lock#1', n)
        : layout.lock('vmap_blocks.xa_lock'),
      queueLock: layout.lockArray('&vbq->lock', n),
      blockClass: layout.lockClass('&vb->lock'),
      cacheLock: layout.lock('vmap_block_cachep'),
    };
  }

  /** Record size for `config`'s geometry. */
  static recordBytes(config: VmallocConfig): number {
    const bits = vbGeometry(config.pageSize, config.configNrCpus).bits;
    const words = W_MAP + bits / 32 + bits / 4;
    return Math.ceil(words / 2) * 8;
  }

  static createBuffers(config: VmallocConfig): ArenaBuffers {
    return createArenaBuffers(VmapBlocks.recordBytes(config), 1 << 16, {
      shared: config.shared,
      perCpu: config.nrCpus,
      initialCapacity: 16,
    });
  }

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

  /** A snapshot of the block holding `addr`, or null (for tests and debugging). */
  blockInfo(addr: number): VbInfo | null {
    const id = this.lockBlockOf(addr);
    if (id === 0) return null;
    const b = this.at(id);
    const i = this.arena.i;
    const used: number[] = [];
    for (let k = 0; k < this.geo.bits; k++)
      if (((i[b + W_MAP + (k >> 5)]! >>> (k & 31)) & 1) === 1) used.push(k);
    const info: VbInfo = {
      start: this.startOf(id),
      free: i[b + W_FREE]!,
      dirty: i[b + W_DIRTY]!,
      dirtyMin: i[b + W_DMIN]!,
      dirtyMax: i[b + W_DMAX]!,
      cpu: i[b + W_CPU]!,
      onFreeList: i[b + W_ONLIST] === 1,
      hash: this.hashOf(i[b + W_KEY]!),
      used,
    };
    this.unlockBlock(id);
    return info;
  }

  unlockBlock(id: number): void {
    this.blockLock.unlock(this.arena.i, this.at(id) + W_LOCK);
  }

  /** Start address of block `id`. */
  startOf(id: number): number {
    return this.arena.i[this.at(id) + W_KEY]! * this.geo.blockSize;
  }

  /** The count byte of page `off` of block at word `b` (0: no mapping starts there). */
  countAt(b: number, off: number): number {
    return (this.arena.i[b + this.W_CNT + (off >> 2)]! >>> ((off & 3) << 3)) & 0xff;
  }

  private setCount(b: number, off: number, c: number): void {
    const i = this.arena.i;
    const w = b + this.W_CNT + (off >> 2);
    const sh = (off & 3) << 3;
    i[w] = (i[w]! & ~(0xff << sh)) | (c << sh);
  }

  /** Sets (on) or clears the used_map bits [off, off + n) of the block at word `b`. */
  private setBits(b: number, off: number, n: number, on: boolean): void {
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
    hl.unlock();
    const q = this.queueLocks[cpu]!;
    q.lock(cpu);
    this.enlist(id, b, cpu);
    q.unlock();
    Atomics.add(this.ctl, this.decl.counters + VbCount.BLOCKS, 1);
    Atomics.add(this.ctl, this.decl.counters + VbCount.CREATED, 1);
    return start;
  }

  /** Appends block `id` to `cpu`'s free list (its vbq lock held). */
  private enlist(id: number, b: number, cpu: number): void {
    const i = this.arena.i;
    const qAt = this.decl.queues + cpu * QUEUE_STRIDE;
    const tail = this.ctl[qAt + 1]!;
    i[b + W_FPREV] = tail;
    i[b + W_FNEXT] = 0;
    i[b + W_ONLIST] = 1;
    if (tail === 0) this.ctl[qAt] = id;
    else i[this.at(tail) + W_FNEXT] = id;
    this.ctl[qAt + 1] = id;
  }

  /** Removes block `id` from its owner's free list (that vbq lock held). */
  private unlist(id: number, b: number): void {
    const i = this.arena.i;
    const qAt = this.decl.queues + i[b + W_CPU]! * QUEUE_STRIDE;
    const prev = i[b + W_FPREV]!;
    const next = i[b + W_FNEXT]!;
    if (prev === 0) this.ctl[qAt] = next;
    else i[this.at(prev) + W_FNEXT] = next;
    if (next === 0) this.ctl[qAt + 1] = prev;
    else i[this.at(next) + W_FPREV] = prev;
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
    this.blockLock.unlock(i, b + W_LOCK);
    if (dirty === this.geo.bits) this.freeBlock(id);
  }

  /** Kernel: free_vmap_block(): out of the hash, the area freed lazily, the record freed. */
  private freeBlock(id: number): void {
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
      x = this.arena.i[this.at(x) + W_HNEXT]!;
    }
    if (x === 0) {
      hl.unlock();
      invariantFailure(`vmap block #${id} is not in its hash`);
    }
    const next = i[b + W_HNEXT]!;
    if (prev === 0) Atomics.store(this.ctl, head, next);
    else this.arena.i[this.at(prev) + W_HNEXT] = next;
    i[b + W_LIVE] = 0;
    hl.unlock();
    const va = i[b + W_VA]!;
    const areas = this.deps.areas;
    if (areas.findUnlink(cpu, key * this.geo.blockSize, false) !== va)
      invariantFailure(`the area of vmap block #${id} is not busy`);
    areas.freeLazy(cpu, va);
    this.arena.free(id);
    Atomics.sub(this.ctl, this.decl.counters + VbCount.BLOCKS, 1);
    Atomics.add(this.ctl, this.decl.counters + VbCount.FREED, 1);
  }

  /**
   * Kernel: purge_fragmented_block(), with the owner's vbq lock and the block lock held: a
   * block with no live mapping left, not yet freed, and (unless `force`) less than a quarter
   * still fresh, becomes fully dirty and leaves its free list; true when it did (the caller
   * frees it once the locks are dropped).
   */
  private purgeFragmented(id: number, b: number, force: boolean): boolean {
    const i = this.arena.i;
    const bits = this.geo.bits;
    const free = i[b + W_FREE]!;
    const dirty = i[b + W_DIRTY]!;
    if (free + dirty !== bits || dirty === bits) return false;
    if (!force && free >= this.geo.purgeThreshold) return false;
    i[b + W_FREE] = 0;
    i[b + W_DIRTY] = bits;
    i[b + W_DMIN] = 0;
    i[b + W_DMAX] = bits;
    if (i[b + W_ONLIST] === 1) this.unlist(id, b);
    return true;
  }

  /**
   * Every CPU's fragmented blocks, purged (`force`: whatever their fresh space) and freed;
   * how many. Kernel: purge_fragmented_blocks_allcpus(), from reclaim_and_purge_vmap_areas().
   */
  purgeFragmentedAll(force: boolean): number {
    const cpu = this.cpu;
    const purged: number[] = [];
    for (let c = 0; c < this.cfg.nrCpus; c++) {
      const q = this.queueLocks[c]!;
      q.lock(cpu);
      let id = this.ctl[this.decl.queues + c * QUEUE_STRIDE]!;
      while (id !== 0) {
        const b = this.at(id);
        const i = this.arena.i;
        const next = i[b + W_FNEXT]!;
        this.blockLock.lock(cpu, i, b + W_LOCK);
        if (this.purgeFragmented(id, b, force)) purged.push(id);
        this.blockLock.unlock(i, b + W_LOCK);
        id = next;
      }
      q.unlock();
    }
    for (const id of purged) this.freeBlock(id);
    Atomics.add(this.ctl, this.decl.counters + VbCount.PURGED, purged.length);
    return purged.length;
  }

  /**
   * Kernel: _vm_unmap_aliases(ULONG_MAX, 0, 0): with vmap_purge_lock, every block of every
   * hash either purged (fragmented, below the threshold) or its dirty range added to the
   * flush range and reset; then the purged blocks freed and the lazy areas purged, which
   * flushes; else one flush of the range if any block had one.
   */
  unmapAliases(): AliasFlush {
    const cpu = this.cpu;
    const bits = this.geo.bits;
    const ps = this.cfg.pageSize;
    const areas = this.deps.areas;
    let start = Infinity;
    let end = 0;
    let flush = false;
    const purged: number[] = [];
    areas.purgeMutex.lock(cpu);
    try {
      const d = this.decl;
      for (let h = 0; h < d.nHash; h++) {
        const hl = this.hashLocks[h]!;
        hl.lock(cpu);
        for (let k = 0; k < d.buckets; k++) {
          let id = this.ctl[d.heads + h * d.buckets + k]!;
          while (id !== 0) {
            const b = this.at(id);
            const i = this.arena.i;
            const q = this.queueLocks[i[b + W_CPU]!]!;
            q.lock(cpu);
            this.blockLock.lock(cpu, i, b + W_LOCK);
            if (this.purgeFragmented(id, b, false)) {
              purged.push(id);
            } else if (i[b + W_DMAX] !== 0 && i[b + W_DIRTY] !== bits) {
              const va = i[b + W_KEY]! * this.geo.blockSize;
              start = Math.min(start, va + i[b + W_DMIN]! * ps);
              end = Math.max(end, va + i[b + W_DMAX]! * ps);
              i[b + W_DMIN] = bits;
              i[b + W_DMAX] = 0;
              flush = true;
            }
            this.blockLock.unlock(i, b + W_LOCK);
            q.unlock();
            id = i[b + W_HNEXT]!;
          }
        }
        hl.unlock();
      }
      for (const id of purged) this.freeBlock(id);
      Atomics.add(this.ctl, d.counters + VbCount.PURGED, purged.length);
      const purgedLazy = areas.design.purgeLocked(cpu, PurgeMode.DRAIN);
      if (!purgedLazy && flush) areas.flushTlbAll();
      return { start, end, flushed: purgedLazy || flush };
    } finally {
      areas.purgeMutex.unlock();
    }
  }
}
