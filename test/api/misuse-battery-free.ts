/**
 * Misuse battery, a Vmalloc's calls that take an address or a cpu and its callbacks: vfree,
 * vunmap, findVmArea, removeVmArea, vmallocToPage, addrToNodeId, registerPurgeNotifier,
 * unregisterPurgeNotifier, setLockStat, markCpuDead, markCpuAlive, watchWorker. Tables only;
 * test/api/misuse-battery.test.ts runs them.
 *
 * Legal values left out: vfree / vunmap of 0, -0, null and undefined (they do nothing), and of
 * the start of any live area (vfree of a vmap area is allowed, as in the kernel); lookups of
 * addresses where no area is (the answer is null), removeVmArea of an address that starts no
 * area (null, as the doc comment says); a cpu of -0 (it is cpu 0).
 */

import { type VmFx, VM_CPUS, vmFixture } from '../helpers/misuse-fixtures.js';
import {
  type AnyTable,
  type Bad,
  DESIGNS,
  HUGE,
  NON_FINITE,
  type Row,
  at,
  nums,
  table,
  val,
  wrongTypes,
} from '../helpers/misuse-cases.js';
import { PAGE } from '../helpers/vm.js';

/** Not an address: an integer in [0, 2^48). */
export function badAddrs(): Bad<VmFx>[] {
  return [
    ...wrongTypes<VmFx>(),
    ...nums<VmFx>(...NON_FINITE, -1, -PAGE),
    at('A + 0.5', (fx) => fx.A + 0.5),
    ...nums<VmFx>(2 ** 48, 2 ** 48 + PAGE, 2 ** 53 - 1, 2 ** 53, 2 ** 60),
  ];
}

/** Page-aligned addresses in the address space where no live area starts. */
function notAnAreaStart(): Bad<VmFx>[] {
  return [
    at('F (already freed)', (fx) => fx.F),
    at('A + 1 page (inside A)', (fx) => fx.A + PAGE),
    at('A + 3 pages (the guard page of A)', (fx) => fx.A + 3 * PAGE),
    at('B + 1 page (inside the vmap area B)', (fx) => fx.B + PAGE),
    at('A + 2^30 (in the window, no area)', (fx) => fx.A + 2 ** 30),
    at('vmallocStart - 1 page (below the window)', (fx) => fx.vm.vmallocStart - PAGE),
    at('vmallocEnd + 1 (above the window)', (fx) => fx.vm.vmallocEnd + 1),
    ...nums<VmFx>(PAGE, 2 ** 31, 2 ** 32, 2 ** 48 - PAGE),
  ];
}

type Free = (fx: VmFx, addr: unknown) => unknown;

function freeRows(free: Free): Row<VmFx>[] {
  return [
    {
      arg: 'addr',
      pos: 'addr',
      code: 'EINVAL',
      // Not undefined or null: those mean "nothing to free".
      bad: [
        ...badAddrs().filter((b) => b.label !== 'undefined' && b.label !== 'null'),
        at('A + 1 (not page-aligned, inside A)', (fx) => fx.A + 1),
      ],
      call: free,
    },
    { arg: 'addr', pos: 'addr', code: 'ENOENT', bad: notAnAreaStart(), call: free },
  ];
}

/** Not a cpu id: an integer from 0 to nrCpus - 1. */
export function badCpus<F>(nrCpus: number, ...except: Parameters<typeof wrongTypes>): Bad<F>[] {
  return [
    ...wrongTypes<F>(...except),
    ...nums<F>(...NON_FINITE, -1, 0.5, nrCpus, nrCpus + 0.5, 65536, ...HUGE),
  ];
}

function lookup(fn: string, call: (fx: VmFx, addr: number) => unknown): AnyTable {
  return table<VmFx>({
    fn,
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EINVAL',
        bad: badAddrs(),
        call: (fx, v) => call(fx, v as number),
      },
    ],
  });
}

const worker = { on: () => undefined };

export const freeTables: AnyTable[] = [
  table<VmFx>({
    fn: 'vm.vfree',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: freeRows((fx, v) => fx.vm.vfree(v as number)),
  }),
  table<VmFx>({
    fn: 'vm.vunmap',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: freeRows((fx, v) => fx.vm.vunmap(v as number)),
  }),
  lookup('vm.findVmArea', (fx, a) => fx.vm.findVmArea(a)),
  lookup('vm.removeVmArea', (fx, a) => fx.vm.removeVmArea(a)),
  lookup('vm.vmallocToPage', (fx, a) => fx.vm.vmallocToPage(a)),
  lookup('vm.addrToNodeId', (fx, a) => fx.vm.addrToNodeId(a)),
  table<VmFx>({
    fn: 'vm.registerPurgeNotifier',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      {
        arg: 'fn',
        pos: 'fn',
        code: 'EINVAL',
        bad: wrongTypes('function'),
        call: (fx, v) => fx.vm.registerPurgeNotifier(v as () => number),
      },
    ],
  }),
  table<VmFx>({
    fn: 'vm.unregisterPurgeNotifier',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      {
        arg: 'fn',
        pos: 'fn',
        code: 'EINVAL',
        bad: wrongTypes('function'),
        call: (fx, v) => fx.vm.unregisterPurgeNotifier(v as () => number),
      },
    ],
  }),
  table<VmFx>({
    fn: 'vm.setLockStat',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      {
        arg: 'on',
        pos: 'on',
        code: 'EINVAL',
        bad: [...wrongTypes<VmFx>('true', 'false'), ...nums<VmFx>(0, 1)],
        call: (fx, v) => fx.vm.setLockStat(v as boolean),
      },
    ],
  }),
  ...(['markCpuDead', 'markCpuAlive'] as const).map((m) =>
    table<VmFx>({
      fn: `vm.${m}`,
      designs: DESIGNS,
      fixture: vmFixture,
      rows: [
        {
          arg: 'cpu',
          pos: 'cpu',
          code: 'EINVAL',
          bad: badCpus<VmFx>(VM_CPUS),
          call: (fx, v) => fx.vm[m](v as number),
        },
      ],
    }),
  ),
  table<VmFx>({
    fn: 'vm.watchWorker',
    designs: DESIGNS,
    fixture: vmFixture,
    rows: [
      {
        arg: 'worker',
        pos: 'worker',
        code: 'EINVAL',
        bad: [...wrongTypes<VmFx>(), val('{ on: 5 }', { on: 5 }), val("{ on: 'x' }", { on: 'x' })],
        call: (fx, v) => fx.vm.watchWorker(v as typeof worker, 1),
      },
      {
        arg: 'cpu',
        pos: 'cpu',
        code: 'EINVAL',
        bad: badCpus<VmFx>(VM_CPUS),
        call: (fx, v) => fx.vm.watchWorker(worker, v as number),
      },
    ],
  }),
];
