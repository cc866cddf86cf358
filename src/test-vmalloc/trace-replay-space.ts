/**
 * Replaying a space trace (bench kva, bench space: a bare VmapSpace's alloc and free calls)
 * onto a fresh VmapSpace of any layout, and what came out differently.
 *
 * Holds: replaySpaceTrace() (the trace's window and page size, the layout asked for, every
 * call in the recorded order, each on the instance attached with its cpu; compared; the
 * report is trace-replay.ts's ReplayReport, so formatReplay() and `vmalloc replay --json`
 * print it the same way).
 * Invariant: as in trace-replay.ts, a freed address is the one the replay got for the same
 * allocation; frees of an allocation that failed here are skipped (counted). A trace replayed
 * on its own layout gives its addresses back: its calls ran one at a time in this order
 * (trace-record.ts), and nothing in a space depends on time, only on the calls and their cpus.
 * Callers: the CLI (`vmalloc replay`), tests.
 *
 * Layouts: plain (no lock), single-lock (`concurrent: true`: every call takes the space's
 * lock), pooled (`concurrent` and `pools`: freed ranges wait in this worker's lazy list and
 * pools, so later allocations of a pooled size may come back elsewhere than the trace's).
 * Kernel: none (alloc_vmap_area() / free_vmap_area() as bench kva drives them).
 */

import { VmapSpace } from '../kva/vmap-space.js';
import type { SpaceLayout, Trace } from './trace-file.js';
import {
  type ReplayDivergence,
  type ReplayKindStats,
  newKindStats,
  type ReplayReport,
  ReplayError,
} from './trace-replay.js';
import { kernelHex } from '../shared/layout.js';

export interface SpaceReplayOptions {
  /** @defaultValue the trace's */
  layout?: SpaceLayout;
  /** Run check() on the space at the end. @defaultValue true */
  check?: boolean;
}

const GONE = -1;
/** The highest cpu VmapSpace.attach() takes. */
const MAX_ATTACH_CPU = 0xffff;

const show = (v: number | null | undefined): string =>
  v === null || v === undefined ? 'null' : v >= 0 && v < 2 ** 48 ? kernelHex(v) : String(v);

function makeSpace(start: number, end: number, pageSize: number, layout: SpaceLayout): VmapSpace {
  const base = { start, end, pageSize };
  if (layout === 'single-lock') return new VmapSpace({ ...base, concurrent: true });
  if (layout === 'pooled') return new VmapSpace({ ...base, concurrent: true, pools: true });
  return new VmapSpace(base);
}

/**
 * The space each cpu of the trace calls: on a concurrent layout, the instance attached with
 * that cpu (a pooled space's cpu picks its cache, as the recording worker's did; cpu 0 is the
 * instance that made the space); a plain space has no per-cpu state, so every cpu calls it.
 * @throws ReplayError for a cpu attach() refuses (above 65535).
 */
function spaceOfCpu(
  sp: VmapSpace,
  layout: SpaceLayout,
  calls: Trace['calls'],
): (cpu: number) => VmapSpace {
  const views = new Map<number, VmapSpace>([[0, sp]]);
  if (layout !== 'plain')
    for (const c of calls) {
      if (views.has(c.cpu)) continue;
      if (c.cpu > MAX_ATTACH_CPU)
        throw new ReplayError(
          `call ${c.i}: cpu ${c.cpu}: a space is attached as cpu 0 to ${MAX_ATTACH_CPU}`,
        );
      views.set(c.cpu, VmapSpace.attach(sp.handle, { cpu: c.cpu }));
    }
  return (cpu: number): VmapSpace => views.get(cpu) ?? sp;
}

/** Replays the space trace `trace` (its header has `space`; see the module header). */
export function replaySpaceTrace(trace: Trace, o: SpaceReplayOptions = {}): ReplayReport {
  const h = trace.header;
  const s = h.space!;
  const layout = o.layout ?? s.layout;
  const sp = makeSpace(s.start, s.end, h.page_size, layout);
  const spaceOf = spaceOfCpu(sp, layout, trace.calls);
  const cpus = new Set(trace.calls.map((c) => c.cpu)).size;
  const alloc: ReplayKindStats = newKindStats('space_alloc');
  const free: ReplayKindStats = newKindStats('space_free');
  const addrs = new Map<number, number>(); // trace address -> replay address (or GONE)
  let first: ReplayDivergence | null = null;
  let divergent = 0;
  let totalNs = 0;
  let traceNs = 0;
  for (const call of trace.calls) {
    const k = call.op === 'space_alloc' ? alloc : free;
    k.calls++;
    k.traceNs += call.ns;
    traceNs += call.ns;
    const diverge = (expected: string, got: string): void => {
      divergent++;
      if (first === null) first = { i: call.i, cpu: call.cpu, op: call.op, expected, got };
    };
    let target = 0;
    if (call.op === 'space_free') {
      const t = call.addr ?? 0;
      const mine = addrs.get(t);
      if (mine === GONE) {
        k.skipped++;
        addrs.delete(t);
        diverge(`space_free(${show(t)})`, 'skipped: its allocation failed here');
        continue;
      }
      target = mine ?? t;
    }
    const options = {
      align: call.align ?? 1,
      vstart: call.vstart ?? s.start,
      vend: call.vend ?? s.end,
    };
    let ret: number | null = null;
    let err = '';
    const t0 = performance.now();
    try {
      if (call.op === 'space_alloc') ret = spaceOf(call.cpu).alloc(call.size ?? 0, options);
      else spaceOf(call.cpu).free(target);
    } catch (e) {
      err = (e as { code?: string }).code ?? (e as Error).name;
    }
    const ns = (performance.now() - t0) * 1e6;
    k.ns += ns;
    totalNs += ns;
    const traceErr = call.err ?? '';
    const isAlloc = call.op === 'space_alloc';
    const traceFailed = traceErr !== '' || (isAlloc && call.ret === null);
    const failed = err !== '' || (isAlloc && ret === null);
    if (traceFailed && !failed) {
      k.succeededWhereTraceFailed++;
      diverge(traceErr !== '' ? traceErr : 'null', ret === null ? 'ok' : show(ret));
    } else if (failed && !traceFailed) {
      k.failedWhereTraceSucceeded++;
      diverge(isAlloc ? show(call.ret) : 'ok', err !== '' ? err : 'null');
    } else if (traceErr !== err) {
      diverge(traceErr, err);
    } else if (isAlloc && ret !== null && ret !== call.ret) {
      k.differentAddress++;
      diverge(show(call.ret), show(ret));
    }
    if (isAlloc && typeof call.ret === 'number') addrs.set(call.ret, failed ? GONE : ret!);
    if (!isAlloc && !traceFailed) addrs.delete(call.addr ?? 0);
  }
  const checked = o.check !== false;
  if (checked) sp.check();
  const n = trace.calls.length;
  return {
    design: `vmap-space (${layout})`,
    traceDesign: `vmap-space (${s.layout})`,
    nrCpus: Math.max(1, cpus),
    calls: n,
    divergent,
    first,
    kinds: [alloc, free].filter((k) => k.calls > 0),
    nsPerCall: n === 0 ? 0 : totalNs / n,
    traceNsPerCall: n === 0 ? 0 : traceNs / n,
    checked,
  };
}
