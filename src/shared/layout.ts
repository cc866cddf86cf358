/**
 * The address layout of the simulated kernel: which numbers stand for which kernel addresses.
 *
 * Holds: the managed space, the vmalloc window, and the conversion to the kernel's 64-bit
 * addresses for display.
 * Invariant: every address handled by the library is an exact integer below 2^48; the kernel
 * address it stands for is KERNEL_BASE + addr (so the top 256 TiB of the 64-bit space, where
 * x86_64 keeps its kernel mappings, is modelled exactly, alignments included).
 * The public helpers (kernelHex, toKernelAddress, fromKernelAddress) refuse anything else with
 * VmallocError EINVAL naming the argument and the rule.
 * Callers: the vmalloc layer, vmallocinfo, error messages, the CLI.
 *
 *   kernel address      0xffff000000000001 ............................... 0xffffffffffffffff
 *   library number      1 ................................................ 2^48 - 1
 *                       |<---------------- managed free space ------------------>|
 *                                 |<--- vmalloc window: 32 TiB --->|
 *                       0xffffc90000000000 (4-level x86_64 VMALLOC_START)
 *                                 VMALLOC_END = VMALLOC_START + 32 TiB - 1
 *
 * Kernel: vmap_init_free_space() starts the free space as [1, ULONG_MAX); x86_64's
 * VMALLOC_START / VMALLOC_END (pgtable_64_types.h). As there, VMALLOC_END is one less than a
 * round number, so the top page of the window can never be allocated whole.
 * Differs from kernel: addresses below 0xffff000000000000 do not exist here.
 */

import { VmallocError } from '../errors.js';

/** The kernel address of library address 0. */
export const KERNEL_BASE = 0xffff000000000000n;

/** Managed space: [1, 2^48 - 1), i.e. kernel [0xffff000000000001, ULONG_MAX). */
export const SPACE_START = 1;
export const SPACE_END = 2 ** 48 - 1;

/** x86_64 with 4-level paging: VMALLOC_START 0xffffc90000000000, 32 TiB. */
export const X86_64_VMALLOC_START = 0xc90000000000;
export const X86_64_VMALLOC_SIZE = 32 * 2 ** 40;

const LIMIT = 2 ** 48;
const LIMIT_N = 2n ** 48n;

/**
 * Refuses what is not a library address (an integer in [0, 2^48)): these helpers are public,
 * and BigInt() would throw a TypeError or RangeError, or turn '4096' into a number silently.
 */
function checkLibraryAddress(fn: string, addr: unknown): void {
  if (typeof addr === 'number' && addr >= 0 && addr < LIMIT && Number.isInteger(addr)) return;
  const shown =
    typeof addr === 'string'
      ? JSON.stringify(addr)
      : typeof addr === 'bigint'
        ? `${addr}n (a bigint)`
        : typeof addr === 'object' && addr !== null
          ? 'an object'
          : typeof addr === 'symbol' || typeof addr === 'function'
            ? `a ${typeof addr}`
            : String(addr);
  throw new VmallocError(
    'EINVAL',
    `Cannot ${fn}: addr must be a library address, an integer in [0, 2^48), got ${shown}`,
  );
}

/** A library address as the kernel prints a pointer with %px / %pK: 0x + 16 hex digits. */
export function kernelHex(addr: number): string {
  checkLibraryAddress('kernelHex', addr);
  return '0x' + (KERNEL_BASE + BigInt(addr)).toString(16).padStart(16, '0');
}

/** The kernel address a library address stands for. */
export function toKernelAddress(addr: number): bigint {
  checkLibraryAddress('toKernelAddress', addr);
  return KERNEL_BASE + BigInt(addr);
}

/**
 * The library address of a kernel address (a bigint, or a string BigInt() reads, such as
 * "0xffffc90000000000").
 * @throws VmallocError EINVAL for another type, a string that is no integer, or an address
 * outside the modelled kernel half [KERNEL_BASE, 2^64).
 */
export function fromKernelAddress(kaddr: bigint | string): number {
  const rule = 'be a kernel address in [0xffff000000000000, 2^64), as a bigint or a string';
  const refuse = (shown: string): never => {
    throw new VmallocError('EINVAL', `Cannot fromKernelAddress: kaddr must ${rule}, got ${shown}`);
  };
  let k: bigint;
  if (typeof kaddr === 'bigint') k = kaddr;
  else if (typeof kaddr === 'string') {
    try {
      k = BigInt(kaddr);
    } catch {
      return refuse(JSON.stringify(kaddr.length > 40 ? kaddr.slice(0, 40) + '...' : kaddr));
    }
  } else {
    const t = typeof kaddr as string;
    return refuse(
      kaddr === null
        ? 'null'
        : t === 'number' || t === 'undefined' || t === 'boolean'
          ? String(kaddr)
          : `a ${t}`,
    );
  }
  const a = k - KERNEL_BASE;
  if (a < 0n || a >= LIMIT_N) refuse(`0x${k < 0n ? '-' + (-k).toString(16) : k.toString(16)}`);
  return Number(a);
}

/** fls(): the 1-based index of the highest set bit, 0 for 0. */
export function fls(n: number): number {
  return n <= 0 ? 0 : Math.floor(Math.log2(n)) + 1;
}
