/**
 * The designs, by name: the one place a design is registered.
 *
 * Holds: DESIGNS (name -> how to declare its shared words and locks, and how to build it over
 * the core), the list of names, and their one-line descriptions for help texts.
 * Invariant: a design's declare() depends only on the configuration, so every thread that
 * attaches to the same buffers gets the same offsets.
 * Callers: the vmalloc layer's shared-state assembly (src/mm/shared-state.ts), option checks.
 * Adding a design is adding its module and one entry here.
 */

import type { ControlLayout } from '../shared/control-layout.js';
import type { LockTable } from '../shared/lock.js';
import type { VmapCore, VmapDesign } from './design.js';
import { GlobalDesign } from './global.js';
import { LegacyDesign } from './legacy.js';
import { NodesDesign } from './nodes.js';
import { Offload2023Design } from './offload2023.js';
import { Rfc2018Design } from './rfc2018.js';

export interface DesignEntry {
  /** Which kernels used it, and what it is, for help texts. */
  readonly summary: string;
  /**
   * Declares the design's words and locks; the result is handed back to create(). `nrNodes`:
   * the vmap nodes of the configuration (designs without nodes ignore it).
   */
  declare(layout: ControlLayout, nrCpus: number, nrNodes: number): unknown;
  create(core: VmapCore, decl: unknown, table: LockTable): VmapDesign;
}

function entry<D>(
  summary: string,
  declare: (layout: ControlLayout, nrCpus: number, nrNodes: number) => D,
  create: (core: VmapCore, decl: D, table: LockTable) => VmapDesign,
): DesignEntry {
  return { summary, declare, create: create as DesignEntry['create'] };
}

export const DESIGNS = {
  nodes: entry(
    '6.9+: per-CPU vmap nodes with their own busy and lazy trees and size-segregated pools',
    NodesDesign.declare,
    (core, decl, table) => new NodesDesign(core, decl, table),
  ),
  global: entry(
    '5.2 to 6.8: one free tree, global busy and lazy trees under three global locks',
    GlobalDesign.declare,
    (core, decl, table) => new GlobalDesign(core, decl, table),
  ),
  legacy: entry(
    '<= 5.1: busy tree + list only, allocation walks the gaps from free_vmap_cache; one global lock',
    LegacyDesign.declare,
    (core, decl, table) => new LegacyDesign(core, decl, table),
  ),
  rfc2018: entry(
    'October 2018 RFC (never merged): free blocks in a plain rb-tree + list, first fit over the list, one vmap_area_lock, 4.19 lazy purge',
    Rfc2018Design.declare,
    (core, decl, table) => new Rfc2018Design(core, decl, table),
  ),
  offload2023: entry(
    'v2 of the 6.9 series (Aug 2023, not merged): vmap nodes with their own free heaps, fed node_size blocks from the global heap',
    Offload2023Design.declare,
    (core, decl, table) => new Offload2023Design(core, decl, table),
  ),
} as const satisfies Record<string, DesignEntry>;

export type DesignName = keyof typeof DESIGNS;

export const DESIGN_NAMES = Object.keys(DESIGNS) as DesignName[];

export const DEFAULT_DESIGN: DesignName = 'nodes';

export function isDesignName(name: unknown): name is DesignName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(DESIGNS, name);
}
