/**
 * Misuse battery, the percpu calls: pcpuGetVmAreas, pcpuFreeVmAreas, allocPercpu, freePercpu,
 * perCpuPtr. Tables only; test/api/misuse-battery.test.ts runs them.
 *
 * Legal values left out: unsorted offsets (the kernel accepts them), allocPercpu's align left
 * out (1), freePercpu of 0, null and undefined (they do nothing).
 */

import type { VmArea } from '../../src/index.js';
import { type VmFx, VM_CPUS, makeVmFx, vmState } from '../helpers/misuse-fixtures.js';
import {
  type AnyTable,
  DESIGNS,
  type Fixture,
  HUGE,
  NON_FINITE,
  at,
  nums,
  table,
  val,
  wrongTypes,
} from '../helpers/misuse-cases.js';
import { PAGE } from '../helpers/vm.js';
import { badCpus } from './misuse-battery-free.js';

interface PcpuFx extends VmFx {
  /** A live percpu object. */
  P: number;
  /** A freed one. */
  G: number;
  /** Two live pcpu_get_vm_areas areas. */
  Q: VmArea[];
  /** CPU 1's unit of P's chunk (an area the percpu allocator owns). */
  U: number;
}

const pcpuFixture: Fixture<PcpuFx> = {
  make(design) {
    const fx = makeVmFx(design);
    const vm = fx.vm;
    const P = vm.allocPercpu(64, 8)!;
    vm.writeU8(vm.perCpuPtr(P, 1), 7);
    const G = vm.allocPercpu(16, 4)!;
    vm.freePercpu(G);
    const Q = vm.pcpuGetVmAreas([0, 2 * PAGE], [PAGE, PAGE], PAGE)!;
    const U = vm.findVmArea(vm.perCpuPtr(P, 1))!.addr;
    return { ...fx, P, G, Q, U };
  },
  state(fx) {
    return {
      vm: vmState(fx),
      pcpu: fx.vm.percpuInfo(),
      p: [0, 1].map((cpu) => fx.vm.readU8(fx.vm.perCpuPtr(fx.P, cpu))),
    };
  },
};

const get = (fx: PcpuFx, offsets: unknown, sizes: unknown, align: unknown): unknown =>
  fx.vm.pcpuGetVmAreas(offsets as number[], sizes as number[], align as number);

export const percpuTables: AnyTable[] = [
  table<PcpuFx>({
    fn: 'vm.pcpuGetVmAreas',
    designs: DESIGNS,
    fixture: pcpuFixture,
    rows: [
      {
        arg: 'offsets',
        pos: 'offsets',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<PcpuFx>('array'),
          val('[] (nr_vms 0)', []),
          val('[-4096]', [-PAGE]),
          val('[2048] (not a multiple of align)', [2048]),
          val('[0.5]', [0.5]),
          val('[NaN]', [NaN]),
          val('["0"]', ['0']),
          val('[0, 4096] with 2-page areas (overlapping)', [0, PAGE]),
          val('[8192, 0, 4096] with 2-page areas (unsorted, overlapping)', [2 * PAGE, 0, PAGE]),
        ],
        call: (fx, v) => get(fx, v, Array.isArray(v) ? v.map(() => 2 * PAGE) : [PAGE], PAGE),
      },
      {
        arg: 'sizes',
        pos: 'sizes',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<PcpuFx>('array'),
          val('[0]', [0]),
          val('[4097] (not a page multiple)', [PAGE + 1]),
          val('[-4096]', [-PAGE]),
          val('[1.5]', [1.5]),
          val('[4096, 4096] (two sizes, one offset)', [PAGE, PAGE]),
          val('[] (no size)', []),
          val('[2^47] (larger than the window)', [2 ** 47]),
        ],
        call: (fx, v) => get(fx, [0], v, PAGE),
      },
      {
        arg: 'align',
        pos: 'align',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<PcpuFx>(),
          ...nums<PcpuFx>(
            ...NON_FINITE,
            0,
            1,
            2048,
            3 * PAGE,
            PAGE + 1,
            -PAGE,
            0.5,
            2 ** 48,
            2 ** 60,
          ),
        ],
        call: (fx, v) => get(fx, [0], [PAGE], v),
      },
    ],
  }),
  table<PcpuFx>({
    fn: 'vm.pcpuFreeVmAreas',
    designs: DESIGNS,
    fixture: pcpuFixture,
    rows: [
      {
        arg: 'areas',
        pos: 'areas',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<PcpuFx>('array'),
          val('[-1]', [-1]),
          val('[0.5]', [0.5]),
          val('["x"]', ['x']),
          val('[{}]', [{}]),
          val('[2^48]', [2 ** 48]),
          at('[Q0, Q0] (twice)', (fx) => [fx.Q[0]!, fx.Q[0]!]),
        ],
        call: (fx, v) => fx.vm.pcpuFreeVmAreas(v as number[]),
      },
      {
        arg: 'areas',
        pos: 'areas',
        code: 'ENOENT',
        bad: [
          at('[A] (a vmalloc area)', (fx) => [fx.A]),
          at('[Q0 + 1 page]', (fx) => [fx.Q[0]!.addr + PAGE]),
          at('[F] (freed)', (fx) => [fx.F]),
          at('[Q0, A] (the second bad: nothing freed)', (fx) => [fx.Q[0]!, fx.A]),
        ],
        call: (fx, v) => fx.vm.pcpuFreeVmAreas(v as number[]),
      },
      {
        arg: 'areas',
        pos: 'areas',
        code: 'EBUSY',
        bad: [at('[U] (a percpu chunk unit)', (fx) => [fx.U])],
        call: (fx, v) => fx.vm.pcpuFreeVmAreas(v as number[]),
      },
    ],
  }),
  table<PcpuFx>({
    fn: 'vm.allocPercpu',
    designs: DESIGNS,
    fixture: pcpuFixture,
    rows: [
      {
        arg: 'size',
        pos: 'size',
        code: 'EINVAL',
        bad: [...wrongTypes<PcpuFx>(), ...nums<PcpuFx>(...NON_FINITE, 0, -1, 0.5, 32769, ...HUGE)],
        call: (fx, v) => fx.vm.allocPercpu(v as number, 8),
      },
      {
        arg: 'align',
        pos: 'align',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<PcpuFx>('undefined'),
          ...nums<PcpuFx>(...NON_FINITE, 0, 3, 2 * PAGE, -2, 0.5, ...HUGE),
        ],
        call: (fx, v) => fx.vm.allocPercpu(8, v as number),
      },
    ],
  }),
  table<PcpuFx>({
    fn: 'vm.freePercpu',
    designs: DESIGNS,
    fixture: pcpuFixture,
    rows: [
      {
        arg: 'ptr',
        pos: 'ptr',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<PcpuFx>('undefined', 'null'),
          ...nums<PcpuFx>(...NON_FINITE, 0.5, -1, 2 ** 48, 2 ** 60),
        ],
        call: (fx, v) => fx.vm.freePercpu(v as number),
      },
      {
        arg: 'ptr',
        pos: 'ptr',
        code: 'ENOENT',
        bad: [
          at('P + 4 (inside P)', (fx) => fx.P + 4),
          at('G (freed)', (fx) => fx.G),
          at("CPU 1's copy of P", (fx) => fx.vm.perCpuPtr(fx.P, 1)),
          at('A (a vmalloc area)', (fx) => fx.A),
          ...nums<PcpuFx>(PAGE, 2 ** 48 - PAGE),
        ],
        call: (fx, v) => fx.vm.freePercpu(v as number),
      },
    ],
  }),
  table<PcpuFx>({
    fn: 'vm.perCpuPtr',
    designs: DESIGNS,
    fixture: pcpuFixture,
    rows: [
      {
        arg: 'ptr',
        pos: 'ptr',
        code: 'EINVAL',
        bad: [...wrongTypes<PcpuFx>(), ...nums<PcpuFx>(...NON_FINITE, 0.5, -1, 2 ** 48)],
        call: (fx, v) => fx.vm.perCpuPtr(v as number, 0),
      },
      {
        arg: 'ptr',
        pos: 'ptr',
        code: 'ENOENT',
        bad: [at('A (a vmalloc area)', (fx) => fx.A), ...nums<PcpuFx>(0, PAGE)],
        call: (fx, v) => fx.vm.perCpuPtr(v as number, 0),
      },
      {
        arg: 'cpu',
        pos: 'cpu',
        code: 'EINVAL',
        bad: badCpus<PcpuFx>(VM_CPUS),
        call: (fx, v) => fx.vm.perCpuPtr(fx.P, v as number),
      },
    ],
  }),
];
