/**
 * The part of a Vmalloc that allocates nothing: its identity (config, cpu, handle), lookups
 * (find_vm_area, vmalloc_to_page), the lazy counters, lock statistics, the supervision of
 * worker cpus, the vmap nodes, vmallocinfo, stats and check(), and the checked mode's
 * afterOp().
 *
 * Holds: VmallocBase, which Vmalloc (src/api/vmalloc.ts) extends with the calls that change
 * the areas and access memory. Every method is a thin delegation to the vmalloc layer
 * (src/mm/), which checks the arguments before anything changes.
 * Invariant: a VmallocBase is never made on its own; `ctx` is the thread's view its
 * Vmalloc was made with.
 * Callers: library users through Vmalloc; Vmalloc's hot methods call afterOp().
 *
 * Kernel: find_vm_area(), vmalloc_to_page(), vmap_lazy_nr, lazy_max_pages(), /proc/lock_stat,
 * CPU hotplug, struct vmap_node and its shrinker, /proc/vmallocinfo.
 */

import type { NodesDesign, VmapNodeInfo } from '../designs/nodes.js';
import type { VmapAreas } from '../designs/vmap-areas.js';
import type { LockStat } from '../shared/lock.js';
import { vmallocToPage } from '../mm/access.js';
import { checkAddr } from '../mm/args.js';
import { checkAll } from '../mm/checker.js';
import type { VmallocConfig } from '../mm/config.js';
import {
  type WatchedWorker,
  markCpuAlive,
  markCpuDead,
  watchWorker,
} from '../mm/cpu-supervision.js';
import { rcuQuiescent } from '../mm/kvfree-rcu.js';
import { infoSource, lockStatText, lockStats, setLockStat } from '../mm/proc.js';
import type { VmContext, VmallocHandle } from '../mm/shared-state.js';
import { collectStats, type VmallocStats } from '../mm/statistics.js';
import { addrToNodeId, nodeShrinker, nodesOf, vmapNodes } from '../mm/vmap-nodes.js';
import { type VmArea, findVm, snapshot } from '../mm/vmap.js';
import { type VmallocinfoSource, formatVmallocinfo } from '../mm/vmallocinfo.js';

export class VmallocBase {
  readonly config: VmallocConfig;
  /** This thread's cpu id. */
  readonly cpu: number;
  readonly pageSize: number;
  /** VMALLOC_START and VMALLOC_END. */
  readonly vmallocStart: number;
  readonly vmallocEnd: number;
  /** Structured-cloneable: pass it to a worker and attachVmalloc() it there. */
  readonly handle: VmallocHandle;
  protected readonly ctx: VmContext;

  /** @internal Use createVmalloc() or attachVmalloc(). */
  constructor(ctx: VmContext) {
    this.ctx = ctx;
    this.handle = ctx.handle;
    this.config = ctx.config;
    this.cpu = ctx.cpu;
    this.pageSize = ctx.pageSize;
    this.vmallocStart = ctx.config.vmallocStart;
    this.vmallocEnd = ctx.config.vmallocEnd;
  }

  // ---------------------------------------------------------------- lookups

  /** The vm_struct of the live area containing `addr`, or null. Kernel: find_vm_area(). */
  findVmArea(addr: number): VmArea | null {
    const vm = findVm(this.ctx, checkAddr('find_vm_area', addr));
    return vm === 0 ? null : snapshot(this.ctx, vm);
  }

  /**
   * The page frame mapped at `addr`, or null (no area, guard page, unmapped): a walk of the
   * page table. Kernel: vmalloc_to_page().
   */
  vmallocToPage(addr: number): number | null {
    return vmallocToPage(this.ctx, checkAddr('vmalloc_to_page', addr));
  }

  /** vmap_lazy_nr: pages (guard pages included) freed lazily and not yet purged. */
  get lazyPages(): number {
    return this.ctx.areas.lazyPages;
  }

  /** lazy_max_pages() */
  get lazyMaxPages(): number {
    return this.config.lazyMaxPages;
  }

  // ---------------------------------------------------------------- locks and workers

  /** Per-lock statistics (lock_stat), each under its lock class name. */
  lockStats(): LockStat[] {
    return lockStats(this.ctx);
  }

  /** /proc/lock_stat in the kernel's layout, classes by contentions. */
  lockStat(): string {
    return lockStatText(this.ctx);
  }

  /** Turns lock statistics on or off, for every worker. Off, a lock costs one extra load. */
  setLockStat(on: boolean): void {
    setLockStat(this.ctx, on);
  }

  /** Zeroes the lock statistics. */
  resetLockStat(): void {
    this.ctx.lockTable.resetStats();
  }

  /**
   * Declares that the worker using `cpu` has died (call it from its 'exit' handler, or let
   * watchWorker do it): a worker waiting for a lock that cpu held gives up at once with
   * EOWNERDEAD instead of waiting for the timeout, and the id is free for a new worker to
   * attach with. The state that lock protected may be inconsistent afterwards. Works on a
   * detached instance too (a supervising thread).
   * @throws VmallocError EINVAL when `cpu` is attached in this thread (it is alive: detach
   * it instead).
   */
  markCpuDead(cpu: number): void {
    markCpuDead(this.ctx, cpu);
  }

  /**
   * Declares `cpu` alive again (the CPU is back online). attachVmalloc() does this itself
   * when it takes the id of a dead worker, so this is rarely needed. Do not use it for a
   * worker that died holding a lock: that lock stays taken, and waiters would then wait for
   * the timeout instead of failing at once. It does not claim the id.
   */
  markCpuAlive(cpu: number): void {
    markCpuAlive(this.ctx, cpu);
  }

  /**
   * Watches a worker (anything with on('exit', fn), such as a Node Worker) that uses `cpu`:
   * when it exits, the cpu is marked dead and its id freed (markCpuDead), so a new worker can
   * attach with it. A Node Worker is recognised by its threadId: if another live thread holds
   * the id when it exits (the worker was refused the id, or gave it back and the id was
   * reused), nothing changes. Works on a detached instance too (a supervising thread).
   */
  watchWorker(worker: WatchedWorker, cpu: number): void {
    watchWorker(this.ctx, worker, cpu);
  }

  // ---------------------------------------------------------------- vmap nodes

  /** @internal The vmap-area core and its design, for tests that look inside. */
  get areas(): VmapAreas {
    return this.ctx.areas;
  }

  /**
   * The nodes design's structures (null in other designs).
   * @internal For tests and the checker; use vmapNodes() and addrToNodeId().
   */
  get nodes(): NodesDesign | null {
    return nodesOf(this.ctx);
  }

  /**
   * The nodes design, node by node: busy areas (placed by address), lazy areas (placed by the
   * allocating CPU's node), pool lengths by size. Empty for the other designs.
   */
  vmapNodes(): VmapNodeInfo[] {
    return vmapNodes(this.ctx);
  }

  /** The vmap node whose zone holds `addr` (addr_to_node_id()); 0 in the other designs. */
  addrToNodeId(addr: number): number {
    return addrToNodeId(this.ctx, addr);
  }

  /**
   * The "vmap-node" shrinker: count() is the number of areas held in node pools, scan()
   * releases them all to the free tree and returns how many it released.
   */
  get shrinker(): { count(): number; scan(): number } {
    return nodeShrinker(this.ctx, () => this.afterOp());
  }

  // ---------------------------------------------------------------- introspection

  /** /proc/vmallocinfo. Kernel: vmalloc_info_show(). */
  vmallocinfo(): string {
    return formatVmallocinfo(this.infoSource());
  }

  /** @internal Data for vmallocinfo and the report. */
  infoSource(): VmallocinfoSource {
    return infoSource(this.ctx);
  }

  stats(): VmallocStats {
    return collectStats(this.ctx);
  }

  /**
   * Verifies every invariant of the subsystem: the design's trees and lists, the tiling of
   * the managed space (designs that record free space), vmap_lazy_nr, every record accounted
   * for, every vm_struct against its area, every page owned once, the page table against the
   * areas' pages, the page allocator, the page-array pool.
   * @throws VmallocError EINVARIANT naming the first violation.
   */
  check(): void {
    checkAll(this.ctx);
  }

  /**
   * Every state-changing call's exit: a quiescent state of this cpu (RCU, kvfree-rcu.ts),
   * then the checked mode's check() after every (or every n-th) such call.
   */
  protected afterOp(): void {
    const every = this.config.checkEveryOp;
    const ctx = this.ctx;
    rcuQuiescent(ctx);
    if (every !== 0 && ++ctx.opsSinceCheck >= every) {
      ctx.opsSinceCheck = 0;
      checkAll(ctx);
    }
  }
}

/** Methods a detached Vmalloc keeps: they supervise workers or read lock_stat, as no cpu. */
export const KEPT_AFTER_DETACH = [
  'markCpuDead',
  'markCpuAlive',
  'watchWorker',
  'lockStats',
  'lockStat',
  'setLockStat',
  'resetLockStat',
];
