/**
 * The checker and the inside view of the vmap nodes of the 'nodes' design.
 *
 * Holds: checkNodes(), the nodes' part of NodesDesign.check() (each node's busy and lazy
 * trees, and its pools through NodePools.checkNode()), and describeNodes(), what
 * vm.vmapNodes() shows of every node (VmapNodeInfo).
 * Invariant (what checkNodes() verifies): a busy area is in the busy tree of the node of its
 * start address; a lazy area in the lazy tree of the node encoded in its flags (or of its
 * address when none is); the pools as NodePools.checkNode() says.
 * Callers: NodesDesign.check() and NodesDesign.describe() (src/designs/nodes.ts).
 */

import { invariantFailure } from '../debug.js';
import { hex } from '../errors.js';
import { checkRbList } from '../kva/check.js';
import type { Lock } from '../shared/lock.js';
import type { DesignCheck, VmapCore } from './design.js';
import { listIds } from './free-space.js';
import type { NodesDesign } from './nodes.js';

/** One vmap node as vm.vmapNodes() shows it. */
export interface VmapNodeInfo {
  node: number;
  /** Busy areas whose start lies in this node's zones, in address order. */
  busy: { start: number; end: number }[];
  /** Lazily freed areas of the CPU(s) this node serves, in address order, not yet purged. */
  lazy: { start: number; end: number }[];
  /** Ready areas by exact size in pages (only sizes with some). */
  pools: { pages: number; count: number }[];
}

/**
 * Checks every node of `d` and returns the design's records by kind; `free` and `own` are what
 * the free space's check found (the nodes' heads are appended to `own`).
 */
export function checkNodes(
  d: NodesDesign,
  start: number,
  end: number,
  free: number[],
  own: number[],
): DesignCheck {
  const s = d.s;
  const busy: number[] = [];
  const lazy: number[] = [];
  const pooled: number[] = [];
  for (let n = 0; n < d.nrNodes; n++) {
    const bh = d.busyHead(n);
    const lh = d.lazyHead(n);
    own.push(bh, lh);
    for (const va of checkRbList(s, bh, false, `node ${n} busy tree`, start, end)) {
      if (d.addrToNodeId(s.start(va)) !== n)
        invariantFailure(
          `area ${hex(s.start(va))} is in node ${n}'s busy tree, its address belongs to node ${d.addrToNodeId(s.start(va))}`,
        );
      busy.push(va);
    }
    for (const va of checkRbList(s, lh, false, `node ${n} lazy tree`, start, end)) {
      const id = d.decodeVnId(s.flags(va));
      const want = id >= 0 ? id : d.addrToNodeId(s.start(va));
      if (want !== n)
        invariantFailure(`lazy area ${hex(s.start(va))} is in node ${n}, belongs in node ${want}`);
      lazy.push(va);
    }
    d.pools.checkNode(n, own, pooled);
  }
  return {
    busy,
    lazy,
    free,
    other: [{ kind: 'pooled', ids: pooled }],
    own,
    tiling: [free, busy, lazy, pooled],
  };
}

/**
 * Every node's contents, for people looking inside: busy and lazy areas as address ranges
 * (lazy ranges include the guard page), and the non-empty pools by size in pages. Each list
 * is read under its node's lock, so the view is consistent per list, not across the nodes.
 */
export function describeNodes(d: NodesDesign, core: VmapCore, cpu: number): VmapNodeInfo[] {
  const s = d.s;
  const out: VmapNodeInfo[] = [];
  const ranges = (h: number, lock: Lock): { start: number; end: number }[] => {
    core.take(lock, cpu);
    try {
      return listIds(s, h).map((va) => ({ start: s.start(va), end: s.end(va) }));
    } finally {
      lock.unlock();
    }
  };
  for (let n = 0; n < d.nrNodes; n++) {
    const pools: { pages: number; count: number }[] = [];
    d.pools.lengths(n).forEach((count, k) => {
      if (count > 0) pools.push({ pages: k + 1, count });
    });
    out.push({
      node: n,
      busy: ranges(d.busyHead(n), d.busyLock(n)),
      lazy: ranges(d.lazyHead(n), d.lazyLock(n)),
      pools,
    });
  }
  return out;
}
