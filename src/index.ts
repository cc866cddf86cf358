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
  VmapSpaceAttachOptions,
  VmapSpaceHandle,
  VmapSpaceOptions,
  VmapSpacePoolOptions,
  VmapSpaceStats,
} from './kva/vmap-space.js';
export { VaFlags } from './kva/vmap-area.js';
export { attachVmalloc, createVmalloc, Vmalloc, VmFlags } from './api/vmalloc.js';
export type {
  AttachOptions,
  CreateVmallocOptions,
  PercpuInfo,
  VmArea,
  VmallocAllocOptions,
  VmallocHandle,
  VmallocStats,
  VmapOptions,
} from './api/vmalloc.js';
export type { VmallocDesign, VmallocOptions } from './mm/config.js';
export { DESIGN_NAMES } from './designs/registry.js';
export type { VmallocLogger } from './shared/logger.js';
export type { PurgeNotifier } from './designs/vmap-areas.js';
export type { VmapNodeInfo } from './designs/nodes.js';
export { KERNEL_BASE, kernelHex, toKernelAddress, fromKernelAddress } from './shared/layout.js';
