/**
 * createVmalloc() options: every option against a battery of values that do not fit (each
 * refused with EINVAL naming the option and its rule), the values that do fit, unknown option
 * names, and the handful of other calls that take a function or an object.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DESIGN_NAMES,
  VmFlags,
  VmallocError,
  createVmalloc,
  type VmallocOptions,
} from '../../src/index.js';
import { refuses } from '../helpers/misuse.js';
import { PAGE, testVm } from '../helpers/vm.js';

const BATTERY: [string, unknown][] = [
  ['0', 0],
  ['-0', -0],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['-1', -1],
  ['-4096', -4096],
  ['0.5', 0.5],
  ['2^40', 2 ** 40],
  ['2^53', 2 ** 53],
  ['2', 2],
  ['3', 3],
  ['true', true],
  ['false', false],
  ['a symbol', Symbol('x')],
  ['a bigint', 4096n],
  ['"4096"', '4096'],
  ['"x"', 'x'],
  ['null', null],
  ['an object', {}],
  ['an array', []],
  ['a function', () => 0],
];

/** Per option: the rule in its message, and which battery entries fit. */
const OPTIONS: Record<keyof VmallocOptions, [RegExp, string[]]> = {
  design: [/design must be one of 'nodes', 'global'/, []],
  nrCpus: [/nrCpus must be an integer from 1 to 4096/, ['2', '3']],
  pageSize: [/pageSize must be a power of two from 1024 to 65536/, []],
  vmallocStart: [/vmallocStart must be a page-aligned address in the managed space/, ['2^40']],
  vmallocSize: [/vmallocSize must be a multiple of the page size/, ['2^40']],
  physicalMemory: [/physicalMemory must be a multiple of the page size from 16 pages/, []],
  shared: [/shared must be a boolean/, ['true', 'false']],
  logger: [/logger must be an object with a warn\(message\) method, or null/, ['null']],
  checkEveryOp: [
    /checkEveryOp must be a boolean or a non-negative integer/,
    ['0', '-0', '2^40', '2', '3', 'true', 'false'],
  ],
  numaInfo: [/numaInfo must be a boolean/, ['true', 'false']],
  lockStat: [/lockStat must be a boolean/, ['true', 'false']],
  lockTimeoutMs: [/lockTimeoutMs must be a positive integer/, ['2', '3']],
  vmapBlockHash: [/vmapBlockHash must be 'global' or 'percpu'/, []],
  configNrCpus: [/configNrCpus must be an integer from nrCpus \(1\) to 2\^20/, ['2', '3']],
  nrVmapNodes: [/nrVmapNodes must be an integer from 1 to 255/, ['2', '3']],
  vmapZoneSize: [/vmapZoneSize must be a multiple of the page size from 4 pages to 1 GiB/, []],
  vmapPoolLimit: [/vmapPoolLimit must be an integer from 0 to 2\^31 - 1/, ['0', '-0', '2', '3']],
  vmapPoolDecay: [/vmapPoolDecay must be a number from 0 to 1/, ['0', '-0', '0.5']],
  lazyMaxPages: [/lazyMaxPages must be an integer from 1 to 2\^31 - 1/, ['2', '3']],
};

function refusal(options: unknown): VmallocError | null {
  try {
    createVmalloc(options as VmallocOptions);
    return null;
  } catch (e) {
    assert.ok(e instanceof VmallocError, `a VmallocError, got ${String(e)}`);
    return e;
  }
}

describe('createVmalloc() options', () => {
  for (const [name, [rule, fits]] of Object.entries(OPTIONS)) {
    test(`${name}: every value that does not fit is refused, naming the rule`, () => {
      for (const [label, value] of BATTERY) {
        const e = refusal({ nrCpus: 1, physicalMemory: 64 * PAGE, [name]: value });
        if (fits.includes(label)) {
          assert.equal(e, null, `${name}: ${label} fits, got ${e?.message}`);
          continue;
        }
        assert.ok(e !== null, `${name}: ${label} was accepted`);
        assert.equal(e.code, 'EINVAL');
        assert.match(e.message, /^Cannot create vmalloc: /);
        assert.match(e.message, rule, `${name}: ${label}`);
        assert.match(e.message, /, got .+$/);
      }
    });
  }

  test('the values are shown by type', () => {
    const shown: [object, RegExp][] = [
      [{ shared: 'no' }, /^Cannot create vmalloc: shared must be a boolean, got "no"$/],
      [
        { design: 'bogus' },
        /^Cannot create vmalloc: design must be one of 'nodes', 'global'(, '[a-z0-9]+')*, got "bogus"$/,
      ],
      [{ pageSize: 4096n }, /, got 4096n \(a bigint\)$/],
      [{ nrCpus: Symbol('x') }, /, got a symbol$/],
      [{ numaInfo: {} }, /, got an object$/],
      [{ lockStat: [] }, /, got an array$/],
      [{ lockTimeoutMs: () => 1 }, /, got a function$/],
      [
        { logger: 5 },
        /^Cannot create vmalloc: logger must be an object with a warn\(message\) method, or null, got 5$/,
      ],
      [{ logger: { warn: 'x' } }, /, got an object$/],
    ];
    for (const [options, message] of shown)
      assert.match(refusal(options)?.message ?? 'accepted', message);
  });

  test('an unknown option name is refused, naming it and the known ones', () => {
    for (const key of ['nrCPUs', 'pagesize', 'physMemory', 'checkEveryOps', 'shared ']) {
      const e = refusal({ [key]: 1 });
      assert.ok(e !== null, key);
      assert.equal(e.code, 'EINVAL');
      assert.equal(
        e.message,
        `Cannot create vmalloc: ${JSON.stringify(key)} is not an option (the options are design, nrCpus, pageSize, vmallocStart, vmallocSize, physicalMemory, shared, logger, checkEveryOp, numaInfo, lockStat, lockTimeoutMs, vmapBlockHash, configNrCpus, nrVmapNodes, vmapZoneSize, vmapPoolLimit, vmapPoolDecay, lazyMaxPages, cpu)`,
      );
    }
    assert.match(
      refusal({ [Symbol('s')]: 1 })!.message,
      /^Cannot create vmalloc: a symbol key is not an option/,
    );
    // undefined means the default, for every option.
    const all = Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, undefined]));
    assert.equal(refusal({ ...all, nrCpus: 1 }), null);
  });

  test('the options themselves must be an object', () => {
    for (const options of [null, 5, 'x', true, [], Symbol('o')]) {
      const e = refusal(options);
      assert.ok(e !== null, String(options));
      assert.match(e.message, /^Cannot create vmalloc: options must be an object, got /);
    }
  });
});

for (const design of DESIGN_NAMES) {
  describe(`${design}: calls that take a function or an object`, () => {
    test('watchWorker, registerPurgeNotifier and per-call options refuse what does not fit', () => {
      const { vm } = testVm({ design });
      for (const worker of [null, undefined, 5, {}, { on: 1 }])
        refuses(
          vm,
          () => vm.watchWorker(worker as unknown as { on(e: 'exit', f: () => void): unknown }, 0),
          'EINVAL',
          /^Cannot watchWorker: worker must have an on\('exit', fn\) method, got /,
        );
      for (const fn of [null, 5, {}, 'f'])
        refuses(
          vm,
          () => vm.registerPurgeNotifier(fn as unknown as () => number),
          'EINVAL',
          /^Cannot register_vmap_purge_notifier: fn must be a function, got /,
        );
      for (const options of [null, 5, 'x'])
        refuses(
          vm,
          () => vm.vmalloc(PAGE, options as unknown as object),
          'EINVAL',
          /^Cannot vmalloc: options must be an object/,
        );
      refuses(
        vm,
        () => vm.vmalloc(PAGE, { zero: 1 as unknown as boolean }),
        'EINVAL',
        /zero must be a boolean, got 1$/,
      );
      for (const align of [0, 3, -4096, 0.5, 2 ** 49, NaN, '8'])
        refuses(
          vm,
          () => vm.vmalloc(PAGE, { align: align as number }),
          'EINVAL',
          /^Cannot vmalloc: align must be a power of two from 1 to 2\^48, got /,
        );
      refuses(
        vm,
        () => vm.freePages(null as unknown as number[]),
        'EINVAL',
        /^Cannot __free_page: pfns must be an array of page frame numbers, got null$/,
      );
      refuses(
        vm,
        () => vm.freePages({ length: -1 }),
        'EINVAL',
        /^Cannot __free_page: pfns\.length must be a non-negative integer, got -1$/,
      );
    });

    test('a purge notifier registered twice is refused; setLockStat takes a boolean', () => {
      const { vm } = testVm({ design });
      const fn = (): number => 0;
      vm.registerPurgeNotifier(fn);
      refuses(
        vm,
        () => vm.registerPurgeNotifier(fn),
        'EINVAL',
        /^Cannot register_vmap_purge_notifier: fn is registered already \(unregister it first\)$/,
      );
      assert.equal(vm.unregisterPurgeNotifier(fn), true);
      assert.equal(vm.unregisterPurgeNotifier(fn), false, 'it was registered once');
      vm.registerPurgeNotifier(fn);
      assert.equal(vm.unregisterPurgeNotifier(fn), true);
      vm.setLockStat(true);
      for (const on of ['yes', 1, 0, null, undefined])
        refuses(
          vm,
          () => vm.setLockStat(on as unknown as boolean),
          'EINVAL',
          /^Cannot setLockStat: on must be a boolean, got /,
        );
      assert.ok(vm.lockStats().length > 0);
      vm.setLockStat(false);
    });

    test('vmap and get_vm_area refuse option names they do not know', () => {
      const { vm } = testVm({ design });
      const p = vm.allocPages(1);
      refuses(
        vm,
        () => vm.vmap(p, { flag: VmFlags.VM_USERMAP } as object),
        'EINVAL',
        /^Cannot vmap: "flag" is not an option \(the options are flags, caller\)$/,
      );
      refuses(
        vm,
        () => vm.getVmArea(PAGE, 0, { phys_addr: 0x1000 } as object),
        'EINVAL',
        /^Cannot get_vm_area: "phys_addr" is not an option \(the options are caller, physAddr\)$/,
      );
      vm.freePages(p);
    });

    test('a logger or a purge notifier that throws cannot leave an operation half-done', () => {
      const logger = {
        calls: 0,
        warn(): void {
          this.calls++;
          throw new Error('a broken logger');
        },
      };
      const vm = createVmalloc({
        design,
        nrCpus: 1,
        physicalMemory: 16 * PAGE,
        vmallocSize: 16 * PAGE,
        logger,
      });
      const a = vm.vmalloc(10 * PAGE)!;
      // Page frames run out: the half-made area is undone after the warning.
      assert.equal(vm.vmalloc(4 * PAGE), null);
      vm.check();
      let calls = 0;
      const broken = (): number => {
        calls++;
        throw new Error('a broken notifier');
      };
      vm.registerPurgeNotifier(broken);
      // Address space runs out: the notifiers are asked, the allocation is undone.
      assert.equal(vm.vmalloc(5 * PAGE), null);
      assert.equal(calls, 1);
      assert.ok(logger.calls >= 2, 'every warning reached the logger');
      vm.check();
      // A notifier that frees still makes the allocation retry, after the broken one.
      const freeing = (): number => {
        vm.vfree(a);
        return 10;
      };
      vm.registerPurgeNotifier(freeing);
      const b = vm.vmalloc(5 * PAGE);
      assert.notEqual(b, null);
      assert.equal(vm.unregisterPurgeNotifier(broken), true);
      assert.equal(vm.unregisterPurgeNotifier(freeing), true);
      vm.vfree(b);
      vm.check();
    });
  });
}
