/**
 * Misuse battery, kvfree_rcu: vm.kvfreeRcu given what is not the start of a live vmalloc area
 * or an area queued already (a double free), and the other frees given an area kvfreeRcu
 * queued (vfree, removeVmArea: EBUSY; vunmap refuses it as a vmalloc area). Tables only;
 * test/api/misuse-battery.test.ts runs them.
 *
 * The fixture is misuse-fixtures' subsystem plus Q, a 1-page vmalloc area queued by
 * kvfreeRcu and still pending (its batch is partial, so no grace period frees it).
 * Legal values left out: kvfreeRcu of 0, null and undefined (it does nothing, as the kernel's
 * kvfree_rcu(NULL)).
 */

import { type VmFx, makeVmFx, vmState } from '../helpers/misuse-fixtures.js';
import { type AnyTable, DESIGNS, type Fixture, at, table } from '../helpers/misuse-cases.js';
import { PAGE } from '../helpers/vm.js';
import { badAddrs } from './misuse-battery-free.js';

export interface RcuFx extends VmFx {
  Q: number;
}

const rcuFixture: Fixture<RcuFx> = {
  make(design) {
    const fx = makeVmFx(design);
    const Q = fx.vm.vmalloc(PAGE)!;
    fx.vm.kvfreeRcu(Q);
    if (fx.vm.stats().rcuPending !== 1) throw new Error('bad fixture: Q is not pending');
    return { ...fx, Q };
  },
  state: (fx) => ({ vm: vmState(fx), q: fx.vm.findVmArea(fx.Q) }),
};

export const rcuTables: AnyTable[] = [
  table<RcuFx>({
    fn: 'vm.kvfreeRcu',
    designs: DESIGNS,
    fixture: rcuFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EINVAL',
        bad: [
          ...badAddrs().filter((b) => b.label !== 'undefined' && b.label !== 'null'),
          at('A + 1 (not page-aligned, inside A)', (fx) => fx.A + 1),
          at('B (a vmap area)', (fx) => fx.B),
          at('C (a get_vm_area area, no pages)', (fx) => fx.C),
        ],
        call: (fx, v) => fx.vm.kvfreeRcu(v as number),
      },
      {
        arg: 'addr',
        pos: 'addr',
        code: 'ENOENT',
        bad: [
          at('F (already freed)', (fx) => fx.F),
          at('A + 1 page (inside A)', (fx) => fx.A + PAGE),
          at('A + 3 pages (the guard page of A)', (fx) => fx.A + 3 * PAGE),
          at('B + 1 page (inside the vmap area B)', (fx) => fx.B + PAGE),
          at('A + 2^30 (in the window, no area)', (fx) => fx.A + 2 ** 30),
          at('vmallocStart - 1 page (below the window)', (fx) => fx.vm.vmallocStart - PAGE),
          at('2^48 - 1 page', () => 2 ** 48 - PAGE),
        ],
        call: (fx, v) => fx.vm.kvfreeRcu(v as number),
      },
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EBUSY',
        bad: [at('Q (queued already: a double kvfreeRcu)', (fx) => fx.Q)],
        call: (fx, v) => fx.vm.kvfreeRcu(v as number),
      },
    ],
  }),
  table<RcuFx>({
    fn: 'vm.vfree after kvfreeRcu',
    designs: DESIGNS,
    fixture: rcuFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EBUSY',
        bad: [at('Q (queued by kvfreeRcu)', (fx) => fx.Q)],
        call: (fx, v) => fx.vm.vfree(v as number),
      },
    ],
  }),
  table<RcuFx>({
    fn: 'vm.removeVmArea after kvfreeRcu',
    designs: DESIGNS,
    fixture: rcuFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EBUSY',
        bad: [at('Q (queued by kvfreeRcu)', (fx) => fx.Q)],
        call: (fx, v) => fx.vm.removeVmArea(v as number),
      },
    ],
  }),
  table<RcuFx>({
    fn: 'vm.vunmap after kvfreeRcu',
    designs: DESIGNS,
    fixture: rcuFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EINVAL',
        bad: [at('Q (a vmalloc area queued by kvfreeRcu)', (fx) => fx.Q)],
        call: (fx, v) => fx.vm.vunmap(v as number),
      },
    ],
  }),
];
