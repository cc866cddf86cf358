/**
 * `vmalloc bench seeds`: the row model, the seeds' own figures, and the verdict.
 *
 * Holds: SeedRow (one seed claim: the seed's old and new figures, ours, where ours were
 * measured), the verdict computed from the measured figures (never written down), and the
 * verdicts of rows that cannot run yet (a capability missing) or were left out of --quick.
 * Invariant: a row's verdict is a function of its measured figures and its stated size factor;
 * a row without measured figures never carries a "reproduced" verdict.
 * Callers: src/bench/seeds-real.ts, seeds-plugs.ts, seeds-format.ts, src/cli/bench-seeds.ts.
 */

/** What a row's figures count: a time or a lock_stat count (the JSON field names carry it). */
export type SeedUnit = 'Us' | 'Ms' | 'S' | 'Cycles' | 'Contentions' | 'ConBounces' | 'Percent';

export type Verdict =
  | 'reproduced'
  | 'reproduced in direction only'
  | 'not reproduced'
  | 'needs the simulator (issue 11)'
  | 'needs vm_map_ram (issue 10)'
  | 'not run (--quick)'
  | 'not checked (--quick)'
  | 'not run (simulator limit)'
  | 'baseline';

/** The seed's figures for one claim, as the seed prints them. */
export interface SeedFigures {
  file: string;
  /** Machine and configuration of the seed's measurement. */
  machine: string;
  old: number;
  new: number;
  unit: SeedUnit;
}

export interface SeedRow {
  /** Stable identifier, e.g. "2018-test_2". */
  id: string;
  year: number;
  /** The workload, in a few words. */
  workload: string;
  oldDesign: string;
  newDesign: string;
  seed: SeedFigures;
  /** Where ours come from: "real workers (2)", "simulated (64 CPUs)", or "-" when not run. */
  measuredOn: string;
  /** Ours, or null when the row did not run. Both in `unit`. */
  ours: { old: number; new: number; unit: SeedUnit; pairs: number; ratios: number[] } | null;
  /** Designs measured beside the two, on the same workload and unit. */
  beside: { design: string; value: number }[];
  /** Ours is "in size" when our ratio is at least the seed's divided by this; 0 when the two
   * figures measure different things (the verdict is then about direction only). */
  sizeFactor: number;
  /** Why our ratio can be smaller than the seed's on this machine (used when it is). */
  sizeCaveat: string;
  /**
   * Why the new design may show no gain here, formed by the row from what it measured (counts
   * of each design's work); added to the reason when our ratio is not above 1.
   */
  flatReason?: string;
  verdict: Verdict;
  /** The verdict's reason, in one sentence. */
  reason: string;
  /** Extra figures of the row (lock classes, loop counts), for the notes under the table. */
  notes: string[];
}

/** old / new: how many times better the new design is (a count of 0 counts as 1). */
export function ratioOf(oldValue: number, newValue: number, unit: SeedUnit): number {
  if (unit === 'Contentions' || unit === 'ConBounces') return oldValue / Math.max(1, newValue);
  return oldValue / newValue;
}

export function seedRatio(s: SeedFigures): number {
  return ratioOf(s.old, s.new, s.unit);
}

function median(v: readonly number[]): number {
  const a = [...v].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 === 1 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
}

/** Our ratio: the median of the per-pair ratios (pairs run interleaved), else old / new. */
export function oursRatio(row: SeedRow): number {
  if (row.ours === null) return NaN;
  if (row.ours.ratios.length > 0) return median(row.ours.ratios);
  return ratioOf(row.ours.old, row.ours.new, row.ours.unit);
}

/** --quick checks only claims of at least this ratio (smaller effects drown in its noise). */
export const QUICK_MIN_SEED_RATIO = 1.25;

/**
 * The verdict from the measured figures: the direction is reproduced when our ratio (old over
 * new) is above 1, as the seed's is (for a small claim, in every pair: smallAndMixed); the size
 * too when our ratio is at least the seed's divided by the row's size factor; otherwise the row
 * says why our machine cannot show it (and, when it was not faster, the row's flatReason).
 */
export function decide(row: SeedRow): SeedRow {
  if (row.ours === null) return row;
  const ours = oursRatio(row);
  const theirs = seedRatio(row.seed);
  if (!(ours > 1) || smallAndMixed(row, theirs)) {
    const why = row.flatReason === undefined ? '' : `; ${row.flatReason}`;
    const not = ours > 1 ? 'not faster in every pair' : 'not faster';
    return {
      ...row,
      verdict: 'not reproduced',
      reason: `ours ${x(ours)} (old / new) against the seed's ${x(theirs)}: the new design was ${not} here${spread(row.ours.ratios)}${why}`,
    };
  }
  if (row.sizeFactor > 0 && ours >= theirs / row.sizeFactor) {
    const how = ours >= theirs ? 'at least the seed' : `within ${row.sizeFactor}x of the seed`;
    return {
      ...row,
      verdict: 'reproduced',
      reason: `ours ${x(ours)} against the seed's ${x(theirs)}: same direction, ${how}`,
    };
  }
  return {
    ...row,
    verdict: 'reproduced in direction only',
    reason: `ours ${x(ours)} against the seed's ${x(theirs)}: ${row.sizeCaveat}`,
  };
}

const x = (r: number): string => `${r >= 100 ? r.toFixed(0) : r.toFixed(2)}x`;

/**
 * A small claimed effect (the seed's ratio below QUICK_MIN_SEED_RATIO) is reproduced only when
 * every pair shows it: with some pairs on each side of 1, a median just above 1 is the noise's.
 */
function smallAndMixed(row: SeedRow, theirs: number): boolean {
  const r = row.ours === null ? [] : row.ours.ratios;
  return theirs < QUICK_MIN_SEED_RATIO && r.length > 1 && Math.min(...r) <= 1;
}

/**
 * The span of the per-pair ratios, and whether it reaches past 1 (some pairs favoured the new
 * design: the median's side of 1 is then within the pairs' noise).
 */
function spread(ratios: readonly number[]): string {
  if (ratios.length < 2) return '';
  const lo = Math.min(...ratios);
  const hi = Math.max(...ratios);
  const noise = hi > 1 ? ', within the noise' : '';
  return ` (pairs ${x(lo)}..${x(hi)}${noise})`;
}

/**
 * --quick's policy: a measured row whose seed ratio is below QUICK_MIN_SEED_RATIO is reported
 * with its figures but not called (the full run calls it).
 */
export function quickVerdict(row: SeedRow): SeedRow {
  if (row.ours === null || row.verdict === 'baseline') return row;
  const theirs = seedRatio(row.seed);
  // Contention between real workers needs them running at the same moment, which a shared
  // machine under load may not grant for --quick's few seconds (measured: 45,216 vs 182 on a
  // quiet machine, 41 vs 811 with both cores busy elsewhere): reported, not called.
  const contention = row.ours.unit === 'Contentions' || row.ours.unit === 'ConBounces';
  if (contention && row.measuredOn.startsWith('real'))
    return {
      ...row,
      verdict: 'not checked (--quick)',
      reason: `contention between real workers depends on the machine's load (ours ${x(oursRatio(row))}); the full run checks it`,
    };
  // One wall-clock pair of real runs is one sample of the machine's load as much as of the
  // designs (measured: 1.00x under load, 1.70x a minute later alone): reported, not called.
  if (row.measuredOn.startsWith('real') && row.ours.pairs < 2)
    return {
      ...row,
      verdict: 'not checked (--quick)',
      reason: `one pair of real runs (ours ${x(oursRatio(row))}) depends on the machine's load at that moment; the full run checks it`,
    };
  if (theirs >= QUICK_MIN_SEED_RATIO) return row;
  return {
    ...row,
    verdict: 'not checked (--quick)',
    reason: `the seed's effect (${x(theirs)}) is below the ${x(QUICK_MIN_SEED_RATIO)} that --quick's few seconds on a shared machine resolve (ours ${x(oursRatio(row))}); the full run checks it`,
  };
}

/** A row that did not run: its verdict says what it waits for. */
export function notRun(
  row: Omit<SeedRow, 'ours' | 'verdict' | 'reason' | 'measuredOn' | 'beside' | 'notes'> & {
    measuredOn?: string;
  },
  verdict: Verdict,
  reason: string,
): SeedRow {
  return {
    ...row,
    measuredOn: row.measuredOn ?? '-',
    ours: null,
    beside: [],
    verdict,
    reason,
    notes: [],
  };
}

/** Did the row measure and come out the seed's way (in direction at least)? */
export function isReproduced(row: SeedRow): boolean {
  return row.verdict === 'reproduced' || row.verdict === 'reproduced in direction only';
}

/** Was the row's verdict computed from figures measured in this run? */
export function isMeasured(row: SeedRow): boolean {
  return row.ours !== null;
}
