/**
 * Worker of lock.test.ts: attached to a shared vmalloc as `cpu`, either churns vmalloc/vfree
 * (and now and then purge and the shrinker) until it is terminated, reporting 'running' once
 * under way; or, as a probe, runs opsAfterDeath() and reports the outcomes.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { attachVmalloc, type VmallocHandle } from '../../src/index.js';
import { Rng } from '../helpers/rng.js';
import { opsAfterDeath } from './vm-ops.js';

const data = workerData as {
  handle: VmallocHandle;
  cpu: number;
  mode: 'churn' | 'probe';
  seed: number;
};
const port = parentPort!;
const vm = attachVmalloc(data.handle, { cpu: data.cpu, logger: null });

if (data.mode === 'probe') {
  port.postMessage({ type: 'outcomes', outcomes: opsAfterDeath(vm) });
} else {
  const rng = new Rng(data.seed);
  const live: number[] = [];
  for (let k = 0; ; k++) {
    if (k === 2000) port.postMessage({ type: 'running' });
    if (live.length < 16 || (live.length < 200 && rng.chance(0.5))) {
      const a = vm.vmalloc(rng.range(1, 40) * vm.pageSize);
      if (a !== null) {
        vm.writeU8(a, k & 0xff);
        live.push(a);
      }
    } else {
      const i = rng.below(live.length);
      vm.vfree(live[i]);
      live[i] = live[live.length - 1]!;
      live.pop();
    }
    if (rng.chance(0.002)) vm.purge();
    if (rng.chance(0.002)) vm.shrinker.scan();
  }
}
