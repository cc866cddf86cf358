/**
 * Argument checks of the vmalloc layer's entry points, and the caller names areas carry.
 *
 * Holds: the validators (each throws VmallocError EINVAL naming the call, the argument and
 * the rule, before anything changes) and callerId(), which interns a caller name (checked on
 * its first use in this thread only) or gives the default one.
 * Callers: the façade (src/api/vmalloc.ts) and the vmalloc-layer modules.
 *
 * The kernel records __builtin_return_address(0) as an area's caller and vmallocinfo prints it
 * with %pS ("func+0x1c/0x40"). Here a caller is a string the user gives; without one an area
 * shows the API function that made it with a zero offset ("vmalloc+0x0/0x0"), which reads
 * like a kernel caller and says where the area came from.
 */

import { VmallocError, checkInteger, isPowerOfTwo } from '../errors.js';
import type { VmContext } from './shared-state.js';

/** The address space the library models: [0, 2^48). */
export const ADDRESS_LIMIT = 2 ** 48;

export function throwEinval(fn: string, rule: string, value: unknown): never {
  const shown =
    typeof value === 'string'
      ? JSON.stringify(value)
      : typeof value === 'object' && value !== null
        ? 'an object'
        : typeof value === 'symbol'
          ? 'a symbol'
          : typeof value === 'bigint'
            ? `${value}n (a bigint)`
            : String(value);
  throw new VmallocError('EINVAL', `Cannot ${fn}: ${rule}, got ${shown}`);
}

/**
 * Refuses option names `fn` does not know: a misspelt option would otherwise be ignored
 * without a word. Not used on the vmalloc() path, whose options are checked field by field.
 */
export function checkOptionNames(fn: string, options: object, names: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!names.includes(key))
      throw new VmallocError(
        'EINVAL',
        `Cannot ${fn}: ${JSON.stringify(key)} is not an option (the options are ${names.join(', ')})`,
      );
  }
}

/** A cpu id argument: an integer in [0, nrCpus). */
export function checkCpu(op: string, cpu: unknown, nrCpus: number): asserts cpu is number {
  if (!Number.isInteger(cpu) || (cpu as number) < 0 || (cpu as number) >= nrCpus) {
    throw new VmallocError(
      'EINVAL',
      `Cannot ${op}: cpu must be an integer from 0 to nrCpus - 1 (${nrCpus - 1}), got ${typeof cpu === 'symbol' ? 'a symbol' : String(cpu)}`,
    );
  }
}

/** A byte size: a positive integer no larger than the address space. */
export function checkByteSize(fn: string, size: unknown): number {
  if (typeof size === 'number' && size > 0 && size <= ADDRESS_LIMIT && Number.isInteger(size))
    return size;
  const n = checkInteger(fn, 'size', size);
  if (n <= 0) throwEinval(fn, 'size must be positive', n);
  throwEinval(fn, 'size must not exceed the address space (2^48)', n);
}

/** An alignment: a power of two >= 1. */
export function checkAlign(fn: string, align: unknown): number {
  if (
    typeof align === 'number' &&
    align >= 1 &&
    align <= 0x40000000 &&
    (align & (align - 1)) === 0 &&
    (align | 0) === align
  )
    return align;
  if (typeof align !== 'number' || !isPowerOfTwo(align) || align > ADDRESS_LIMIT)
    throwEinval(fn, 'align must be a power of two from 1 to 2^48', align);
  return align;
}

/** An address argument: an integer in [0, 2^48). */
export function checkAddr(fn: string, addr: unknown): number {
  if (typeof addr === 'number' && addr >= 0 && addr < ADDRESS_LIMIT && Number.isInteger(addr))
    return addr;
  const n = checkInteger(fn, 'addr', addr);
  throwEinval(fn, 'addr must lie in the address space [0, 2^48)', n);
}

/** C0 and C1 controls, DEL, and the Unicode line and paragraph separators. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** The longest caller name, in UTF-16 code units (a symbol+offset is far shorter). */
export const MAX_CALLER_LENGTH = 1024;

/**
 * The string id of a caller name given by the user; validated, interned. Names live for the
 * subsystem's life in a shared table: a program that makes a new name per call fills it, and
 * is told so (ENOMEM) rather than given a RangeError.
 */
export function callerId(ctx: VmContext, fn: string, caller: unknown): number {
  if (typeof caller !== 'string') throwEinval(fn, 'caller must be a string', caller);
  // test_vmalloc passes a caller on every call: a name already in the table skips the checks
  // below (every text in the table passed them, in whichever thread interned it first).
  const known = ctx.strings.find(caller);
  if (known !== 0) return known;
  if (caller.length > MAX_CALLER_LENGTH)
    throw new VmallocError(
      'EINVAL',
      `Cannot ${fn}: caller must be at most ${MAX_CALLER_LENGTH} characters long, got ${caller.length}`,
    );
  // One area is one line of vmallocinfo: a line break would forge lines, other control
  // characters would garble the one.
  if (CONTROL.test(caller))
    throwEinval(fn, 'caller must not contain a line break or another control character', caller);
  let id: number;
  try {
    id = ctx.strings.intern(caller);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new VmallocError(
      'ENOMEM',
      `Cannot ${fn}: the table of caller names is full (${e.message}); reuse caller names instead of making one per call`,
    );
  }
  return id;
}

/** The string id of the default caller name of API function `fn` ("fn+0x0/0x0"). */
export function defaultCaller(ctx: VmContext, fn: string): number {
  // The same function again (a loop of vmalloc, say): its id without the map's hashing.
  if (fn === ctx.lastDefaultFn) return ctx.lastDefaultId;
  let id = ctx.defaultCallers.get(fn);
  if (id === undefined) {
    id = ctx.strings.intern(`${fn}+0x0/0x0`);
    ctx.defaultCallers.set(fn, id);
  }
  ctx.lastDefaultFn = fn;
  ctx.lastDefaultId = id;
  return id;
}
