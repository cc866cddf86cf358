/**
 * The simulator's cost model: how many virtual nanoseconds a piece of allocator work takes,
 * and the calibration that says so for a machine.
 *
 * Holds: Calibration (weights per unit of work, each design's own fixed costs, the lock costs,
 * where they came from and the fit's error), designCost() (a design's fixed costs, or the
 * shared call weight for a design the calibration did not fit), FEATURES (the units, in the order of a feature vector), costOf(), the default
 * calibration (DEFAULT_CALIBRATION, fitted on the machine this project is developed on by
 * `vmalloc sim calibrate`, copied here so a fresh clone runs the same virtual numbers),
 * parseCalibration() (a JSON file, validated) and nnls() (the least squares fit, weights >= 0).
 * Invariant: a weight is a finite number >= 0; the same calibration gives the same virtual
 * times, on any machine, under any load.
 * Callers: src/sim/machine.ts (costOf), src/sim/calibrate.ts (the fit), the CLI.
 *
 * The units: a call into the allocator (vmalloc, vfree: entry, checks, vm_struct, records),
 * an access (a read or write of a few bytes through the page table), a tree node visited
 * (free-tree search, busy-tree lookup, insert position), a page (allocated and mapped, or
 * unmapped and freed), a byte zeroed, an area merged into a free tree (a purge's work). Taking
 * a free lock and moving a cache line between CPUs are the lock model's (lock-model.ts).
 *
 * Per design (`designs`): a fixed cost per call and one per lock acquisition. The designs do
 * work the counted units do not see (the nodes design's node lookups, pool hits and misses,
 * its extra locks' bookkeeping), so one call weight cannot fit both: on 2026-12-03 18:25
 * (quiet) the real global fix_size_alloc_test took 3.15 ms and nodes 7.33 ms, and the shared
 * fit was 23-58% under on every nodes test. A design's lock cost is charged just before each
 * acquisition (outside the hold it starts: the work of reaching the lock, such as finding the
 * node), so it spaces a CPU's lock requests without lengthening the holds. A design absent
 * from `designs` takes weights[call] and no lock cost (a file written before the per-design
 * costs: the model it was fitted with).
 *
 * At 64 CPUs (run_test_mask=1, 2000 loops, the built-in calibration, per-design since
 * 2026-12-03 20:05): global / nodes 7.6x (the seed: 12.7x on mask 7), global spinning 94.8%
 * (the seed: 93%), nodes 42.6% (the seed: 16.5%), free_vmap_area_lock 41.6% of it. With the
 * earlier one-weight calibration: 9.7x, 95%, 67%. Before the data lines under a lock were
 * charged (engine.ts) the same run gave 1.4x, 31% and 1%: a kernel critical section that
 * follows another CPU's pulls its tree nodes from that CPU's cache, and that, not the lock
 * word, is what makes the holds long. Nodes still spins too much on free_vmap_area_lock: the
 * model's one line per step overcharges the free tree's holds (a lookup's lines the other CPU
 * has not written since are charged too), or its pools are missed more often than the
 * kernel's; not yet told apart. The
 * seed's mask 7 needs full_fit_alloc_test, whose 28 GiB of pages at 64 CPUs a simulated
 * machine cannot hold.
 */

import { DESIGN_NAMES } from '../designs/registry.js';
import type { VmallocDesign } from '../mm/config.js';

export const FEATURES = ['call', 'access', 'step', 'page', 'byte', 'record'] as const;
export type Feature = (typeof FEATURES)[number];
export const F_CALL = 0;
export const F_ACCESS = 1;
export const F_STEP = 2;
export const F_PAGE = 3;
export const F_BYTE = 4;
export const F_RECORD = 5;
export const NR_FEATURES = FEATURES.length;

/** A design's own fixed costs (ns), fitted on one-worker runs of that design. */
export interface DesignCost {
  /** Each call into the allocator (replaces weights[call] for the design). */
  callNs: number;
  /** Each lock acquisition, before it (beyond the lock model's acquireNs). */
  lockNs: number;
}

export interface Calibration {
  /** ns per unit of each feature, in FEATURES order. */
  weights: number[];
  /** Per design: its fixed costs; a design not listed takes weights[call] and lockNs 0. */
  designs: Partial<Record<VmallocDesign, DesignCost>>;
  /** Taking a free lock (ns). */
  acquireNs: number;
  /** Moving a cache line between CPUs (ns). */
  transferNs: number;
  /**
   * The workers' locks (src/shared/lock-wait.ts), for the validation against real workers:
   * how long a waiter spins before it sleeps, the wake of a sleeper (release to running) and
   * the releaser's notify call (ns). Measured with the two others by xcore.ts.
   */
  spinNs: number;
  wakeNs: number;
  notifyNs: number;
  /** Where and when it was fitted, and how well. */
  source: string;
  /** Root mean square of the relative error per test of the fit (0.05: 5%). */
  fitError: number;
}

/**
 * This machine's (AMD EPYC, 2 vCPUs, Linux 6.18 in a Firecracker VM, Node 20): the
 * calibration that fitWeights() (per design, tests weighed by time, step and record fixed)
 * gives on the real one-worker test times and the cross-core costs of the quiet `vmalloc sim
 * calibrate --loops 2000 --repeat 5` of 2026-12-03 18:25 UTC (both cores idle): global fix_size 3.15 ms, full_fit 78.66, long_busy_list 84.20, random_size
 * 6.44, fix_align 9.21, random_size_align 9.01, align_shift 0.57, vm_map_ram 1.73; nodes 7.33,
 * 122.65, 125.22, 12.52, 15.51, 16.13, 0.80, 3.60; transfer 68.8 ns, wake 7564, notify 3257,
 * spin budget 2016.6, lock + unlock 27.2 (10th percentiles). That run's fit (one call weight)
 * was 46% off; refitted per design at 20:05 from those figures (the code then had the pages
 * pool change of 121cbb5 beside it, nothing else on the measured path). To re-derive it: run
 * `npx vmalloc sim calibrate --loops 2000 --repeat 5 --out cal.json` with both cores idle and
 * copy cal.json's fields here as they are (the file is this object: weights, designs, the lock
 * costs, source, fitError); or pass the file (VMALLOC_SIM_CALIBRATION, --calibration).
 */
export const DEFAULT_CALIBRATION: Calibration = {
  weights: [560, 1815, 5, 13.77, 0.2025, 100],
  designs: { global: { callNs: 0, lockNs: 0 }, nodes: { callNs: 1120, lockNs: 0 } },
  acquireNs: 27.2,
  transferNs: 68.8,
  spinNs: 2016.6,
  wakeNs: 7564,
  notifyNs: 3257,
  source:
    'fitWeights() on the real one-worker times and cross-core costs of vmalloc sim calibrate 2026-12-03T18:25Z (loops 2000, repeat 5, seed 1; AMD EPYC, 2 CPUs, idle), per design, tests weighed by time',
  fitError: 0.561,
};

/** The fixed costs the simulator charges `design` under `cal` (see the header). */
export function designCost(cal: Calibration, design: VmallocDesign): DesignCost {
  return cal.designs[design] ?? { callNs: cal.weights[F_CALL]!, lockNs: 0 };
}

/** Virtual ns of the work in `f` (a feature vector) under weights `w`. */
export function costOf(w: readonly number[], f: ArrayLike<number>): number {
  let ns = 0;
  for (let k = 0; k < NR_FEATURES; k++) ns += w[k]! * f[k]!;
  return ns;
}

/** A calibration read from JSON, checked: refuses a missing or negative weight. */
export function parseCalibration(text: string, where: string): Calibration {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not JSON (${(e as Error).message})`);
  }
  const c = o as Partial<Calibration>;
  const num = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (
    typeof c !== 'object' ||
    c === null ||
    !Array.isArray(c.weights) ||
    c.weights.length !== NR_FEATURES ||
    !c.weights.every(num)
  )
    throw new Error(
      `${where}: "weights" must be ${NR_FEATURES} numbers >= 0 (ns per ${FEATURES.join(', ')})`,
    );
  if (!num(c.acquireNs) || !num(c.transferNs))
    throw new Error(`${where}: "acquireNs" and "transferNs" must be numbers >= 0`);
  // (A file written before the workers' lock costs were measured has none: the default's.)
  const opt = (k: 'spinNs' | 'wakeNs' | 'notifyNs'): number => {
    if (c[k] === undefined) return DEFAULT_CALIBRATION[k];
    if (!num(c[k])) throw new Error(`${where}: "${k}" must be a number >= 0`);
    return c[k];
  };
  const designs: Partial<Record<VmallocDesign, DesignCost>> = {};
  if (c.designs !== undefined) {
    if (typeof c.designs !== 'object' || c.designs === null || Array.isArray(c.designs))
      throw new Error(`${where}: "designs" must be an object of design name -> {callNs, lockNs}`);
    for (const [name, d] of Object.entries(c.designs as Record<string, unknown>)) {
      if (!(DESIGN_NAMES as readonly string[]).includes(name))
        throw new Error(
          `${where}: "designs" names ${name}, not a design (${DESIGN_NAMES.join(', ')})`,
        );
      const dc = d as Partial<DesignCost> | null;
      if (typeof dc !== 'object' || dc === null || !num(dc.callNs) || !num(dc.lockNs))
        throw new Error(
          `${where}: "designs.${name}" must have "callNs" and "lockNs", numbers >= 0`,
        );
      designs[name as VmallocDesign] = { callNs: dc.callNs!, lockNs: dc.lockNs! };
    }
  }
  return {
    weights: c.weights.slice(),
    designs,
    acquireNs: c.acquireNs!,
    transferNs: c.transferNs!,
    spinNs: opt('spinNs'),
    wakeNs: opt('wakeNs'),
    notifyNs: opt('notifyNs'),
    source: typeof c.source === 'string' ? c.source : where,
    fitError: typeof c.fitError === 'number' ? c.fitError : NaN,
  };
}

/**
 * Non-negative least squares: x >= 0 minimising |A x - b| (Lawson and Hanson's active set
 * method). `a` is rows of equal length. Small problems only (a handful of unknowns).
 */
export function nnls(a: readonly (readonly number[])[], b: readonly number[]): number[] {
  // Each column scaled to unit length first (x >= 0 is kept by a positive scale): the columns
  // differ by 1e4 and more (bytes zeroed against calls), and the normal equations below square
  // that; unscaled, a new column's solution came out <= 0 by rounding, the active set dropped
  // it at once and the fit left a design's call cost at 0 while under-fitting every test.
  const n0 = a[0]!.length;
  const scale = Array.from({ length: n0 }, (_, j) =>
    Math.sqrt(a.reduce((s, row) => s + row[j]! * row[j]!, 0)),
  );
  const scaled = a.map((row) => row.map((v, j) => (scale[j]! > 0 ? v / scale[j]! : 0)));
  return nnlsScaled(scaled, b).map((x, j) => (scale[j]! > 0 ? x / scale[j]! : 0));
}

function nnlsScaled(a: readonly (readonly number[])[], b: readonly number[]): number[] {
  const m = a.length;
  const n = a[0]!.length;
  const x = new Array<number>(n).fill(0);
  const passive = new Array<boolean>(n).fill(false);
  const blocked = new Array<boolean>(n).fill(false);
  const grad = (): number[] => {
    const r = b.map((bi, i) => bi - a[i]!.reduce((s, aij, j) => s + aij * x[j]!, 0));
    return Array.from({ length: n }, (_, j) => a.reduce((s, row, i) => s + row[j]! * r[i]!, 0));
  };
  // Least squares over the passive set (normal equations, Gaussian elimination).
  const solveP = (): number[] => {
    const idx = passive.map((p, j) => (p ? j : -1)).filter((j) => j >= 0);
    const k = idx.length;
    const M = Array.from({ length: k }, (_, r) =>
      Array.from({ length: k + 1 }, (_, c) =>
        c < k
          ? a.reduce((s, row) => s + row[idx[r]!]! * row[idx[c]!]!, 0)
          : a.reduce((s, row, i) => s + row[idx[r]!]! * b[i]!, 0),
      ),
    );
    for (let col = 0; col < k; col++) {
      let piv = col;
      for (let r = col + 1; r < k; r++)
        if (Math.abs(M[r]![col]!) > Math.abs(M[piv]![col]!)) piv = r;
      [M[col], M[piv]] = [M[piv]!, M[col]!];
      const d = M[col]![col]!;
      if (Math.abs(d) < 1e-300) continue;
      for (let r = 0; r < k; r++) {
        if (r === col) continue;
        const f = M[r]![col]! / d;
        for (let c = col; c <= k; c++) M[r]![c] = M[r]![c]! - f * M[col]![c]!;
      }
    }
    const z = new Array<number>(n).fill(0);
    idx.forEach((j, r) => {
      const d = M[r]![r]!;
      z[j] = Math.abs(d) < 1e-300 ? 0 : M[r]![k]! / d;
    });
    return z;
  };
  for (let iter = 0; iter < 3 * n + 10; iter++) {
    const w = grad();
    let best = -1;
    for (let j = 0; j < n; j++)
      if (!passive[j] && !blocked[j] && w[j]! > 1e-12 && (best < 0 || w[j]! > w[best]!)) best = j;
    if (best < 0) break;
    passive[best] = true;
    for (let inner = 0; inner < 3 * n + 10; inner++) {
      const z = solveP();
      // A column whose own solution is <= 0 the moment it enters (rounding: its gradient was
      // positive) would leave again at once and be picked again every round: keep it out.
      if (inner === 0 && z[best]! <= 0) {
        passive[best] = false;
        blocked[best] = true;
        break;
      }
      if (passive.every((p, j) => !p || z[j]! > 0)) {
        for (let j = 0; j < n; j++) x[j] = z[j]!;
        break;
      }
      let alpha = Infinity;
      for (let j = 0; j < n; j++)
        if (passive[j] && z[j]! <= 0) alpha = Math.min(alpha, x[j]! / (x[j]! - z[j]!));
      for (let j = 0; j < n; j++) {
        x[j] = x[j]! + alpha * (z[j]! - x[j]!);
        if (passive[j] && x[j]! <= 1e-12) {
          passive[j] = false;
          x[j] = 0;
        }
      }
    }
  }
  void m;
  return x;
}
