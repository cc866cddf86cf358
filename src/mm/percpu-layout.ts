/**
 * The percpu allocator's shared buffer: its layout (a header, then one record per chunk slot,
 * each record holding its chunk's allocation map) and the geometry every thread derives from
 * the configuration (unit size, map bits, the ceiling on chunks).
 *
 * Holds: PCPU_MIN_ALLOC_SIZE / PCPU_MIN_UNIT_SIZE, the header words (H_*) and record words
 * (C_*), the kinds of the map change in flight (PCPU_OP_*), pcpuGeometry(), recordWords(),
 * createPcpuBuffer().
 * Invariant: every thread computes the same geometry from the same configuration, so a record
 * starts at the same word in every thread's view.
 * Callers: PcpuChunks (percpu-chunk.ts, which re-exports the geometry for shared-state.ts and
 * percpu.ts); recovery-percpu.ts through it.
 *
 *   buffer:  | header (16 words) | chunk 0 | chunk 1 | ...            (grows by whole slots)
 *   header:  | slots live created destroyed populated | op chunk start bits (in flight) | - |
 *   chunk:   | state - base(f64) nrPopulated | populated bits | allocation map |
 *   allocation map: | summary (5) | alloc map (mapBits / 32) | bound map (mapBits / 32) |
 */

import { type AnyBuffer, makeGrowableBuffer } from '../shared/buffers.js';
import { mapWords } from './percpu-bitmap.js';

/** PCPU_MIN_ALLOC_SIZE: the allocation unit of a chunk's maps. */
export const PCPU_MIN_ALLOC_SIZE = 4;
/** PCPU_MIN_UNIT_SIZE: the largest allocation (32 KiB). */
export const PCPU_MIN_UNIT_SIZE = 32 * 1024;

/** Header words. */
export const H_SLOTS = 0; // chunk slots the buffer holds records for (grown, never shrunk)
export const H_LIVE = 1; // live chunks
export const H_CREATED = 2;
export const H_DESTROYED = 3;
export const H_POPULATED = 4; // populated pages, every unit counted
/**
 * The map change in flight (one at a time, under pcpu_alloc_mutex): its kind (0: none, 1: a
 * mark, 2: a clear), chunk, first unit and units, written before the maps; recovery undoes a
 * mark and finishes a clear from them.
 */
export const H_OP = 5;
export const H_OP_CHUNK = 6;
export const H_OP_START = 7;
export const H_OP_BITS = 8;
export const PCPU_OP_MARK = 1;
export const PCPU_OP_CLEAR = 2;
export const HEADER_WORDS = 16;

/** Record words. */
export const C_STATE = 0; // a ChunkState
export const C_BASE = 2; // float64 at words 2-3
export const C_POPULATED = 4;
export const C_BITS = 5; // the populated bitmap, then the allocation map (percpu-bitmap.ts)

/** The geometry every thread derives from the configuration. */
export interface PcpuGeometry {
  pageSize: number;
  nrCpus: number;
  /** Bytes of one CPU's copy of a chunk. */
  unitSize: number;
  unitPages: number;
  /** Bits of a chunk's maps: unitSize / PCPU_MIN_ALLOC_SIZE. */
  mapBits: number;
  maxChunks: number;
}

export function pcpuGeometry(pageSize: number, nrCpus: number): PcpuGeometry {
  const unitPages = Math.max(32, (128 * 1024) / pageSize);
  const unitSize = unitPages * pageSize;
  const mapBits = unitSize / PCPU_MIN_ALLOC_SIZE;
  const recordBytes = recordWords(unitPages, mapBits) * 4;
  return {
    pageSize,
    nrCpus,
    unitSize,
    unitPages,
    mapBits,
    maxChunks: Math.min(4096, Math.floor(2 ** 26 / recordBytes)),
  };
}

/** Int32 words of a chunk record (whole cache lines). */
export function recordWords(unitPages: number, mapBits: number): number {
  const words = C_BITS + Math.ceil(unitPages / 32) + mapWords(mapBits);
  return Math.ceil(words / 16) * 16; // whole cache lines, so base stays 8-byte aligned
}

/** A fresh buffer (no chunk slots yet). */
export function createPcpuBuffer(pageSize: number, nrCpus: number, shared: boolean): AnyBuffer {
  const g = pcpuGeometry(pageSize, nrCpus);
  const max = HEADER_WORDS * 4 + g.maxChunks * recordWords(g.unitPages, g.mapBits) * 4;
  return makeGrowableBuffer(HEADER_WORDS * 4, max, shared);
}
