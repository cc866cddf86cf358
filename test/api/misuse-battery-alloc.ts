/**
 * Misuse battery, the allocating calls of a Vmalloc: vmalloc, vzalloc, vmallocHuge, vmap,
 * getVmArea, allocPages, freePages. Tables only; test/api/misuse-battery.test.ts runs them.
 *
 * Legal values are left out on purpose: a size of 2^31 or 2^32 is legal (the answer is null
 * when it does not fit), so is any power of two up to 2^48 as align, flags 0 written -0, and
 * any n for allocPages that is a non-negative safe integer (fewer frames come back), and
 * unknown keys in the per-call options of vmalloc / vzalloc / vmallocHuge (ignored: a key
 * loop would cost every call; vmap and getVmArea, off the hot path, refuse them).
 */

import { VmFlags, type VmallocAllocOptions } from '../../src/index.js';
import { type VmFx, vmFixture } from '../helpers/misuse-fixtures.js';
import {
  type AnyTable,
  type Bad,
  DESIGNS,
  NON_FINITE,
  type Row,
  at,
  badOptions,
  nums,
  table,
  val,
  wrongTypes,
} from '../helpers/misuse-cases.js';
import { PAGE } from '../helpers/vm.js';

type Opts = VmallocAllocOptions;

/** Not a byte size: a positive integer up to 2^48. */
export function badSizes(): Bad<VmFx>[] {
  return [
    ...wrongTypes<VmFx>(),
    ...nums<VmFx>(...NON_FINITE, -0, 0, -1, -PAGE, 0.5, PAGE + 0.5),
    ...nums<VmFx>(2 ** 48 + 1, 2 ** 53 - 1, 2 ** 53, 2 ** 60, -(2 ** 53)),
  ];
}

/** Not a power of two from 1 to 2^48. */
function badAligns(): Bad<VmFx>[] {
  return [
    ...wrongTypes<VmFx>('undefined'),
    ...nums<VmFx>(...NON_FINITE, -0, 0, -1, -PAGE, 3, 0.5, 1.5, PAGE + 1, 2 ** 32 + 1),
    ...nums<VmFx>(2 ** 48 + 1, 2 ** 49, 2 ** 53 - 1, 2 ** 53, 2 ** 60),
  ];
}

/** Not a caller name: a string without line breaks. */
function badCallers(): Bad<VmFx>[] {
  return [
    ...wrongTypes<VmFx>('undefined', 'string'),
    ...nums<VmFx>(0),
    val('"a\\nb"', 'a\nb'),
    val('"a\\rb"', 'a\rb'),
  ];
}

/** Not VM_* bits a caller may pass. */
function badFlags(): Bad<VmFx>[] {
  return [
    ...wrongTypes<VmFx>('undefined'),
    ...nums<VmFx>(...NON_FINITE, -1, 0.5, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 60),
    val('VM_ALLOC', VmFlags.VM_ALLOC),
    val('VM_UNINITIALIZED', VmFlags.VM_UNINITIALIZED),
    val('0x800 (no such flag)', 0x800),
    val('0x2000 (no such flag)', 0x2000),
  ];
}

/** Not a list of frames this subsystem handed out and still holds, each once. */
function badFrameLists(): Bad<VmFx>[] {
  return [
    ...wrongTypes<VmFx>(),
    val('"ab" (a string has a length)', 'ab'),
    at('[a freed frame]', (fx) => [fx.freedFrame]),
    at('[a held frame, a freed frame]', (fx) => [fx.held[0], fx.freedFrame]),
    at("[a held frame, '1']", (fx) => [fx.held[0], '1']),
    at('[NaN]', () => [NaN]),
    at('[-1]', () => [-1]),
    at('[0.5]', () => [0.5]),
    at('[256] (one past the last frame)', () => [256]),
    at('[2^31]', () => [2 ** 31]),
    at('[2^53]', () => [2 ** 53]),
    at('{ length: -1 }', () => ({ length: -1 })),
    at('{ length: 1.5 }', (fx) => ({ length: 1.5, 0: fx.held[0] })),
    at('{ length: NaN }', () => ({ length: NaN })),
    at('{ length: 2^53 }', () => ({ length: 2 ** 53 })),
    at('{ length: 2, 0: held } (a hole)', (fx) => ({ length: 2, 0: fx.held[0] })),
  ];
}

type Alloc = (fx: VmFx, size: unknown, options?: unknown) => unknown;

/** The rows every vmalloc flavour shares. */
function allocRows(alloc: Alloc, withZero: boolean): Row<VmFx>[] {
  const opt = (fx: VmFx, o: unknown) => alloc(fx, PAGE, o);
  const rows: Row<VmFx>[] = [
    { arg: 'size', pos: 'size', code: 'EINVAL', bad: badSizes(), call: (fx, v) => alloc(fx, v) },
    { arg: 'options', pos: 'options', code: 'EINVAL', bad: badOptions(), call: opt },
    {
      arg: 'align',
      pos: 'options.align',
      code: 'EINVAL',
      bad: badAligns(),
      call: (fx, v) => opt(fx, { align: v }),
    },
    {
      arg: 'caller',
      pos: 'options.caller',
      code: 'EINVAL',
      bad: badCallers(),
      call: (fx, v) => opt(fx, { caller: v }),
    },
  ];
  if (withZero) {
    rows.push({
      arg: 'zero',
      pos: 'options.zero',
      code: 'EINVAL',
      bad: [...wrongTypes<VmFx>('undefined', 'true', 'false'), ...nums<VmFx>(0, 1, NaN)],
      call: (fx, v) => opt(fx, { zero: v }),
    });
  }
  return rows;
}

export const allocTables: AnyTable[] = [
  table<VmFx>({
    fn: 'vm.vmalloc',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: allocRows((fx, s, o) => fx.vm.vmalloc(s as number, o as Opts), true),
  }),
  table<VmFx>({
    fn: 'vm.vzalloc',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: allocRows((fx, s, o) => fx.vm.vzalloc(s as number, o as Opts), true),
  }),
  table<VmFx>({
    fn: 'vm.vmallocHuge',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: allocRows((fx, s, o) => fx.vm.vmallocHuge(s as number, o as Opts), true),
  }),
  table<VmFx>({
    fn: 'vm.vmap',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      {
        arg: 'pages',
        pos: 'pages',
        code: 'EINVAL',
        bad: [val('[]', []), ...badFrameLists()],
        call: (fx, v) => fx.vm.vmap(v as number[]),
      },
      {
        arg: 'options',
        pos: 'options',
        code: 'EINVAL',
        bad: badOptions(),
        call: (fx, v) => fx.vm.vmap(fx.held, v as object),
      },
      {
        arg: 'flags',
        pos: 'options.flags',
        code: 'EINVAL',
        bad: [...badFlags(), val('VM_FLUSH_RESET_PERMS', VmFlags.VM_FLUSH_RESET_PERMS)],
        call: (fx, v) => fx.vm.vmap(fx.held, { flags: v as number }),
      },
      {
        arg: 'caller',
        pos: 'options.caller',
        code: 'EINVAL',
        bad: badCallers(),
        call: (fx, v) => fx.vm.vmap(fx.held, { caller: v as string }),
      },
    ],
  }),
  table<VmFx>({
    fn: 'vm.getVmArea',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      {
        arg: 'size',
        pos: 'size',
        code: 'EINVAL',
        bad: badSizes(),
        call: (fx, v) => fx.vm.getVmArea(v as number),
      },
      {
        arg: 'flags',
        pos: 'flags',
        code: 'EINVAL',
        bad: badFlags(),
        call: (fx, v) => fx.vm.getVmArea(PAGE, v as number),
      },
      {
        arg: 'options',
        pos: 'options',
        code: 'EINVAL',
        bad: badOptions(),
        call: (fx, v) => fx.vm.getVmArea(PAGE, 0, v as object),
      },
      {
        arg: 'caller',
        pos: 'options.caller',
        code: 'EINVAL',
        bad: badCallers(),
        call: (fx, v) => fx.vm.getVmArea(PAGE, 0, { caller: v as string }),
      },
      {
        arg: 'physAddr',
        pos: 'options.physAddr',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<VmFx>('undefined'),
          ...nums<VmFx>(...NON_FINITE, -1, -PAGE, 0.5, 2 ** 53, 2 ** 60),
        ],
        call: (fx, v) => fx.vm.getVmArea(PAGE, 0, { physAddr: v as number }),
      },
    ],
  }),
  table<VmFx>({
    fn: 'vm.allocPages',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      {
        arg: 'n',
        pos: 'n',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<VmFx>(),
          ...nums<VmFx>(...NON_FINITE, -1, -(2 ** 31), 0.5, 2 ** 53, 2 ** 60),
        ],
        call: (fx, v) => fx.vm.allocPages(v as number),
      },
    ],
  }),
  table<VmFx>({
    fn: 'vm.freePages',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      {
        arg: 'pfns',
        pos: 'pfns',
        code: 'EINVAL',
        bad: [...badFrameLists(), at('[a held frame twice]', (fx) => [fx.held[0], fx.held[0]])],
        call: (fx, v) => fx.vm.freePages(v as number[]),
      },
      {
        // A frame an area holds is in use, not a bad number: EBUSY, as the doc comment says.
        arg: 'pfns',
        pos: 'pfns',
        code: 'EBUSY',
        bad: [
          at('[a frame of the vmalloc area A]', (fx) => [fx.aFrame]),
          at('[a frame still mapped by the vmap area B]', (fx) => [fx.bFrame]),
          at('[a held frame, then a frame of A] (nothing freed)', (fx) => [fx.held[0], fx.aFrame]),
        ],
        call: (fx, v) => fx.vm.freePages(v as number[]),
      },
    ],
  }),
];
