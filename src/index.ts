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
export { parseVmallocinfo } from './mm/vmallocinfo-parse.js';
export type { VmallocinfoKind, VmallocinfoLine } from './mm/vmallocinfo-parse.js';
export { vmallocinfoPages } from './mm/vmallocinfo-import.js';
export type {
  ImportedArea,
  VmallocinfoAddresses,
  VmallocinfoImport,
} from './mm/vmallocinfo-import.js';
export { DESIGN_NAMES } from './designs/registry.js';
export type { VmallocLogger } from './shared/logger.js';
export type { PurgeNotifier } from './designs/vmap-areas.js';
export type { VmapNodeInfo } from './designs/nodes.js';
export { SNAPSHOT_SCHEMA_VERSION } from './mm/snapshot.js';
export type {
  SnapshotAreaKind,
  SnapshotBusyArea,
  SnapshotRange,
  SnapshotVmapBlock,
  VmallocSnapshot,
} from './mm/snapshot.js';
export { KERNEL_BASE, kernelHex, toKernelAddress, fromKernelAddress } from './shared/layout.js';
// Types reachable from the public API (handle parts, statistics, the resolved configuration):
// exported so that users can name them; the handle's parts are opaque, pass them on as they are.
export type { DesignName } from './designs/registry.js';
export type { VmallocConfig } from './mm/config.js';
export type { LockStat } from './shared/lock-table.js';
export type { WatchedWorker } from './mm/cpu-supervision.js';
export type { AnyBuffer } from './shared/buffers.js';
export type { ArenaBuffers } from './shared/record-arena.js';
export type { PageAllocatorBuffers } from './mm/page-alloc.js';
export type { PagesPoolHandle } from './mm/pages-pool.js';
export type { StringTableBuffers } from './shared/strings.js';
export type { RecoveryReport } from './mm/recovery.js';
