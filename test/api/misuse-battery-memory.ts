/**
 * Misuse battery, memory access through a Vmalloc: read, readInto, write, readU8, writeU8,
 * readPtr, writePtr. Tables only; test/api/misuse-battery.test.ts runs them.
 *
 * EFAULT is for an address in the address space that no mapped page backs (no area, a freed
 * area, a guard page, an area without pages, outside the window) or an access that runs off
 * the mapped pages or, for the one-page accessors, across a page boundary. Legal values left
 * out: length 0 and -0, any address inside the mapped pages of an area, a byte value of -0,
 * a pointer value of 0 or -0.
 */

import { type VmFx, vmFixture } from '../helpers/misuse-fixtures.js';
import {
  type AnyTable,
  type Bad,
  DESIGNS,
  NON_FINITE,
  type Row,
  at,
  nums,
  table,
  val,
  wrongTypes,
} from '../helpers/misuse-cases.js';
import { PAGE } from '../helpers/vm.js';
import { badAddrs } from './misuse-battery-free.js';

/** Addresses in [0, 2^48) where no page is mapped. */
function unmapped(): Bad<VmFx>[] {
  return [
    ...nums<VmFx>(0, -0, PAGE, 2 ** 31, 2 ** 32, 2 ** 48 - 1),
    at('F (a freed area)', (fx) => fx.F),
    at('A + 3 pages (the guard page of A)', (fx) => fx.A + 3 * PAGE),
    at('A + 3 pages + 5 (in the guard page)', (fx) => fx.A + 3 * PAGE + 5),
    at('B + 2 pages (the guard page of B)', (fx) => fx.B + 2 * PAGE),
    at('C (an area without pages)', (fx) => fx.C),
    at('C + 5', (fx) => fx.C + 5),
    at('A + 2^30 (in the window, no area)', (fx) => fx.A + 2 ** 30),
    at('vmallocStart - 1 page (below the window)', (fx) => fx.vm.vmallocStart - PAGE),
    at('vmallocEnd (above the last area)', (fx) => fx.vm.vmallocEnd),
    at('vmallocEnd + 1 (above the window)', (fx) => fx.vm.vmallocEnd + 1),
  ];
}

/** The addr rows of an accessor: bad addresses (EINVAL), unmapped ones (EFAULT), and more. */
function addrRows(call: (fx: VmFx, addr: unknown) => unknown, more: Bad<VmFx>[]): Row<VmFx>[] {
  return [
    { arg: 'addr', pos: 'addr', code: 'EINVAL', bad: badAddrs(), call },
    { arg: 'addr', pos: 'addr', code: 'EFAULT', bad: [...unmapped(), ...more], call },
  ];
}

/** Not a Uint8Array. */
function notBytes(): Bad<VmFx>[] {
  return [
    ...wrongTypes<VmFx>(),
    at('Int32Array(4)', () => new Int32Array(4)),
    at('Uint8ClampedArray(4)', () => new Uint8ClampedArray(4)),
    at('ArrayBuffer(4)', () => new ArrayBuffer(4)),
    at('DataView(4)', () => new DataView(new ArrayBuffer(4))),
  ];
}

const four = () => new Uint8Array([1, 2, 3, 4]);
/** 4 bytes at `addr` that run into a guard page. */
const intoGuardOfA = at<VmFx>('A + 3 pages - 2, 4 bytes (into the guard page)', (fx) => {
  return fx.A + 3 * PAGE - 2;
});
const intoGuardOfB = at<VmFx>('B + 2 pages - 2, 4 bytes (into the guard page)', (fx) => {
  return fx.B + 2 * PAGE - 2;
});
/** An 8-byte access at `addr` that crosses a page boundary. */
const crossing = at<VmFx>('A + 1 page - 4 (8 bytes across a page boundary)', (fx) => {
  return fx.A + PAGE - 4;
});

export const memoryTables: AnyTable[] = [
  table<VmFx>({
    fn: 'vm.read',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      ...addrRows((fx, v) => fx.vm.read(v as number, 4), [intoGuardOfA, intoGuardOfB]),
      {
        arg: 'length',
        pos: 'length',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<VmFx>(),
          ...nums<VmFx>(...NON_FINITE, -1, 0.5, 2 ** 31 + 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53),
          ...nums<VmFx>(2 ** 60),
        ],
        call: (fx, v) => fx.vm.read(fx.A, v as number),
      },
      {
        arg: 'addr',
        pos: 'length',
        code: 'EFAULT',
        bad: [val('3 pages + 1 (one past the pages of A)', 3 * PAGE + 1), ...nums<VmFx>(2 ** 31)],
        call: (fx, v) => fx.vm.read(fx.A, v as number),
      },
    ],
  }),
  table<VmFx>({
    fn: 'vm.readInto',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      ...addrRows((fx, v) => fx.vm.readInto(v as number, four()), [intoGuardOfA, intoGuardOfB]),
      {
        arg: 'target',
        pos: 'target',
        code: 'EINVAL',
        bad: notBytes(),
        call: (fx, v) => fx.vm.readInto(fx.A, v as Uint8Array),
      },
    ],
  }),
  table<VmFx>({
    fn: 'vm.write',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      ...addrRows((fx, v) => fx.vm.write(v as number, four()), [intoGuardOfA, intoGuardOfB]),
      {
        arg: 'bytes',
        pos: 'bytes',
        code: 'EINVAL',
        bad: notBytes(),
        call: (fx, v) => fx.vm.write(fx.A, v as Uint8Array),
      },
    ],
  }),
  table<VmFx>({
    fn: 'vm.readU8',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: addrRows((fx, v) => fx.vm.readU8(v as number), []),
  }),
  table<VmFx>({
    fn: 'vm.writeU8',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      ...addrRows((fx, v) => fx.vm.writeU8(v as number, 1), []),
      {
        arg: 'value',
        pos: 'value',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<VmFx>(),
          ...nums<VmFx>(...NON_FINITE, -1, 256, 0.5, 255.5, 2 ** 31, 2 ** 32, 2 ** 53 - 1),
          ...nums<VmFx>(2 ** 53, 2 ** 60),
        ],
        call: (fx, v) => fx.vm.writeU8(fx.A + 1, v as number),
      },
    ],
  }),
  table<VmFx>({
    fn: 'vm.readPtr',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: addrRows((fx, v) => fx.vm.readPtr(v as number), [crossing]),
  }),
  table<VmFx>({
    fn: 'vm.writePtr',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      ...addrRows((fx, v) => fx.vm.writePtr(v as number, fx.A), [crossing]),
      {
        arg: 'value',
        pos: 'value',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<VmFx>(),
          ...nums<VmFx>(...NON_FINITE, -1, 0.5, 2 ** 48, 2 ** 53 - 1, 2 ** 53, 2 ** 60),
        ],
        call: (fx, v) => fx.vm.writePtr(fx.A + 8, v as number),
      },
    ],
  }),
];
