/**
 * Replaying a recorded trace against any design: the same calls, in the recorded global
 * order, each on the view of the cpu that made it, and what came out differently.
 *
 * Holds: replayTrace() (makes a fresh allocator of the chosen design, under the trace's
 * policy knobs, with the trace's layout loaded first when it has one, one attached view per cpu in this thread as src/sim/ does,
 * runs every call, and compares) and formatReplay() (the report as text).
 * Invariant: an address the trace frees is the one the replay got for the same allocation
 * (a map from the trace's addresses to the replay's, entered at each allocation and removed
 * at its free), so a replay on another design frees the right areas; an allocation that
 * failed in the replay has nothing to free, and its frees are skipped (counted).
 * Callers: the CLI (`vmalloc replay`), tests.
 *
 * Only the view making a call is online for RCU (the others are in an extended quiescent
 * state), so a kvfree_rcu that waits for a grace period never waits for views that cannot
 * run: one thread plays every cpu. Kernel: none (a tool in the spirit of the simulator).
 */

import { attachVmalloc, createVmalloc, type Vmalloc } from '../api/vmalloc.js';
import type { VmallocDesign } from '../mm/config.js';
import { kernelHex } from '../shared/layout.js';
import { defaultParams, policyOptions, type PolicyOptions, type TestParams } from './params.js';
import type { Trace, TraceCall, TraceHeader } from './trace-file.js';
import { ALLOCS, FREES, type TraceOpName } from './trace-ops.js';

export interface ReplayOptions {
  /** @defaultValue the trace's */
  design?: VmallocDesign;
  /** @defaultValue the trace's; at least the highest cpu in it plus one */
  nrCpus?: number;
  /** Run check() on the allocator at the end. @defaultValue true */
  check?: boolean;
}

export interface ReplayKindStats {
  op: TraceOpName;
  calls: number;
  /** Returned an address other than the trace's (allocations). */
  differentAddress: number;
  /** Failed (null or a throw) where the trace's call succeeded. */
  failedWhereTraceSucceeded: number;
  /** Succeeded where the trace's call failed. */
  succeededWhereTraceFailed: number;
  /** Frees of an allocation that failed in the replay: not made. */
  skipped: number;
  /** Time in the calls, replay and trace (ns). */
  ns: number;
  traceNs: number;
}

/** A kind's figures before its first call (every count 0). */
export function newKindStats(op: TraceOpName): ReplayKindStats {
  return {
    op,
    calls: 0,
    differentAddress: 0,
    failedWhereTraceSucceeded: 0,
    succeededWhereTraceFailed: 0,
    skipped: 0,
    ns: 0,
    traceNs: 0,
  };
}

export interface ReplayDivergence {
  i: number;
  cpu: number;
  op: TraceOpName;
  expected: string;
  got: string;
}

export interface ReplayReport {
  design: string;
  traceDesign: string;
  nrCpus: number;
  calls: number;
  /** Calls whose outcome differed (any kind of divergence, skips included). */
  divergent: number;
  first: ReplayDivergence | null;
  kinds: ReplayKindStats[];
  /** ns per call in the replay and in the trace. */
  nsPerCall: number;
  traceNsPerCall: number;
  /** check() ran at the end and passed. */
  checked: boolean;
}

/** A trace this replay cannot run as asked (too few cpus). */
export class ReplayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayError';
  }
}

/** An allocation that failed in the replay: its frees are skipped. */
const GONE = -1;

const show = (v: number | null | undefined): string =>
  v === null || v === undefined ? 'null' : v >= 0 && v < 2 ** 48 ? kernelHex(v) : String(v);

/** Replays `trace` (see the module header). */
export function replayTrace(trace: Trace, o: ReplayOptions = {}): ReplayReport {
  const h = trace.header;
  if (h.space !== undefined)
    throw new ReplayError(
      'a space trace (bench kva, bench space) replays on a VmapSpace, not a design: replaySpaceTrace()',
    );
  let maxCpu = 0;
  for (const c of trace.calls) if (c.cpu > maxCpu) maxCpu = c.cpu;
  const nrCpus = o.nrCpus ?? Math.max(h.nr_cpus, maxCpu + 1);
  if (nrCpus <= maxCpu)
    throw new ReplayError(
      `nr_cpus=${nrCpus} is too few for this trace: it has calls on cpu ${maxCpu} (give nr_cpus=${maxCpu + 1} or more)`,
    );
  const design = o.design ?? (h.design as VmallocDesign);
  const vm = createVmalloc({
    design,
    nrCpus,
    pageSize: h.page_size,
    physicalMemory: h.physical_memory,
    // The run's policy knobs (bench scaling --policy, nr_vmap_nodes= ...): the same machine.
    ...tracePolicy(h),
    vmapBlockHash: h.vmap_block_hash ?? 'percpu',
    logger: null,
  });
  if (h.vmallocinfo !== undefined) vm.loadVmallocinfo(h.vmallocinfo);
  const views: Vmalloc[] = [vm];
  for (let c = 1; c <= maxCpu; c++) views.push(attachVmalloc(vm.handle, { cpu: c, logger: null }));
  for (const v of views) v.rcuOffline();
  const kinds = new Map<TraceOpName, ReplayKindStats>();
  const addrs = new Map<number, number>(); // trace address -> replay address (or GONE)
  const percpu = new Map<number, number>();
  const pages = new Map<number, Int32Array>(); // alloc_pages call -> its frames here
  let first: ReplayDivergence | null = null;
  let divergent = 0;
  let totalNs = 0;
  let traceNs = 0;
  for (const call of trace.calls) {
    let k = kinds.get(call.op);
    if (k === undefined) {
      k = newKindStats(call.op);
      kinds.set(call.op, k);
    }
    k.calls++;
    k.traceNs += call.ns;
    traceNs += call.ns;
    const v = views[call.cpu]!;
    const diverge = (expected: string, got: string): void => {
      divergent++;
      if (first === null) first = { i: call.i, cpu: call.cpu, op: call.op, expected, got };
    };
    const map = call.op === 'alloc_percpu' || call.op === 'free_percpu' ? percpu : addrs;
    // The argument to free: the replay's address for the trace's allocation.
    let target = 0;
    if (FREES.has(call.op)) {
      const t = (call.op === 'free_percpu' ? call.ptr : call.addr) ?? 0;
      const mine = map.get(t);
      if (mine === GONE) {
        k.skipped++;
        map.delete(t);
        diverge(`${call.op}(${show(t)})`, 'skipped: its allocation failed here');
        continue;
      }
      target = mine ?? t;
    }
    const options = ALLOCS.has(call.op) ? allocOptions(call) : undefined;
    v.rcuOnline();
    let ret: number | null = null;
    let err = '';
    const t0 = performance.now();
    try {
      ret = run(v, call, target, options, pages);
    } catch (e) {
      err = (e as { code?: string }).code ?? (e as Error).name;
    }
    const ns = (performance.now() - t0) * 1e6;
    v.rcuOffline();
    k.ns += ns;
    totalNs += ns;
    const traceErr = call.err ?? '';
    const traceFailed = traceErr !== '' || (ALLOCS.has(call.op) && call.ret === null);
    const failed = err !== '' || (ALLOCS.has(call.op) && ret === null);
    if (traceFailed && !failed) {
      k.succeededWhereTraceFailed++;
      diverge(traceErr !== '' ? traceErr : 'null', ret === null ? 'ok' : show(ret));
    } else if (failed && !traceFailed) {
      k.failedWhereTraceSucceeded++;
      diverge(ALLOCS.has(call.op) ? show(call.ret) : 'ok', err !== '' ? err : 'null');
    } else if (traceErr !== err) {
      diverge(traceErr, err);
    } else if (ALLOCS.has(call.op) && ret !== null && ret !== call.ret) {
      k.differentAddress++;
      diverge(show(call.ret), show(ret));
    } else if (call.op === 'alloc_pages' && ret !== call.ret) {
      k.failedWhereTraceSucceeded++;
      diverge(`${String(call.ret)} pages`, `${String(ret)} pages`);
    }
    if (ALLOCS.has(call.op) && typeof call.ret === 'number')
      map.set(call.ret, failed ? GONE : ret!);
    if (FREES.has(call.op) && !traceFailed)
      map.delete((call.op === 'free_percpu' ? call.ptr : call.addr) ?? 0);
  }
  for (const v of views) v.rcuOnline();
  for (let c = 1; c < views.length; c++) views[c]!.detach();
  vm.rcuBarrier(); // kvfree_rcu's last batches: nothing is left pending
  const checked = o.check !== false;
  if (checked) vm.check();
  const n = trace.calls.length;
  return {
    design,
    traceDesign: h.design,
    nrCpus,
    calls: n,
    divergent,
    first,
    kinds: [...kinds.values()],
    nsPerCall: n === 0 ? 0 : totalNs / n,
    traceNsPerCall: n === 0 ? 0 : traceNs / n,
    checked,
  };
}

/** The policy options of the run a trace recorded (its header's test_vmalloc parameters). */
function tracePolicy(h: TraceHeader): PolicyOptions {
  const p: TestParams = { ...defaultParams(1, h.nr_cpus), ...(h.params as Partial<TestParams>) };
  return policyOptions(p);
}

/** The options of an allocation call, made before its timing starts. */
function allocOptions(c: TraceCall): {
  align?: number;
  caller?: string;
  zero?: boolean;
  flags?: number;
} {
  const o: { align?: number; caller?: string; zero?: boolean; flags?: number } = {};
  if (c.align !== undefined) o.align = c.align;
  if (c.caller !== undefined) o.caller = c.caller;
  if (c.zero === 1 && c.op !== 'vzalloc') o.zero = true;
  if (c.flags !== undefined && c.op === 'vmap') o.flags = c.flags;
  return o;
}

/** One call on view `v`: its address or count, or null. */
function run(
  v: Vmalloc,
  c: TraceCall,
  target: number,
  options: { align?: number; caller?: string; zero?: boolean; flags?: number } | undefined,
  pages: Map<number, Int32Array>,
): number | null {
  const framesFor = (count: number): Int32Array => {
    const known = c.pages === null || c.pages === undefined ? undefined : pages.get(c.pages);
    // Frames from outside the trace: some of this allocator's own.
    return known ?? v.allocPages(count);
  };
  switch (c.op) {
    case 'vmalloc':
      return v.vmalloc(c.size ?? 0, options);
    case 'vzalloc':
      return v.vzalloc(c.size ?? 0, options);
    case 'vmalloc_huge':
      return v.vmallocHuge(c.size ?? 0, options);
    case 'vfree':
      v.vfree(target);
      return null;
    case 'vunmap':
      v.vunmap(target);
      return null;
    case 'kvfree_rcu':
      v.kvfreeRcu(target);
      return null;
    case 'purge':
      v.purge();
      return null;
    case 'rcu_barrier':
      v.rcuBarrier();
      return null;
    case 'vm_unmap_aliases':
      v.vmUnmapAliases();
      return null;
    case 'alloc_pages': {
      const got = v.allocPages(c.n ?? 0);
      pages.set(c.i, got);
      return got.length;
    }
    case 'free_pages': {
      const known = c.pages === null || c.pages === undefined ? undefined : pages.get(c.pages);
      if (known !== undefined) v.freePages(known);
      return null;
    }
    case 'vm_map_ram':
      return v.vmMapRam(framesFor(c.count ?? 0), c.count ?? 0);
    case 'vm_unmap_ram':
      v.vmUnmapRam(target, c.count ?? 0);
      return null;
    case 'vmap':
      return v.vmap(framesFor(c.count ?? 0), options);
    case 'alloc_percpu':
      return v.allocPercpu(c.size ?? 0, c.align ?? 1);
    case 'free_percpu':
      v.freePercpu(target);
      return null;
    case 'space_alloc':
    case 'space_free':
      // readTrace() keeps them to space traces, which replaySpaceTrace() replays.
      throw new ReplayError(`call ${c.i}: ${c.op} belongs to a space trace`);
  }
}

/** The report as `vmalloc replay` prints it. */
export function formatReplay(r: ReplayReport): string {
  const lines = [
    `replay: ${r.calls} calls of a ${r.traceDesign} trace on ${r.design.startsWith('vmap-space') ? r.design : `design=${r.design} nr_cpus=${r.nrCpus}`}`,
    `${'op'.padEnd(18)} ${'calls'.padStart(9)} ${'other addr'.padStart(10)} ${'failed here'.padStart(11)} ${'ok here'.padStart(9)} ${'skipped'.padStart(8)} ${'ns/call'.padStart(9)} ${'trace ns'.padStart(9)}`,
  ];
  for (const k of r.kinds)
    lines.push(
      `${k.op.padEnd(18)} ${String(k.calls).padStart(9)} ${String(k.differentAddress).padStart(10)} ${String(k.failedWhereTraceSucceeded).padStart(11)} ${String(k.succeededWhereTraceFailed).padStart(9)} ${String(k.skipped).padStart(8)} ${(k.ns / k.calls).toFixed(0).padStart(9)} ${(k.traceNs / k.calls).toFixed(0).padStart(9)}`,
    );
  lines.push(
    `time: ${r.nsPerCall.toFixed(0)} ns/call here, ${r.traceNsPerCall.toFixed(0)} ns/call in the trace`,
  );
  if (r.first === null) lines.push(`divergence: none (${r.calls} calls, the same outcomes)`);
  else
    lines.push(
      `divergence: ${r.divergent} calls; first at call ${r.first.i} (cpu ${r.first.cpu} ${r.first.op}): expected ${r.first.expected}, got ${r.first.got}`,
    );
  if (r.checked) lines.push('check: every invariant holds at the end');
  return lines.join('\n') + '\n';
}
