/**
 * `vmalloc bench seeds`: the rows that need a capability this build may not have yet (the
 * simulator of issue 11, vm_map_ram blocks of issue 10), as pluggable row sources.
 *
 * Holds: the two adapter interfaces (SimulatorPlug, VmMapRamPlug), their registry
 * (registerSeedPlugs), the run-time detection of the capability, and the rows built on them.
 * Invariant: a row whose capability is absent reports what it needs as its verdict and no
 * figure; a plugged row's verdict is computed by decide() from what the plug measured.
 * Callers: src/cli/bench-seeds.ts (runs pluggedRows()); whoever wires a capability calls
 * registerSeedPlugs() (see the wiring notes at the adapters).
 */

import type { LockStat } from '../shared/lock-table.js';
import type { TestParams } from '../test-vmalloc/params.js';
import { TEST_CASES } from '../test-vmalloc/tests.js';
import { decide, notRun, type SeedRow } from './seeds-rows.js';

/** What one simulated test_vmalloc run returns. */
export interface SimulatedRun {
  /** Virtual wall time of the run (the slowest CPU's), in nanoseconds. */
  virtualNs: number;
  /** lock_stat by class, in virtual time. */
  locks: LockStat[];
  /** Share of all CPUs' virtual time spent spinning, 0..1 (the seed's slowpath share). */
  spinShare: number;
}

/**
 * The simulator of issue 11. Wiring: implement run() with the simulator's entry point (the same
 * TestParams as a real run; nr_threads virtual CPUs) and register it where the CLI starts
 * (src/cli/bench-seeds.ts, before runSeedsBench).
 */
export interface SimulatorPlug {
  run(params: TestParams): Promise<SimulatedRun>;
  /**
   * The run_test_mask bits the simulator runs at `threads` CPUs, and why others are left out
   * (a row's mask is narrowed to them, and its notes say so).
   */
  maskFor?(threads: number): { mask: number; why: string };
}

/** What one vm_map_ram_test run returns. */
export interface VmMapRamRun {
  elapsedNs: number;
  /** Contentions of the block lookup's lock class (vmap_blocks.xa_lock or the per-CPU one). */
  hashContentions: number;
  hashConBounces: number;
  /** The lock class the figures are of. */
  hashClass: string;
}

/**
 * The vm_map_ram blocks of issue 10. Wiring: implement run() with runTestVmalloc(run_test_mask
 * = 1024 (vm_map_ram_test), nr_threads = workers, lockStatFromStart) and the design option that
 * selects the block lookup ('global' hash under one lock, before seed 002; 'percpu' after),
 * returning the hash lock class's contentions; with `simulated` set, the same through the
 * simulator at that many CPUs.
 */
export interface VmMapRamPlug {
  run(o: {
    hash: 'global' | 'percpu';
    workers: number;
    loops: number;
    simulated: boolean;
  }): Promise<VmMapRamRun>;
}

let simulator: SimulatorPlug | null = null;
let vmMapRam: VmMapRamPlug | null = null;

/** Plugs a capability in (the lead's wiring); null unplugs it (tests). */
export function registerSeedPlugs(p: {
  simulator?: SimulatorPlug | null;
  vmMapRam?: VmMapRamPlug | null;
}): void {
  if (p.simulator !== undefined) simulator = p.simulator;
  if (p.vmMapRam !== undefined) vmMapRam = p.vmMapRam;
}

/** Why the vm_map_ram rows cannot run, or null when they can (checked at run time). */
export function vmMapRamMissing(): string | null {
  const t = TEST_CASES.find((c) => c.name === 'vm_map_ram_test');
  if (t === undefined || t.run === null)
    return 'vm_map_ram_test is not implemented in this build (src/test-vmalloc/tests.ts)';
  if (vmMapRam === null)
    return 'vm_map_ram_test exists, but the global / per-CPU block hash run is not plugged in (registerSeedPlugs({ vmMapRam }))';
  return null;
}

/** Why the simulated rows cannot run, or null when they can. */
export function simulatorMissing(): string | null {
  return simulator === null
    ? 'no simulator in this build (registerSeedPlugs({ simulator }) once issue 11 has landed)'
    : null;
}

/** vm_map_ram_test loops per simulated CPU (64 CPUs) in --quick and in the full run. */
const SIM_LOOPS_QUICK = 2048;
const SIM_LOOPS = 20480;

const S2019 = '004_ae2f824367204b6f.txt';
const S2024 = '001_1a946457b5ae6496.txt';
const S2023 = '002_3bf48447d7071e2e.txt';

/** The test_vmalloc parameters of a simulated run (the caller fills the rest). */
export type ParamsFor = (o: {
  design: TestParams['design'];
  threads: number;
  mask: number;
  loops: number;
  repeat: number;
  sequential: boolean;
  seed: number;
}) => TestParams;

/**
 * The rows that need the simulator or vm_map_ram: run through the plugs when present, else
 * rows whose verdict names what is missing.
 */
export async function pluggedRows(o: {
  quick: boolean;
  params: ParamsFor;
  allTestsMask: number;
  /** The claims asked for (2019, 2023, 2024); the others are not run. */
  years: readonly number[];
  say: (line: string) => void;
}): Promise<SeedRow[]> {
  const rows: SeedRow[] = [];
  const want = (y: number): boolean => o.years.includes(y);
  const sim = simulatorMissing();
  const vmr = vmMapRamMissing();

  // 2019: the randomised all-CPU run at the seed's CPU count (i5-3320M: 4 logical CPUs).
  const r2019 = {
    id: '2019-random-all-cpu-sim',
    year: 2019,
    workload: 'test_repeat_count=1, all tests shuffled, one worker per CPU',
    oldDesign: 'legacy',
    newDesign: 'global',
    seed: { file: S2019, machine: 'i5-3320M, 4 CPUs', old: 6082.8, new: 56.8, unit: 'S' as const },
    sizeFactor: 2,
    sizeCaveat: 'the simulated machine models lock and cache costs, not the seed kernel',
  };
  // 2024: run_test_mask=7 nr_threads=64, 64 CPUs.
  const r2024 = {
    id: '2024-mask7-64-sim',
    year: 2024,
    workload: 'run_test_mask=7 nr_threads=64',
    oldDesign: 'global',
    newDesign: 'nodes',
    seed: {
      file: S2024,
      machine: 'Threadripper 3970X, 64 CPUs',
      old: 651.3,
      new: 51.3,
      unit: 'S' as const,
    },
    sizeFactor: 2,
    sizeCaveat: 'the simulated machine models lock and cache costs, not the seed kernel',
  };
  if (sim !== null) {
    if (want(2019)) rows.push(notRun(r2019, 'needs the simulator (issue 11)', sim));
    if (want(2024)) rows.push(notRun(r2024, 'needs the simulator (issue 11)', sim));
  } else {
    const loops = o.quick ? 1000 : 10000;
    const pair = async (
      r: typeof r2019,
      mask: number,
      threads: number,
      repeat: number,
      seq: boolean,
    ): Promise<SeedRow> => {
      const limit = simulator!.maskFor?.(threads) ?? { mask, why: '' };
      const runs = mask & limit.mask;
      const narrowed =
        runs === mask ? [] : [`${r.id}: run_test_mask ${runs} (of ${mask}): ${limit.why}`];
      mask = runs;
      o.say(`${r.id}: simulating ${threads} CPUs, ${r.oldDesign} and ${r.newDesign}`);
      let a: SimulatedRun;
      let b: SimulatedRun;
      try {
        a = await simulator!.run(
          o.params({
            design: r.oldDesign as TestParams['design'],
            threads,
            mask,
            loops,
            repeat,
            sequential: seq,
            seed: 2019,
          }),
        );
        b = await simulator!.run(
          o.params({
            design: r.newDesign as TestParams['design'],
            threads,
            mask,
            loops,
            repeat,
            sequential: seq,
            seed: 2019,
          }),
        );
      } catch (e) {
        // A limit of the simulated machine (memory, a test it does not run): said, not faked.
        return notRun(r, 'not run (simulator limit)', (e as Error).message);
      }
      return decide({
        ...r,
        measuredOn: `simulated (${threads} CPUs)`,
        ours: { old: a.virtualNs / 1e9, new: b.virtualNs / 1e9, unit: 'S', pairs: 1, ratios: [] },
        beside: [],
        verdict: 'not reproduced',
        reason: '',
        notes: [
          ...narrowed,
          `${r.id}: test_loop_count ${loops}; spinning share ${(100 * a.spinShare).toFixed(1)}% (${r.oldDesign}) vs ${(100 * b.spinShare).toFixed(1)}% (${r.newDesign})`,
        ],
      });
    };
    if (want(2019)) rows.push(await pair(r2019, o.allTestsMask, 4, 1, false));
    if (want(2024)) rows.push(await pair(r2024, 7, 64, 1, false));
  }

  // 2023: vm_map_ram_test, global block hash vs per-CPU, 2 real workers and 64 simulated.
  for (const simulated of want(2023) ? [false, true] : []) {
    const base = {
      id: simulated ? '2023-vm_map_ram-64-sim' : '2023-vm_map_ram-2',
      year: 2023,
      workload: `vm_map_ram_test, 1 page, ${simulated ? '64 simulated CPUs' : '2 workers'}`,
      oldDesign: 'global block hash',
      newDesign: 'per-CPU block hash',
      seed: {
        file: S2023,
        machine: '64 CPUs, 64 threads',
        old: 862689,
        new: 10333,
        unit: 'ConBounces' as const,
      },
      sizeFactor: 2,
      sizeCaveat: simulated
        ? 'the simulated machine models lock and cache costs, not the seed kernel'
        : 'two workers meet on one lock far less often than 64 CPUs do',
    };
    const missing = vmr ?? (simulated ? sim : null);
    if (missing !== null) {
      const needs = vmr !== null ? 'needs vm_map_ram (issue 10)' : 'needs the simulator (issue 11)';
      rows.push(notRun(base, needs, missing));
      continue;
    }
    if (!simulated && o.quick) {
      rows.push(
        notRun(
          base,
          'not run (--quick)',
          "two workers take the block hash lock only when a block is made or released (2 of every 256 maps with 4 KiB pages): at --quick's loop count they rarely meet on it; the full run measures it",
        ),
      );
      continue;
    }
    const workers = simulated ? 64 : 2;
    // 64 simulated CPUs make 32x the calls of 2 workers, one thread simulating them all: fewer
    // loops (still 8 or 80 blocks of 256 pages per CPU, so blocks come and go).
    const loops = simulated ? (o.quick ? SIM_LOOPS_QUICK : SIM_LOOPS) : o.quick ? 20000 : 200000;
    o.say(`${base.id}: vm_map_ram_test, global hash then per-CPU hash`);
    let a: VmMapRamRun;
    let b: VmMapRamRun;
    try {
      a = await vmMapRam!.run({ hash: 'global', workers, loops, simulated });
      b = await vmMapRam!.run({ hash: 'percpu', workers, loops, simulated });
    } catch (e) {
      rows.push(notRun(base, 'not run (simulator limit)', (e as Error).message));
      continue;
    }
    rows.push(
      decide({
        ...base,
        measuredOn: simulated ? 'simulated (64 CPUs)' : 'real workers (2)',
        ours: {
          old: a.hashConBounces,
          new: b.hashConBounces,
          unit: 'ConBounces',
          pairs: 1,
          ratios: [],
        },
        beside: [],
        verdict: 'not reproduced',
        reason: '',
        notes: [
          `${base.id}: ${a.hashClass} ${a.hashContentions} contentions vs ${b.hashClass} ${b.hashContentions}; test_loop_count ${loops}`,
        ],
      }),
    );
  }
  return rows;
}
