/**
 * Misuse battery, the bare range allocator: new VmapSpace(options), alloc, free, find and
 * VmapSpace.attach. Tables only; test/api/misuse-battery.test.ts runs them.
 *
 * The space is [S, S + 64 pages) with S = 2^20 (see makeSpaceFx). Legal values left out:
 * start 2^53 - 1 with end 2^53 (a space may reach the top), any power of two as align (an
 * alignment the space cannot meet answers null), lookups of any safe integer (null), attach
 * options undefined (cpu 0 by default).
 */

import {
  VmapSpace,
  type AllocOptions,
  type VmapSpaceHandle,
  type VmapSpaceOptions,
} from '../../src/index.js';
import {
  type AttachFx,
  SPACE_PAGES,
  type SpaceFx,
  attachFixture,
  noFixture,
  spaceFixture,
} from '../helpers/misuse-fixtures.js';
import {
  type AnyTable,
  type Bad,
  HUGE,
  NON_FINITE,
  type Row,
  at,
  badOptions,
  nums,
  table,
  val,
  wrongTypes,
} from '../helpers/misuse.js';
import { PAGE } from '../helpers/vm.js';

const S = 2 ** 20;
const END = S + SPACE_PAGES * PAGE;

/** new VmapSpace with `options` changed by `patch`, which sets the bad value. */
function ctorRow(
  arg: keyof VmapSpaceOptions,
  bad: Bad<null>[],
  base: Partial<VmapSpaceOptions> = {},
): Row<null> {
  return {
    arg,
    pos: `options.${arg}`,
    code: 'EINVAL',
    bad,
    call: (_fx, v) => new VmapSpace({ start: S, end: END, ...base, [arg]: v } as VmapSpaceOptions),
  };
}

const notBoolean = () => [...wrongTypes<null>('undefined', 'true', 'false'), ...nums<null>(0, 1)];

const alloc = (fx: SpaceFx, size: unknown, options?: unknown) =>
  fx.space.alloc(size as number, options as AllocOptions);

/** Not an integer address (the space's addresses are safe integers). */
function badAddrs(): Bad<SpaceFx>[] {
  return [
    ...wrongTypes<SpaceFx>(),
    ...nums<SpaceFx>(...NON_FINITE, S + 0.5, 2 ** 53, 2 ** 60, -(2 ** 53)),
  ];
}

const attach = (h: unknown, o: unknown) =>
  VmapSpace.attach(h as VmapSpaceHandle, o as { cpu?: number });

/** Not the handle of a concurrent space. */
function badHandles(): Bad<AttachFx>[] {
  return [
    ...wrongTypes<AttachFx>(),
    val("{ kind: 'VmapSpace' } (forged)", { kind: 'VmapSpace' }),
    val("{ kind: 'VmapSpace', locks: null } (forged)", { kind: 'VmapSpace', locks: null }),
    at('the handle through JSON (buffers lost)', (fx) =>
      JSON.parse(JSON.stringify(fx.space.handle)),
    ),
    at("the handle with kind 'Vmalloc'", (fx) => ({ ...fx.space.handle, kind: 'Vmalloc' })),
    at("the handle with start 'x'", (fx) => ({ ...fx.space.handle, start: 'x' })),
    at('the handle with end = start', (fx) => ({ ...fx.space.handle, end: fx.space.start })),
    at('the handle with pageSize 3', (fx) => ({ ...fx.space.handle, pageSize: 3 })),
    at('the handle with store {}', (fx) => ({ ...fx.space.handle, store: {} })),
    at('a Vmalloc handle', (fx) => fx.vm.handle),
    at('the handle of a space made without concurrent', (fx) => fx.plainSpace.handle),
    at('a VmapSpace (not its handle)', (fx) => fx.space),
  ];
}

export const spaceTables: AnyTable[] = [
  table<null>({
    fn: 'new VmapSpace',
    designs: [undefined],
    fixture: noFixture,
    rows: [
      {
        arg: 'options',
        pos: 'options',
        code: 'EINVAL',
        bad: [val('undefined', undefined), ...badOptions<null>()],
        call: (_fx, v) => new VmapSpace(v as VmapSpaceOptions),
      },
      ctorRow(
        'start',
        [
          ...wrongTypes<null>(),
          ...nums<null>(...NON_FINITE, -1, -PAGE, 0.5, 2 ** 53, 2 ** 60, -(2 ** 53)),
        ],
        { end: 2 ** 53 },
      ),
      ctorRow('end', [
        ...wrongTypes<null>(),
        ...nums<null>(...NON_FINITE, -0, 0, -1, S, S - 1, S + 0.5, 2 ** 53 + 2, 2 ** 60),
      ]),
      ctorRow('pageSize', [
        ...wrongTypes<null>('undefined'),
        ...nums<null>(...NON_FINITE, -0, 0, -PAGE, 3, 0.5, 2 ** 30 + 1, ...HUGE),
      ]),
      ctorRow('shared', notBoolean()),
      ctorRow('maxRecords', [
        ...wrongTypes<null>('undefined'),
        ...nums<null>(...NON_FINITE, -0, 0, -1, 1, 2, 0.5, 2 ** 53 - 1, 2 ** 53, 2 ** 60),
      ]),
      ctorRow('concurrent', notBoolean()),
      ctorRow('concurrent', [val('true with shared: false', true)], { shared: false }),
      ctorRow(
        'lockTimeoutMs',
        [...wrongTypes<null>('undefined'), ...nums<null>(...NON_FINITE, -0, 0, -1, 0.5, ...HUGE)],
        { concurrent: true },
      ),
    ],
  }),
  table<SpaceFx>({
    fn: 'space.alloc',
    designs: [undefined],
    fixture: spaceFixture,
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
          ...nums<SpaceFx>(...NON_FINITE, -0, 0, -1, S - 1, S - PAGE, S + 0.5, END),
          ...nums<SpaceFx>(2 ** 53 - 1, 2 ** 53, 2 ** 60),
        ],
        call: (fx, v) => alloc(fx, PAGE, { vstart: v }),
      },
      {
        arg: 'vend',
        pos: 'options.vend',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<SpaceFx>('undefined'),
          ...nums<SpaceFx>(...NON_FINITE, -0, 0, -1, S - 1, S, S + 0.5, END + 1, END + PAGE),
          ...nums<SpaceFx>(2 ** 53 - 1, 2 ** 53, 2 ** 60),
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
    fn: 'space.free',
    designs: [undefined],
    fixture: spaceFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EINVAL',
        bad: badAddrs(),
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
          val('S + 64 pages (the end of the space)', END),
          ...nums<SpaceFx>(0, -0, -1, 2 ** 31, 2 ** 32, 2 ** 53 - 1),
        ],
        call: (fx, v) => fx.space.free(v as number),
      },
    ],
  }),
  table<SpaceFx>({
    fn: 'space.find',
    designs: [undefined],
    fixture: spaceFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EINVAL',
        bad: badAddrs(),
        call: (fx, v) => fx.space.find(v as number),
      },
    ],
  }),
  table<AttachFx>({
    fn: 'VmapSpace.attach',
    designs: [undefined],
    fixture: attachFixture,
    rows: [
      {
        arg: 'handle',
        pos: 'handle',
        code: 'EINVAL',
        bad: badHandles(),
        call: (fx, v) => attach(v, { cpu: 1 }),
      },
      {
        arg: 'options',
        pos: 'options',
        code: 'EINVAL',
        bad: badOptions(),
        call: (fx, v) => attach(fx.space.handle, v),
      },
      {
        arg: 'cpu',
        pos: 'options.cpu',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<AttachFx>('undefined'),
          ...nums<AttachFx>(...NON_FINITE, -1, 0.5, 65536, ...HUGE),
        ],
        call: (fx, v) => attach(fx.space.handle, { cpu: v }),
      },
    ],
  }),
];
