/**
 * vmalloc: the Linux kernel's vmalloc address allocator in TypeScript.
 *
 * Public entry points. The core never imports the CLI or the report.
 */

export { VmallocError } from './errors.js';
export type { VmallocErrorCode } from './errors.js';
export { VmapSpace } from './kva/vmap-space.js';
export type {
  AllocOptions,
  Range,
  VmapSpaceHandle,
  VmapSpaceOptions,
  VmapSpaceStats,
} from './kva/vmap-space.js';
export {
  attachVmalloc,
  createVmalloc,
  Vmalloc,
  VmFlags,
  VMAP_RAM,
  VMAP_BLOCK,
} from './mm/vmalloc.js';
export type {
  AttachOptions,
  VmArea,
  VmallocAllocOptions,
  VmallocHandle,
  VmallocStats,
  VmapOptions,
} from './mm/vmalloc.js';
export type { VmallocDesign, VmallocOptions } from './mm/config.js';
export type { VmallocLogger } from './mm/logger.js';
export type { PurgeNotifier } from './mm/vmap-areas.js';
export type { VmapNodeInfo } from './nodes/vmap-nodes.js';
export { KERNEL_BASE, kernelHex, toKernelAddress, fromKernelAddress } from './mm/layout.js';
