/**
 * Options of createVmalloc() and their validation; the resolved configuration.
 *
 * Holds: VmallocOptions (documented defaults), VmallocConfig (everything resolved, plain data
 * that can travel to a worker), and resolveConfig().
 * Callers: createVmalloc, attach.
 */

import { VmallocError, isPowerOfTwo } from '../errors.js';
import {
  DEFAULT_DESIGN,
  DESIGN_NAMES,
  isDesignName,
  type DesignName,
} from '../designs/registry.js';
import { nrVmapNodes } from '../designs/nodes.js';
import { OFFLOAD_MAX_NODES, offloadNodeSize, offloadNrNodes } from '../designs/offload2023-node.js';
import { machineCpuCount } from '../shared/cpu.js';
import {
  SPACE_END,
  SPACE_START,
  X86_64_VMALLOC_SIZE,
  X86_64_VMALLOC_START,
  fls,
} from '../shared/layout.js';
import type { VmallocLogger } from '../shared/logger.js';

/** A design's name, as registered in src/designs/registry.ts. */
export type VmallocDesign = DesignName;

export interface VmallocOptions {
  /**
   * Which kernel generation's structures: 'nodes' (6.9+: per-CPU vmap nodes with their own busy
   * and lazy trees and size-segregated pools), 'global' (5.2 to 6.8: one free tree, global
   * busy and lazy trees under three global locks), 'legacy' (<= 5.1: the busy-list walk with
   * free_vmap_cache), 'rfc2018' (the 2018 RFC: first fit over the free list) or 'offload2023'
   * (the 2023 v2 series: per-node free heaps). See src/designs/registry.ts. @defaultValue 'nodes'
   */
  design?: VmallocDesign;
  /**
   * Simulated CPUs (num_online_cpus()); lazy_max_pages() depends on it.
   * @defaultValue the machine's (navigator.hardwareConcurrency, or Node's availableParallelism())
   */
  nrCpus?: number;
  /** @defaultValue 4096 */
  pageSize?: number;
  /** Start of the vmalloc window. @defaultValue 0xc90000000000 (kernel 0xffffc90000000000) */
  vmallocStart?: number;
  /** Size of the vmalloc window; VMALLOC_END is start + size - 1, as on x86_64. @defaultValue 32 TiB */
  vmallocSize?: number;
  /** Bytes of physical page frames. @defaultValue 1 GiB */
  physicalMemory?: number;
  /** Keep all state in SharedArrayBuffers. @defaultValue true when available */
  shared?: boolean;
  /** Where warnings go (kernel text, rate-limited); null silences them. @defaultValue console */
  logger?: VmallocLogger | null;
  /**
   * Run check() after every operation that changes state (true), or after every n-th (a
   * number): slow, for tests and debugging. @defaultValue false
   */
  checkEveryOp?: boolean | number;
  /** Print the N0=<pages> NUMA column in vmallocinfo, as CONFIG_NUMA kernels do. @defaultValue true */
  numaInfo?: boolean;
  /** Collect lock statistics (lock_stat) from the start; see also setLockStat(). @defaultValue false */
  lockStat?: boolean;
  /**
   * How long a worker waits for a lock before giving up with ETIMEDOUT (its holder may have
   * died without markCpuDead() being called). @defaultValue 10000
   */
  lockTimeoutMs?: number;
  /**
   * How vm_map_ram finds the vmap block of an address: 'percpu' (6.4+: one hash per CPU,
   * chosen by (addr / VMAP_BLOCK_SIZE) % nrCpus, each under its own lock) or 'global' (before:
   * one hash, vmap_blocks, under one lock). @defaultValue 'percpu'
   */
  vmapBlockHash?: 'global' | 'percpu';
  /**
   * CONFIG_NR_CPUS, the compile-time CPU limit VMAP_BBMAP_BITS (the pages of a vmap block) is
   * computed from: min(1024, max(128, VMALLOC_PAGES / roundup_pow_of_two(NR_CPUS) / 16)), with
   * VMALLOC_SPACE 128 GiB. At least nrCpus. @defaultValue 8192 (a distribution kernel's: 256 pages)
   */
  configNrCpus?: number;
  /**
   * Policy (the designs with vmap nodes: 'nodes', 'offload2023'): how many vmap nodes. An
   * integer from 1 to 255; 1 is one node (no pools in 'nodes': node_alloc() serves nothing).
   * @defaultValue the design's formula: 'nodes' clamp(nrCpus, 1, 128), 'offload2023'
   * clamp(nrCpus / 2, 1, 255); the other designs have none (1)
   */
  nrVmapNodes?: number;
  /**
   * Policy (designs with vmap nodes): the zone size, in bytes: addresses are dealt to the
   * nodes in zones of this size ((addr / zone) % nodes). In 'offload2023' it is node_size, also
   * the block a node fetches from the global heap (it serves requests up to a quarter of it).
   * A multiple of the page size from 4 pages to 1 GiB. @defaultValue 'nodes' 16 pages;
   * 'offload2023' min(64 KiB << fls(nrCpus), 4 MiB)
   */
  vmapZoneSize?: number;
  /**
   * Policy ('nodes'): at most this many ready areas in each size pool of a node; a purged
   * area beyond it goes back to the free tree (the kernel has no limit). An integer from 0
   * (pools off) to 2^31 - 1. @defaultValue 2^31 - 1 (no limit)
   */
  vmapPoolLimit?: number;
  /**
   * Policy ('nodes'): the share of each pool a drain decays, from 0 (none) to 1 (all): the
   * kernel's decay_va_pool_node() takes a quarter (len >> 2). @defaultValue 0.25
   */
  vmapPoolDecay?: number;
  /**
   * Policy: lazy_max_pages(), the backlog of lazily freed pages above which a purge runs, as a
   * fixed count instead of the kernel's formula. An integer from 1 to 2^31 - 1.
   * @defaultValue fls(nrCpus) * 32 MiB / pageSize
   */
  lazyMaxPages?: number;
}

export interface VmallocConfig {
  design: VmallocDesign;
  nrCpus: number;
  pageSize: number;
  spaceStart: number;
  spaceEnd: number;
  vmallocStart: number;
  /** VMALLOC_END: the end used for requests (start + size - 1). */
  vmallocEnd: number;
  physicalMemory: number;
  /** lazy_max_pages() = fls(nrCpus) * 32 MiB / pageSize, or the lazyMaxPages option */
  lazyMaxPages: number;
  shared: boolean;
  numaInfo: boolean;
  /** check() after every n-th state-changing operation; 0: never. */
  checkEveryOp: number;
  lockStat: boolean;
  lockTimeoutMs: number;
  vmapBlockHash: 'global' | 'percpu';
  configNrCpus: number;
  /** Vmap nodes (resolved: the design's formula when not given; 1 for designs without). */
  nrVmapNodes: number;
  /** Zone size in bytes (resolved; 'offload2023': node_size); 1 with a single node. */
  vmapZoneSize: number;
  vmapPoolLimit: number;
  vmapPoolDecay: number;
}

function bad(what: string, value: unknown): never {
  throw new VmallocError('EINVAL', `Cannot create vmalloc: ${what}, got ${shown(value)}`);
}

/** A value in a message, as the other validators show it (strings quoted). */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n (a bigint)`;
  if (typeof value === 'symbol') return 'a symbol';
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (value !== null && typeof value === 'object') return 'an object';
  return String(value);
}

/** Every option createVmalloc() knows; any other key is refused (a typo would be ignored). */
const OPTION_NAMES: readonly (keyof VmallocOptions)[] = [
  'design',
  'nrCpus',
  'pageSize',
  'vmallocStart',
  'vmallocSize',
  'physicalMemory',
  'shared',
  'logger',
  'checkEveryOp',
  'numaInfo',
  'lockStat',
  'lockTimeoutMs',
  'vmapBlockHash',
  'configNrCpus',
  'nrVmapNodes',
  'vmapZoneSize',
  'vmapPoolLimit',
  'vmapPoolDecay',
  'lazyMaxPages',
];

function checkOptionNames(o: object, also: readonly string[]): void {
  for (const key of Reflect.ownKeys(o)) {
    if (typeof key === 'string' && (OPTION_NAMES as readonly string[]).includes(key)) continue;
    if (typeof key === 'string' && also.includes(key)) continue;
    throw new VmallocError(
      'EINVAL',
      `Cannot create vmalloc: ${typeof key === 'symbol' ? 'a symbol key' : JSON.stringify(key)} is not an option (the options are ${[...OPTION_NAMES, ...also].join(', ')})`,
    );
  }
}

/** An optional boolean option. */
function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') bad(`${name} must be a boolean`, value);
  return value;
}

/**
 * Checks every option (undefined means the default; null only for logger, which
 * createVmalloc checks) and resolves the configuration. Throws EINVAL naming the option.
 */
export function resolveConfig(o: VmallocOptions = {}, also: readonly string[] = []): VmallocConfig {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) bad('options must be an object', o);
  checkOptionNames(o, also);
  const design = o.design === undefined ? DEFAULT_DESIGN : o.design;
  if (!isDesignName(design))
    bad(`design must be one of ${DESIGN_NAMES.map((d) => `'${d}'`).join(', ')}`, design);
  const nrCpus = o.nrCpus === undefined ? machineCpuCount() : o.nrCpus;
  if (!Number.isInteger(nrCpus) || nrCpus < 1 || nrCpus > 4096)
    bad('nrCpus must be an integer from 1 to 4096', nrCpus);
  const pageSize = o.pageSize === undefined ? 4096 : o.pageSize;
  if (
    typeof pageSize !== 'number' ||
    !isPowerOfTwo(pageSize) ||
    pageSize < 1024 ||
    pageSize > 65536
  ) {
    bad('pageSize must be a power of two from 1024 to 65536', pageSize);
  }
  const vmallocStart = o.vmallocStart === undefined ? X86_64_VMALLOC_START : o.vmallocStart;
  const vmallocSize = o.vmallocSize === undefined ? X86_64_VMALLOC_SIZE : o.vmallocSize;
  if (
    !Number.isSafeInteger(vmallocStart) ||
    vmallocStart % pageSize !== 0 ||
    vmallocStart < SPACE_START ||
    // Below the end of the space by the 16 pages vmallocSize needs at least: a start past it
    // is the start's fault, not the size's.
    vmallocStart > SPACE_END - 16 * pageSize
  ) {
    bad(
      'vmallocStart must be a page-aligned address in the managed space, at least 16 pages below its end',
      vmallocStart,
    );
  }
  if (
    !Number.isSafeInteger(vmallocSize) ||
    vmallocSize % pageSize !== 0 ||
    vmallocSize < 16 * pageSize ||
    vmallocStart + vmallocSize > SPACE_END
  ) {
    bad(
      'vmallocSize must be a multiple of the page size, at least 16 pages, ending inside the managed space',
      vmallocSize,
    );
  }
  const physicalMemory = o.physicalMemory === undefined ? 2 ** 30 : o.physicalMemory;
  if (
    !Number.isSafeInteger(physicalMemory) ||
    physicalMemory % pageSize !== 0 ||
    physicalMemory < 16 * pageSize ||
    physicalMemory > 2 ** 32
  ) {
    bad(
      'physicalMemory must be a multiple of the page size from 16 pages to 4 GiB',
      physicalMemory,
    );
  }
  const nrVmapNodes = vmapNodes(o.nrVmapNodes, design, nrCpus);
  return {
    design,
    nrCpus,
    pageSize,
    spaceStart: SPACE_START,
    spaceEnd: SPACE_END,
    vmallocStart,
    vmallocEnd: vmallocStart + vmallocSize - 1,
    physicalMemory,
    lazyMaxPages: lazyMax(o.lazyMaxPages, nrCpus, pageSize),
    shared: flag('shared', o.shared, typeof SharedArrayBuffer === 'function'),
    numaInfo: flag('numaInfo', o.numaInfo, true),
    checkEveryOp: checkEvery(o.checkEveryOp),
    lockStat: flag('lockStat', o.lockStat, false),
    lockTimeoutMs: lockTimeout(o.lockTimeoutMs),
    vmapBlockHash: blockHash(o.vmapBlockHash),
    configNrCpus: configCpus(o.configNrCpus, nrCpus),
    nrVmapNodes,
    vmapZoneSize: zoneSize(o.vmapZoneSize, design, nrCpus, nrVmapNodes, pageSize),
    vmapPoolLimit: poolLimit(o.vmapPoolLimit),
    vmapPoolDecay: poolDecay(o.vmapPoolDecay),
  };
}

function checkEvery(v: boolean | number | undefined): number {
  if (v === undefined || v === false) return 0;
  if (v === true) return 1;
  if (!Number.isSafeInteger(v) || v < 0)
    bad('checkEveryOp must be a boolean or a non-negative integer', v);
  return v;
}

function lockTimeout(v: number | undefined): number {
  if (v === undefined) return 10_000;
  if (!Number.isSafeInteger(v) || v < 1 || v > 2 ** 31 - 1)
    bad('lockTimeoutMs must be a positive integer', v);
  return v;
}

function blockHash(v: unknown): 'global' | 'percpu' {
  if (v === undefined) return 'percpu';
  if (v !== 'global' && v !== 'percpu') bad("vmapBlockHash must be 'global' or 'percpu'", v);
  return v;
}

function configCpus(v: unknown, nrCpus: number): number {
  if (v === undefined) return Math.max(8192, nrCpus);
  if (!Number.isSafeInteger(v) || (v as number) < nrCpus || (v as number) > 2 ** 20)
    bad(`configNrCpus must be an integer from nrCpus (${nrCpus}) to 2^20`, v);
  return v as number;
}

function vmapNodes(v: unknown, design: VmallocDesign, nrCpus: number): number {
  if (v === undefined) {
    if (design === 'nodes') return nrVmapNodes(nrCpus);
    if (design === 'offload2023') return offloadNrNodes(nrCpus);
    return 1;
  }
  if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > OFFLOAD_MAX_NODES)
    bad(`nrVmapNodes must be an integer from 1 to ${OFFLOAD_MAX_NODES}`, v);
  return v as number;
}

function zoneSize(
  v: unknown,
  design: VmallocDesign,
  nrCpus: number,
  nodes: number,
  pageSize: number,
): number {
  if (v !== undefined) {
    if (
      !Number.isSafeInteger(v) ||
      (v as number) % pageSize !== 0 ||
      (v as number) < 4 * pageSize ||
      (v as number) > 2 ** 30
    )
      bad('vmapZoneSize must be a multiple of the page size from 4 pages to 1 GiB', v);
  }
  // One node: every address is node 0's, and 'offload2023' serves nothing (node_size 1).
  if (nodes <= 1) return 1;
  if (v !== undefined) return v as number;
  return design === 'offload2023' ? offloadNodeSize(nrCpus) : 16 * pageSize;
}

function poolLimit(v: unknown): number {
  if (v === undefined) return 2 ** 31 - 1;
  if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > 2 ** 31 - 1)
    bad('vmapPoolLimit must be an integer from 0 to 2^31 - 1', v);
  return v as number;
}

function poolDecay(v: unknown): number {
  if (v === undefined) return 0.25;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1))
    bad('vmapPoolDecay must be a number from 0 to 1', v);
  return v;
}

function lazyMax(v: unknown, nrCpus: number, pageSize: number): number {
  if (v === undefined) return fls(nrCpus) * ((32 * 2 ** 20) / pageSize);
  if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > 2 ** 31 - 1)
    bad('lazyMaxPages must be an integer from 1 to 2^31 - 1', v);
  return v as number;
}
