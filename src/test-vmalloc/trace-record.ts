/**
 * Recording the allocator calls of a test_vmalloc run: what `record=trace.jsonl` captures.
 *
 * Holds: the record layout of a trace chunk (the operations are in trace-ops.ts),
 * createTraceShared() (the shared words every recorder of a run uses: the global order
 * counter and the trace lock),
 * and TraceRecorder, one per worker (cpu): wrap(vm) gives a view of `vm` whose calls that
 * change the allocator (vmalloc, vzalloc, vmalloc_huge, vfree, vunmap, vmap, kvfree_rcu,
 * purge, rcu_barrier, alloc_pages, free_pages, vm_map_ram, vm_unmap_ram, vm_unmap_aliases,
 * alloc_percpu, free_percpu) are recorded; the rest (reads, writes, lookups, statistics) pass
 * through untouched; wrapSpace(sp) does the same for a bare VmapSpace's alloc and free.
 * Invariant: recorded calls of all the workers of a run are serialized by the trace lock, and
 * each takes its global order (a dense count from 0) inside it, so the order is exactly the
 * order the calls changed the allocator in: replaying them in that order on the same design,
 * one view per cpu, makes the same addresses (trace-replay.ts). This is the simulator's
 * approximation too (src/sim/machine.ts: an operation runs atomically); a recorded run's
 * times are therefore not those of a free-running one.
 * Callers: run.ts (in-process worker), worker-entry.ts (worker threads), tests.
 *
 * Cost: when recording is off nothing here runs (the driver gets the plain Vmalloc). When on,
 * a call takes the lock, two clock reads, and 11 stores into the worker's Float64Array chunk;
 * a full chunk goes to `sink` (postMessage from a worker) and a new one is made: one
 * allocation per CHUNK_OPS calls. A caller name is interned once (a Map lookup per call).
 *
 *   record (Float64 words):
 *   | kind | cpu | seq | order | a0 | a1 | a2 | a3 | ret | ns | err |
 *     kind: TraceOp; seq: this cpu's count; order: the run's; a0..a3: arguments (per kind,
 *     see OP_ARGS); ret: address, count, or NULL_RET; ns: the call's time; err: string id
 *     of the error code it threw (0: none)
 */

import type { Vmalloc, VmallocAllocOptions, VmapOptions } from '../api/vmalloc.js';
import type { VmapSpace } from '../kva/vmap-space.js';
import type { AllocOptions } from '../kva/vmap-space-options.js';
import { TraceOp } from './trace-ops.js';

export const R_KIND = 0;
export const R_CPU = 1;
export const R_SEQ = 2;
export const R_ORDER = 3;
export const R_A0 = 4;
export const R_RET = 8;
export const R_NS = 9;
export const R_ERR = 10;
export const STRIDE = 11;
/** ret of a call that returned null. */
export const NULL_RET = -1;
/** Calls per chunk. */
export const CHUNK_OPS = 8192;

/** What a recorder hands over: `count` records, and the strings first named in them. */
export interface TraceChunk {
  worker: number;
  records: Float64Array;
  count: number;
  /** Strings whose ids start at `firstString` (ids are the recorder's; 0 is ''). */
  strings: string[];
  firstString: number;
}

const ORDER = 0;
const LOCK = 1;
/** Longer than any call could hold the lock: a holder that died (a worker killed). */
const LOCK_TIMEOUT_MS = 60_000;

/** The words the recorders of one run share: [order counter, trace lock]. */
export function createTraceShared(): SharedArrayBuffer {
  return new SharedArrayBuffer(8);
}

/** Calls recorded so far on `shared` (every recorder's). */
export function tracedCalls(shared: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(shared), ORDER);
}

const clock: () => number =
  typeof performance !== 'undefined' ? () => performance.now() : () => Date.now();

/** One worker's recorder: see the module header. */
export class TraceRecorder {
  private readonly ctl: Int32Array;
  private buf: Float64Array;
  private n = 0;
  private seq = 0;
  private t0 = 0;
  private readonly strings = new Map<string, number>();
  private fresh: string[] = [];
  private nextString = 1;
  private firstFresh = 1;
  private readonly pagesOrder = new WeakMap<object, number>();
  private view: Vmalloc | null = null;
  /** The records' cpu when this recorder wraps a bare space (wrapSpace()), not a Vmalloc. */
  private spaceCpu = 0;

  constructor(
    shared: SharedArrayBuffer,
    private readonly worker: number,
    private readonly sink: (chunk: TraceChunk) => void,
    private readonly chunkOps = CHUNK_OPS,
  ) {
    this.ctl = new Int32Array(shared);
    this.buf = new Float64Array(chunkOps * STRIDE);
  }

  /** Hands over what is buffered (call at the end of the run, before reporting). */
  flush(): void {
    if (this.n === 0 && this.fresh.length === 0) return;
    const chunk: TraceChunk = {
      worker: this.worker,
      records: this.buf,
      count: this.n,
      strings: this.fresh,
      firstString: this.firstFresh,
    };
    this.buf = new Float64Array(this.chunkOps * STRIDE);
    this.n = 0;
    this.fresh = [];
    this.firstFresh = this.nextString;
    this.sink(chunk);
  }

  private stringId(s: string | undefined): number {
    if (s === undefined || s === '') return 0;
    const known = this.strings.get(s);
    if (known !== undefined) return known;
    const id = this.nextString++;
    this.strings.set(s, id);
    this.fresh.push(s);
    return id;
  }

  // ------------------------------------------------------------- the trace lock

  private begin(): void {
    if (Atomics.compareExchange(this.ctl, LOCK, 0, 1) !== 0) this.lockSlow();
    this.t0 = clock();
  }

  private lockSlow(): void {
    // Waiting offline for RCU: the holder may be in a kvfree_rcu() that waits for a grace
    // period, which this worker, blocked here, would otherwise hold up.
    this.view?.rcuOffline();
    const start = clock();
    try {
      while (Atomics.exchange(this.ctl, LOCK, 2) !== 0) {
        Atomics.wait(this.ctl, LOCK, 2, 100);
        if (clock() - start > LOCK_TIMEOUT_MS)
          throw new Error(
            `record=: the trace lock was held for ${LOCK_TIMEOUT_MS / 1000} s (a worker died in a call?)`,
          );
      }
    } finally {
      this.view?.rcuOnline();
    }
  }

  /** Records the call begin() started and releases the lock; returns its order. */
  private commit(
    kind: number,
    a0: number,
    a1: number,
    a2: number,
    a3: number,
    ret: number,
    err: unknown,
  ): number {
    const ns = (clock() - this.t0) * 1e6;
    const order = Atomics.add(this.ctl, ORDER, 1);
    if (Atomics.sub(this.ctl, LOCK, 1) !== 1) {
      Atomics.store(this.ctl, LOCK, 0);
      Atomics.notify(this.ctl, LOCK, 1);
    }
    const b = this.buf;
    const at = this.n * STRIDE;
    b[at + R_KIND] = kind;
    b[at + R_CPU] = this.view === null ? this.spaceCpu : this.view.cpu;
    b[at + R_SEQ] = this.seq++;
    b[at + R_ORDER] = order;
    b[at + R_A0] = a0;
    b[at + R_A0 + 1] = a1;
    b[at + R_A0 + 2] = a2;
    b[at + R_A0 + 3] = a3;
    b[at + R_RET] = ret;
    b[at + R_NS] = ns;
    b[at + R_ERR] = err === null ? 0 : this.stringId(errorCode(err));
    if (++this.n === this.chunkOps) this.flush();
    return order;
  }

  // ------------------------------------------------------------- the recorded view

  /**
   * A view of `vm` that records its state-changing calls (one recorder wraps one view: its
   * cpu is the records' cpu). Everything else is `vm`'s own, through the prototype.
   */
  wrap(vm: Vmalloc): Vmalloc {
    this.view = vm;
    const w = Object.create(vm) as Vmalloc;
    const allocCall =
      (kind: number, call: (s: number, o?: VmallocAllocOptions) => number | null) =>
      (size: number, options?: VmallocAllocOptions): number | null => {
        this.begin();
        const align = options?.align ?? 1;
        const zero = options?.zero === true ? 1 : 0;
        let ret: number | null;
        try {
          ret = call.call(vm, size, options);
        } catch (e) {
          this.commit(kind, size, align, this.stringId(options?.caller), zero, NULL_RET, e);
          throw e;
        }
        this.commit(kind, size, align, this.stringId(options?.caller), zero, ret ?? NULL_RET, null);
        return ret;
      };
    const freeCall =
      (kind: number, call: (a: number | null | undefined) => void) =>
      (addr: number | null | undefined): void => {
        this.begin();
        const a = typeof addr === 'number' ? addr : 0;
        try {
          call.call(vm, addr);
        } catch (e) {
          this.commit(kind, a, 0, 0, 0, 0, e);
          throw e;
        }
        this.commit(kind, a, 0, 0, 0, 0, null);
      };
    const plainCall = (kind: number, call: () => void) => (): void => {
      this.begin();
      try {
        call.call(vm);
      } catch (e) {
        this.commit(kind, 0, 0, 0, 0, 0, e);
        throw e;
      }
      this.commit(kind, 0, 0, 0, 0, 0, null);
    };
    w.vmalloc = allocCall(TraceOp.vmalloc, vm.vmalloc);
    w.vzalloc = allocCall(TraceOp.vzalloc, vm.vzalloc);
    w.vmallocHuge = allocCall(TraceOp.vmalloc_huge, vm.vmallocHuge);
    w.vfree = freeCall(TraceOp.vfree, vm.vfree);
    w.vunmap = freeCall(TraceOp.vunmap, vm.vunmap);
    w.kvfreeRcu = freeCall(TraceOp.kvfree_rcu, vm.kvfreeRcu);
    w.freePercpu = freeCall(TraceOp.free_percpu, vm.freePercpu);
    w.purge = plainCall(TraceOp.purge, vm.purge);
    w.rcuBarrier = plainCall(TraceOp.rcu_barrier, vm.rcuBarrier);
    w.vmUnmapAliases = plainCall(TraceOp.vm_unmap_aliases, vm.vmUnmapAliases);
    this.wrapMaps(vm, w);
    return w;
  }

  /**
   * A view of a bare range space whose alloc and free are recorded (space_alloc with the
   * window the call searched, space_free); the rest is `sp`'s own, through the prototype.
   * The view only reads `sp` (its getters run on `sp`'s fields), so `sp` stays the space.
   * `cpu` is the one `sp` was attached with (VmapSpace.attach(): a pooled space's cpu picks
   * its cache), written in each record so that the replay attaches the same (0: the instance
   * that made the space).
   */
  wrapSpace(sp: VmapSpace, cpu = 0): VmapSpace {
    this.spaceCpu = cpu;
    const w = Object.create(sp) as VmapSpace;
    w.alloc = (size: number, options?: AllocOptions): number | null => {
      this.begin();
      const align = options?.align ?? 1;
      const vstart = options?.vstart ?? sp.start;
      const vend = options?.vend ?? sp.end;
      let ret: number | null;
      try {
        ret = sp.alloc(size, options);
      } catch (e) {
        this.commit(TraceOp.space_alloc, size, align, vstart, vend, NULL_RET, e);
        throw e;
      }
      this.commit(TraceOp.space_alloc, size, align, vstart, vend, ret ?? NULL_RET, null);
      return ret;
    };
    w.free = (addr: number): void => {
      this.begin();
      try {
        sp.free(addr);
      } catch (e) {
        this.commit(TraceOp.space_free, addr, 0, 0, 0, 0, e);
        throw e;
      }
      this.commit(TraceOp.space_free, addr, 0, 0, 0, 0, null);
    };
    return w;
  }

  /** The calls that take or return page frames, and the percpu allocator. */
  private wrapMaps(vm: Vmalloc, w: Vmalloc): void {
    const ref = (pages: unknown): number =>
      typeof pages === 'object' && pages !== null ? (this.pagesOrder.get(pages) ?? -1) : -1;
    w.allocPages = (n: number): Int32Array => {
      this.begin();
      let ret: Int32Array;
      try {
        ret = vm.allocPages(n);
      } catch (e) {
        this.commit(TraceOp.alloc_pages, n, 0, 0, 0, NULL_RET, e);
        throw e;
      }
      this.pagesOrder.set(ret, this.commit(TraceOp.alloc_pages, n, 0, 0, 0, ret.length, null));
      return ret;
    };
    w.freePages = (pfns: ArrayLike<number>): void => {
      this.begin();
      const n = typeof pfns?.length === 'number' ? pfns.length : 0;
      try {
        vm.freePages(pfns);
      } catch (e) {
        this.commit(TraceOp.free_pages, n, ref(pfns), 0, 0, 0, e);
        throw e;
      }
      this.commit(TraceOp.free_pages, n, ref(pfns), 0, 0, 0, null);
    };
    w.vmMapRam = (pages: ArrayLike<number>, count: number): number | null => {
      this.begin();
      let ret: number | null;
      try {
        ret = vm.vmMapRam(pages, count);
      } catch (e) {
        this.commit(TraceOp.vm_map_ram, count, ref(pages), 0, 0, NULL_RET, e);
        throw e;
      }
      this.commit(TraceOp.vm_map_ram, count, ref(pages), 0, 0, ret ?? NULL_RET, null);
      return ret;
    };
    w.vmUnmapRam = (addr: number, count: number): void => {
      this.begin();
      try {
        vm.vmUnmapRam(addr, count);
      } catch (e) {
        this.commit(TraceOp.vm_unmap_ram, addr, count, 0, 0, 0, e);
        throw e;
      }
      this.commit(TraceOp.vm_unmap_ram, addr, count, 0, 0, 0, null);
    };
    w.vmap = (pages: ArrayLike<number>, options?: VmapOptions): number | null => {
      this.begin();
      const count = typeof pages?.length === 'number' ? pages.length : 0;
      const caller = this.stringId(options?.caller);
      const flags = options?.flags ?? 0;
      let ret: number | null;
      try {
        ret = vm.vmap(pages, options);
      } catch (e) {
        this.commit(TraceOp.vmap, count, ref(pages), caller, flags, NULL_RET, e);
        throw e;
      }
      this.commit(TraceOp.vmap, count, ref(pages), caller, flags, ret ?? NULL_RET, null);
      return ret;
    };
    w.allocPercpu = (size: number, align = 1): number | null => {
      this.begin();
      let ret: number | null;
      try {
        ret = vm.allocPercpu(size, align);
      } catch (e) {
        this.commit(TraceOp.alloc_percpu, size, align, 0, 0, NULL_RET, e);
        throw e;
      }
      this.commit(TraceOp.alloc_percpu, size, align, 0, 0, ret ?? NULL_RET, null);
      return ret;
    };
  }
}

/** The code of a thrown error (VmallocError's), else its name. */
function errorCode(e: unknown): string {
  if (typeof e === 'object' && e !== null) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    const name = (e as { name?: unknown }).name;
    if (typeof name === 'string' && name !== '') return name;
  }
  return 'Error';
}
