/**
 * The invariants of the 'offload2023' design, checked from its structures, and a description
 * of its nodes for people looking inside.
 *
 * Holds: checkOffload() (run by the design's check()), describeOffload(), OffloadNodeInfo.
 * Invariant checked (the review of v2 6/9 states the first three):
 *  - a node's busy tree holds the areas whose start lies in its zones (an area may cross into
 *    the next zone); a node's lazy tree the areas encoded with its id, or, with none encoded,
 *    whose start lies in its zones; lazy neighbours in one node are merged;
 *  - a node's free heap holds only ranges inside the blocks it fetched: each block is
 *    node_size bytes, its first and last page are margins (one-page records of the node's
 *    margin tree, in pairs), and every heap range lies inside one block's interior, so nothing
 *    merges across blocks; no interior is wholly free (a block freed whole went back);
 *  - an area encoded with node n lies inside one of node n's blocks; an area with no node
 *    encoded, and every global free block, lies outside every block;
 *  - no fetch is in progress (check() runs between operations);
 *  - global free + busy + lazy + node heaps + margins tile the managed space (by the core).
 * Callers: Offload2023Design.check() and describe().
 */

import { invariant } from '../debug.js';
import { hex } from '../errors.js';
import { checkCoalesced, checkRbList } from '../kva/check.js';
import type { VaStore } from '../kva/vmap-area.js';
import type { Lock } from '../shared/lock.js';
import type { DesignCheck } from './design.js';
import { listIds } from './free-space.js';
import {
  N_BUSY_HEAD,
  N_FILL,
  N_FREE_HEAD,
  N_LAZY_HEAD,
  N_MARGIN_HEAD,
  type OffloadView,
} from './offload2023-node.js';

interface Block {
  node: number;
  /** The block: [start, end), node_size bytes; its interior is [start + page, end - page). */
  start: number;
  end: number;
}

function range(s: VaStore, x: number): string {
  return `[${hex(s.start(x))}, ${hex(s.end(x))})`;
}

/** The block with the greatest start at or below `addr`, or null. */
function blockAtOrBelow(blocks: readonly Block[], addr: number): Block | null {
  let lo = 0;
  let hi = blocks.length - 1;
  let found: Block | null = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (blocks[mid]!.start <= addr) {
      found = blocks[mid]!;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Does [start, end) meet any block? */
function meetsBlock(blocks: readonly Block[], start: number, end: number): Block | null {
  const b = blockAtOrBelow(blocks, end - 1);
  return b !== null && b.end > start ? b : null;
}

/**
 * Checks every node and the blocks; `free` and `own` come from the global free tree's check.
 * Returns the records by kind, and the groups that tile the space.
 */
export function checkOffload(
  d: OffloadView,
  start: number,
  end: number,
  free: number[],
  own: number[],
): DesignCheck {
  const s = d.s;
  const P = d.pageSize;
  const busy: number[] = [];
  const lazy: number[] = [];
  const heap: number[][] = [];
  const margins: number[] = [];
  const blocks: Block[] = [];
  for (let n = 0; n < d.nrNodes; n++) {
    const o = d.nodeBase(n);
    const heads = [N_BUSY_HEAD, N_LAZY_HEAD, N_FREE_HEAD, N_MARGIN_HEAD].map((w) => d.ctl[o + w]!);
    own.push(...heads);
    invariant(d.ctl[o + N_FILL] === 0, () => `node ${n}: a fetch is in progress (fill flag set)`);
    for (const va of checkRbList(s, heads[0]!, false, `node ${n} busy tree`, start, end)) {
      const want = d.addrToNodeId(s.start(va));
      invariant(
        want === n,
        () => `busy area ${range(s, va)} is in node ${n}, its start belongs to node ${want}`,
      );
      busy.push(va);
    }
    const lz = checkRbList(s, heads[1]!, false, `node ${n} lazy tree`, start, end);
    checkCoalesced(s, lz, `node ${n} lazy tree`);
    for (const va of lz) {
      const id = d.decodeVnId(s.flags(va));
      const want = id >= 0 ? id : d.addrToNodeId(s.start(va));
      invariant(want === n, () => `lazy range ${range(s, va)} is in node ${n}, belongs in ${want}`);
      lazy.push(va);
    }
    const h = checkRbList(s, heads[2]!, true, `node ${n} free heap`, start, end);
    checkCoalesced(s, h, `node ${n} free heap`);
    heap.push(h);
    const ms = checkRbList(s, heads[3]!, false, `node ${n} margins`, start, end);
    invariant(ms.length % 2 === 0, () => `node ${n} has an odd number of margins`);
    for (let k = 0; k < ms.length; k += 2) {
      const l = ms[k]!;
      const r = ms[k + 1]!;
      invariant(
        s.size(l) === P && s.size(r) === P && s.end(r) - s.start(l) === d.nodeSize,
        () =>
          `node ${n}: margins ${range(s, l)} and ${range(s, r)} are not the first and last page of a ${d.nodeSize}-byte block`,
      );
      blocks.push({ node: n, start: s.start(l), end: s.end(r) });
      margins.push(l, r);
    }
  }
  blocks.sort((a, b) => a.start - b.start);
  for (let k = 1; k < blocks.length; k++)
    invariant(
      blocks[k - 1]!.end <= blocks[k]!.start,
      () => `blocks at ${hex(blocks[k - 1]!.start)} and ${hex(blocks[k]!.start)} overlap`,
    );
  /** Range x must lie inside the interior of one of node n's blocks. */
  const inInterior = (x: number, n: number, what: string): Block => {
    const b = blockAtOrBelow(blocks, s.start(x));
    invariant(
      b !== null && b.node === n && s.start(x) >= b.start + P && s.end(x) <= b.end - P,
      () => `${what} ${range(s, x)} of node ${n} is not inside one of node ${n}'s block interiors`,
    );
    return b;
  };
  for (let n = 0; n < d.nrNodes; n++)
    for (const x of heap[n]!) {
      const b = inInterior(x, n, 'free range');
      invariant(
        s.size(x) < d.nodeSize - 2 * P,
        () => `node ${n}'s block at ${hex(b.start)} is wholly free but was not returned`,
      );
    }
  for (const [what, ids] of [
    ['busy area', busy],
    ['lazy range', lazy],
  ] as const)
    for (const x of ids) {
      const id = d.decodeVnId(s.flags(x));
      if (id >= 0) inInterior(x, id, what);
      else {
        const b = meetsBlock(blocks, s.start(x), s.end(x));
        invariant(
          b === null,
          () => `${what} ${range(s, x)} has no node but lies in node ${b!.node}'s block`,
        );
      }
    }
  for (const x of free) {
    const b = meetsBlock(blocks, s.start(x), s.end(x));
    invariant(b === null, () => `global free block ${range(s, x)} meets node ${b!.node}'s block`);
  }
  const nodeFree = heap.flat();
  return {
    busy,
    lazy,
    free: [...free, ...nodeFree],
    other: [{ kind: 'margin', ids: margins }],
    own,
    tiling: [free, nodeFree, busy, lazy, margins],
  };
}

/** One node as describe() shows it: address ranges, each list in address order. */
export interface OffloadNodeInfo {
  node: number;
  /** Busy areas whose start lies in this node's zones. */
  busy: { start: number; end: number }[];
  /** Lazy ranges encoded with this node (or in its zones with none encoded). */
  lazy: { start: number; end: number }[];
  /** The node's free heap. */
  free: { start: number; end: number }[];
  /** The blocks fetched from the global heap and not yet returned (node_size each). */
  blocks: { start: number; end: number }[];
  fetching: boolean;
}

/** Every node's lists, each read under its lock (`take` locks and refreshes the views). */
export function describeOffload(d: OffloadView, take: (lock: Lock) => void): OffloadNodeInfo[] {
  const s = d.s;
  const ranges = (h: number, lock: Lock): { start: number; end: number }[] => {
    take(lock);
    try {
      return listIds(s, h).map((x) => ({ start: s.start(x), end: s.end(x) }));
    } finally {
      lock.unlock();
    }
  };
  const out: OffloadNodeInfo[] = [];
  for (let n = 0; n < d.nrNodes; n++) {
    const o = d.nodeBase(n);
    const m = ranges(d.ctl[o + N_MARGIN_HEAD]!, d.freeLocks[n]!);
    const blocks: { start: number; end: number }[] = [];
    for (let k = 0; k + 1 < m.length; k += 2)
      blocks.push({ start: m[k]!.start, end: m[k + 1]!.end });
    out.push({
      node: n,
      busy: ranges(d.ctl[o + N_BUSY_HEAD]!, d.busyLocks[n]!),
      lazy: ranges(d.ctl[o + N_LAZY_HEAD]!, d.lazyLocks[n]!),
      free: ranges(d.ctl[o + N_FREE_HEAD]!, d.freeLocks[n]!),
      blocks,
      fetching: Atomics.load(d.ctl, o + N_FILL) !== 0,
    });
  }
  return out;
}
