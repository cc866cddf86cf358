/**
 * The vmap blocks' geometry and shared layout: VMAP_BBMAP_BITS from CONFIG_NR_CPUS, the words
 * of a block record, the control words and locks the allocator declares, its record buffers.
 *
 * Holds: vbGeometry(), the record word offsets (W_*), VbDecl and declareVmapBlocks(), the
 * record size and buffers, the plain types the allocator's modules share, and the record's
 * accessors for the cold readers (readVbRecord, writeVbRecord, usedBit: the checker, the
 * recovery, blockInfo; the allocator's hot paths index the words themselves).
 * Invariant: every thread computes the same declarations from the same configuration.
 * Callers: vmap-block.ts (the allocator), vmap-block-purge.ts, vmap-block-check.ts,
 * recovery-vmap-block.ts, shared-state.ts (declareParts, createHandle).
 */

import type { VaStore } from '../kva/vmap-area.js';
import type { VmapAreas } from '../designs/vmap-areas.js';
import type { ControlLayout } from '../shared/control-layout.js';
import { createArenaBuffers, type ArenaBuffers } from '../shared/record-arena.js';
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

export const roundupPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(n));

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

/**
 * A block record's words (not its lock, used_map or count bytes), read at once. For the cold
 * readers only (it allocates): the checker, the recovery (which writes it back) and blockInfo.
 */
export interface VbRecord {
  /** The block's vmap_area. */
  va: number;
  free: number;
  dirty: number;
  dmin: number;
  dmax: number;
  cpu: number;
  fnext: number;
  fprev: number;
  /** 1 while on its owner's free list. */
  onList: number;
  hnext: number;
  key: number;
  /** 1 while in the hash. */
  live: number;
}

/** Where each field of a VbRecord lives in the record. */
const WORD_OF: Readonly<Record<keyof VbRecord, number>> = {
  va: W_VA,
  free: W_FREE,
  dirty: W_DIRTY,
  dmin: W_DMIN,
  dmax: W_DMAX,
  cpu: W_CPU,
  fnext: W_FNEXT,
  fprev: W_FPREV,
  onList: W_ONLIST,
  hnext: W_HNEXT,
  key: W_KEY,
  live: W_LIVE,
};
const FIELDS = Object.keys(WORD_OF) as (keyof VbRecord)[];

/** The record at word `b` of `i` (the arena's view, made current by VmapBlocks.at()). */
export function readVbRecord(i: Int32Array, b: number): VbRecord {
  const r = {} as VbRecord;
  for (const f of FIELDS) r[f] = i[b + WORD_OF[f]]!;
  return r;
}

/** Writes `r` back to the record at word `b` (the recovery, world stopped). */
export function writeVbRecord(i: Int32Array, b: number, r: VbRecord): void {
  for (const f of FIELDS) i[b + WORD_OF[f]] = r[f];
}

/** Is page `k` of the record at word `b` in used_map? */
export function usedBit(i: Int32Array, b: number, k: number): boolean {
  return ((i[b + W_MAP + (k >> 5)]! >>> (k & 31)) & 1) === 1;
}

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

/** Record size for `config`'s geometry. */
export function vbRecordBytes(config: VmallocConfig): number {
  const bits = vbGeometry(config.pageSize, config.configNrCpus).bits;
  const words = W_MAP + bits / 32 + bits / 4;
  return Math.ceil(words / 2) * 8;
}

export function createVbBuffers(config: VmallocConfig): ArenaBuffers {
  return createArenaBuffers(vbRecordBytes(config), 1 << 16, {
    shared: config.shared,
    perCpu: config.nrCpus,
    initialCapacity: 16,
  });
}

export function declareVmapBlocks(layout: ControlLayout, config: VmallocConfig): VbDecl {
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
