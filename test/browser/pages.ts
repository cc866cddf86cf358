/**
 * What the browser test serves: the pages and the module worker that run the bundled library
 * inside Chromium. Each page stores its findings (or the error it hit) in
 * `globalThis.__result`, which the test reads through playwright once it is set.
 * Callers: test/browser/browser.test.ts.
 */

/** Runs `body` (an async function's text) and publishes its value or its error. */
function publish(body: string): string {
  return `
globalThis.__run = (async () => {
${body}
})().then(
  (r) => { globalThis.__result = { ok: true, value: r }; },
  (e) => { globalThis.__result = { ok: false, error: String(e && e.stack || e) }; },
);`;
}

/**
 * The cross-origin isolated page (ESM bundle): a concurrent VmapSpace that the page and a
 * module worker use at the same time, then a createVmalloc subsystem whose memory both write
 * and read.
 */
export const isolatedPage = publish(`
const V = await import('/vmalloc.mjs');
const out = { isolated: crossOriginIsolated, sab: typeof SharedArrayBuffer };
const worker = new Worker('/worker.mjs', { type: 'module' });
worker.onerror = (e) => { globalThis.__result = { ok: false, error: 'worker: ' + e.message }; };
const ask = (msg) => new Promise((resolve) => {
  worker.onmessage = (e) => resolve(e.data);
  worker.postMessage(msg);
});

// One space, two threads churning at once: the page keeps every 7th range, the worker every 5th.
const space = new V.VmapSpace({ start: 0, end: 2 ** 30, pageSize: 4096, concurrent: true });
const fromWorker = ask({ kind: 'space', handle: space.handle, rounds: 3000 });
const kept = [];
for (let i = 0; i < 3000; i++) {
  const a = space.alloc(4096 * (1 + (i % 5)));
  if (i % 7 === 0) kept.push(a); else space.free(a);
}
const w = await fromWorker;
if (w.error) throw new Error('worker: ' + w.error);
const all = [...kept, ...w.kept];
out.spaceLive = space.stats().busyCount;
out.spaceKept = all.length;
out.spaceDistinct = new Set(all).size;
out.spaceFound = all.every((a) => space.find(a) !== null && space.find(a).start === a);
for (const a of all) space.free(a);
space.check();
out.spaceAfter = space.stats().busyCount;

// The vmalloc subsystem: the page writes, the worker reads it and writes back.
const vm = V.createVmalloc({ nrCpus: 2, logger: null });
const p = vm.vmalloc(2 * 4096);
vm.write(p, new TextEncoder().encode('from the page'));
const r = await ask({ kind: 'vmalloc', handle: vm.handle, p });
if (r.error) throw new Error('worker: ' + r.error);
out.workerRead = r.read;
out.pageRead = new TextDecoder().decode(vm.read(p + 4096, 15));
out.workerArea = new TextDecoder().decode(vm.read(r.q, 8));
out.infoLines = vm.vmallocinfo().trim().split('\\n').filter((l) => / pages=/.test(l)).length;
vm.vfree(r.q);
vm.vfree(p);
vm.purge();
vm.check();
out.busyAfter = vm.stats().busyAreas;
out.errorIsClass = (() => {
  try { space.free(12345); return 'no throw'; }
  catch (e) { return e instanceof V.VmallocError && e.code; }
})();
worker.terminate();
return out;
`);

/** The module worker of the isolated page. */
export const workerModule = `
import { VmapSpace, attachVmalloc } from '/vmalloc.mjs';
onmessage = (e) => {
  const m = e.data;
  try {
    if (m.kind === 'space') {
      const space = VmapSpace.attach(m.handle, { cpu: 1 });
      const kept = [];
      for (let i = 0; i < m.rounds; i++) {
        const a = space.alloc(4096 * (1 + (i % 3)), { align: i % 2 ? 8192 : 4096 });
        if (i % 5 === 0) kept.push(a); else space.free(a);
      }
      postMessage({ kept });
    } else {
      const vm = attachVmalloc(m.handle, { cpu: 1 });
      const read = new TextDecoder().decode(vm.read(m.p, 13));
      vm.write(m.p + 4096, new TextEncoder().encode('from the worker'));
      const q = vm.vmalloc(4096);
      vm.write(q, new TextEncoder().encode('worker q'));
      vm.detach();
      postMessage({ read, q });
    }
  } catch (err) {
    postMessage({ error: String(err && err.stack || err) });
  }
};
`;

/** The page without cross-origin isolation (IIFE bundle, the global `vmalloc`). */
export const plainPage = publish(`
const V = globalThis.vmalloc;
const out = { isolated: crossOriginIsolated, sab: typeof SharedArrayBuffer };
const space = new V.VmapSpace({ start: 0, end: 2 ** 20 });
out.plain = [space.alloc(8192), space.alloc(4096, { align: 16384 })];
space.check();
try {
  new V.VmapSpace({ start: 0, end: 2 ** 20, concurrent: true });
  out.concurrent = 'made';
} catch (e) {
  out.concurrent = { isVmallocError: e instanceof V.VmallocError, code: e.code, message: e.message };
}
const vm = V.createVmalloc({ logger: null });
const p = vm.vmalloc(4096);
vm.write(p, new Uint8Array([1, 2, 3]));
out.vmalloc = Array.from(vm.read(p, 3));
try {
  V.createVmalloc({ shared: true });
  out.sharedVmalloc = 'made';
} catch (e) {
  out.sharedVmalloc = e instanceof V.VmallocError && e.code;
}
return out;
`);

/** The HTML around a script: a module script, or a classic one after the IIFE bundle. */
export function html(script: string, iife: boolean): string {
  const load = iife
    ? `<script src="/vmalloc.iife.js"></script><script>${script}</script>`
    : `<script type="module">${script}</script>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>vmalloc</title></head><body>${load}</body></html>`;
}
