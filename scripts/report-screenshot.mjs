// The report's screenshot for the README, and the report's scale measurement.
//
//   node scripts/report-screenshot.mjs [--out docs/report.png]
//       runs the standard report (`vmalloc report test run_test_mask=7 nr_threads=2
//       test_loop_count=10000 seed=1`, five designs, the default scaling run), opens it in
//       headless Chromium and writes a PNG of its top (the map, the legend, the histogram).
//   node scripts/report-screenshot.mjs --synthetic 1000000 [--html FILE]
//       writes the report of a synthetic space of N live areas and measures it in headless
//       Chromium: the file's size, the time from navigation to the first paint and to the
//       first drawn map, and the redraw times while zooming. Prints the figures.
//
// Needs a build (npm run build) and Chromium (Debian's `chromium`, or CHROMIUM_PATH).
// Without --html the page goes to a temporary folder, removed when the script ends.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? fallback : args[i + 1];
};
const synthetic = flag('synthetic', null);
const given = flag('html', null);
const dir = given === null ? mkdtempSync(join(tmpdir(), 'vmalloc-report-shot-')) : null;
const html = given ?? join(dir, 'report.html');
process.on('exit', () => {
  if (dir !== null) rmSync(dir, { recursive: true, force: true });
});
const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
const executablePath = candidates.find((p) => p !== undefined && existsSync(p));
if (executablePath === undefined) {
  console.error(`no Chromium binary (looked for ${candidates.filter(Boolean).join(', ')})`);
  process.exit(1);
}

const reportArgs =
  synthetic === null
    ? ['test', 'run_test_mask=7', 'nr_threads=2', 'test_loop_count=10000', 'seed=1']
    : ['--synthetic-areas', synthetic];
const t0 = performance.now();
const made = spawnSync(
  process.execPath,
  ['dist/src/cli/main.js', 'report', ...reportArgs, '--out', html],
  { stdio: 'inherit' },
);
if (made.status !== 0) process.exit(made.status ?? 1);
const buildMs = performance.now() - t0;

const noSandbox = process.getuid?.() === 0 || process.env.CI !== undefined;
const browser = await chromium.launch({ executablePath, args: noSandbox ? ['--no-sandbox'] : [] });
try {
  const page = await browser.newPage({ viewport: { width: 1080, height: 760 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const started = performance.now();
  await page.goto(pathToFileURL(html).href);
  await page.waitForFunction("document.body.dataset.ready === '1'", null, { timeout: 120_000 });
  const readyMs = performance.now() - started;
  if (errors.length > 0) throw new Error(`the page reported errors:\n${errors.join('\n')}`);
  if (synthetic === null) {
    const out = flag('out', 'docs/report.png');
    // The nodes design (6.9+): its map is coloured by vmap node.
    await page.selectOption('#design', { label: 'nodes' });
    await page.evaluate(
      'new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))',
    );
    await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1080, height: 760 } });
    console.log(`wrote ${out} (${(statSync(out).size / 1024).toFixed(0)} KiB)`);
  } else {
    const inPage = await page.evaluate(`(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
      return { domContentLoaded: nav.domContentLoadedEventEnd, firstPaint: paint['first-paint'], firstContentfulPaint: paint['first-contentful-paint'], firstMapDraw: window.__vmallocReport.map.lastDrawMs };
    })()`);
    // Zoom in ten steps toward the middle, then out to the whole window; time each redraw.
    const draws = [];
    for (const factor of [0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 4 ** 8]) {
      draws.push(
        await page.evaluate(`new Promise((resolve) => {
          const m = window.__vmallocReport.map;
          const n = m.drawCount;
          m.zoom(${factor});
          const wait = () => (m.drawCount > n ? resolve(m.lastDrawMs) : requestAnimationFrame(wait));
          wait();
        })`),
      );
    }
    const size = statSync(html).size;
    console.log(
      [
        `synthetic report of ${Number(synthetic).toLocaleString('en-US')} live areas: ${dir === null ? html : '(removed: --html FILE keeps it)'}`,
        `  file size: ${(size / 2 ** 20).toFixed(2)} MiB (${size} bytes); made in ${(buildMs / 1000).toFixed(1)} s`,
        `  navigation to ready (map decoded and drawn), measured from Node: ${readyMs.toFixed(0)} ms`,
        `  in the page: first paint ${inPage.firstPaint?.toFixed(0)} ms, first contentful paint ${inPage.firstContentfulPaint?.toFixed(0)} ms, DOMContentLoaded ${inPage.domContentLoaded.toFixed(0)} ms, first map draw took ${inPage.firstMapDraw.toFixed(0)} ms`,
        `  redraws while zooming in 4x eight times, then out: ${draws.map((d) => d.toFixed(0)).join(', ')} ms`,
      ].join('\n'),
    );
  }
} finally {
  await browser.close();
}
