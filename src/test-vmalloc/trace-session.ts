/**
 * A recorded run's main-thread side: the shared words, the file, the recorders made here.
 *
 * Holds: openTraceSession() (the header from the run's parameters and allocator, the file
 * opened, the shared order counter and lock), openSpaceTraceSession() (the same for a bare
 * VmapSpace: bench kva, bench space) and TraceSession (recorders for workers that run
 * in this thread, the chunks of worker threads taken in, and close(), which checks that every
 * recorded call reached the file).
 * Callers: run.ts (record= on `vmalloc test` and load-vmallocinfo), src/sim/ via the CLI
 * (simulate=1), tests.
 */

import type { Vmalloc } from '../api/vmalloc.js';
import type { VmapSpace } from '../kva/vmap-space.js';
import { KERNEL_BASE } from '../shared/layout.js';
import type { TestParams } from './params.js';
import {
  type SpaceLayout,
  TRACE_SCHEMA_VERSION,
  type TraceHeader,
  TraceWriter,
} from './trace-file.js';
import { type TraceChunk, TraceRecorder, createTraceShared, tracedCalls } from './trace-record.js';

export interface TraceSessionOptions {
  simulated?: boolean;
  /** The layout loaded before the run (the replay loads it too). */
  vmallocinfo?: string;
}

export class TraceSession {
  readonly shared = createTraceShared();
  readonly writer: TraceWriter;

  constructor(path: string, header: TraceHeader) {
    this.writer = new TraceWriter(path, header);
  }

  /** A recorder for a worker that runs in this thread (its chunks go straight to the file). */
  recorder(worker: number): TraceRecorder {
    return new TraceRecorder(this.shared, worker, (c) => this.writer.add(c));
  }

  /** A chunk a worker thread posted. */
  add(chunk: TraceChunk): void {
    this.writer.add(chunk);
  }

  /**
   * Closes the file: the number of calls written.
   * @throws Error when a recorded call never arrived (a worker failed with its chunk).
   */
  close(): number {
    return this.writer.close(tracedCalls(this.shared));
  }
}

/** The header of a run of `params` on `vm` (see TraceHeader). */
export function traceHeader(
  params: TestParams,
  vm: Vmalloc,
  o: TraceSessionOptions = {},
): TraceHeader {
  const rest: Partial<TestParams> = { ...params };
  delete rest.record;
  return {
    type: 'vmalloc-trace',
    schemaVersion: TRACE_SCHEMA_VERSION,
    design: vm.config.design,
    nr_cpus: vm.config.nrCpus,
    nr_threads: params.nr_threads,
    page_size: vm.pageSize,
    physical_memory: vm.config.physicalMemory,
    vmalloc_start: vm.vmallocStart,
    vmalloc_end: vm.vmallocEnd,
    kernel_base: `0x${KERNEL_BASE.toString(16)}`,
    vmap_block_hash: vm.config.vmapBlockHash,
    simulated: o.simulated === true,
    order: 'serialized',
    params: rest as Record<string, unknown>,
    ...(o.vmallocinfo === undefined ? {} : { vmallocinfo: o.vmallocinfo }),
  };
}

/**
 * Starts recording a run on the bare range space `sp` (made as `layout` says) into `path`
 * (`vmalloc replay` remakes the space and replays its calls). `params` says what the run was
 * (bench kva's pattern and loop count); `threads` how many recorders call it (bench kva: one,
 * cpu 0; bench space: its workers, attached as cpus 1 to N, each with a recorder whose chunks
 * it posts here: add()), and `nrCpus` one more than the highest of their cpus.
 */
export function openSpaceTraceSession(
  path: string,
  sp: VmapSpace,
  layout: SpaceLayout,
  params: Record<string, unknown>,
  { threads, nrCpus }: { threads: number; nrCpus: number } = { threads: 1, nrCpus: 1 },
): TraceSession {
  return new TraceSession(path, {
    type: 'vmalloc-trace',
    schemaVersion: TRACE_SCHEMA_VERSION,
    design: 'vmap-space',
    nr_cpus: nrCpus,
    nr_threads: threads,
    page_size: sp.pageSize,
    physical_memory: 0,
    vmalloc_start: sp.start,
    vmalloc_end: sp.end,
    kernel_base: `0x${KERNEL_BASE.toString(16)}`,
    vmap_block_hash: 'percpu',
    simulated: false,
    order: 'serialized',
    params,
    space: { start: sp.start, end: sp.end, layout },
  });
}

/** Starts recording a run of `params` on `vm` into params.record. */
export function openTraceSession(
  params: TestParams,
  vm: Vmalloc,
  o: TraceSessionOptions = {},
): TraceSession {
  return new TraceSession(params.record, traceHeader(params, vm, o));
}
