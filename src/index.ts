/**
 * vmalloc: the Linux kernel's vmalloc address allocator in TypeScript.
 *
 * Public entry points. The core never imports the CLI or the report.
 */

export { VmallocError } from './errors.js';
export type { VmallocErrorCode } from './errors.js';
export { VmapSpace } from './kva/vmap-space.js';
export type { AllocOptions, Range, VmapSpaceOptions, VmapSpaceStats } from './kva/vmap-space.js';
