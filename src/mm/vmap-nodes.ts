/**
 * The vmap nodes as the façade shows them: the nodes design's structures node by node, the
 * node of an address, and the "vmap-node" shrinker.
 *
 * Holds: nodesOf(), vmapNodes(), addrToNodeId(), nodeShrinker(); each answers for the other
 * designs too (no nodes: empty, node 0, nothing to shrink).
 * Callers: the façade (vmapNodes, addrToNodeId, nodes, shrinker).
 *
 * Kernel: struct vmap_node, addr_to_node_id(), the vmap_node shrinker of mm/vmalloc.c.
 */

import { NodesDesign, type VmapNodeInfo } from '../designs/nodes.js';
import { checkAddr } from './args.js';
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

/** count(): areas held in node pools; scan(): releases them all, then runs `afterScan`. */
export function nodeShrinker(
  ctx: VmContext,
  afterScan: () => void,
): { count(): number; scan(): number } {
  const nodes = nodesOf(ctx);
  return {
    count: () => (nodes === null ? 0 : nodes.shrinkCount()),
    scan: () => {
      const n = nodes === null ? 0 : nodes.shrinkScan(ctx.cpu);
      afterScan();
      return n;
    },
  };
}
