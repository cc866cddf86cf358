/**
 * The capabilities `bench seeds` plugs in (seeds-plugs.ts): the simulated machine (src/sim) for
 * the many-CPU claims, and vm_map_ram_test with either block hash for the 2023 claim.
 *
 * Holds: wireSeedPlugs(), which registers both adapters (vm_map_ram_test runs on the
 * 'global' design, the seed's 6.3 kernel's, on real workers or on the simulated machine).
 * Invariant: every figure an adapter returns was measured by the run it made (real workers or
 * the simulator's virtual time); what the simulator cannot run is an error the row reports.
 * Callers: the CLI (src/cli/bench-seeds.ts), before the rows run.
 */

import { aggregateByClass } from '../shared/lock-stat.js';
import { simulateTestVmalloc } from '../sim/machine.js';
import { simMaskFor, simulatedMask } from '../sim/workload.js';
import { defaultParams } from '../test-vmalloc/params.js';
import { runTestVmalloc } from '../test-vmalloc/run.js';
import { HASH_LOCK } from './vmmapram.js';
import { registerSeedPlugs } from './seeds-plugs.js';

const VM_MAP_RAM_TEST = 1024;

export function wireSeedPlugs(): void {
  registerSeedPlugs({
    simulator: {
      maskFor(threads) {
        // full_fit_alloc_test holds 2 * fls(N) * 8192 pages per CPU: at N * fls(N) > 64 that
        // is more than the 4 GiB a simulated machine has (28 GiB at 64 CPUs).
        const { mask, dropped } = simMaskFor(simulatedMask(), threads);
        return {
          mask,
          why: `the tests the simulator runs (1-7, 11)${dropped === null ? '' : `; ${dropped}`}`,
        };
      },
      run(params) {
        const r = simulateTestVmalloc({ params });
        // Virtual lock_stat carries more fields (spin and sleep time); the rows read the
        // kernel's columns only.
        const locks = aggregateByClass(r.lockStats.map((l) => ({ ...l })));
        return Promise.resolve({ virtualNs: r.elapsedNs, locks, spinShare: r.spinShare });
      },
    },
    vmMapRam: {
      async run({ hash, workers, loops, simulated }) {
        // The seed's kernel (6.3) had one free tree and global busy and lazy trees: 'global'.
        const p = defaultParams(VM_MAP_RAM_TEST, Math.max(2, workers));
        p.design = 'global';
        p.run_test_mask = VM_MAP_RAM_TEST;
        p.nr_threads = workers;
        p.test_loop_count = loops;
        p.seed = 2023;
        p.vmap_block_hash = hash;
        if (simulated) {
          const r = simulateTestVmalloc({ params: p });
          const failed = r.workers.some((w) => w.tests.some((t) => t.failed > 0));
          if (failed) throw new Error(`simulated vm_map_ram_test failed (${hash} hash)`);
          const cls = aggregateByClass(r.lockStats.map((l) => ({ ...l }))).find(
            (l) => l.name === HASH_LOCK[hash],
          );
          return {
            elapsedNs: r.elapsedNs,
            hashContentions: cls?.contentions ?? 0,
            hashConBounces: cls?.conBounces ?? 0,
            hashClass: HASH_LOCK[hash],
          };
        }
        const r = await runTestVmalloc({
          params: p,
          logger: null,
          lockStatFromStart: true,
          vmapBlockHash: hash,
        });
        const cls = aggregateByClass(r.vm.lockStats()).find((l) => l.name === HASH_LOCK[hash]);
        return {
          elapsedNs: r.elapsedNs,
          hashContentions: cls?.contentions ?? 0,
          hashConBounces: cls?.conBounces ?? 0,
          hashClass: HASH_LOCK[hash],
        };
      },
    },
  });
}
