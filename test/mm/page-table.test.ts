/**
 * Page tables: map/unmap/lookup round trips at every page size, runs across pte, pmd and pud
 * tables, the top of the address space, a random walk against a Map, mapped(), growth of the
 * buffer, bad arguments, and workers racing to make the same tables.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { VmallocError } from '../../src/errors.js';
import { PageTable } from '../../src/mm/page-table.js';
import { TABLE_BYTES } from '../../src/mm/page-table-format.js';
import { Rng, testSeed } from '../helpers/rng.js';
import {
  REGION_PAGES,
  pfnOf,
  type PageTableWorkerData,
  type PageTableWorkerDone,
} from './page-table-worker.js';

const TOP = 2 ** 48;

function pfnRun(first: number, count: number): Int32Array {
  return Int32Array.from({ length: count }, (_, k) => first + k);
}

function isCode(code: string, words: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof VmallocError, `a VmallocError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, words);
    return true;
  };
}

/** The mapped pages of a Map model as the runs check() expects. */
function runsOf(model: Map<number, number>, page: number): { addr: number; pfns: number[] }[] {
  const pages = [...model.keys()].sort((a, b) => a - b);
  const runs: { addr: number; pfns: number[] }[] = [];
  for (const x of pages) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.addr / page + last.pfns.length === x) {
      last.pfns.push(model.get(x)!);
    } else {
      runs.push({ addr: x * page, pfns: [model.get(x)!] });
    }
  }
  return runs;
}

describe('page table: round trips', () => {
  for (const page of [1024, 4096, 65536]) {
    test(`map, lookup, unmap at ${page / 1024} KiB pages`, () => {
      const pt = PageTable.create(page);
      assert.equal(pt.tables, 0);
      const addr = 1000 * page;
      pt.map(addr, pfnRun(7, 5), 0, 5);
      for (let k = 0; k < 5; k++) {
        assert.equal(pt.lookup(addr + k * page), 7 + k);
        assert.equal(pt.lookup(addr + k * page + page - 1), 7 + k, 'any byte of the page');
      }
      assert.equal(pt.lookup(addr - 1), -1);
      assert.equal(pt.lookup(addr + 5 * page), -1);
      assert.equal(pt.pages, 5);
      assert.equal(pt.tables, 3, 'one pud, one pmd, one pte table');
      assert.equal(
        pt.bytes,
        (pt.tables + Math.ceil((2 ** (21 - Math.log2(page)) + 8) / 512)) * TABLE_BYTES,
      );
      pt.check([{ addr, pfns: [7, 8, 9, 10, 11] }]);
      assert.deepEqual(
        [...pt.entries()].map((r) => ({ addr: r.addr, pfns: [...r.pfns] })),
        [{ addr, pfns: [7, 8, 9, 10, 11] }],
      );

      pt.unmap(addr + page, 2);
      assert.deepEqual(
        [0, 1, 2, 3, 4].map((k) => pt.lookup(addr + k * page)),
        [7, -1, -1, 10, 11],
      );
      assert.equal(pt.pages, 3);
      pt.check([
        { addr, pfns: [7] },
        { addr: addr + 3 * page, pfns: [10, 11] },
      ]);
      pt.unmap(addr, 5);
      assert.equal(pt.pages, 0);
      assert.equal(pt.tables, 3, 'tables are never freed');
      pt.check([]);
    });
  }

  test('map takes pfns[offset .. offset + count); map overwrites; unmap of holes is a no-op', () => {
    const pt = PageTable.create(4096, { shared: false });
    const pfns = pfnRun(100, 10);
    pt.map(0, pfns, 4, 3);
    assert.deepEqual(
      [0, 1, 2].map((k) => pt.lookup(k * 4096)),
      [104, 105, 106],
    );
    pt.map(4096, Int32Array.of(9), 0, 1);
    assert.deepEqual(
      [0, 1, 2].map((k) => pt.lookup(k * 4096)),
      [104, 9, 106],
    );
    assert.equal(pt.pages, 3, 'an overwrite is not a new page');
    pt.map(8192, pfns, 0, 0);
    pt.unmap(2 ** 40, 5000);
    pt.unmap(0, 0);
    assert.equal(pt.pages, 3);
    pt.check([{ addr: 0, pfns: [104, 9, 106] }]);
  });

  test('pfn 0 and the largest pfn, 2^31 - 1', () => {
    const pt = PageTable.create(4096);
    pt.map(0, Int32Array.of(0, 0x7fffffff, 0x7ffffffe), 0, 3);
    assert.deepEqual(
      [0, 1, 2].map((k) => pt.lookup(k * 4096)),
      [0, 0x7fffffff, 0x7ffffffe],
    );
    pt.check([{ addr: 0, pfns: [0, 0x7fffffff, 0x7ffffffe] }]);
    assert.deepEqual([...[...pt.entries()][0]!.pfns], [0, 0x7fffffff, 0x7ffffffe]);
  });
});

describe('page table: across table boundaries', () => {
  const page = 4096;
  const PTE_SPAN = 512 * page; // 2 MiB
  const PMD_SPAN = 512 * PTE_SPAN; // 1 GiB
  const PUD_SPAN = 512 * PMD_SPAN; // 512 GiB

  const cases = [
    { name: 'two pte tables (2 MiB)', at: 5 * PTE_SPAN, before: 10, count: 600, tables: 5 },
    { name: 'a pmd table (1 GiB)', at: 3 * PMD_SPAN, before: 5, count: 12, tables: 5 },
    { name: 'a pud table (512 GiB)', at: 7 * PUD_SPAN, before: 3, count: 1030, tables: 8 },
  ];
  for (const c of cases) {
    test(`a run across ${c.name}`, () => {
      const pt = PageTable.create(page);
      const addr = c.at - c.before * page;
      pt.map(addr, pfnRun(50, c.count), 0, c.count);
      assert.equal(pt.tables, c.tables);
      for (let k = 0; k < c.count; k++) assert.equal(pt.lookup(addr + k * page), 50 + k);
      assert.equal(pt.lookup(addr - page), -1);
      assert.equal(pt.lookup(addr + c.count * page), -1);
      assert.equal(pt.mapped(addr, c.count + 1), c.count);
      const runs = [...pt.entries()];
      assert.equal(runs.length, 1, 'one run: entries() joins tables');
      assert.equal(runs[0]!.addr, addr);
      assert.deepEqual(runs[0]!.pfns, pfnRun(50, c.count));
      pt.check([{ addr, pfns: pfnRun(50, c.count) }]);
      pt.unmap(addr + page, c.count - 2);
      assert.equal(pt.pages, 2);
      assert.equal(pt.lookup(addr), 50);
      assert.equal(pt.lookup(addr + (c.count - 1) * page), 50 + c.count - 1);
      pt.check([
        { addr, pfns: [50] },
        { addr: addr + (c.count - 1) * page, pfns: [50 + c.count - 1] },
      ]);
    });
  }

  for (const p of [1024, 4096, 65536]) {
    test(`the top of the address space at ${p / 1024} KiB pages`, () => {
      const pt = PageTable.create(p);
      const addr = TOP - 3 * p;
      pt.map(addr, pfnRun(1, 3), 0, 3);
      assert.equal(pt.lookup(TOP - 1), 3);
      assert.equal(pt.lookup(addr), 1);
      assert.equal(pt.mapped(addr, 3), 3);
      pt.map(0, Int32Array.of(9), 0, 1);
      assert.deepEqual(
        [...pt.entries()].map((r) => r.addr),
        [0, addr],
      );
      assert.throws(() => pt.map(addr, pfnRun(1, 4), 0, 4), isCode('EINVAL', /count.*2\^48/));
      assert.throws(() => pt.lookup(TOP), isCode('EINVAL', /addr/));
      pt.unmap(addr, 3);
      assert.equal(pt.lookup(TOP - 1), -1);
      pt.check([{ addr: 0, pfns: [9] }]);
    });
  }
});

describe('page table: mapped()', () => {
  test('counts the leading mapped pages, across tables, up to count', () => {
    const page = 1024;
    const pt = PageTable.create(page);
    const start = 512 * page - 4 * page; // 4 pages before a pte table's end
    pt.map(start, pfnRun(0, 10), 0, 10);
    pt.map(start + 11 * page, pfnRun(20, 2), 0, 2);
    assert.equal(pt.mapped(start, 10), 10);
    assert.equal(pt.mapped(start, 20), 10, 'stops at the hole');
    assert.equal(pt.mapped(start, 6), 6);
    assert.equal(pt.mapped(start, 0), 0);
    assert.equal(pt.mapped(start + 3 * page + 17, 3), 3, 'from the page holding addr');
    assert.equal(pt.mapped(start + 10 * page, 5), 0);
    assert.equal(pt.mapped(start + 11 * page, 5), 2);
    assert.equal(pt.mapped(2 ** 45, 1000), 0, 'no tables there');
    assert.equal(pt.mapped(start - page, 3), 0);
  });
});

describe('page table: a random walk against a Map', () => {
  for (const page of [1024, 4096, 65536]) {
    test(`map, unmap, lookup, mapped at ${page / 1024} KiB pages`, () => {
      const seed = testSeed(`page table random walk (${page})`);
      const rng = new Rng(seed);
      const pt = PageTable.create(page, { shared: rng.chance(0.5) });
      const model = new Map<number, number>();
      const nrPages = TOP / page;
      // A few windows, each straddling a pte, pmd or pud boundary, plus the top of the space.
      const windows = [0, 512 - 40, 512 * 512 - 300, 512 * 512 * 512 - 700, nrPages - 1500];
      const somePage = (): number => rng.pick(windows) + rng.below(1500);
      const pfns = new Int32Array(1024);
      for (let step = 0; step < 3000; step++) {
        const op = rng.below(10);
        const x = somePage();
        const count = Math.min(rng.chance(0.2) ? rng.below(1000) : rng.below(20), nrPages - x);
        if (op < 4) {
          const offset = rng.below(16);
          for (let k = 0; k < count; k++) pfns[offset + k] = rng.below(2 ** 31);
          pt.map(x * page, pfns, offset, count);
          for (let k = 0; k < count; k++) model.set(x + k, pfns[offset + k]!);
        } else if (op < 6) {
          pt.unmap(x * page, count);
          for (let k = 0; k < count; k++) model.delete(x + k);
        } else if (op < 9) {
          const addr = x * page + rng.below(page);
          assert.equal(pt.lookup(addr), model.get(x) ?? -1, `lookup of page ${x}, seed ${seed}`);
        } else {
          let n = 0;
          while (n < count && model.has(x + n)) n++;
          assert.equal(pt.mapped(x * page, count), n, `mapped(${x}, ${count}), seed ${seed}`);
        }
        assert.equal(pt.pages, model.size);
        if (step % 500 === 499) pt.check(runsOf(model, page));
      }
      const runs = runsOf(model, page);
      pt.check(runs);
      assert.deepEqual(
        [...pt.entries()].map((r) => ({ addr: r.addr, pfns: [...r.pfns] })),
        runs,
        `entries() lists the model's runs, seed ${seed}`,
      );
      // The checker notices a page missing, a stray page and a wrong pfn.
      if (runs.length > 0) {
        const [first, ...rest] = runs;
        assert.throws(() => pt.check(rest), isCode('EINVARIANT', /stray/));
        const wrong = { addr: first!.addr, pfns: first!.pfns.map((p) => (p + 1) % 2 ** 31) };
        assert.throws(() => pt.check([wrong, ...rest]), isCode('EINVARIANT', /should map/));
      }
    });
  }
});

describe('page table: growth', () => {
  for (const shared of [true, false]) {
    test(`the buffer grows as tables are made (${shared ? 'shared' : 'resizable'})`, () => {
      const page = 4096;
      const buffer = PageTable.createBuffer(page, shared);
      assert.equal(buffer instanceof SharedArrayBuffer, shared);
      const pt = new PageTable(buffer, page);
      const other = new PageTable(buffer, page); // a stale view, as another thread's
      assert.equal(other.lookup(0), -1);
      const before = pt.bufferBytes;
      // Each page in its own pgd slot: three new tables per page.
      const n = 100;
      for (let k = 0; k < n; k++) pt.map(k * 2 ** 39 + k * page, Int32Array.of(k), 0, 1);
      assert.equal(pt.tables, 3 * n);
      assert.ok(pt.bufferBytes > before, `grew from ${before} to ${pt.bufferBytes} bytes`);
      assert.ok(pt.bufferBytes >= pt.bytes);
      for (let k = 0; k < n; k++) {
        assert.equal(other.lookup(k * 2 ** 39 + k * page), k, 'the old view is re-made');
      }
      other.map(n * 2 ** 39, Int32Array.of(n), 0, 1);
      assert.equal(pt.lookup(n * 2 ** 39), n);
      const check = pt.check();
      assert.deepEqual(check, { pages: n + 1, tables: 3 * n + 3, referencedTables: 3 * n + 3 });
    });
  }

  test('maxTables bounds the tables: ENOMEM beyond, and what fits stays mapped', () => {
    const pt = PageTable.create(4096, { maxTables: 7 });
    assert.equal(pt.maxTables, 7);
    pt.map(0, Int32Array.of(1), 0, 1);
    pt.map(2 ** 30, Int32Array.of(2), 0, 1); // another pud entry: a pmd and a pte table
    pt.map(2 ** 31, Int32Array.of(3), 0, 1); // 2 more: 7
    assert.equal(pt.tables, 7);
    pt.map(2 ** 31 + 4096, Int32Array.of(4), 0, 1); // same pte table: no new table
    assert.throws(() => pt.map(2 ** 39, Int32Array.of(5), 0, 1), isCode('ENOMEM', /full/));
    assert.equal(pt.lookup(2 ** 39), -1);
    pt.check([
      { addr: 0, pfns: [1] },
      { addr: 2 ** 30, pfns: [2] },
      { addr: 2 ** 31, pfns: [3, 4] },
    ]);
  });
});

describe('page table: bad arguments', () => {
  test('EINVAL naming the argument and the rule, with nothing changed', () => {
    const pt = PageTable.create(4096);
    pt.map(0, pfnRun(0, 4), 0, 4);
    const pfns = pfnRun(0, 8);
    const bad: [() => unknown, RegExp][] = [
      [() => pt.map(100, pfns, 0, 1), /map: addr must be a multiple of the page size \(4096\)/],
      [() => pt.map(-4096, pfns, 0, 1), /map: addr must lie within \[0, 2\^48\)/],
      [() => pt.map(TOP, pfns, 0, 1), /map: addr must lie within/],
      [() => pt.map(NaN, pfns, 0, 1), /map: addr/],
      [() => pt.map(4096, pfns, 0, -1), /map: count must be an integer >= 0/],
      [() => pt.map(4096, pfns, 0, 1.5), /map: count must be an integer/],
      [() => pt.map(4096, pfns, 0, 9), /map: count must not exceed pfns.length \(8\)/],
      [() => pt.map(4096, pfns, 5, 4), /map: offset must be an integer in \[0, pfns.length/],
      [() => pt.map(4096, pfns, -1, 1), /map: offset/],
      [() => pt.map(4096, Int32Array.of(1, -2), 0, 2), /map: pfns\[1\] must be a pfn >= 0/],
      [() => pt.map(4096, [1] as unknown as Int32Array, 0, 1), /map: pfns must be an Int32Array/],
      [() => pt.unmap(4097, 1), /unmap: addr must be a multiple/],
      [() => pt.unmap(0, -3), /unmap: count must be an integer >= 0/],
      [() => pt.unmap(TOP - 4096, 2), /unmap: count must not take the range past 2\^48/],
      [() => pt.lookup(-1), /lookup: addr must lie within \[0, 2\^48\)/],
      [() => pt.lookup(TOP), /lookup: addr/],
      [() => pt.mapped(0, -1), /mapped: count must be an integer >= 0/],
      [() => pt.mapped(TOP + 5, 1), /mapped: addr/],
      [() => PageTable.create(2048 + 1), /pageSize must be a power of two from 1024 to 65536/],
      [() => PageTable.create(512), /pageSize/],
      [() => PageTable.create(131072), /pageSize/],
      [() => PageTable.createBuffer(4096, false, 2), /maxTables must be an integer from 3/],
      [() => new PageTable(PageTable.createBuffer(4096, false), 1024), /attach.*buffer/],
      [() => new PageTable(new ArrayBuffer(64 * 1024), 4096), /attach.*buffer/],
    ];
    for (const [call, words] of bad) assert.throws(call, isCode('EINVAL', words));
    assert.equal(pt.pages, 4);
    pt.check([{ addr: 0, pfns: [0, 1, 2, 3] }]);
  });
});

describe('page table: racing to make a table', () => {
  test("the loser of the race takes the winner's table and keeps its own as a spare", () => {
    const buffer = PageTable.createBuffer(4096, true);
    const a = new PageTable(buffer, 4096);
    const b = new PageTable(buffer, 4096);
    // Thread b makes and publishes the same tables between a's allocation and a's publish.
    const inner = a as unknown as { allocTable(): number };
    const alloc = inner.allocTable.bind(a);
    let raced = false;
    inner.allocTable = () => {
      const t = alloc();
      if (!raced) {
        raced = true;
        b.map(0, Int32Array.of(1), 0, 1);
      }
      return t;
    };
    a.map(4096, Int32Array.of(2), 0, 1);
    assert.equal(a.lostRaces, 1);
    assert.deepEqual(a.check([{ addr: 0, pfns: [1, 2] }]), {
      pages: 2,
      tables: 4,
      referencedTables: 3,
    });
    a.map(2 ** 39, Int32Array.of(3), 0, 1);
    assert.equal(a.tables, 6, 'the spare was used: two new tables, not three');
    assert.equal(b.lookup(2 ** 39), 3);
    assert.equal(a.check().referencedTables, 6);
  });
});

describe('page table: workers', () => {
  test('three workers map disjoint chunks of the same 2 MiB regions at once', async () => {
    const WORKERS = 3;
    const page = 4096;
    const pt = PageTable.create(page, { shared: true });
    // Each region needs its own pud, pmd and pte table, so every region is a race to make
    // three tables (and, every few regions, to grow the buffer).
    const regions = Array.from(
      { length: 48 },
      (_, r) => r * 2 ** 39 + ((r * 37) % 512) * 2 ** 30 + ((r * 101) % 512) * 2 ** 21,
    );
    const barrier = new SharedArrayBuffer(4);
    const workers = Array.from(
      { length: WORKERS },
      (_, w) =>
        new Worker(new URL('./page-table-worker.js', import.meta.url), {
          workerData: {
            handle: pt.handle,
            worker: w,
            workers: WORKERS,
            regions,
            chunk: 8,
            barrier,
          } satisfies PageTableWorkerData,
        }),
    );
    let done: PageTableWorkerDone[];
    try {
      done = await Promise.all(
        workers.map(
          (w) =>
            new Promise<PageTableWorkerDone>((resolve, reject) => {
              w.on('error', reject);
              w.on('message', (m: PageTableWorkerDone | { type: 'error'; message: string }) =>
                m.type === 'done' ? resolve(m) : reject(new Error(m.message)),
              );
            }),
        ),
      );
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
    for (const d of done) assert.deepEqual(d.errors, []);

    // Even regions stay mapped, odd ones were unmapped (each by the three workers' chunks).
    const expected: { addr: number; pfns: number[] }[] = [];
    regions.forEach((base, r) => {
      const pfns = Array.from({ length: REGION_PAGES }, (_, k) => pfnOf(r, k));
      for (let k = 0; k < REGION_PAGES; k++) {
        assert.equal(
          pt.lookup(base + k * page),
          r % 2 === 0 ? pfns[k] : -1,
          `region ${r} page ${k}`,
        );
      }
      if (r % 2 === 0) expected.push({ addr: base, pfns });
    });
    const check = pt.check(expected);
    assert.equal(check.pages, (regions.length / 2) * REGION_PAGES);
    assert.equal(check.referencedTables, 3 * regions.length, 'one pud, pmd and pte per region');
    assert.ok(
      check.tables <= check.referencedTables + WORKERS,
      `a lost race leaves at most one spare table per worker (${check.tables} tables)`,
    );
    const lost = done.reduce((s, d) => s + d.lostRaces, 0);
    console.log(
      `page table workers: ${regions.length} regions, ${check.tables} tables, ` +
        `${lost} races to publish a table lost, ${pt.bufferBytes} buffer bytes`,
    );
  });
});
