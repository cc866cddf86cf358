/**
 * The checks of what a caller hands a VmapSpace's operations (addresses, window bounds, an
 * options bag, attach()'s options), and the refusals every check of the space throws through
 * (einval, refuse: "Cannot <call>: <rule>, got <value>").
 *
 * Invariant: every check here runs before the space changes or allocates anything, and throws
 * VmallocError (EINVAL, or ENOENT for an address that starts no area) naming the call, the
 * argument and the rule; none of it runs per loop iteration of an operation (the hot entry
 * points test the common case inline and call here only for the rest).
 * Callers: VmapSpace (src/kva/vmap-space.ts), vmap-space-options.ts (the constructor's
 * options), vmap-space-handle.ts (attach's handle), vmap-space-lock.ts (attach's options).
 */

import { VmallocError, checkInteger, checkOptions, hex } from '../errors.js';
import type { VaStore } from './vmap-area.js';

export const ATTACH_CALL = 'attach VmapSpace';

/** How a value reads in a message (a symbol would throw in a template literal). */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n (a bigint)`;
  if (typeof value === 'symbol') return 'a symbol';
  if (typeof value === 'function') return 'a function';
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) >= 2 ** 16)
    return `${value} (${hex(value)})`;
  return String(value);
}

export function einval(action: string, rule: string, value: unknown): never {
  refuse(action, `${rule}, got ${shown(value)}`);
}

export function refuse(action: string, text: string): never {
  throw new VmallocError('EINVAL', `Cannot ${action}: ${text}`);
}

/**
 * An integer in [lo, hi], where hi may be 2^53 (an end address): a number, finite, with no
 * fraction, within the range (`rule` says which in words). Every double >= 2^53 is an integer,
 * so `hi <= 2^53` is what keeps the accepted values exact.
 */
export function checkBound(
  action: string,
  arg: string,
  value: unknown,
  lo: number,
  hi: number,
  rule: string,
): number {
  if (typeof value !== 'number') einval(action, `${arg} must be a number`, value);
  if (!Number.isFinite(value)) einval(action, `${arg} must be a finite number`, value);
  if (!Number.isInteger(value)) einval(action, `${arg} must be an integer`, value);
  if (value < lo || value > hi) einval(action, `${arg} must ${rule}`, value);
  return value;
}

/** An address argument (free, find): an integer from 0 to 2^53 - 1. */
export function checkAddr(action: string, value: unknown): number {
  const n = checkInteger(action, 'addr', value);
  if (n < 0) einval(action, 'addr must be an address (an integer from 0 to 2^53 - 1)', n);
  return n;
}

/** alloc()'s vstart: an integer in [start, end). */
export function checkVstart(start: number, end: number, v: unknown): number {
  return checkBound(
    'alloc',
    'vstart',
    v,
    start,
    end - 1,
    `lie within the space [${hex(start)}, ${hex(end)})`,
  );
}

/** alloc()'s vend: an integer in (start, end]; end may be 2^53. */
export function checkVend(start: number, end: number, v: unknown): number {
  return checkBound(
    'alloc',
    'vend',
    v,
    start + 1,
    end,
    `lie within the space (${hex(start)}, ${hex(end)}]`,
  );
}

export function windowInverted(vstart: number, vend: number): never {
  refuse('alloc', `vstart must be below vend, got vstart ${hex(vstart)} and vend ${hex(vend)}`);
}

/** free(addr) found no area starting at addr: `va` is the area containing it, or 0. */
export function notAnAreaStart(s: VaStore, va: number, addr: number): never {
  throw new VmallocError(
    'ENOENT',
    va === 0
      ? `Cannot free: addr must be the start of a live area, got ${hex(addr)}, which no live area contains (never allocated, or already freed)`
      : `Cannot free: addr must be the start of a live area, got ${hex(addr)}, which lies inside the area [${hex(s.start(va))}, ${hex(s.end(va))}); pass the area's start`,
  );
}

/**
 * An options bag: undefined, or a plain object (not null, not an array: an array is an object
 * whose keys would be silently ignored). Out of line: the hot callers test the common case.
 */
export function checkOptionsBag(
  action: string,
  value: unknown,
): Record<string, unknown> | undefined {
  if (Array.isArray(value)) einval(action, 'options must be an object, not an array', value);
  return checkOptions(action, value);
}

/** The cpu of VmapSpace.attach()'s options. */
export function checkAttachOptions(options: unknown): number {
  const opts = checkOptionsBag(ATTACH_CALL, options) ?? {};
  const cpu = opts.cpu === undefined ? 0 : opts.cpu;
  checkBound(ATTACH_CALL, 'cpu', cpu, 0, 0xffff, 'be from 0 to 65535');
  return cpu as number;
}
