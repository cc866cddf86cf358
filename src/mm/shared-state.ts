/**
 * One subsystem's shared state, assembled from its parts: the handle that travels to workers,
 * and each thread's view of it.
 *
 * Holds: VmallocHandle (every shared buffer and the configuration, structured-cloneable),
 * declareParts() (every part declares its control words and locks to one ControlLayout),
 * createHandle() and VmContext, the per-thread view every module of the vmalloc layer works
 * on (record stores, page allocator, page-array pool, page table, strings, the vmap-area core
 * with its design, locks, the cpu claims, this cpu's counters and translation cache).
 * Invariant: a handle's buffers were sized by declareParts() of its configuration, and every
 * thread computes the same declarations from the same configuration; the creator's init()
 * writes BRAND and the configuration's fingerprint into the control block, which
 * attachVmalloc checks (src/api/create.ts) before it trusts a handle.
 * Callers: the API façade (src/api/vmalloc.ts) creates and attaches; the vmalloc-layer
 * modules read the context.
 */

import { VaStore } from '../kva/vmap-area.js';
import { makeFixedBuffer, type AnyBuffer } from '../shared/buffers.js';
import { ControlLayout } from '../shared/control-layout.js';
import { Lock, LockTable } from '../shared/lock.js';
import { RateLimitedLog, type VmallocLogger } from '../shared/logger.js';
import type { ArenaBuffers } from '../shared/record-arena.js';
import { StringTable, type StringTableBuffers } from '../shared/strings.js';
import type { VmapDesign } from '../designs/design.js';
import { DESIGNS } from '../designs/registry.js';
import { VA_STAT_WORDS } from '../designs/stat.js';
import { VmapAreas, type CoreDecl, type PurgeNotifier } from '../designs/vmap-areas.js';
import type { VmallocConfig } from './config.js';
import { CpuClaims } from './cpu-claims.js';
import { PageAllocator, type PageAllocatorBuffers } from './page-alloc.js';
import { PageTable } from './page-table.js';
import { PagesPool, type PagesPoolHandle } from './pages-pool.js';
import { PcpuChunks, createPcpuBuffer, pcpuGeometry } from './percpu-chunk.js';
import { Rcu, declareRcu, type RcuDecl } from './rcu.js';
import { type GateDecl, RecoveryGate } from './recovery-gate.js';
import { VmStore } from './vm-struct.js';
import { VmapBlocks } from './vmap-block.js';
import { createVbBuffers, declareVmapBlocks, type VbDecl } from './vmap-block-layout.js';
import { purgeFragmentedAll } from './vmap-block-purge.js';

/**
 * Everything a worker needs to attach to a Vmalloc: its configuration and every shared buffer.
 * Structured-cloneable: send it with postMessage and call attachVmalloc() in the worker.
 */
export interface VmallocHandle {
  readonly kind: 'Vmalloc';
  readonly config: VmallocConfig;
  readonly va: ArenaBuffers;
  readonly vm: ArenaBuffers;
  readonly frames: PageAllocatorBuffers;
  readonly pool: PagesPoolHandle;
  readonly strings: StringTableBuffers;
  readonly pageTable: AnyBuffer;
  readonly locks: AnyBuffer;
  readonly ctl: AnyBuffer;
  readonly stat: AnyBuffer;
  /** The vmap block records (vm_map_ram). */
  readonly vb: ArenaBuffers;
  /** The percpu allocator's chunk records (percpu-chunk.ts). */
  readonly pcpu: AnyBuffer;
}

/** Offsets every part got from the layout. */
export interface Parts {
  layout: ControlLayout;
  core: CoreDecl;
  design: unknown;
  zoneLock: number;
  stringsLock: number;
  vaCacheLock: number;
  vmCacheLock: number;
  vmapBlocks: VbDecl;
  pcpuLock: number;
  /** First claim word (one per cpu: which thread runs as it). */
  cpuClaims: number;
  /** Two words written at creation: BRAND and the configuration's fingerprint. */
  brand: number;
  /** Grace periods and kvfree_rcu batches (rcu.ts). */
  rcu: RcuDecl;
  /** The recovery gate and each cpu's "in an operation" word (recovery-gate.ts). */
  gate: GateDecl;
}

/** "vmal": marks a control block initialized by createVmalloc. */
const BRAND = 0x766d616c;

/**
 * A 32-bit FNV-1a hash of the configuration (keys sorted), stored beside BRAND: a handle
 * whose config was edited after creation no longer matches its buffers and is refused.
 */
export function configFingerprint(config: VmallocConfig): number {
  const text = Object.keys(config)
    .sort()
    .map((k) => `${k}=${String((config as unknown as Record<string, unknown>)[k])}`)
    .join(';');
  let h = 0x811c9dc5;
  for (let k = 0; k < text.length; k++) h = Math.imul(h ^ text.charCodeAt(k), 0x01000193);
  return h | 0;
}

/** Does control block `ctl` carry the brand and fingerprint of `config` (see configFingerprint)? */
export function brandMatches(ctl: Int32Array, parts: Parts, config: VmallocConfig): boolean {
  return (
    Atomics.load(ctl, parts.brand) === BRAND &&
    Atomics.load(ctl, parts.brand + 1) === configFingerprint(config)
  );
}

/** The declarations of every part, in a fixed order. */
export function declareParts(config: VmallocConfig): Parts {
  const layout = new ControlLayout();
  return {
    layout,
    // The design first: its first lock (free_vmap_area_lock, where it has one) is slot 0.
    design: DESIGNS[config.design].declare(layout, config.nrCpus, config.nrVmapNodes),
    core: VmapAreas.declare(layout),
    zoneLock: layout.lock('zone->lock'),
    stringsLock: layout.lock('strings_lock'),
    vaCacheLock: layout.lock('vmap_area_cachep'),
    vmCacheLock: layout.lock('vm_struct_cachep'),
    vmapBlocks: declareVmapBlocks(layout, config),
    pcpuLock: layout.lock('pcpu_alloc_mutex'),
    cpuClaims: CpuClaims.declare(layout, config.nrCpus),
    brand: layout.words(2),
    rcu: declareRcu(layout, config.nrCpus),
    gate: RecoveryGate.declare(layout, config.nrCpus),
  };
}

/** Fresh buffers for a new subsystem (not yet initialized: see VmContext.init). */
export function createHandle(config: VmallocConfig): VmallocHandle {
  const shared = config.shared;
  const cpus = config.nrCpus;
  const { layout } = declareParts(config);
  return {
    kind: 'Vmalloc',
    config,
    va: VaStore.createBuffers({ shared, perCpu: cpus }),
    vm: VmStore.createBuffers({ shared, perCpu: cpus }),
    frames: PageAllocator.createBuffers(config.physicalMemory, config.pageSize, cpus, shared),
    pool: PagesPool.createHandle(cpus, config.physicalMemory / config.pageSize, shared),
    strings: StringTable.createBuffers(shared),
    pageTable: PageTable.createBuffer(config.pageSize, shared),
    locks: LockTable.create(layout.lockCount, shared, cpus, layout.classCount).buffer,
    ctl: makeFixedBuffer(layout.ctlWords * 4, shared),
    stat: makeFixedBuffer(cpus * VA_STAT_WORDS * 8, shared),
    vb: createVbBuffers(config),
    pcpu: createPcpuBuffer(config.pageSize, cpus, shared),
  };
}

/** Empty translation cache entries: a page start no address has. */
const NO_PAGE = -1;

/** One thread's view of a subsystem, as cpu `cpu`. */
export class VmContext {
  readonly handle: VmallocHandle;
  readonly config: VmallocConfig;
  readonly cpu: number;
  readonly pageSize: number;
  /**
   * The vmalloc window (config.vmallocStart / vmallocEnd), copied here for the hot paths: a
   * class field holds its number as it is, while the config object's double fields are
   * copied into a new heap number at each read that is passed on to a call.
   */
  readonly vmallocStart: number;
  readonly vmallocEnd: number;
  readonly s: VaStore;
  readonly vms: VmStore;
  readonly frames: PageAllocator;
  readonly pool: PagesPool;
  readonly strings: StringTable;
  readonly pageTable: PageTable;
  readonly areas: VmapAreas;
  /** The per-CPU vmap blocks of vm_map_ram. */
  readonly vb: VmapBlocks;
  /** The percpu allocator's chunks, and pcpu_alloc_mutex over them (src/mm/percpu.ts). */
  readonly pcpu: PcpuChunks;
  readonly pcpuLock: Lock;
  readonly lockTable: LockTable;
  /** Which thread holds which cpu id (see cpu-claims.ts). */
  readonly claims: CpuClaims;
  /** Quiescent states, grace periods and kvfree_rcu batches (rcu.ts, kvfree-rcu.ts). */
  readonly rcu: Rcu;
  /**
   * The design when it frees its records after a grace period ('legacy': rcuDue, invokeRcu),
   * else null: chosen once with the design, so that every call's quiescent state
   * (kvfree-rcu.ts) tests this field, not an optional method of whichever design it is.
   */
  readonly rcuDesign: VmapDesign | null;
  /** The offsets every part declared (recovery resets the design's and the core's words). */
  readonly parts: Parts;
  /** Operations enter and leave through it; recover() closes it (recovery-gate.ts). */
  readonly gate: RecoveryGate;
  /** Depth of nested operations on this thread (a purge notifier may call vfree). */
  opDepth = 0;
  /** Every lock of the subsystem with its class name, for lock_stat. */
  readonly allLocks: readonly Lock[];
  readonly log: RateLimitedLog;
  /**
   * This worker's translation cache: two entries of [page start, pfn]. A purge (the only way
   * a freed range is handed out again) bumps a shared generation that empties every worker's
   * cache, as flush_tlb_kernel_range() reaches every CPU; this worker's own unmaps drop their
   * pages at once.
   */
  readonly tlb = new Float64Array([NO_PAGE, 0, NO_PAGE, 0]);
  tlbGen = 0;
  /** Operations since the last check() in the checked mode. */
  opsSinceCheck = 0;
  /**
   * The purge notifiers this worker registered (the chain is per worker), each with the
   * guard registered in its place: a notifier runs in the middle of an allocation, so what it
   * throws must not escape (it counts as nothing freed, the exception is dropped).
   */
  readonly notifiers = new Map<PurgeNotifier, PurgeNotifier>();
  /** Interned default caller names, by API function (see callers.ts). */
  readonly defaultCallers = new Map<string, number>();
  /** The last default caller looked up (defaultCaller()'s one-entry cache). */
  lastDefaultFn = '';
  lastDefaultId = 0;

  constructor(handle: VmallocHandle, cpu: number, logger: VmallocLogger | null) {
    const config = handle.config;
    this.handle = handle;
    this.config = config;
    this.cpu = cpu;
    this.pageSize = config.pageSize;
    this.vmallocStart = config.vmallocStart;
    this.vmallocEnd = config.vmallocEnd;
    const parts = declareParts(config);
    const table = new LockTable(handle.locks);
    this.lockTable = table;
    this.claims = new CpuClaims(new Int32Array(handle.ctl), parts.cpuClaims, config.nrCpus, table);
    this.parts = parts;
    this.gate = new RecoveryGate(new Int32Array(handle.ctl), parts.gate, config.nrCpus, table);
    this.log = new RateLimitedLog(logger);
    const lock = (index: number, name: string): Lock => new Lock(table, index, name);
    const zone = lock(parts.zoneLock, 'zone->lock');
    const strings = lock(parts.stringsLock, 'strings_lock');
    const vaCache = lock(parts.vaCacheLock, 'vmap_area_cachep');
    const vmCache = lock(parts.vmCacheLock, 'vm_struct_cachep');
    this.pcpuLock = lock(parts.pcpuLock, 'pcpu_alloc_mutex');
    this.pcpu = new PcpuChunks(handle.pcpu, pcpuGeometry(config.pageSize, config.nrCpus));
    this.s = new VaStore(handle.va);
    this.s.bindCpu(cpu, vaCache);
    this.vms = new VmStore(handle.vm);
    this.vms.bindCpu(cpu, vmCache);
    this.frames = new PageAllocator(handle.frames);
    this.frames.bindCpu(cpu, zone);
    this.pool = new PagesPool(handle.pool, cpu, table);
    this.strings = new StringTable(handle.strings, strings, cpu);
    this.pageTable = new PageTable(handle.pageTable, config.pageSize);
    // Each cpu counts in its own block (no cache line written by two workers); stats() sums.
    const stat = new Float64Array(handle.stat, cpu * VA_STAT_WORDS * 8, VA_STAT_WORDS);
    const design = DESIGNS[config.design];
    this.areas = new VmapAreas(
      this.s,
      new Int32Array(handle.ctl),
      stat,
      {
        pageSize: config.pageSize,
        nrCpus: config.nrCpus,
        lazyMaxPages: config.lazyMaxPages,
        nrVmapNodes: config.nrVmapNodes,
        vmapZoneSize: config.vmapZoneSize,
        vmapPoolLimit: config.vmapPoolLimit,
        vmapPoolDecay: config.vmapPoolDecay,
        vmallocStart: config.vmallocStart,
        vmallocEnd: config.vmallocEnd,
      },
      this.log,
      parts.core,
      table,
      (core) => design.create(core, parts.design, table),
    );
    this.vb = new VmapBlocks(
      handle.vb,
      new Int32Array(handle.ctl),
      table,
      parts.vmapBlocks,
      config,
      cpu,
      this,
    );
    this.areas.fragmentedPurge = () => purgeFragmentedAll(this.vb, true);
    this.rcu = new Rcu(handle.ctl, parts.rcu, cpu, config.nrCpus, this.claims, table);
    this.areas.gracePeriods = this.rcu; // 'legacy' frees its records after a grace period
    this.rcuDesign = this.areas.design.rcuDue === undefined ? null : this.areas.design;
    this.allLocks = [
      ...this.areas.design.locks(),
      this.areas.purgeMutex,
      zone,
      strings,
      vaCache,
      vmCache,
      ...this.vb.locks(),
      this.pcpuLock,
      ...this.rcu.locks(),
    ];
  }

  /** Registers `fn` behind its guard; false when it is registered already. */
  addNotifier(fn: PurgeNotifier): boolean {
    if (this.notifiers.has(fn)) return false;
    const guard = (): number => {
      try {
        return fn();
      } catch {
        return 0;
      }
    };
    this.notifiers.set(fn, guard);
    this.areas.registerNotifier(guard);
    return true;
  }

  /** Unregisters `fn`; false when it was not registered. */
  removeNotifier(fn: PurgeNotifier): boolean {
    const guard = this.notifiers.get(fn);
    if (guard === undefined) return false;
    this.notifiers.delete(fn);
    return this.areas.unregisterNotifier(guard);
  }

  /** Sets up a new subsystem's shared state (once, by its creator). */
  init(): void {
    this.lockTable.setTimeout(this.config.lockTimeoutMs);
    this.lockTable.setStats(this.config.lockStat);
    this.areas.init(this.config.spaceStart, this.config.spaceEnd);
    const ctl = new Int32Array(this.handle.ctl);
    const brand = declareParts(this.config).brand;
    Atomics.store(ctl, brand + 1, configFingerprint(this.config));
    Atomics.store(ctl, brand, BRAND);
  }

  /**
   * Brings every view of this thread up to date with growth done by other workers, before
   * reading records outside the locks' discipline (checks, reports).
   */
  refreshAll(): void {
    this.s.refreshViews();
    this.vms.refreshViews();
    this.frames.refresh();
  }

  /** The vm_struct of busy area `va` (0: none), with this thread's vm_struct views current. */
  vmOf(va: number): number {
    const vm = va === 0 ? 0 : this.s.vm(va);
    if (vm !== 0) this.vms.refreshViews();
    return vm;
  }

  /** The frame of page `index` of area `vm`, from its pages array. */
  pfnAt(vm: number, index: number): number {
    const slot = this.vms.pages(vm);
    return this.pool.view(slot)[this.pool.offset(slot) + index]!;
  }

  /** Forgets this worker's translations of pages in [addr, addr + bytes). */
  tlbFlushRange(addr: number, bytes: number): void {
    const t = this.tlb;
    for (let k = 0; k < 4; k += 2) {
      if (t[k]! >= addr && t[k]! < addr + bytes) t[k] = NO_PAGE;
    }
  }

  /** Empties the translation cache if a purge happened since it was filled. */
  tlbSync(): void {
    const gen = this.areas.tlbGeneration;
    if (gen !== this.tlbGen) {
      this.tlb[0] = NO_PAGE;
      this.tlb[2] = NO_PAGE;
      this.tlbGen = gen;
    }
  }
}
