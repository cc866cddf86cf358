/**
 * The compact form of a snapshot inside the report: the ranges of each class as columns of
 * variable-length integers, deflated and in base64, so that a million areas fit in a few MiB
 * of HTML and decode in the page in a fraction of a second.
 *
 * Holds: encodeSnapshot() (a VmallocSnapshot -> MapData, the JSON the page reads), the
 * classes and busy kinds in the order the page knows them, and decodeColumns() (the inverse
 * of the byte layout, for tests; the page has its own copy in page.js).
 * Invariant: every range is clipped to the window and given in pages from the window's start;
 * within a class the ranges are sorted and disjoint, so each is stored as (gap from the end of
 * the previous one, size), both small numbers. Columns of a class, each `count` varints:
 *   gap, size, node + 1                           every class
 *   kind index, caller index                      busy only (KINDS, MapData.callers)
 *   cpu, used pages, dirty pages                  vmap blocks only
 * The bytes of all columns are concatenated in that order and deflated raw (the page inflates
 * with DecompressionStream('deflate-raw')).
 * Callers: src/report/collect.ts, src/report/synthetic.ts, tests.
 */

import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { VmallocSnapshot } from '../mm/snapshot.js';

/** Range classes, in the page's drawing order (a later class is drawn over an earlier one). */
export const CLASSES = ['free', 'other', 'pooled', 'lazy', 'busy', 'vmapBlocks'] as const;
export type RangeClass = (typeof CLASSES)[number];

/** Busy kinds by index (the kind column). */
export const KINDS = [
  'vmalloc',
  'vmap',
  'ioremap',
  'sparse',
  'reserved',
  'pcpu',
  'vm_map_ram',
  'vmap_block',
  'uninitialized',
] as const;

/** Columns per class after gap, size and node. */
const EXTRA: Record<RangeClass, number> = {
  free: 0,
  other: 0,
  pooled: 0,
  lazy: 0,
  busy: 2,
  vmapBlocks: 3,
};

export interface EncodedClass {
  count: number;
  /** Columns per range (3 + the class's own). */
  columns: number;
  /** deflate-raw of the varint columns, base64. */
  data: string;
}

/** One snapshot as the page reads it. */
export interface MapData {
  design: string;
  pageSize: number;
  nrCpus: number;
  nrNodes: number;
  /** The window, in bytes from 0 (library addresses; the page adds KERNEL_BASE to print). */
  window: { start: number; end: number };
  lazyPages: number;
  /** Ranges before clipping to the window, per class (free blocks outside it are not drawn). */
  totals: Record<RangeClass, number>;
  callers: string[];
  kinds: readonly string[];
  classes: Record<RangeClass, EncodedClass>;
}

/** A growable byte buffer of LEB128 varints (numbers up to 2^53). */
class Varints {
  bytes = new Uint8Array(1 << 16);
  length = 0;

  push(v: number): void {
    if (this.length + 8 > this.bytes.length) {
      const b = new Uint8Array(this.bytes.length * 2);
      b.set(this.bytes);
      this.bytes = b;
    }
    while (v >= 128) {
      this.bytes[this.length++] = (v % 128) + 128;
      v = Math.floor(v / 128);
    }
    this.bytes[this.length++] = v;
  }

  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

export function encodeSnapshot(snap: VmallocSnapshot): MapData {
  const page = snap.pageSize;
  const w0 = snap.window.start;
  const w1 = snap.window.end;
  const callers: string[] = [];
  const callerIndex = new Map<string, number>();
  const callerOf = (c: string): number => {
    let i = callerIndex.get(c);
    if (i === undefined) {
      i = callers.length;
      callers.push(c);
      callerIndex.set(c, i);
    }
    return i;
  };
  const lists: Record<RangeClass, { start: number; size: number; node: number }[]> = {
    free: snap.free,
    other: snap.other,
    pooled: snap.pooled,
    lazy: snap.lazy,
    busy: snap.busy,
    vmapBlocks: snap.vmapBlocks.map((b) => ({ ...b, node: -1 })),
  };
  /** Column c (of EXTRA[cls]) of range k of the class. */
  const extraOf = (cls: RangeClass, k: number, c: number): number => {
    if (cls === 'busy') {
      const a = snap.busy[k]!;
      return c === 0 ? Math.max(0, KINDS.indexOf(a.kind)) : callerOf(a.caller);
    }
    const b = snap.vmapBlocks[k]!;
    return c === 0 ? b.cpu : c === 1 ? b.used : b.dirty;
  };
  const classes = {} as Record<RangeClass, EncodedClass>;
  const totals = {} as Record<RangeClass, number>;
  for (const cls of CLASSES) {
    const list = lists[cls];
    totals[cls] = list.length;
    // The ranges that meet the window, clipped to it, in pages (typed columns: no object per
    // range, as a million of them are common).
    const index = new Int32Array(list.length);
    const starts = new Float64Array(list.length);
    const ends = new Float64Array(list.length);
    let n = 0;
    list.forEach((r, k) => {
      const start = Math.max(r.start, w0);
      const end = Math.min(r.start + r.size, w1);
      if (end <= start) return;
      index[n] = k;
      starts[n] = Math.floor((start - w0) / page);
      ends[n] = Math.ceil((end - w0) / page);
      n++;
    });
    const out = new Varints();
    let prevEnd = 0;
    for (let j = 0; j < n; j++) {
      // Sorted and disjoint: a gap is never negative (clamped in case two ranges touch a page).
      out.push(Math.max(0, starts[j]! - prevEnd));
      prevEnd = Math.max(prevEnd, ends[j]!);
    }
    for (let j = 0; j < n; j++) out.push(ends[j]! - starts[j]!);
    for (let j = 0; j < n; j++) out.push(list[index[j]!]!.node + 1);
    for (let c = 0; c < EXTRA[cls]; c++)
      for (let j = 0; j < n; j++) out.push(extraOf(cls, index[j]!, c));
    classes[cls] = {
      count: n,
      columns: 3 + EXTRA[cls],
      // Level 6: on the busy columns of a million areas (5.0 MB raw) level 9 took 14 times as
      // long (5.2 s against 0.38 s) for 3% less (1.29 MB against 1.33 MB).
      data: deflateRawSync(out.view(), { level: 6 }).toString('base64'),
    };
  }
  return {
    design: snap.design,
    pageSize: page,
    nrCpus: snap.nrCpus,
    nrNodes: snap.nrNodes,
    window: { start: w0, end: w1 },
    lazyPages: snap.lazyPages,
    totals,
    callers,
    kinds: KINDS,
    classes,
  };
}

/**
 * The columns of one class, decoded: columns[c][k] is column c of range k; gaps are turned
 * back into starts (pages from the window's start). For tests.
 */
export function decodeColumns(enc: EncodedClass): number[][] {
  const bytes = inflateRawSync(Buffer.from(enc.data, 'base64'));
  const cols: number[][] = [];
  let at = 0;
  for (let c = 0; c < enc.columns; c++) {
    const col: number[] = [];
    for (let k = 0; k < enc.count; k++) {
      let v = 0;
      let scale = 1;
      for (;;) {
        const b = bytes[at++]!;
        v += (b & 127) * scale;
        if (b < 128) break;
        scale *= 128;
      }
      col.push(v);
    }
    cols.push(col);
  }
  // gaps -> starts
  let end = 0;
  const starts = cols[0]!;
  for (let k = 0; k < enc.count; k++) {
    starts[k] = end + starts[k]!;
    end = Math.max(end, starts[k]! + cols[1]![k]!);
  }
  return cols;
}
