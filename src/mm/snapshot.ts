/**
 * A snapshot of the address space: every range the subsystem holds, by kind, as plain data.
 *
 * Holds: takeSnapshot() (what vm.snapshot() returns) and the snapshot's types. The ranges come
 * from what the checker enumerates: the design's check() (busy, lazy, free and pooled records,
 * offload2023's margins), the vmap nodes' pools node by node, and the vm_map_ram blocks
 * (blockInfo()); designs that keep no record of free space (legacy) get their free blocks as
 * the gaps between the other ranges.
 * Invariant: the snapshot is consistent: it is taken with the recovery gate closed, so no
 * other live cpu is inside an operation meanwhile (each waits at the gate); every list is
 * sorted by address; ranges are half-open [start, start + size), guard pages included.
 * Callers: the façade (vm.snapshot()); the report (src/report/) reads snapshots, never the
 * structures.
 *
 * Kernel: what /proc/vmallocinfo and the vmap nodes show, all at once.
 */

import { NodesDesign } from '../designs/nodes.js';
import { Offload2023Design } from '../designs/offload2023.js';
import { VaFlags } from '../kva/vmap-area.js';
import type { VmContext } from './shared-state.js';
import { VmFlags } from './vm-struct.js';
import { blockInfo } from './vmap-block-check.js';

/** Bumped when a field changes meaning; readers check it first. */
export const SNAPSHOT_SCHEMA_VERSION = 1;

/** What made a busy area (from its va->flags and its vm_struct's flags). */
export type SnapshotAreaKind =
  | 'vmalloc'
  | 'vmap'
  | 'ioremap'
  | 'sparse'
  /** get_vm_area() with no mapping flag: address space only. */
  | 'reserved'
  /** pcpu_get_vm_areas(): a percpu chunk's area. */
  | 'pcpu'
  /** vm_map_ram() of more than VMAP_MAX_ALLOC pages: an area of its own, no vm_struct. */
  | 'vm_map_ram'
  /** The area of a per-CPU vmap block (vm_map_ram of up to VMAP_MAX_ALLOC pages). */
  | 'vmap_block'
  /** Set up but not yet visible (VM_UNINITIALIZED), or no vm_struct yet. */
  | 'uninitialized';

export interface SnapshotRange {
  start: number;
  /** Bytes, the guard page included. */
  size: number;
  /** The vmap node that holds it, or -1 (a design without nodes, or the global free tree). */
  node: number;
}

export interface SnapshotBusyArea extends SnapshotRange {
  kind: SnapshotAreaKind;
  /** vm->flags (0 without a vm_struct). */
  vmFlags: number;
  /** va->flags */
  vaFlags: number;
  /** The caller vmallocinfo prints ('' when none). */
  caller: string;
  /** Pages mapped through the vm_struct's pages array. */
  nrPages: number;
}

export interface SnapshotVmapBlock {
  start: number;
  size: number;
  /** The CPU whose free list it is on (the CPU that made it). */
  cpu: number;
  /** Pages never handed out. */
  free: number;
  /** Pages handed out and returned, not yet flushed. */
  dirty: number;
  /** Pages of live mappings (rounded up to powers of two per mapping). */
  used: number;
}

export interface VmallocSnapshot {
  schemaVersion: typeof SNAPSHOT_SCHEMA_VERSION;
  design: string;
  pageSize: number;
  nrCpus: number;
  /** Vmap nodes (the 'nodes' and 'offload2023' designs), else 0. */
  nrNodes: number;
  /** The vmalloc window [VMALLOC_START, VMALLOC_END + 1). */
  window: { start: number; end: number };
  /** The whole space the allocator manages (free blocks may lie outside the window). */
  space: { start: number; end: number };
  /** vmap_lazy_nr, in pages. */
  lazyPages: number;
  busy: SnapshotBusyArea[];
  free: SnapshotRange[];
  /** Lazily freed areas not yet purged. */
  lazy: SnapshotRange[];
  /** Areas ready in the vmap nodes' pools (6.9+). */
  pooled: SnapshotRange[];
  /** Ranges of other kinds a design keeps (offload2023: 'margin', the edges of a node's block). */
  other: (SnapshotRange & { kind: string })[];
  /** vm_map_ram's blocks (each also a busy area of kind 'vmap_block'). */
  vmapBlocks: SnapshotVmapBlock[];
}

function kindOf(vaFlags: number, hasVm: boolean, vmFlags: number): SnapshotAreaKind {
  if ((vaFlags & VaFlags.VMAP_BLOCK) !== 0) return 'vmap_block';
  if ((vaFlags & VaFlags.VMAP_RAM) !== 0) return 'vm_map_ram';
  if ((vaFlags & VaFlags.PCPU) !== 0) return 'pcpu';
  if (!hasVm || (vmFlags & VmFlags.VM_UNINITIALIZED) !== 0) return 'uninitialized';
  if ((vmFlags & VmFlags.VM_ALLOC) !== 0) return 'vmalloc';
  if ((vmFlags & VmFlags.VM_MAP) !== 0) return 'vmap';
  if ((vmFlags & VmFlags.VM_IOREMAP) !== 0) return 'ioremap';
  if ((vmFlags & VmFlags.VM_SPARSE) !== 0) return 'sparse';
  return 'reserved';
}

const byStart = (a: { start: number }, b: { start: number }): number => a.start - b.start;

/** Sorts by address, unless already sorted (the usual case: one tree walked in order). */
function sortByStart(list: { start: number }[]): void {
  for (let k = 1; k < list.length; k++) {
    if (list[k - 1]!.start > list[k]!.start) {
      list.sort(byStart);
      return;
    }
  }
}

/**
 * The snapshot, taken with every other live cpu stopped between operations (the recovery
 * gate). Throws VmallocError EINVARIANT if a structure is broken (a worker died half-way
 * through a change and no recovery ran yet): call vm.recover() first.
 */
export function takeSnapshot(ctx: VmContext): VmallocSnapshot {
  const gate = ctx.gate;
  while (!gate.close('snapshot', ctx.cpu)) gate.waitRecovered();
  try {
    ctx.refreshAll();
    return snapshotLocked(ctx);
  } finally {
    gate.open();
  }
}

function snapshotLocked(ctx: VmContext): VmallocSnapshot {
  const cfg = ctx.config;
  const s = ctx.s;
  const vms = ctx.vms;
  const d = ctx.areas.design;
  const c = d.check(cfg.spaceStart, cfg.spaceEnd);
  const nodes = d instanceof NodesDesign ? d : null;
  const offload = d instanceof Offload2023Design ? d : null;
  /** The node of a lazy or busy record: its encoded node id, else the owner of its zone. */
  const nodeOf = (va: number, byAddress: boolean): number => {
    if (nodes === null && offload === null) return -1;
    const id = (nodes ?? offload)!.decodeVnId(s.flags(va));
    if (id >= 0 && !byAddress) return id;
    if (nodes !== null) return nodes.addrToNodeId(s.start(va));
    return id;
  };
  const range = (va: number, node: number): SnapshotRange => ({
    start: s.start(va),
    size: s.size(va),
    node,
  });
  const callers = new Map<number, string>();
  const busy = c.busy.map((va): SnapshotBusyArea => {
    const vm = s.vm(va);
    const vaFlags = s.flags(va);
    const vmFlags = vm === 0 ? 0 : vms.flags(vm);
    let caller = '';
    if (vm !== 0) {
      const ref = vms.caller(vm);
      caller = callers.get(ref) ?? ctx.strings.text(ref);
      callers.set(ref, caller);
    }
    // One literal (not a spread of range()): a million of these must stay cheap to make.
    return {
      start: s.start(va),
      size: s.size(va),
      // The nodes design files a busy area by its address; offload2023 by its encoded node.
      node: nodeOf(va, nodes !== null),
      kind: kindOf(vaFlags, vm !== 0, vmFlags),
      vmFlags,
      vaFlags,
      caller,
      nrPages: vm === 0 ? 0 : vms.nrPages(vm),
    };
  });
  const lazy = c.lazy.map((va) => range(va, nodeOf(va, false)));
  const pooled: SnapshotRange[] = [];
  if (nodes !== null) {
    for (let n = 0; n < nodes.nrNodes; n++) {
      const ids: number[] = [];
      nodes.pools.checkNode(n, [], ids);
      for (const va of ids) pooled.push(range(va, n));
    }
  }
  const other: (SnapshotRange & { kind: string })[] = [];
  for (const o of c.other) {
    if (o.kind === 'pooled') continue; // the nodes' pools, by node above
    for (const va of o.ids) other.push({ ...range(va, nodeOf(va, false)), kind: o.kind });
  }
  const free = freeRanges(ctx, c.free, offload, [busy, lazy, pooled, other]);
  const vmapBlocks: SnapshotVmapBlock[] = [];
  for (const a of busy) {
    if (a.kind !== 'vmap_block') continue;
    const info = blockInfo(ctx.vb, a.start);
    if (info === null) continue;
    vmapBlocks.push({
      start: a.start,
      size: a.size,
      cpu: info.cpu,
      free: info.free,
      dirty: info.dirty,
      used: info.used.length,
    });
  }
  sortByStart(busy);
  sortByStart(lazy);
  sortByStart(pooled);
  sortByStart(other);
  sortByStart(free);
  sortByStart(vmapBlocks);
  return {
    schemaVersion: SNAPSHOT_SCHEMA_VERSION,
    design: cfg.design,
    pageSize: cfg.pageSize,
    nrCpus: cfg.nrCpus,
    nrNodes: nodes?.nrNodes ?? offload?.nrNodes ?? 0,
    window: { start: cfg.vmallocStart, end: cfg.vmallocEnd + 1 },
    space: { start: cfg.spaceStart, end: cfg.spaceEnd },
    lazyPages: ctx.areas.lazyPages,
    busy,
    free,
    lazy,
    pooled,
    other,
    vmapBlocks,
  };
}

/**
 * Free blocks: the design's free records (offload2023's node heaps by node), or, for a design
 * that keeps none, the gaps of the managed space between every other range.
 */
function freeRanges(
  ctx: VmContext,
  freeIds: number[],
  offload: Offload2023Design | null,
  taken: SnapshotRange[][],
): SnapshotRange[] {
  const s = ctx.s;
  const cfg = ctx.config;
  if (freeIds.length > 0 || ctx.areas.design.freeCount > 0) {
    const heapNode = new Map<number, number>();
    if (offload !== null) {
      for (const n of offload.describe(ctx.cpu).nodes)
        for (const r of n.free) heapNode.set(r.start, n.node);
    }
    return freeIds.map((va) => ({
      start: s.start(va),
      size: s.size(va),
      node: heapNode.get(s.start(va)) ?? -1,
    }));
  }
  const used = taken.flat().sort(byStart);
  const out: SnapshotRange[] = [];
  let at = cfg.spaceStart;
  for (const r of used) {
    if (r.start > at) out.push({ start: at, size: r.start - at, node: -1 });
    at = Math.max(at, r.start + r.size);
  }
  if (cfg.spaceEnd > at) out.push({ start: at, size: cfg.spaceEnd - at, node: -1 });
  return out;
}
