/**
 * The shape of a vmap node in the 'offload2023' design: how many nodes, node_size, the words
 * of a node in the control block, and the view of the design its check reads.
 *
 * Holds: offloadNrNodes() and offloadNodeSize() (patch 9/9 of the v2 series), the node word
 * offsets, OffloadView.
 * Invariant: both formulas depend only on the CPU count, so every thread computes the same
 * layout.
 * Callers: the design (./offload2023.ts) and its check (./offload2023-check.ts).
 *
 * Kernel: calculate_nr_nodes() and vmap_init_nodes() of "Mitigate a vmap lock contention" v2
 * 9/9 ("Set nr_nodes/node_size based on CPU-cores", Aug 2023).
 */

import type { VaStore } from '../kva/vmap-area.js';
import { LINE_WORDS } from '../shared/control-layout.js';
import { fls } from '../shared/layout.js';
import type { Lock } from '../shared/lock.js';

/** MAX_NODES: U8_MAX (the id + 1 must fit in a byte of va->flags). */
export const OFFLOAD_MAX_NODES = 255;
/** MAX_NODE_SIZE: SZ_4M, the high threshold of node_size. */
export const OFFLOAD_MAX_NODE_SIZE = 4 * 2 ** 20;

/** calculate_nr_nodes(): two CPUs per node (the "density factor"), 1 to 255 nodes. */
export function offloadNrNodes(nrCpus: number): number {
  return Math.min(Math.max(nrCpus >> 1, 1), OFFLOAD_MAX_NODES);
}

/**
 * node_size in bytes (64-bit): min(SZ_64K << fls(nr_cpus), SZ_4M) with several nodes, else 1,
 * its static initial value (then node_alloc() serves nothing: no request is at most
 * node_size >> 2 = 0 bytes). 4 CPUs: 512 KiB; 8: 1 MiB; 16: 2 MiB; 32 and up: 4 MiB.
 */
export function offloadNodeSize(nrCpus: number): number {
  if (offloadNrNodes(nrCpus) <= 1) return 1;
  return Math.min(65536 * 2 ** fls(nrCpus), OFFLOAD_MAX_NODE_SIZE);
}

/** Words of one node: the heads on the first line, the fill flag and counters on the second. */
export const N_BUSY_HEAD = 0;
export const N_LAZY_HEAD = 1;
/** The node's free heap: an augmented free tree + list. */
export const N_FREE_HEAD = 2;
/** The margins of the blocks the node fetched: a plain tree + list of one-page records. */
export const N_MARGIN_HEAD = 3;
/** fill_in_progress: 1 while one CPU fetches a block for this node. */
export const N_FILL = LINE_WORDS;
/** Blocks fetched from, and returned to, the global heap (written under the node's free lock). */
export const N_FETCHES = LINE_WORDS + 1;
export const N_RETURNS = LINE_WORDS + 2;
export const NODE_WORDS = 2 * LINE_WORDS;

/** What the check and the description read of the design. */
export interface OffloadView {
  readonly s: VaStore;
  readonly ctl: Int32Array;
  readonly nrNodes: number;
  readonly nodeSize: number;
  readonly pageSize: number;
  readonly busyLocks: readonly Lock[];
  readonly lazyLocks: readonly Lock[];
  readonly freeLocks: readonly Lock[];
  nodeBase(n: number): number;
  addrToNodeId(addr: number): number;
  decodeVnId(flags: number): number;
}
