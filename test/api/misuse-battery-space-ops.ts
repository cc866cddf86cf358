/**
 * Misuse battery, a VmapSpace's operations: alloc, free and find, on four spaces of 64
 * pages: at 2^20, the same made concurrent (every operation under the lock, so a refused call
 * must also release it), the same with pools (a refused call must release the cache and
 * shard locks; its freed range is lazy, so freeing it again is still ENOENT), and at the top of the safe integers, [2^53 - 64 pages, 2^53).
 * Tables only; test/api/misuse-battery.test.ts runs them.
 *
 * The values are the same for the three spaces, relative to the space's start S and end E;
 * those that happen to be legal for a space (2^53 - 1 as vstart at the top, say) are dropped
 * for it. Legal values left out: any power of two as align (an alignment the space cannot
 * meet answers null), lookups of any safe integer (null).
 */

import type { AllocOptions } from '../../src/index.js';
import {
  SPACE_PAGES,
  SPACE_START,
  type SpaceFx,
  TOP_START,
  concurrentSpaceFixture,
  pooledSpaceFixture,
  spaceFixture,
  topSpaceFixture,
} from '../helpers/misuse-fixtures.js';
import {
  type AnyTable,
  type Bad,
  type Fixture,
  HUGE,
  NON_FINITE,
  at,
  badOptions,
  nums,
  table,
  val,
  wrongTypes,
} from '../helpers/misuse-cases.js';
import { PAGE } from '../helpers/vm.js';

const alloc = (fx: SpaceFx, size: unknown, options?: unknown) =>
  fx.space.alloc(size as number, options as AllocOptions);

/** Numbers among `values` for which `legal` holds are not bad values here: drop them. */
function unless(legal: (n: number) => boolean, values: number[]): Bad<SpaceFx>[] {
  return nums<SpaceFx>(...values.filter((n) => !legal(n)));
}

function opTables(name: string, fixture: Fixture<SpaceFx>, S: number): AnyTable[] {
  const E = S + SPACE_PAGES * PAGE;
  const inSpace = (n: number) => Number.isSafeInteger(n) && n >= S && n < E;
  const isVend = (n: number) => Number.isInteger(n) && n > S && n <= E;
  const fractions = [0.5, S + 0.5, E - 0.5].filter((n) => !Number.isInteger(n));
  const notInteger = [
    ...wrongTypes<SpaceFx>(),
    ...nums<SpaceFx>(...NON_FINITE, ...fractions, 2 ** 53, 2 ** 60, -(2 ** 53)),
  ];
  return [
    table<SpaceFx>({
      fn: `${name}.alloc`,
      designs: [undefined],
      fixture,
      rows: [
        {
          arg: 'size',
          pos: 'size',
          code: 'EINVAL',
          bad: [
            ...wrongTypes<SpaceFx>(),
            ...nums<SpaceFx>(...NON_FINITE, -0, 0, -1, -PAGE, 100, PAGE + 1, 0.5, PAGE + 0.5),
            val('65 pages (one page more than the space)', 65 * PAGE),
            ...nums<SpaceFx>(...HUGE),
          ],
          call: (fx, v) => alloc(fx, v),
        },
        {
          arg: 'options',
          pos: 'options',
          code: 'EINVAL',
          bad: badOptions(),
          call: (fx, v) => alloc(fx, PAGE, v),
        },
        {
          arg: 'align',
          pos: 'options.align',
          code: 'EINVAL',
          bad: [
            ...wrongTypes<SpaceFx>('undefined'),
            ...nums<SpaceFx>(...NON_FINITE, -0, 0, -1, -PAGE, 3, 0.5, PAGE + 1, 2 ** 53 - 1),
          ],
          call: (fx, v) => alloc(fx, PAGE, { align: v }),
        },
        {
          arg: 'vstart',
          pos: 'options.vstart',
          code: 'EINVAL',
          bad: [
            ...wrongTypes<SpaceFx>('undefined'),
            ...unless(inSpace, [...NON_FINITE, -0, 0, -1, S - 1, S - PAGE, ...fractions, E]),
            ...unless(inSpace, [2 ** 53 - 1, 2 ** 53, 2 ** 60]),
          ],
          call: (fx, v) => alloc(fx, PAGE, { vstart: v }),
        },
        {
          arg: 'vend',
          pos: 'options.vend',
          code: 'EINVAL',
          bad: [
            ...wrongTypes<SpaceFx>('undefined'),
            ...unless(isVend, [...NON_FINITE, -0, 0, -1, S - 1, S, ...fractions, E + 1]),
            ...unless(isVend, [E + 2, E + PAGE, 2 ** 53 - 1, 2 ** 53, 2 ** 60]),
          ],
          call: (fx, v) => alloc(fx, PAGE, { vend: v }),
        },
        {
          arg: 'vstart',
          pos: 'options.{vstart, vend}',
          code: 'EINVAL',
          bad: [
            val('vstart = vend = S + 8 pages', [S + 8 * PAGE, S + 8 * PAGE]),
            val('vstart S + 9 pages > vend S + 8 pages', [S + 9 * PAGE, S + 8 * PAGE]),
          ],
          call: (fx, v) => {
            const [vstart, vend] = v as [number, number];
            return alloc(fx, PAGE, { vstart, vend });
          },
        },
      ],
    }),
    table<SpaceFx>({
      fn: `${name}.free`,
      designs: [undefined],
      fixture,
      rows: [
        {
          arg: 'addr',
          pos: 'addr',
          code: 'EINVAL',
          // A negative number is not an address at all (as in the vmalloc layer): EINVAL.
          bad: [...notInteger, ...nums<SpaceFx>(-1, -PAGE)],
          call: (fx, v) => fx.space.free(v as number),
        },
        {
          arg: 'addr',
          pos: 'addr',
          code: 'ENOENT',
          bad: [
            at('S + 3 pages (already freed)', (fx) => fx.freed),
            at('a2 + 1 page (inside a2)', (fx) => fx.a2 + PAGE),
            at('a1 + 1 (inside a1)', (fx) => fx.a1 + 1),
            val('S + 10 pages (in the space, no area)', S + 10 * PAGE),
            val('S - 1 page (below the space)', S - PAGE),
            ...(Number.isSafeInteger(E) ? [val('E (the end of the space)', E)] : []),
            ...nums<SpaceFx>(0, -0, 2 ** 31, 2 ** 32, 2 ** 53 - 1),
          ],
          call: (fx, v) => fx.space.free(v as number),
        },
      ],
    }),
    table<SpaceFx>({
      fn: `${name}.find`,
      designs: [undefined],
      fixture,
      rows: [
        {
          arg: 'addr',
          pos: 'addr',
          code: 'EINVAL',
          bad: notInteger,
          call: (fx, v) => fx.space.find(v as number),
        },
      ],
    }),
  ];
}

export const spaceOpTables: AnyTable[] = [
  ...opTables('space', spaceFixture, SPACE_START),
  ...opTables('concurrentSpace', concurrentSpaceFixture, SPACE_START),
  ...opTables('pooledSpace', pooledSpaceFixture, SPACE_START),
  ...opTables('topSpace', topSpaceFixture, TOP_START),
];
