/**
 * Loading a /proc/vmallocinfo: the fixtures' layouts rebuilt at their addresses (plain, and
 * moved from a KASLR base), densely when the kernel hid the addresses (zeros, hashes), the
 * machine's own file when it is readable; bad lines refused with their number, nothing left
 * behind by a refusal; a test run on top of a loaded layout.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  VmallocError,
  VmFlags,
  createVmalloc,
  fromKernelAddress,
  parseVmallocinfo,
  vmallocinfoPages,
} from '../../src/index.js';
import { applyParams, defaultParams } from '../../src/test-vmalloc/params.js';
import { runTestVmalloc } from '../../src/test-vmalloc/run.js';
import { IMPLEMENTED_MASK } from '../../src/test-vmalloc/tests.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../../../test/fixtures/vmallocinfo-${name}.txt`, import.meta.url), 'utf8');

const PLAIN = fixture('plain');
/** The pcpu line has no pages=: it gets all of its pages here (a warning says so). */
const PCPU = 'pcpu_get_vm_areas';

/** Lines without the per-node counts, sorted (6.9+ prints them per node). */
function normalized(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.includes(PCPU))
    .map((l) => l.replace(/ N[0-9]+=[0-9]+/g, '').trimEnd())
    .sort();
}

function freshVm(design: 'nodes' | 'global' | 'legacy' = 'nodes') {
  return createVmalloc({ design, nrCpus: 2, physicalMemory: 64 * 2 ** 20, logger: null });
}

describe('loadVmallocinfo: a layout with real addresses', () => {
  for (const design of ['nodes', 'global', 'legacy'] as const) {
    test(`the plain fixture: every area at its address, vmallocinfo prints it back (${design})`, () => {
      const vm = freshVm(design);
      const r = vm.loadVmallocinfo(PLAIN);
      assert.equal(r.addresses, 'exact');
      assert.equal(r.dense, false);
      assert.equal(r.areas.length, 15);
      assert.equal(r.lazy, 1);
      assert.equal(r.busy, 14);
      vm.check();
      const lines = parseVmallocinfo(PLAIN);
      for (const [k, l] of lines.entries()) {
        const a = r.areas[k]!;
        assert.equal(a.line, k + 1);
        assert.equal(a.addr, fromKernelAddress(l.start), `line ${l.line} in place`);
        assert.equal(a.size, l.size);
      }
      const hash = vm.findVmArea(fromKernelAddress('0xffffc90000400000'))!;
      assert.equal(hash.nrPages, 1024);
      assert.equal(hash.caller, 'alloc_large_system_hash+0x15c/0x270');
      assert.equal(hash.flags & VmFlags.VM_ALLOC, VmFlags.VM_ALLOC);
      const hpet = vm.findVmArea(fromKernelAddress('0xffffc90000007000'))!;
      assert.equal(hpet.physAddr, 0xfed00000);
      assert.equal(hpet.flags & VmFlags.VM_IOREMAP, VmFlags.VM_IOREMAP);
      assert.deepEqual(normalized(vm.vmallocinfo()), normalized(PLAIN));
      assert.ok(
        r.warnings.some((w) => w.includes('line 14') && w.includes('511')),
        r.warnings.join('\n'),
      );
      // The loaded areas are ordinary ones: freeing one gives its range back.
      vm.vfree(fromKernelAddress('0xffffc90000009000'));
      vm.purge();
      vm.check();
    });
  }

  test('a KASLR base: moved to this window by a multiple of 1 GiB, the modules area kept', () => {
    const vm = freshVm();
    const r = vm.loadVmallocinfo(fixture('kaslr'));
    assert.equal(r.addresses, 'rebased');
    assert.match(r.warnings[0]!, /0xffffb3a1c0000000/);
    vm.check();
    assert.deepEqual(normalized(vm.vmallocinfo()), normalized(PLAIN));
  });

  test('vmallocinfoPages: the frames a text needs', () => {
    // 4 + 1 + 2 + 16 + 2 + 1024 + 511 (pcpu, all its pages) + 4
    assert.equal(vmallocinfoPages(PLAIN), 4 + 1 + 2 + 16 + 2 + 1024 + 511 + 4);
  });
});

describe('loadVmallocinfo: hidden addresses', () => {
  for (const name of ['zeroed', 'hashed'] as const) {
    test(`${name}: order and sizes kept, placed densely from VMALLOC_START, and said so`, () => {
      const vm = freshVm();
      const r = vm.loadVmallocinfo(fixture(name));
      assert.equal(r.addresses, name);
      assert.equal(r.dense, true);
      assert.match(
        r.warnings[0]!,
        name === 'zeroed' ? /hidden \(all zero/ : /not real kernel addresses/,
      );
      assert.match(r.warnings[0]!, /placed densely from VMALLOC_START/);
      let at = vm.vmallocStart;
      const lines = parseVmallocinfo(PLAIN);
      for (const [k, a] of r.areas.entries()) {
        assert.equal(a.addr, at, `line ${k + 1} follows the one before`);
        assert.equal(a.size, lines[k]!.size);
        at += a.size;
      }
      assert.equal(vm.findVmArea(r.areas[3]!.addr)!.caller, 'n_tty_open+0x11/0xe0');
      vm.check();
    });
  }

  test("the machine's own /proc/vmallocinfo", (t) => {
    let text: string;
    try {
      text = readFileSync('/proc/vmallocinfo', 'utf8');
    } catch (e) {
      t.skip(`/proc/vmallocinfo is not readable here: ${(e as Error).message}`);
      return;
    }
    if (text.trim() === '') {
      t.skip('/proc/vmallocinfo is empty here (not root?)');
      return;
    }
    const lines = parseVmallocinfo(text);
    const bytes = (vmallocinfoPages(text) + 4096) * 4096;
    if (bytes > 2 ** 32) {
      t.skip(`its areas hold ${bytes} bytes of pages, more than the 4 GiB a model may have`);
      return;
    }
    const vm = createVmalloc({ nrCpus: 2, physicalMemory: Math.max(bytes, 2 ** 26), logger: null });
    const r = vm.loadVmallocinfo(text);
    t.diagnostic(
      `${lines.length} lines: ${r.busy} busy, ${r.lazy} unpurged, ${r.pages} pages, addresses ${r.addresses}`,
    );
    assert.equal(r.areas.length, lines.length);
    assert.equal(r.busy + r.lazy, lines.length);
    vm.check();
  });
});

describe('loadVmallocinfo: refusals', () => {
  const good = PLAIN.split('\n').slice(0, 2).join('\n');
  const cases: [string, string, RegExp][] = [
    ['no range', 'hello world', /line 3: a line is "0x<start>-0x<end> <size>/],
    [
      'a size not a page multiple',
      '0xffffc90000100000-0xffffc90000100800 2048 f+0x1/0x2',
      /line 3: the size must be a positive multiple of the page size \(4096\)/,
    ],
    [
      'an unknown word',
      '0xffffc90000100000-0xffffc90000102000 8192 f+0x1/0x2 pages=1 vmalloc bogus',
      /line 3: unknown word "bogus"/,
    ],
    [
      'pages beyond the size',
      '0xffffc90000100000-0xffffc90000102000 8192 f+0x1/0x2 pages=9 vmalloc',
      /line 3: pages=9 is more than the 2 pages of its size/,
    ],
    [
      'a bad phys',
      '0xffffc90000100000-0xffffc90000102000 8192 f+0x1/0x2 phys=12 ioremap',
      /line 3: phys= takes 0x and up to 16 hex digits/,
    ],
    [
      'a word twice',
      '0xffffc90000100000-0xffffc90000102000 8192 f+0x1/0x2 vmap vmap',
      /line 3: "vmap" is given twice/,
    ],
    [
      'words after unpurged',
      '0xffffc90000100000-0xffffc90000102000 8192 unpurged vm_area pages=1',
      /line 3: "unpurged" lines have no other words/,
    ],
  ];
  for (const [what, bad, message] of cases) {
    test(`${what}: EINVAL naming the line, nothing loaded`, () => {
      const vm = freshVm();
      const before = vm.stats();
      assert.throws(
        () => vm.loadVmallocinfo(`${good}\n${bad}\n`),
        (e: unknown) => e instanceof VmallocError && e.code === 'EINVAL' && message.test(e.message),
      );
      assert.deepEqual(vm.stats(), before);
      vm.check();
    });
  }

  test('a range already taken: EBUSY naming the line, what was loaded is undone', () => {
    const vm = freshVm();
    const p = vm.vmalloc(64 * 4096); // lands on 0xffffc90000000000
    assert.equal(p, vm.vmallocStart);
    assert.throws(
      () => vm.loadVmallocinfo(PLAIN),
      (e: unknown) => e instanceof VmallocError && e.code === 'EBUSY' && /line 1: /.test(e.message),
    );
    vm.check();
    assert.equal(vm.stats().busyAreas, 1);
    vm.vfree(p);
    vm.purge();
    vm.check();
  });

  test('more pages than physical memory: ENOMEM before anything changes', () => {
    const vm = createVmalloc({ nrCpus: 1, physicalMemory: 64 * 4096, logger: null });
    assert.throws(
      () => vm.loadVmallocinfo(PLAIN),
      (e: unknown) =>
        e instanceof VmallocError &&
        e.code === 'ENOMEM' &&
        /physicalMemory of at least/.test(e.message),
    );
    assert.equal(vm.stats().busyAreas, 0);
    vm.check();
  });
});

test('test_vmalloc runs on top of a loaded layout, which stays', async () => {
  const p = defaultParams(IMPLEMENTED_MASK, 2);
  applyParams(p, ['run_test_mask=7', 'test_loop_count=100', 'seed=3']);
  const run = await runTestVmalloc({ params: p, vmallocinfo: PLAIN, logger: null });
  for (const w of run.workers) for (const t of w.tests) assert.equal(t.failed, 0, t.name);
  assert.equal(run.imported?.busy, 14);
  run.vm.check();
  assert.equal(run.vm.findVmArea(fromKernelAddress('0xffffffffc0000000'))?.nrPages, 4);
});
