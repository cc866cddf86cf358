/**
 * Lock fairness: N workers take one lock in a loop (hold ~H us, no pause between releases and
 * the next lock) and log, under the lock, which worker held it. Prints the longest wait for the
 * lock (lock_stat's waittime-max), the longest run of acquisitions by one worker and how often
 * the holder changed. A long run with short waits means the other worker was not running (the
 * OS had not scheduled it), not that it was kept out. Uses the built package: run
 * `npm run build` first.
 *
 *   node scripts/lock-fairness.mjs [workers=2] [holdUs=20] [iterations=20000]
 */

import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const lockModule = new URL('../dist/src/shared/lock.js', import.meta.url);
const { Lock, LockTable } = await import(lockModule.href);

if (isMainThread) {
  const workers = Number(process.argv[2] ?? 2);
  const holdUs = Number(process.argv[3] ?? 20);
  const iters = Number(process.argv[4] ?? 20000);
  const table = LockTable.create(1, true, workers);
  table.setStats(true);
  // Word 0: start flag; word 1: entries; then one cpu id per acquisition.
  const log = new Int32Array(new SharedArrayBuffer(4 * (2 + workers * iters)));
  const ws = Array.from(
    { length: workers },
    (_, cpu) =>
      new Worker(new URL(import.meta.url), {
        workerData: { locks: table.buffer, cpu, log: log.buffer, holdUs, iters },
      }),
  );
  await Promise.all(ws.map((w) => new Promise((resolve) => w.once('message', resolve))));
  const t0 = performance.now();
  Atomics.store(log, 0, 1);
  Atomics.notify(log, 0);
  await Promise.all(ws.map((w) => new Promise((resolve) => w.once('exit', resolve))));
  const ms = performance.now() - t0;
  let longest = 0;
  let run = 0;
  let changes = 0;
  for (let k = 0, prev = -1; k < log[1]; k++) {
    const cpu = log[2 + k];
    run = cpu === prev ? run + 1 : 1;
    if (cpu !== prev) changes++;
    prev = cpu;
    if (run > longest) longest = run;
  }
  const st = table.stat(0, 'test_lock');
  console.log(
    `workers ${workers}, hold ${holdUs} us, ${log[1]} acquisitions in ${ms.toFixed(0)} ms: ` +
      `longest wait ${(st.waitMax / 1000).toFixed(1)} ms, contended ${st.contentions}, ` +
      `longest run by one worker ${longest}, holder changes ${changes}`,
  );
} else {
  const { locks, cpu, holdUs, iters } = workerData;
  const lock = new Lock(new LockTable(locks), 0, 'test_lock');
  const log = new Int32Array(workerData.log);
  parentPort.postMessage('ready');
  while (Atomics.load(log, 0) === 0) Atomics.wait(log, 0, 0, 50);
  for (let k = 0; k < iters; k++) {
    lock.lock(cpu);
    const n = log[1];
    log[2 + n] = cpu;
    log[1] = n + 1;
    const until = performance.now() + holdUs / 1000;
    while (performance.now() < until);
    lock.unlock();
  }
}
