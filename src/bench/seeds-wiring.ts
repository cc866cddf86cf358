/**
 * The capabilities `bench seeds` plugs in (seeds-plugs.ts): the simulated machine (src/sim) for
 * the many-CPU claims, and vm_map_ram_test with either block hash for the 2023 claim.
 *
 * Holds: wireSeedPlugs(), which registers both adapters (vm_map_ram_test runs on the
 * 'global' design, the seed's 6.3 kernel's, on real workers or on the simulated machine);
 * with a RecordPlan (--record), each of their runs is recorded to a file of its own.
 * Invariant: every figure an adapter returns was measured by the run it made (real workers or
 * the simulator's virtual time); what the simulator cannot run is an error the row reports.
 * Callers: the CLI (src/cli/bench-seeds.ts), before the rows run.
 */

import { aggregateByClass } from '../shared/lock-stat.js';
import { simulateTestVmalloc } from '../sim/machine.js';
import { simMaskFor, simulatedMask } from '../sim/workload.js';
import { defaultParams, type TestParams } from '../test-vmalloc/params.js';
import { runTestVmalloc } from '../test-vmalloc/run.js';
import { HASH_LOCK } from './vmmapram.js';
import { type RecordPlan, simulateRecorded } from './record-plan.js';
import { registerSeedPlugs } from './seeds-plugs.js';

const VM_MAP_RAM_TEST = 1024;

export function wireSeedPlugs(record?: RecordPlan): void {
  const recorded = (p: TestParams, label: string): TestParams =>
    record === undefined ? p : record.params(p, label);
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
      run(given) {
        const params = recorded(
          given,
          `sim-${given.design}-cpus${given.nr_threads}-mask${given.run_test_mask}`,
        );
        const { result: r, traced } = simulateRecorded(params, (views) =>
          simulateTestVmalloc({ params, ...views }),
        );
        record?.done(params, traced);
        // Virtual lock_stat carries more fields (spin and sleep time); the rows read the
        // kernel's columns only.
        const locks = aggregateByClass(r.lockStats.map((l) => ({ ...l })));
        return Promise.resolve({ virtualNs: r.elapsedNs, locks, spinShare: r.spinShare });
      },
    },
    vmMapRam: {
      async run({ hash, workers, loops, simulated }) {
        // The seed's kernel (6.3) had one free tree and global busy and lazy trees: 'global'.
        const d = defaultParams(VM_MAP_RAM_TEST, Math.max(2, workers));
        d.design = 'global';
        d.run_test_mask = VM_MAP_RAM_TEST;
        d.nr_threads = workers;
        d.test_loop_count = loops;
        d.seed = 2023;
        d.vmap_block_hash = hash;
        const p = recorded(d, `2023-vmmapram-${hash}-${simulated ? 'cpus' : 'x'}${workers}`);
        if (simulated) {
          const { result: r, traced } = simulateRecorded(p, (views) =>
            simulateTestVmalloc({ params: p, ...views }),
          );
          record?.done(p, traced);
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
        record?.done(p, r.traced);
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
