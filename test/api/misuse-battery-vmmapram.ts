/**
 * Misuse battery, vm_map_ram: vmMapRam, vmUnmapRam, and freePages of frames vm_map_ram maps.
 * Tables only; test/api/misuse-battery.test.ts runs them.
 *
 * The fixture: a 1-page mapping R1 (a pattern in it), a 3-page one R3 right after it in the
 * same block (4 pages of the block: power-of-two rounding), a 2-page one RU unmapped again,
 * a 70-page one RL (its own area, above VMAP_MAX_ALLOC), a 70-page one RLU unmapped again,
 * and a vmalloc area A. Legal values left out: any count from 1 to the pages given (mapping),
 * the exact count of a live mapping (unmapping).
 */

import type { Vmalloc } from '../../src/index.js';
import { makeVm } from '../helpers/misuse-fixtures.js';
import {
  type AnyTable,
  type Bad,
  DESIGNS,
  type Fixture,
  NON_FINITE,
  at,
  nums,
  table,
  wrongTypes,
} from '../helpers/misuse-cases.js';
import { PAGE, snapshot } from '../helpers/vm.js';

export interface RamFx {
  vm: Vmalloc;
  frames: Int32Array;
  R1: number;
  R3: number;
  RU: number;
  RL: number;
  RLU: number;
  A: number;
  aFrame: number;
  freedFrame: number;
}

function makeRamFx(design: 'global' | 'nodes' | undefined): RamFx {
  const vm = makeVm(design);
  const frames = vm.allocPages(80);
  const R1 = vm.vmMapRam(frames, 1)!;
  vm.write(R1, new Uint8Array([1, 2, 3, 4]));
  const R3 = vm.vmMapRam(frames.subarray(1), 3)!;
  const RU = vm.vmMapRam(frames, 2)!;
  vm.vmUnmapRam(RU, 2);
  const RL = vm.vmMapRam(frames, 70)!;
  const RLU = vm.vmMapRam(frames, 70)!;
  vm.vmUnmapRam(RLU, 70);
  const A = vm.vmalloc(2 * PAGE)!;
  const gone = vm.allocPages(1);
  vm.freePages(gone);
  if (R3 !== R1 + PAGE || RU !== R1 + 5 * PAGE) throw new Error('bad fixture (block layout)');
  return {
    vm,
    frames,
    R1,
    R3,
    RU,
    RL,
    RLU,
    A,
    aFrame: vm.findVmArea(A)!.pages[0]!,
    freedFrame: gone[0]!,
  };
}

const ramFixture: Fixture<RamFx> = {
  make: makeRamFx,
  state: (fx) => ({
    snapshot: snapshot(fx.vm),
    r1: Array.from(fx.vm.read(fx.R1, 4)),
    r3: fx.vm.readU8(fx.R3 + 2 * PAGE),
    rl: fx.vm.readU8(fx.RL + 69 * PAGE),
  }),
};

/** 2^33 pages: the default 32 TiB window; one more does not fit. */
const WINDOW_PAGES = 2 ** 33;

function badCounts(): Bad<RamFx>[] {
  return [
    ...wrongTypes<RamFx>(),
    ...nums<RamFx>(...NON_FINITE, 0, -0, -1, -64, 0.5, 1.5, 64.5),
    ...nums<RamFx>(WINDOW_PAGES + 1, 2 ** 53 - 1, 2 ** 53, 2 ** 60),
  ];
}

function badAddrs(): Bad<RamFx>[] {
  return [
    ...wrongTypes<RamFx>(),
    ...nums<RamFx>(...NON_FINITE, -1, -PAGE, 2 ** 48, 2 ** 53, 2 ** 60),
    at('R1 + 0.5', (fx) => fx.R1 + 0.5),
    at('R1 + 5 (not page-aligned)', (fx) => fx.R1 + 5),
  ];
}

export const vmMapRamTables: AnyTable[] = [
  table<RamFx>({
    fn: 'vm.vmMapRam',
    designs: DESIGNS,
    fixture: ramFixture,
    rows: [
      {
        arg: 'count',
        pos: 'count',
        code: 'EINVAL',
        bad: [
          ...badCounts(),
          at('81 (more than the 80 frames given)', () => 81),
          at('2^31 (more than the frames given)', () => 2 ** 31),
        ],
        call: (fx, v) => fx.vm.vmMapRam(fx.frames, v as number),
      },
      {
        arg: 'pages',
        pos: 'pages (count 1)',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<RamFx>('array'),
          at('[]', () => []),
          at('[NaN]', () => [NaN]),
          at('[-1]', () => [-1]),
          at('[0.5]', () => [0.5]),
          at('[2^31]', () => [2 ** 31]),
          at("['1']", () => ['1']),
          at('[a freed frame]', (fx) => [fx.freedFrame]),
          at('a string of digits', () => '12'),
        ],
        call: (fx, v) => fx.vm.vmMapRam(v as number[], 1),
      },
      {
        arg: 'pages',
        pos: 'pages (count 3)',
        code: 'EINVAL',
        bad: [
          at('2 frames', (fx) => Array.from(fx.frames.subarray(0, 2))),
          at('[frame, frame, a freed frame]', (fx) => [fx.frames[0], fx.frames[1], fx.freedFrame]),
        ],
        call: (fx, v) => fx.vm.vmMapRam(v as number[], 3),
      },
      {
        arg: 'pages',
        pos: 'pages (an area frame)',
        code: 'EBUSY',
        bad: [at("[a vmalloc area's own frame]", (fx) => [fx.aFrame])],
        call: (fx, v) => fx.vm.vmMapRam(v as number[], 1),
      },
    ],
  }),
  table<RamFx>({
    fn: 'vm.vmUnmapRam',
    designs: DESIGNS,
    fixture: ramFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EINVAL',
        bad: badAddrs(),
        call: (fx, v) => fx.vm.vmUnmapRam(v as number, 1),
      },
      {
        arg: 'addr',
        pos: 'addr (count 1)',
        code: 'ENOENT',
        bad: [
          at('RU (unmapped already)', (fx) => fx.RU),
          at('R3 + 1 page (inside R3)', (fx) => fx.R3 + PAGE),
          at('R1 + 100 pages (in the block, never mapped)', (fx) => fx.R1 + 100 * PAGE),
          at('RL + 1 page (inside RL)', (fx) => fx.RL + PAGE),
          at('RLU (a large mapping unmapped already)', (fx) => fx.RLU),
          at('A (a vmalloc area)', (fx) => fx.A),
          at('A + 2^30 (in the window, nothing there)', (fx) => fx.A + 2 ** 30),
          at('vmallocStart - 1 page', (fx) => fx.vm.vmallocStart - PAGE),
          ...nums<RamFx>(0, PAGE, 2 ** 48 - PAGE),
        ],
        call: (fx, v) => fx.vm.vmUnmapRam(v as number, 1),
      },
      {
        arg: 'addr',
        pos: 'addr (count 70)',
        code: 'ENOENT',
        bad: [
          at('RLU (unmapped already)', (fx) => fx.RLU),
          at('A (a vmalloc area)', (fx) => fx.A),
          at('RL + 1 page (inside RL)', (fx) => fx.RL + PAGE),
        ],
        call: (fx, v) => fx.vm.vmUnmapRam(v as number, 70),
      },
      {
        arg: 'count',
        pos: 'count (of R1)',
        code: 'EINVAL',
        bad: [...badCounts(), ...nums<RamFx>(2, 64, 65, 70)],
        call: (fx, v) => fx.vm.vmUnmapRam(fx.R1, v as number),
      },
      {
        arg: 'count',
        pos: 'count (of R3, mapped with 3)',
        code: 'EINVAL',
        bad: nums<RamFx>(1, 2, 4, 70),
        call: (fx, v) => fx.vm.vmUnmapRam(fx.R3, v as number),
      },
      {
        arg: 'count',
        pos: 'count (of RL, mapped with 70)',
        code: 'EINVAL',
        bad: nums<RamFx>(1, 64, 69, 71),
        call: (fx, v) => fx.vm.vmUnmapRam(fx.RL, v as number),
      },
    ],
  }),
  table<RamFx>({
    fn: 'vm.freePages (vm_map_ram frames)',
    designs: DESIGNS,
    fixture: ramFixture,
    rows: [
      {
        arg: 'pfns[0]',
        pos: 'pfns',
        code: 'EBUSY',
        bad: [
          at('[a frame R1 and RL map]', (fx) => [fx.frames[0]]),
          at('[a frame RL maps]', (fx) => [fx.frames[69]]),
        ],
        call: (fx, v) => fx.vm.freePages(v as number[]),
      },
    ],
  }),
];
