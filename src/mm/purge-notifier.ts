/**
 * The vmap purge notifier chain as the façade offers it: register and unregister, with their
 * arguments checked.
 *
 * Holds: registerPurgeNotifier(), unregisterPurgeNotifier(). The chain itself is per worker
 * (VmContext.notifiers, each notifier behind a guard that drops what it throws).
 * Callers: the façade's registerPurgeNotifier and unregisterPurgeNotifier.
 *
 * Kernel: register_vmap_purge_notifier(), unregister_vmap_purge_notifier(); the chain runs
 * when an allocation fails even after a purge.
 */

import { VmallocError } from '../errors.js';
import type { PurgeNotifier } from '../designs/vmap-areas.js';
import { throwEinval } from './args.js';
import type { VmContext } from './shared-state.js';

/**
 * Registers a purge notifier (each worker has its own chain); refuses a non-function and,
 * as the kernel's notifier chains refuse a block registered twice (-EEXIST), a repeat.
 */
export function registerPurgeNotifier(ctx: VmContext, fn: unknown): void {
  if (typeof fn !== 'function')
    throwEinval('register_vmap_purge_notifier', 'fn must be a function', fn);
  if (!ctx.addNotifier(fn as PurgeNotifier))
    throw new VmallocError(
      'EINVAL',
      'Cannot register_vmap_purge_notifier: fn is registered already (unregister it first)',
    );
}

export function unregisterPurgeNotifier(ctx: VmContext, fn: unknown): boolean {
  if (typeof fn !== 'function')
    throwEinval('unregister_vmap_purge_notifier', 'fn must be a function', fn);
  return ctx.removeNotifier(fn as PurgeNotifier);
}
