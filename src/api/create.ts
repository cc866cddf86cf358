/**
 * Making and attaching a vmalloc subsystem: the options of createVmalloc() and
 * attachVmalloc(), the check of a handle that arrives from another worker, and the per-thread
 * context (VmContext) either one builds for the Vmalloc façade.
 *
 * Invariant: everything is checked before anything is claimed or written, so a refused call
 * leaves the subsystem as it was; a handle is accepted only if it is structurally one
 * (buffers of the right type and size) and its control block carries the brand and the
 * configuration fingerprint written at creation (a forged, JSON-copied or edited handle is
 * refused with EINVAL naming `handle`).
 * Callers: createVmalloc() and attachVmalloc() in src/api/vmalloc.ts.
 *
 * Kernel: none; in the kernel every CPU sees the one vmalloc state. Here a worker is a CPU and
 * reaches the state through the handle's shared buffers.
 */

import { VmallocError } from '../errors.js';
import { DESIGNS } from '../designs/registry.js';
import { VA_STAT_WORDS } from '../designs/stat.js';
import { consoleLogger, type VmallocLogger } from '../shared/logger.js';
import { checkCpu, throwEinval } from '../mm/args.js';
import { type VmallocOptions, resolveConfig } from '../mm/config.js';
import {
  VmContext,
  brandMatches,
  createHandle,
  declareParts,
  type VmallocHandle,
} from '../mm/shared-state.js';

export interface CreateVmallocOptions extends VmallocOptions {
  /**
   * The creating thread's cpu id, claimed as attachVmalloc claims one: no worker can attach
   * with it until this instance detaches (vm.detach()). @defaultValue 0
   */
  cpu?: number;
}

export interface AttachOptions {
  /**
   * This worker's cpu id: from 0 to nrCpus - 1, one thread per id at a time (the creator holds
   * its own, 0 by default). The id is claimed until detach(), or until the worker is declared
   * dead (markCpuDead, watchWorker).
   */
  cpu: number;
  /** Where this worker's warnings go. @defaultValue console */
  logger?: VmallocLogger | null;
}

/** A new subsystem's context, as cpu `options.cpu`, its id claimed. */
export function createContext(options: CreateVmallocOptions): VmContext {
  const config = resolveConfig(options, ['cpu']);
  const logger = resolveLogger('create vmalloc', options.logger);
  const cpu = options.cpu === undefined ? 0 : options.cpu;
  checkCpu('create vmalloc', cpu, config.nrCpus);
  const ctx = new VmContext(createHandle(config), cpu, logger);
  ctx.init();
  ctx.claims.claim('create vmalloc', cpu, ctx.allLocks); // (new words: free)
  return ctx;
}

/** A context on the subsystem of `handle`, as cpu `options.cpu`, its id claimed. */
export function attachContext(handle: VmallocHandle, options: AttachOptions): VmContext {
  checkHandle(handle);
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throwEinval('attach vmalloc', 'options must be an object with a cpu', options);
  const cpu = options.cpu;
  checkCpu('attach vmalloc', cpu, handle.config.nrCpus);
  const ctx = new VmContext(handle, cpu, resolveLogger('attach vmalloc', options.logger));
  ctx.claims.claim('attach vmalloc', cpu, [...ctx.allLocks, ...ctx.pool.locks()]);
  return ctx;
}

export function resolveLogger(fn: string, logger: unknown): VmallocLogger | null {
  if (logger === undefined) return consoleLogger;
  if (logger === null) return null;
  if (typeof logger !== 'object' || typeof (logger as VmallocLogger).warn !== 'function')
    throwEinval(fn, 'logger must be an object with a warn(message) method, or null', logger);
  return logger as VmallocLogger;
}

function badHandle(why: string): never {
  throw new VmallocError(
    'EINVAL',
    `Cannot attach vmalloc: handle must be the handle of a Vmalloc created with shared: true (vm.handle, passed by postMessage), ${why}`,
  );
}

/** Is every buffer under `v` (nested objects and arrays, a few levels deep) shared memory? */
function allShared(v: unknown, depth: number): boolean {
  if (v instanceof SharedArrayBuffer) return true;
  if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')
    return true;
  if (typeof v !== 'object' || depth === 0 || ArrayBuffer.isView(v)) return false;
  if (v instanceof ArrayBuffer) return false;
  return Object.values(v).every((x) => allShared(x, depth - 1));
}

const HANDLE_BUFFERS = ['va', 'vm', 'frames', 'pool', 'strings'] as const;
const HANDLE_WORDS = ['pageTable', 'locks', 'ctl', 'stat', 'pcpu'] as const;

/**
 * Refuses anything but the handle of a live shared subsystem: the shape first (so that no
 * TypeError escapes), then the sizes the configuration implies, then the brand and the
 * configuration's fingerprint in the control block.
 */
function checkHandle(handle: unknown): asserts handle is VmallocHandle {
  if (handle === null || typeof handle !== 'object')
    badHandle(`got ${handle === null ? 'null' : typeof handle}`);
  const h = handle as Record<string, unknown>;
  if (h.kind !== 'Vmalloc') badHandle(`got an object whose kind is ${String(h.kind)}`);
  const config = h.config as Record<string, unknown> | null | undefined;
  if (config === null || typeof config !== 'object') badHandle('got one without its config');
  if (config.shared !== true) badHandle('got the handle of a subsystem made with shared: false');
  const design = config.design;
  const nrCpus = config.nrCpus;
  if (typeof design !== 'string' || !Object.hasOwn(DESIGNS, design))
    badHandle(`got one whose config.design is ${String(design)}`);
  if (typeof nrCpus !== 'number' || !Number.isInteger(nrCpus) || nrCpus < 1 || nrCpus > 4096)
    badHandle(`got one whose config.nrCpus is ${String(nrCpus)}`);
  for (const key of HANDLE_WORDS) {
    if (!(h[key] instanceof SharedArrayBuffer))
      badHandle(`got one whose ${key} is not a SharedArrayBuffer (a copy through JSON loses them)`);
  }
  for (const key of HANDLE_BUFFERS) {
    const part = h[key];
    if (part === null || typeof part !== 'object' || !allShared(part, 4))
      badHandle(`got one whose ${key} buffers are not SharedArrayBuffers`);
  }
  const v = handle as VmallocHandle;
  const parts = declareParts(v.config);
  if (
    v.ctl.byteLength !== parts.layout.ctlWords * 4 ||
    v.stat.byteLength !== nrCpus * VA_STAT_WORDS * 8
  )
    badHandle('got one whose buffers do not match its config');
  if (!brandMatches(new Int32Array(v.ctl), parts, v.config))
    badHandle('got one whose config or control block was changed after creation');
}
