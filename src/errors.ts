/**
 * VmallocError and the argument checks shared by every public entry point.
 *
 * Holds: the error class with its `code`, and validators whose messages name the call, the
 * argument and the rule ("Cannot alloc: size must be a multiple of the page size (4096), got
 * 4097"). Every validator runs before any state changes, so a throw leaves the state as it was.
 * Callers: VmapSpace, the vmalloc layer, the CLI.
 *
 * Kernel: the kernel returns -EINVAL / -ENOENT / -EBUSY or WARNs; the codes keep those names.
 */

/**
 * Error codes: EINVAL a bad argument; ENOENT no such live area; EFAULT a memory access outside
 * a live area's mapped pages; EINVARIANT the checker found a broken invariant (a bug);
 * EOWNERDEAD a lock's holder died (its worker exited); ETIMEDOUT a lock was not released
 * within the lock timeout. EBUSY a page frame still in use (freed or handed over while an area
 * maps or owns it); ENOMEM the table of caller names is full.
 */
export type VmallocErrorCode =
  'EINVAL' | 'ENOENT' | 'EBUSY' | 'ENOMEM' | 'EFAULT' | 'EINVARIANT' | 'EOWNERDEAD' | 'ETIMEDOUT';

export class VmallocError extends Error {
  readonly code: VmallocErrorCode | string;

  constructor(code: VmallocErrorCode | string, message: string) {
    super(message);
    this.name = 'VmallocError';
    this.code = code;
  }
}

/** `0x` + lower-case hex, as the kernel prints addresses. */
export function hex(n: number): string {
  return '0x' + n.toString(16);
}

function describe(value: unknown): string {
  if (typeof value === 'number')
    return Number.isInteger(value) && Math.abs(value) >= 2 ** 16
      ? `${value} (${hex(value)})`
      : String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n (a bigint)`;
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}

function fail(action: string, arg: string, rule: string, value: unknown): never {
  throw new VmallocError('EINVAL', `Cannot ${action}: ${arg} must ${rule}, got ${describe(value)}`);
}

/** Is `n` a number that is a power of two (2^0 .. 2^1023)? */
export function isPowerOfTwo(n: number): boolean {
  if (!Number.isInteger(n) || n < 1) return false;
  if (n <= 0x40000000) return (n & (n - 1)) === 0;
  return 2 ** Math.round(Math.log2(n)) === n;
}

/** An exact integer: a number with no fraction, within +-(2^53 - 1). */
export function checkInteger(action: string, arg: string, value: unknown): number {
  if (typeof value !== 'number') fail(action, arg, 'be a number', value);
  if (!Number.isFinite(value)) fail(action, arg, 'be a finite number', value);
  if (!Number.isInteger(value)) fail(action, arg, 'be an integer', value);
  if (!Number.isSafeInteger(value)) fail(action, arg, 'not exceed 2^53 - 1 in magnitude', value);
  return value;
}

/**
 * A size: a positive multiple of `pageSize`, at most `limit` bytes (`limitName` says what the
 * limit is, for the message).
 */
export function checkSize(
  action: string,
  arg: string,
  value: unknown,
  pageSize: number,
  limit: number,
  limitName: string,
): number {
  const n = checkInteger(action, arg, value);
  if (n <= 0) fail(action, arg, 'be positive', n);
  if (!Number.isInteger(n / pageSize)) {
    fail(action, arg, `be a multiple of the page size (${pageSize})`, n);
  }
  if (n > limit) fail(action, arg, `not exceed ${limitName} (${limit})`, n);
  return n;
}

/** An alignment: a power of two, at least 1. */
export function checkAlign(action: string, arg: string, value: unknown): number {
  if (typeof value !== 'number') fail(action, arg, 'be a number', value);
  if (!isPowerOfTwo(value)) fail(action, arg, 'be a power of two >= 1', value);
  return value;
}

/** An address in `[lo, hi]` (inclusive on both ends; the caller says which end is open). */
export function checkAddressIn(
  action: string,
  arg: string,
  value: unknown,
  lo: number,
  hi: number,
  rangeText: string,
): number {
  const n = checkInteger(action, arg, value);
  if (n < lo || n > hi) fail(action, arg, `lie within ${rangeText}`, n);
  return n;
}

/** An options bag: undefined or a plain object. */
export function checkOptions(action: string, value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') fail(action, 'options', 'be an object', value);
  return value as Record<string, unknown>;
}
