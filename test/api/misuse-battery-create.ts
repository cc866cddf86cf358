/**
 * Misuse battery, making and attaching a subsystem: createVmalloc's options, attachVmalloc's
 * handle and options, and the address helpers kernelHex, toKernelAddress, fromKernelAddress.
 * Tables only; test/api/misuse-battery.test.ts runs them.
 *
 * Legal values left out: every design of DESIGN_NAMES ('legacy' among them), any vmallocStart / vmallocSize / physicalMemory that is page-aligned
 * and in range (2^31 and 2^32 among them), checkEveryOp 0 and any safe non-negative integer,
 * logger null; for attach, a free cpu (2 of 0..2 here: cpu 0 is the creator, cpu 1 a worker
 * the fixture attached).
 */

import {
  KERNEL_BASE,
  attachVmalloc,
  createVmalloc,
  fromKernelAddress,
  kernelHex,
  toKernelAddress,
  type AttachOptions,
  type VmallocHandle,
  type VmallocOptions,
} from '../../src/index.js';
import {
  ATTACH_CPUS,
  type AttachFx,
  attachFixture,
  noFixture,
} from '../helpers/misuse-fixtures.js';
import {
  type AnyTable,
  type Bad,
  DESIGNS,
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
import { badCpus } from './misuse-battery-free.js';

type Create = Row<null>['call'];

/** Small, quiet, and what the other options are while one is tested. */
const BASE: VmallocOptions = { nrCpus: 2, physicalMemory: 64 * PAGE, logger: null };

/** createVmalloc with one option set to the bad value. */
function option(name: keyof VmallocOptions, bad: Bad<null>[]): Row<null> {
  const call: Create = (_fx, v) => createVmalloc({ ...BASE, [name]: v });
  return { arg: name, pos: `options.${name}`, code: 'EINVAL', bad, call };
}

const notBoolean = () => [...wrongTypes<null>('undefined', 'true', 'false'), ...nums<null>(0, 1)];

/** Rows whose value does not depend on the design; run once for each design. */
function createRows(design: 'global' | 'nodes'): Row<null>[] {
  const rows: Row<null>[] = [
    option('nrCpus', [
      ...wrongTypes<null>('undefined'),
      ...nums<null>(...NON_FINITE, -0, 0, -1, 0.5, 1.5, 4097, ...HUGE),
    ]),
    option('pageSize', [
      ...wrongTypes<null>('undefined'),
      ...nums<null>(...NON_FINITE, -0, 0, -PAGE, 1, 512, 1023, 3000, PAGE + 0.5),
      ...nums<null>(2 ** 17, ...HUGE),
    ]),
    option('vmallocStart', [
      ...wrongTypes<null>('undefined'),
      ...nums<null>(...NON_FINITE, -0, 0, -PAGE, PAGE + 1, PAGE + 0.5),
      ...nums<null>(2 ** 48, 2 ** 53 - 1, 2 ** 53, 2 ** 60),
    ]),
    option('vmallocSize', [
      ...wrongTypes<null>('undefined'),
      ...nums<null>(...NON_FINITE, -0, 0, -PAGE, 15 * PAGE, 16 * PAGE + 1, PAGE + 0.5),
      ...nums<null>(2 ** 48, 2 ** 53 - 1, 2 ** 53, 2 ** 60),
    ]),
    option('physicalMemory', [
      ...wrongTypes<null>('undefined'),
      ...nums<null>(...NON_FINITE, -0, 0, -PAGE, 15 * PAGE, 16 * PAGE + 1, PAGE + 0.5),
      ...nums<null>(2 ** 32 + PAGE, 2 ** 53 - 1, 2 ** 53, 2 ** 60),
    ]),
    option('shared', wrongTypes<null>('undefined', 'true', 'false')),
    option('logger', [
      ...wrongTypes<null>('undefined', 'null'),
      val('{}', {}),
      val('{ warn: 5 }', { warn: 5 }),
    ]),
    option('checkEveryOp', [
      ...wrongTypes<null>('undefined', 'true', 'false'),
      ...nums<null>(...NON_FINITE, -1, 0.5, 2 ** 53, 2 ** 60),
    ]),
    option('numaInfo', notBoolean()),
    option('lockStat', notBoolean()),
    option('lockTimeoutMs', [
      ...wrongTypes<null>('undefined'),
      ...nums<null>(...NON_FINITE, -0, 0, -1, 0.5, ...HUGE),
    ]),
  ];
  return rows.map((r) => ({
    ...r,
    call: (fx, v) => createVmalloc({ ...BASE, design, [r.arg]: v } as VmallocOptions),
  }));
}

type Attach = (fx: AttachFx, handle: unknown, options: unknown) => unknown;
const attach: Attach = (_fx, h, o) => attachVmalloc(h as VmallocHandle, o as AttachOptions);

/** Handles that are not the handle of a subsystem that can be shared. */
function badHandles(): Bad<AttachFx>[] {
  return [
    ...wrongTypes<AttachFx>(),
    val("{ kind: 'Vmalloc' } (forged)", { kind: 'Vmalloc' }),
    at("{ kind: 'Vmalloc', config } (forged, no buffers)", (fx) => ({
      kind: 'Vmalloc',
      config: fx.vm.handle.config,
    })),
    at('the handle through JSON (buffers lost)', (fx) => JSON.parse(JSON.stringify(fx.vm.handle))),
    at("the handle with kind 'VmapSpace'", (fx) => ({ ...fx.vm.handle, kind: 'VmapSpace' })),
    at('the handle with config.nrCpus 0', (fx) => ({
      ...fx.vm.handle,
      config: { ...fx.vm.handle.config, nrCpus: 0 },
    })),
    at("the handle with config.design 'bogus'", (fx) => ({
      ...fx.vm.handle,
      config: { ...fx.vm.handle.config, design: 'bogus' },
    })),
    at('the handle with another design (config edited)', (fx) => ({
      ...fx.vm.handle,
      config: {
        ...fx.vm.handle.config,
        design: fx.vm.handle.config.design === 'nodes' ? 'global' : 'nodes',
      },
    })),
    at('the handle with config.physicalMemory doubled (config edited)', (fx) => ({
      ...fx.vm.handle,
      config: { ...fx.vm.handle.config, physicalMemory: 2 * fx.vm.handle.config.physicalMemory },
    })),

    at('a VmapSpace handle (concurrent)', (fx) => fx.space.handle),
    at('a VmapSpace handle (not concurrent)', (fx) => fx.plainSpace.handle),
    at('the handle of a shared: false subsystem', (fx) => fx.privateVm.handle),
    at('a Vmalloc (not its handle)', (fx) => fx.vm),
  ];
}

const cpu2 = { cpu: 2, logger: null };

function attachRows(): Row<AttachFx>[] {
  return [
    {
      arg: 'handle',
      pos: 'handle',
      code: 'EINVAL',
      bad: badHandles(),
      call: (fx, v) => attach(fx, v, cpu2),
    },
    {
      arg: 'options',
      pos: 'options',
      code: 'EINVAL',
      bad: [...badOptions<AttachFx>(), val('undefined', undefined)],
      call: (fx, v) => attach(fx, fx.vm.handle, v),
    },
    {
      arg: 'cpu',
      pos: 'options.cpu',
      code: 'EINVAL',
      bad: badCpus<AttachFx>(ATTACH_CPUS),
      call: (fx, v) => attach(fx, fx.vm.handle, { cpu: v, logger: null }),
    },
    {
      arg: 'cpu',
      pos: 'options.cpu',
      code: 'EBUSY',
      bad: [
        val('0 (the creator is cpu 0)', 0),
        val('-0 (cpu 0, the creator)', -0),
        val('1 (a worker attached as cpu 1)', 1),
      ],
      call: (fx, v) => attach(fx, fx.vm.handle, { cpu: v, logger: null }),
    },
    {
      arg: 'logger',
      pos: 'options.logger',
      code: 'EINVAL',
      bad: [...wrongTypes<AttachFx>('undefined', 'null'), val('{ warn: 5 }', { warn: 5 })],
      call: (fx, v) => attach(fx, fx.vm.handle, { cpu: 2, logger: v }),
    },
  ];
}

/** Not a library address for kernelHex / toKernelAddress: an integer in [0, 2^48). */
function badLibraryAddrs(): Bad<null>[] {
  return [
    ...wrongTypes<null>(),
    ...nums<null>(...NON_FINITE, -1, -PAGE, 0.5, 2 ** 48, 2 ** 48 + 1, 2 ** 53 - 1, 2 ** 53),
    ...nums<null>(2 ** 60),
  ];
}

export const createTables: AnyTable[] = [
  table<null>({
    fn: 'createVmalloc',
    designs: [undefined],
    fixture: noFixture,
    rows: [
      {
        arg: 'options',
        pos: 'options',
        code: 'EINVAL',
        bad: badOptions(),
        call: (_fx, v) => createVmalloc(v as VmallocOptions),
      },
      option('design', [
        ...wrongTypes<null>('undefined'),
        val("''", ''),
        val("'bogus' (no such design)", 'bogus'),
        val("'Nodes'", 'Nodes'),
        val("'toString'", 'toString'),
      ]),
    ],
  }),
  ...DESIGNS.map((d) =>
    table<null>({ fn: 'createVmalloc', designs: [d], fixture: noFixture, rows: createRows(d) }),
  ),
  table<AttachFx>({
    fn: 'attachVmalloc',
    designs: DESIGNS,
    fixture: attachFixture,
    rows: attachRows(),
  }),
  table<null>({
    fn: 'kernelHex',
    designs: [undefined],
    fixture: noFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EINVAL',
        bad: badLibraryAddrs(),
        call: (_fx, v) => kernelHex(v as number),
      },
    ],
  }),
  table<null>({
    fn: 'toKernelAddress',
    designs: [undefined],
    fixture: noFixture,
    rows: [
      {
        arg: 'addr',
        pos: 'addr',
        code: 'EINVAL',
        bad: badLibraryAddrs(),
        call: (_fx, v) => toKernelAddress(v as number),
      },
    ],
  }),
  table<null>({
    fn: 'fromKernelAddress',
    designs: [undefined],
    fixture: noFixture,
    rows: [
      {
        arg: 'kaddr',
        pos: 'kaddr',
        code: 'EINVAL',
        bad: [
          ...wrongTypes<null>('string', 'bigint'),
          ...nums<null>(0, 2 ** 53),
          val("'xyz'", 'xyz'),
          val("''", ''),
          val("'0x1' (below the kernel half)", '0x1'),
          val("'-1'", '-1'),
          val("'0xffff000000000000.5'", '0xffff000000000000.5'),
          val('-1n', -1n),
          val('KERNEL_BASE - 1n', KERNEL_BASE - 1n),
          val('KERNEL_BASE + 2n ** 48n (one past)', KERNEL_BASE + 2n ** 48n),
          val('2n ** 64n', 2n ** 64n),
        ],
        call: (_fx, v) => fromKernelAddress(v as bigint),
      },
    ],
  }),
];
