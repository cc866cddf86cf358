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
import {
  type AnyTable,
  type Bad,
  type Code,
  DESIGNS,
  type Fixture,
  type Row,
  at,
  table,
} from '../helpers/misuse-cases.js';
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

/** A row of vm.kvfreeRcu(addr) refused with `code`. */
function kvfreeRcuRow(code: Code, bad: Bad<RcuFx>[]): Row<RcuFx> {
  return { arg: 'addr', pos: 'addr', code, bad, call: (fx, v) => fx.vm.kvfreeRcu(v as number) };
}

/** The table of another free (`fn`) given Q, which kvfreeRcu queued: refused with `code`. */
function freeOfQueued(
  fn: string,
  code: Code,
  label: string,
  call: (fx: RcuFx, addr: number) => unknown,
): AnyTable {
  return table<RcuFx>({
    fn: `vm.${fn} after kvfreeRcu`,
    designs: DESIGNS,
    fixture: rcuFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code,
        bad: [at(label, (fx) => fx.Q)],
        call: (fx, v) => call(fx, v as number),
      },
    ],
  });
}

export const rcuTables: AnyTable[] = [
  table<RcuFx>({
    fn: 'vm.kvfreeRcu',
    designs: DESIGNS,
    fixture: rcuFixture,
    rows: [
      kvfreeRcuRow('EINVAL', [
        ...badAddrs().filter((b) => b.label !== 'undefined' && b.label !== 'null'),
        at('A + 1 (not page-aligned, inside A)', (fx) => fx.A + 1),
        at('B (a vmap area)', (fx) => fx.B),
        at('C (a get_vm_area area, no pages)', (fx) => fx.C),
      ]),
      kvfreeRcuRow('ENOENT', [
        at('F (already freed)', (fx) => fx.F),
        at('A + 1 page (inside A)', (fx) => fx.A + PAGE),
        at('A + 3 pages (the guard page of A)', (fx) => fx.A + 3 * PAGE),
        at('B + 1 page (inside the vmap area B)', (fx) => fx.B + PAGE),
        at('A + 2^30 (in the window, no area)', (fx) => fx.A + 2 ** 30),
        at('vmallocStart - 1 page (below the window)', (fx) => fx.vm.vmallocStart - PAGE),
        at('2^48 - 1 page', () => 2 ** 48 - PAGE),
      ]),
      kvfreeRcuRow('EBUSY', [at('Q (queued already: a double kvfreeRcu)', (fx) => fx.Q)]),
    ],
  }),
  freeOfQueued('vfree', 'EBUSY', 'Q (queued by kvfreeRcu)', (fx, a) => fx.vm.vfree(a)),
  freeOfQueued('removeVmArea', 'EBUSY', 'Q (queued by kvfreeRcu)', (fx, a) =>
    fx.vm.removeVmArea(a),
  ),
  freeOfQueued('vunmap', 'EINVAL', 'Q (a vmalloc area queued by kvfreeRcu)', (fx, a) =>
    fx.vm.vunmap(a),
  ),
];
