/**
 * The report in headless Chromium (Debian's `chromium`, driven by playwright-core, as
 * test/browser/ does): the page opens from a file with no console error, its map shows the
 * areas of a known small layout (the ranges it draws, read through the page's
 * window.__vmallocReport, and the canvas pixels at their addresses), zooming redraws, and a
 * screenshot is written as the test's artifact: report-browser.png in the artifacts folder
 * (test/helpers/artifacts.ts: $VMALLOC_TEST_ARTIFACTS, else <tmpdir>/vmalloc-test-artifacts;
 * its path is printed). The page itself goes to a temporary folder removed at the end.
 *
 * Skipped, with the reason printed, only where no Chromium binary exists. CHROMIUM_PATH
 * overrides the binary's path.
 */

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createVmalloc } from '../../src/index.js';
import type { ReportData } from '../../src/report/collect.js';
import { encodeSnapshot, type MapData } from '../../src/report/encode.js';
import { renderReport } from '../../src/report/html.js';
import { artifactDir } from '../helpers/artifacts.js';

const candidates = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser'];
const executablePath = candidates.find((p): p is string => p !== undefined && existsSync(p));
const skip =
  executablePath === undefined
    ? `no Chromium binary (looked for ${candidates.filter(Boolean).join(', ')}); install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH`
    : false;
if (skip !== false) process.stderr.write(`report browser test skipped: ${skip}\n`);

const PAGE = 4096;
const FREE = [234, 234, 234];
const VMALLOC_BLUE = [59, 110, 200]; // KIND_COLORS.vmalloc in page-map.js

/** A known layout on two designs: a (8 pages), b (16, freed: lazy), c (4), then free space. */
function knownReport(): { html: string; a: number; b: number; c: number } {
  const maps: MapData[] = [];
  let addrs = { a: 0, b: 0, c: 0 };
  for (const design of ['global', 'nodes'] as const) {
    const vm = createVmalloc({ design, nrCpus: 4, logger: null, lockStat: true });
    const a = vm.vmalloc(8 * PAGE, { caller: 'known_a+0x1/0x10' })!;
    const b = vm.vmalloc(16 * PAGE)!;
    const c = vm.vmalloc(4 * PAGE, { caller: 'known_c+0x3/0x30' })!;
    vm.vfree(b);
    addrs = { a, b, c };
    maps.push(encodeSnapshot(vm.snapshot()));
  }
  const vm = createVmalloc({ design: 'global', nrCpus: 2, logger: null, lockStat: true });
  vm.vfree(vm.vmalloc(PAGE));
  const data: ReportData = {
    schemaVersion: 1,
    title: 'known layout <test>',
    generated: new Date(0).toISOString(),
    command: 'test/report/browser.test.ts',
    machine: 'test',
    version: '0',
    params: { run_test_mask: 1, nr_threads: 1 },
    tests: [
      {
        design: 'global',
        elapsedMs: 12,
        tests: [
          { name: 'fix_size_alloc_test', avgUsec: [100, 120], passed: 2, failed: 0, xfailed: 0 },
        ],
      },
      {
        design: 'nodes',
        elapsedMs: 10,
        tests: [
          { name: 'fix_size_alloc_test', avgUsec: [80, 90], passed: 2, failed: 0, xfailed: 0 },
        ],
      },
    ],
    lockStat: [{ design: 'global', classes: vm.lockStats() }],
    scaling: {
      cpus: [1, 2, 4],
      loops: 10,
      mask: 1,
      rows: [1, 2, 4].flatMap((cpus) =>
        (['global', 'nodes'] as const).map((design) => ({
          design,
          cpus,
          mask: 1,
          dropped: null,
          policy: 'default',
          knobs: '',
          virtualMs: design === 'global' ? cpus * 2 : 2,
          loopsPerSec: 1000 * cpus,
          spinShare: design === 'global' ? 0.1 * cpus : 0.01,
          topSpin: '-',
          failedTests: 0,
          wallMs: 1,
          ops: 10,
        })),
      ),
    },
    maps,
    notes: ['a known small layout'],
  };
  return { html: renderReport(data), ...addrs };
}

describe('the report in headless Chromium', { skip }, () => {
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  let pageDir = '';
  const known = knownReport();

  before(async () => {
    pageDir = mkdtempSync(join(tmpdir(), 'vmalloc-report-'));
    const file = join(pageDir, 'report.html');
    writeFileSync(file, known.html);
    // Chromium's sandbox needs user namespaces, which a root shell in a container lacks.
    const noSandbox = process.getuid?.() === 0 || process.env['CI'] !== undefined;
    browser = await chromium.launch({
      executablePath: executablePath!,
      args: noSandbox ? ['--no-sandbox'] : [],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    // Nothing may be fetched: every request but the file itself fails the test.
    page.on('request', (r) => {
      if (r.url() !== pathToFileURL(file).href) errors.push(`request: ${r.url()}`);
    });
    await page.goto(pathToFileURL(file).href);
    // A generous hang guard, not a speed bound.
    await page.waitForFunction("document.body.dataset.ready === '1'", null, { timeout: 60_000 });
  });
  after(async () => {
    try {
      await browser?.close();
    } finally {
      if (pageDir !== '') rmSync(pageDir, { recursive: true, force: true });
    }
  });

  /** Evaluates a JavaScript expression in the page (a string: this file has no DOM types). */
  async function js<T>(expr: string): Promise<T> {
    return (await page.evaluate(expr)) as T;
  }

  const nextFrames = 'new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))';

  /** The canvas pixel at library address `addr`, as [r, g, b]. */
  async function pixelAt(addr: number): Promise<number[]> {
    return js(`(() => {
      const p = window.__vmallocReport.pixelOf(${addr});
      if (p === null) throw new Error('address ${addr} is not in the view');
      const ctx = document.getElementById('map').getContext('2d');
      return Array.from(ctx.getImageData(p.x, p.y, 1, 1).data.slice(0, 3));
    })()`);
  }

  async function setView(start: number, end: number): Promise<void> {
    await js(`(window.__vmallocReport.setView(${start}, ${end}), ${nextFrames})`);
  }

  interface Segment {
    class: string;
    start: number;
    size: number;
    node: number;
    kind?: string;
    caller?: string;
  }

  test('opens with no console error and fills every section', async () => {
    assert.deepEqual(errors, []);
    const state = await js<{
      title: string;
      errors: string[];
      charts: number;
      params: number;
      designs: string[];
    }>(`({
      title: document.getElementById('title').textContent,
      errors: window.__vmallocReport.errors,
      charts: document.querySelectorAll('svg.chart').length,
      params: document.querySelectorAll('#params tr').length,
      designs: Array.from(document.querySelectorAll('#design option')).map((o) => o.textContent),
    })`);
    assert.equal(state.title, 'known layout <test>');
    assert.deepEqual(state.errors, []);
    // tests 1, scaling 3, lock_stat 3, histogram 1
    assert.equal(state.charts, 8);
    assert.equal(state.params, 6);
    assert.deepEqual(state.designs, ['global', 'nodes']);
  });

  test('the map shows the known areas where they are (design global)', async () => {
    const { a, b, c } = known;
    await setView(a, c + 64 * PAGE);
    const segs = await js<Segment[]>('window.__vmallocReport.segments(100)');
    const busy = segs
      .filter((s) => s.class === 'busy')
      .map((s) => [s.start, s.size, s.kind, s.caller]);
    assert.deepEqual(busy, [
      [a, 9 * PAGE, 'vmalloc', 'known_a+0x1/0x10'],
      [c, 5 * PAGE, 'vmalloc', 'known_c+0x3/0x30'],
    ]);
    assert.deepEqual(
      segs.filter((s) => s.class === 'lazy').map((s) => [s.start, s.size]),
      [[b, 17 * PAGE]],
    );
    assert.ok(
      segs.some((s) => s.class === 'free' && s.start === c + 5 * PAGE),
      'free after c',
    );
    // Pixels: the middle of a busy area in its kind's colour, the free space after c grey,
    // the lazy area in neither.
    assert.deepEqual(await pixelAt(a + 4 * PAGE), VMALLOC_BLUE);
    assert.deepEqual(await pixelAt(c + 2 * PAGE), VMALLOC_BLUE);
    assert.deepEqual(await pixelAt(c + 20 * PAGE), FREE);
    const lazy = await pixelAt(b + 8 * PAGE);
    assert.notDeepEqual(lazy, FREE);
    assert.notDeepEqual(lazy, VMALLOC_BLUE);
  });

  test('design nodes: areas carry their node, zoom buttons redraw', async () => {
    await page.selectOption('#design', '1');
    const { a, c } = known;
    await setView(a, c + 64 * PAGE);
    const segs = await js<Segment[]>('window.__vmallocReport.segments(100)');
    const busy = segs.filter((s) => s.class === 'busy');
    assert.deepEqual(
      busy.map((s) => s.start),
      [a, c],
    );
    for (const s of busy) assert.ok(s.node >= 0 && s.node < 4, `node ${s.node}`);
    assert.notDeepEqual(await pixelAt(a + 4 * PAGE), FREE);
    const span = (): Promise<number> =>
      js('(({ start, end }) => end - start)(window.__vmallocReport.view())');
    await page.click('#zoom-all');
    const whole = await span();
    await page.click('#zoom-in');
    await js(nextFrames);
    assert.ok((await span()) < whole, 'zoom in narrows the view');
    await page.mouse.move(300, 300);
    await page.mouse.wheel(0, -300);
    assert.deepEqual(errors, []);
  });

  test('a screenshot is written as the artifact', async (t) => {
    await page.click('#zoom-all');
    const shot = join(artifactDir(), 'report-browser.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot));
    t.diagnostic(`report screenshot: ${shot}`);
  });
});
