/**
 * The browser bundles (dist/browser, made by scripts/bundle.mjs) in headless Chromium: Debian's
 * `chromium` package driven by playwright-core, pages served from 127.0.0.1.
 *
 * - A cross-origin isolated page (COOP same-origin + COEP require-corp) imports the ESM bundle,
 *   shares a concurrent VmapSpace and a createVmalloc subsystem with a module Web Worker, and
 *   both threads' results are checked through the page.
 * - A page without those headers loads the IIFE bundle: a plain space and createVmalloc work on
 *   ArrayBuffers; a concurrent space and `shared: true` throw VmallocError EINVAL.
 *
 * Skipped, with the reason printed, only where no Chromium binary exists (.ci/run installs it:
 * `apt-get install chromium`). CHROMIUM_PATH overrides the binary's path.
 */

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { html, isolatedPage, plainPage, workerModule } from './pages.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const candidates = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser'];
const executablePath = candidates.find((p): p is string => p !== undefined && existsSync(p));
const skip =
  executablePath === undefined
    ? `no Chromium binary (looked for ${candidates.filter(Boolean).join(', ')}); install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH`
    : false;
if (skip !== false) process.stderr.write(`browser test skipped: ${skip}\n`);

const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** Serves the bundles and pages; paths under /isolated/ and the worker get the COOP/COEP headers. */
function serve(): Promise<Server> {
  const files: Record<string, [string, string]> = {
    '/vmalloc.mjs': [readFileSync(`${root}dist/browser/vmalloc.mjs`, 'utf8'), 'text/javascript'],
    '/vmalloc.iife.js': [
      readFileSync(`${root}dist/browser/vmalloc.iife.js`, 'utf8'),
      'text/javascript',
    ],
    '/worker.mjs': [workerModule, 'text/javascript'],
    '/isolated/': [html(isolatedPage, false), 'text/html'],
    '/plain/': [html(plainPage, true), 'text/html'],
  };
  const server = createServer((req, res) => {
    const file = files[req.url ?? ''];
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    // Same-origin subresources of an isolated page need no CORP header; the worker's script
    // needs COEP itself to be isolated as well.
    const isolate = req.url !== '/plain/';
    res.writeHead(200, { 'Content-Type': file[1], ...(isolate ? ISOLATION : {}) });
    res.end(file[0]);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

interface PageResult {
  ok: boolean;
  value?: Record<string, unknown>;
  error?: string;
}

describe('in headless Chromium', { skip }, () => {
  let server: Server;
  let browser: Browser;
  let base: string;
  before(async () => {
    server = await serve();
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Chromium's sandbox needs user namespaces, which a root shell in a container lacks.
    const noSandbox = process.getuid?.() === 0 || process.env['CI'] !== undefined;
    browser = await chromium.launch({
      executablePath: executablePath!,
      args: noSandbox ? ['--no-sandbox'] : [],
    });
  });
  after(async () => {
    await browser?.close();
    server?.close();
  });

  async function run(path: string): Promise<Record<string, unknown>> {
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    try {
      await page.goto(base + path);
      // A generous hang guard, not a speed bound: the page sets __result when done.
      await page.waitForFunction(() => '__result' in globalThis, null, { timeout: 120_000 });
      const r = (await page.evaluate(() => (globalThis as { __result?: unknown }).__result)) as
        PageResult | undefined;
      assert.ok(r?.ok, `${r?.error ?? 'no result'}\n${logs.join('\n')}`);
      return r.value!;
    } finally {
      await page.close();
    }
  }

  test('cross-origin isolated: a page and a module worker share a VmapSpace and a vmalloc', async () => {
    const out = await run('/isolated/');
    assert.deepEqual(out, {
      isolated: true,
      sab: 'function',
      // 429 kept by the page (every 7th of 3000), 600 by the worker (every 5th).
      spaceLive: 1029,
      spaceKept: 1029,
      spaceDistinct: 1029,
      spaceFound: true,
      spaceAfter: 0,
      workerRead: 'from the page',
      pageRead: 'from the worker',
      workerArea: 'worker q',
      infoLines: 2,
      busyAfter: 0,
      errorIsClass: 'ENOENT',
    });
  });

  test('not isolated: plain space and createVmalloc work; a shared one is a clear VmallocError', async () => {
    const out = await run('/plain/');
    assert.equal(out['isolated'], false);
    assert.equal(out['sab'], 'undefined');
    assert.deepEqual(out['plain'], [0, 16384]);
    assert.deepEqual(out['vmalloc'], [1, 2, 3]);
    assert.equal(out['sharedVmalloc'], 'EINVAL');
    const c = out['concurrent'] as { isVmallocError: boolean; code: string; message: string };
    assert.equal(c.isVmallocError, true);
    assert.equal(c.code, 'EINVAL');
    assert.match(c.message, /concurrent: true needs SharedArrayBuffer/);
    assert.match(c.message, /cross-origin isolated/);
  });
});
