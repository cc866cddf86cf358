/**
 * The trace file: JSON Lines, a header line and then one line per recorded call, in the
 * run's global order.
 *
 * Holds: the header and operation types, TraceWriter (the main thread's side of a recorded
 * run: takes the workers' chunks as they arrive, puts the calls back in global order and
 * appends them to the file), and readTrace() (the file back, checked line by line).
 * Invariant: line 1 is the header; line k + 2 is the call of order k (orders are dense from
 * 0, so a call is written as soon as every call before it has arrived, and at most a few
 * chunks per worker wait in memory).
 * Callers: run.ts and the CLI (recording), trace-replay.ts and the CLI (`vmalloc replay`).
 *
 *   {"type":"vmalloc-trace","schemaVersion":1,"design":"nodes","nr_cpus":2,"page_size":4096,...}
 *   {"i":0,"cpu":1,"seq":0,"op":"vmalloc","size":4096,"caller":"fix_size_alloc_test [test_vmalloc]","ret":221360928884736,"ns":2710}
 *   {"i":1,"cpu":1,"seq":1,"op":"vfree","addr":221360928884736,"ns":1530}
 *
 * A space trace (bench kva, bench space: a bare VmapSpace, the header's "space") holds
 * space_alloc (size, align, vstart, vend) and space_free (addr) calls only; its cpu is the
 * one the calling instance was attached with (bench space's workers: 1 to N).
 *
 * Addresses are this library's numbers (the kernel address is KERNEL_BASE + addr, as the
 * header's kernel_base says); "ret" is null for a call that returned null, "err" the code of
 * one that threw; "ns" is the call's time as recorded.
 */

import { closeSync, openSync, writeSync } from 'node:fs';
import { ALLOCS, OP_ARGS, OP_NAMES, SPACE_OPS, type TraceOpName, TraceOp } from './trace-ops.js';
import {
  NULL_RET,
  R_A0,
  R_CPU,
  R_ERR,
  R_KIND,
  R_NS,
  R_ORDER,
  R_RET,
  R_SEQ,
  STRIDE,
  type TraceChunk,
} from './trace-record.js';

export const TRACE_SCHEMA_VERSION = 1;

export interface TraceHeader {
  type: 'vmalloc-trace';
  schemaVersion: number;
  design: string;
  nr_cpus: number;
  nr_threads: number;
  page_size: number;
  physical_memory: number;
  /** The window every vmalloc call allocates in (library addresses). */
  vmalloc_start: number;
  vmalloc_end: number;
  /** "0xffff000000000000": the kernel address of library address 0. */
  kernel_base: string;
  vmap_block_hash: 'global' | 'percpu';
  /** Recorded on the simulated machine (simulate=1). */
  simulated: boolean;
  /** How the global order was taken: every recorded call under one lock. */
  order: 'serialized';
  /** The run's test_vmalloc parameters. */
  params: Record<string, unknown>;
  /** The /proc/vmallocinfo text loaded before the run (load-vmallocinfo), if any. */
  vmallocinfo?: string;
  /**
   * A bare range space's trace (bench kva, bench space): its calls are space_alloc / space_free on one
   * VmapSpace managing [start, end) (also vmalloc_start / vmalloc_end), made as `layout`
   * says; design is 'vmap-space' and physical_memory 0 (no pages).
   */
  space?: { start: number; end: number; layout: SpaceLayout };
}

/** How a VmapSpace is made: plain, `concurrent: true`, or `concurrent` with `pools`. */
export type SpaceLayout = 'plain' | 'single-lock' | 'pooled';
export const SPACE_LAYOUTS: readonly SpaceLayout[] = ['plain', 'single-lock', 'pooled'];

/** One call, as in the file. Its arguments are named by OP_ARGS. */
export interface TraceCall {
  i: number;
  cpu: number;
  seq: number;
  op: TraceOpName;
  size?: number;
  align?: number;
  caller?: string;
  zero?: number;
  addr?: number;
  count?: number;
  n?: number;
  pages?: number | null;
  flags?: number;
  ptr?: number;
  vstart?: number;
  vend?: number;
  /** Address (or count for alloc_pages) returned; null when null was. */
  ret?: number | null;
  ns: number;
  err?: string;
}

export interface Trace {
  header: TraceHeader;
  calls: TraceCall[];
}

/** A file that is not a trace, or a bad line of one: the message names the line. */
export class TraceFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceFormatError';
  }
}

interface WorkerQueue {
  chunks: TraceChunk[];
  pos: number;
  strings: string[];
}

/** Writes a recorded run's calls in global order (see the module header). */
export class TraceWriter {
  private readonly fd: number;
  private readonly queues = new Map<number, WorkerQueue>();
  private next = 0;
  private out: string[] = [];
  private outBytes = 0;
  private closed = false;

  constructor(
    readonly path: string,
    header: TraceHeader,
  ) {
    this.fd = openSync(path, 'w');
    this.emit(JSON.stringify(header));
  }

  /** Calls written so far. */
  get written(): number {
    return this.next;
  }

  /** Takes a worker's chunk and writes every call whose turn has come. */
  add(chunk: TraceChunk): void {
    let q = this.queues.get(chunk.worker);
    if (q === undefined) {
      q = { chunks: [], pos: 0, strings: [''] };
      this.queues.set(chunk.worker, q);
    }
    for (let k = 0; k < chunk.strings.length; k++)
      q.strings[chunk.firstString + k] = chunk.strings[k]!;
    if (chunk.count > 0) q.chunks.push(chunk);
    this.drain();
  }

  private drain(): void {
    let progress = true;
    while (progress) {
      progress = false;
      for (const q of this.queues.values()) {
        for (;;) {
          const c = q.chunks[0];
          if (c === undefined || c.records[q.pos * STRIDE + R_ORDER] !== this.next) break;
          this.emit(callLine(c.records, q.pos * STRIDE, q.strings));
          this.next++;
          progress = true;
          if (++q.pos === c.count) {
            q.chunks.shift();
            q.pos = 0;
          }
        }
      }
    }
  }

  private emit(line: string): void {
    this.out.push(line);
    this.outBytes += line.length + 1;
    if (this.outBytes > 1 << 20) this.flushText();
  }

  private flushText(): void {
    if (this.out.length === 0) return;
    writeSync(this.fd, this.out.join('\n') + '\n');
    this.out = [];
    this.outBytes = 0;
  }

  /**
   * Writes what is left and closes the file: the number of calls written. `expected` (the
   * shared counter's value) says how many were recorded; a gap (a worker that died with its
   * chunk) is an error, after what could be written was.
   */
  close(expected?: number): number {
    if (this.closed) return this.next;
    this.closed = true;
    this.flushText();
    closeSync(this.fd);
    let waiting = 0;
    for (const q of this.queues.values())
      for (const c of q.chunks) waiting += c.count - (c === q.chunks[0] ? q.pos : 0);
    if (waiting > 0 || (expected !== undefined && expected !== this.next))
      throw new Error(
        `record=${this.path}: ${this.next} calls written, ${expected ?? this.next + waiting} recorded: call ${this.next} never arrived (a worker failed?)`,
      );
    return this.next;
  }
}

/** One record as a line of the file. */
function callLine(b: Float64Array, at: number, strings: readonly string[]): string {
  const op = OP_NAMES[b[at + R_KIND]!]!;
  const o: Record<string, unknown> = {
    i: b[at + R_ORDER],
    cpu: b[at + R_CPU],
    seq: b[at + R_SEQ],
    op,
  };
  const args = OP_ARGS[op];
  for (let k = 0; k < args.length; k++) {
    const name = args[k]!;
    const v = b[at + R_A0 + k]!;
    if (name === '') continue;
    if (name === 'caller') {
      if (v !== 0) o['caller'] = strings[v] ?? `?${v}`;
    } else if (name === 'pages') {
      o['pages'] = v < 0 ? null : v;
    } else if (!(
      (name === 'align' && v === 1) ||
      ((name === 'zero' || name === 'flags') && v === 0)
    )) {
      o[name] = v;
    }
  }
  const ret = b[at + R_RET]!;
  if (ALLOCS.has(op)) o['ret'] = ret === NULL_RET ? null : ret;
  else if (op === 'alloc_pages') o['ret'] = ret === NULL_RET ? null : ret;
  o['ns'] = Math.round(b[at + R_NS]!);
  const err = b[at + R_ERR]!;
  if (err !== 0) o['err'] = strings[err] ?? `?${err}`;
  return JSON.stringify(o);
}

const NUMBER_FIELDS = [
  'size',
  'align',
  'zero',
  'addr',
  'count',
  'n',
  'flags',
  'ptr',
  'vstart',
  'vend',
] as const;

/**
 * A trace file's text, checked: the header, then every call in order.
 * @throws TraceFormatError naming `name`, the line and what is wrong with it.
 */
export function readTrace(text: string, name = 'trace'): Trace {
  const lines = text.split('\n');
  function fail(line: number, what: string): never {
    throw new TraceFormatError(`${name}: line ${line}: ${what}`);
  }
  function parse(k: number): unknown {
    try {
      return JSON.parse(lines[k]!) as unknown;
    } catch (e) {
      return fail(k + 1, `not JSON (${(e as Error).message})`);
    }
  }
  const h = parse(0) as Partial<TraceHeader> | null;
  if (h === null || typeof h !== 'object' || h.type !== 'vmalloc-trace')
    fail(1, 'not a vmalloc trace: the first line must be its header, {"type":"vmalloc-trace",...}');
  const header = h as TraceHeader;
  if (header.schemaVersion !== TRACE_SCHEMA_VERSION)
    fail(
      1,
      `schemaVersion ${String(header.schemaVersion)}, this version reads ${TRACE_SCHEMA_VERSION}`,
    );
  const space = header.space;
  for (const f of ['nr_cpus', 'page_size', 'physical_memory'] as const)
    if (!(space !== undefined && f === 'physical_memory'))
      if (!Number.isSafeInteger(header[f]) || header[f] <= 0)
        fail(1, `the header's ${f} must be a positive integer, got ${String(header[f])}`);
  if (typeof header.design !== 'string') fail(1, 'the header has no design');
  if (space !== undefined) {
    if (space === null || typeof space !== 'object')
      fail(1, 'the header\'s space must be {"start":..,"end":..,"layout":..}');
    if (
      !Number.isSafeInteger(space.start) ||
      !Number.isSafeInteger(space.end) ||
      space.start < 0 ||
      space.end <= space.start
    )
      fail(1, `the header's space must have integer start < end, got ${JSON.stringify(space)}`);
    if (!SPACE_LAYOUTS.includes(space.layout))
      fail(
        1,
        `the header's space.layout is one of ${SPACE_LAYOUTS.join(', ')}, got ${JSON.stringify(space.layout)}`,
      );
  }
  const calls: TraceCall[] = [];
  for (let k = 1; k < lines.length; k++) {
    if (lines[k]!.trim() === '') continue;
    const c = parse(k) as TraceCall | null;
    const n = k + 1;
    if (c === null || typeof c !== 'object') fail(n, 'a call must be a JSON object');
    if (!Object.prototype.hasOwnProperty.call(TraceOp, c.op))
      fail(n, `unknown op ${JSON.stringify(c.op)} (the ops are ${OP_NAMES.slice(1).join(', ')})`);
    if (SPACE_OPS.has(c.op) !== (space !== undefined))
      fail(
        n,
        space === undefined
          ? `${c.op} is a space trace's call (its header has "space"), not a vmalloc trace's`
          : `a space trace holds space_alloc and space_free only, got ${c.op}`,
      );
    if (c.i !== calls.length)
      fail(n, `calls must be in order: expected "i":${calls.length}, got ${JSON.stringify(c.i)}`);
    if (!Number.isSafeInteger(c.cpu) || c.cpu < 0)
      fail(n, `cpu must be a non-negative integer, got ${JSON.stringify(c.cpu)}`);
    for (const f of NUMBER_FIELDS)
      if (c[f] !== undefined && typeof c[f] !== 'number')
        fail(n, `${f} must be a number, got ${JSON.stringify(c[f])}`);
    if (c.ret !== undefined && c.ret !== null && typeof c.ret !== 'number')
      fail(n, `ret must be a number or null, got ${JSON.stringify(c.ret)}`);
    if (typeof c.ns !== 'number') c.ns = 0;
    calls.push(c);
  }
  return { header, calls };
}
