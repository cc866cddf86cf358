/**
 * Misuse battery, making and attaching the bare range allocator: new VmapSpace(options) and
 * VmapSpace.attach. Its operations are in misuse-battery-space-ops.ts. Tables only;
 * test/api/misuse-battery.test.ts runs them.
 *
 * Legal values left out: start 2^53 - 1 with end 2^53 (a space may reach the top), attach
 * options undefined (cpu 0 by default).
 */

import { VmapSpace, type VmapSpaceHandle, type VmapSpaceOptions } from '../../src/index.js';
import {
  type AttachFx,
  SPACE_PAGES,
  SPACE_START,
  attachFixture,
  noFixture,
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
} from '../helpers/misuse-cases.js';
import { PAGE } from '../helpers/vm.js';

const S = SPACE_START;
const END = S + SPACE_PAGES * PAGE;

/** new VmapSpace({ start: S, end: END, ...base }) with option `arg` set to the bad value. */
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
    at('a pooled handle with pools: null', (fx) => ({ ...fx.pooledSpace.handle, pools: null })),
    at('a plain handle with the pools of another space', (fx) => ({
      ...fx.space.handle,
      pools: fx.pooledSpace.handle.pools,
    })),
    at('a pooled handle with a pools buffer of the wrong size', (fx) => ({
      ...fx.pooledSpace.handle,
      pools: new SharedArrayBuffer(1024),
    })),
    at('a pooled handle whose pools is an ArrayBuffer', (fx) => ({
      ...fx.pooledSpace.handle,
      pools: new ArrayBuffer(8),
    })),
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
      ctorRow('fit', [
        ...wrongTypes<null>('undefined'),
        val("'Exact'", 'Exact'),
        val("'lowest'", 'lowest'),
        val("''", ''),
      ]),
      ctorRow('pools', [
        ...wrongTypes<null>('undefined', 'true', 'false', 'object'),
        val('true without concurrent', true),
        val('{} without concurrent', {}),
      ]),
      ctorRow(
        'pools',
        [
          val('{ caches: 3 }', { caches: 3 }),
          val('{ caches: 0 }', { caches: 0 }),
          val('{ caches: 128 }', { caches: 128 }),
          val("{ caches: '8' }", { caches: '8' }),
          val('{ classes: 0 }', { classes: 0 }),
          val('{ classes: 257 }', { classes: 257 }),
          val('{ classes: 1.5 }', { classes: 1.5 }),
          val('{ lazyMax: 0 }', { lazyMax: 0 }),
          val('{ lazyMax: 65537 }', { lazyMax: 65537 }),
          val('{ lazyMax: NaN }', { lazyMax: NaN }),
          val('{ size: 4 } (unknown setting)', { size: 4 }),
          val('an array', [8]),
        ],
        { concurrent: true },
      ),
      ctorRow(
        'lockTimeoutMs',
        [...wrongTypes<null>('undefined'), ...nums<null>(...NON_FINITE, -0, 0, -1, 0.5, ...HUGE)],
        { concurrent: true },
      ),
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
