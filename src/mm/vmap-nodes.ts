/**
 * The vmap nodes as the façade shows them: the nodes design's structures node by node, the
 * node of an address, and the "vmap-node" shrinker.
 *
 * Holds: nodesOf(), vmapNodes(), addrToNodeId(), nodeShrinker(); each answers for the other
 * designs too (no nodes: empty, node 0, nothing to shrink).
 * Callers: the façade (vmapNodes, addrToNodeId, nodes, shrinker). The shrinker's scan changes
 * the pools and the free tree, so it runs inside the recovery gate (gated(), recovery-gate.ts).
 *
 * Kernel: struct vmap_node, addr_to_node_id(), the vmap_node shrinker of mm/vmalloc.c.
 */

import { NodesDesign, type VmapNodeInfo } from '../designs/nodes.js';
import { checkAddr } from './args.js';
import { Recovered, gated } from './recovery-gate.js';
import type { VmContext } from './shared-state.js';

/** The nodes design's structures (null in other designs). */
export function nodesOf(ctx: VmContext): NodesDesign | null {
  const d = ctx.areas.design;
  return d instanceof NodesDesign ? d : null;
}

export function vmapNodes(ctx: VmContext): VmapNodeInfo[] {
  const nodes = nodesOf(ctx);
  if (nodes === null) return [];
  ctx.refreshAll();
  return nodes.describe(ctx.cpu);
}

export function addrToNodeId(ctx: VmContext, addr: number): number {
  checkAddr('addrToNodeId', addr);
  const nodes = nodesOf(ctx);
  return nodes === null ? 0 : nodes.addrToNodeId(addr);
}

function shrinkScan(ctx: VmContext, nodes: NodesDesign): number {
  return nodes.shrinkScan(ctx.cpu);
}

/** count(): areas held in node pools; scan(): releases them all, then runs `afterScan`. */
export function nodeShrinker(
  ctx: VmContext,
  afterScan: () => void,
): { count(): number; scan(): number } {
  const nodes = nodesOf(ctx);
  return {
    count: () => (nodes === null ? 0 : nodes.shrinkCount()),
    scan: () => {
      let n = 0;
      if (nodes !== null) {
        // It changes the pools and the free tree: inside the recovery gate, as every
        // state-changing call (a recover() never rebuilds under it, and a pool or tree lock
        // a dead cpu holds is recovered from). A retry after a recovery finds the pools
        // empty (the recovery frees every pooled area), so it returns 0 for them.
        n = gated(ctx, Recovered.RETRY, shrinkScan, nodes);
      }
      afterScan();
      return n;
    },
  };
}
