/**
 * The JSON that the commands print (`vmalloc test --json`, `replay --json` and every
 * `bench ... --json`: kva, contention, vmmapram, scaling, space, seeds and its --scaling-out
 * .json file): one envelope with a schema version, and field names that carry their unit.
 *
 * Holds: SCHEMA_VERSION and jsonReport(), which renames the unit-less fields of the result
 * objects (lock statistics in microseconds, benchmark timings in nanoseconds) on the way out,
 * so the in-memory types and the human-readable tables keep their names.
 * Invariant: a field whose meaning or unit changes gets a new name and SCHEMA_VERSION goes up;
 * consumers (scripts/, test/, BENCHMARKS.md tooling) read `schemaVersion` first.
 * Callers: src/cli/test.ts, bench.ts, bench-space.ts, bench-seeds.ts, replay.ts.
 *
 * A unit is a suffix: Ns, Us, Ms, S, PerSec (rates), Bytes; a name with the unit inside
 * (nsPerPair) is renamed to end with it (perPairNs). Counts (loops, calls, contentions,
 * acquisitions...), shares (0..1: spinShare) and ratios carry no unit.
 */

/**
 * Version 2: schemaVersion itself and the unit suffixes below (version 1 had neither). bench
 * vmmapram, scaling and space printed version-1 JSON (no schemaVersion) until they joined;
 * bench seeds had its own schemaVersion 1, whose scaling points' usPerOp is perOpUs here.
 */
export const SCHEMA_VERSION = 2;

/** Unit-less field names of the results and the names they are printed under. */
const RENAMED: Readonly<Record<string, string>> = {
  // Lock statistics (LockStat): microseconds.
  waitMin: 'waitMinUs',
  waitMax: 'waitMaxUs',
  waitTotal: 'waitTotalUs',
  holdMin: 'holdMinUs',
  holdMax: 'holdMaxUs',
  holdTotal: 'holdTotalUs',
  // bench kva: nanoseconds per loop iteration, one per repetition, and their medians.
  js: 'jsNs',
  c: 'cNs',
  jsMedian: 'jsMedianNs',
  cMedian: 'cMedianNs',
  steady: 'steadyNs',
  mixed: 'mixedNs',
  cSteady: 'cSteadyNs',
  cMixed: 'cMixedNs',
  // bench space: wall and CPU ns per alloc+free pair.
  nsPerPair: 'perPairNs',
  cpuNsPerPair: 'cpuPerPairNs',
  // bench seeds --scaling-out: µs per operation at a live-area count.
  usPerOp: 'perOpUs',
  // vmalloc replay: time in the calls (ns) and per call.
  nsPerCall: 'perCallNs',
  traceNsPerCall: 'tracePerCallNs',
};

function rename(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rename);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[RENAMED[k] ?? k] = rename(x);
  return out;
}

/** `body` as the commands print it: schemaVersion first, unit-suffixed names, 2-space indent. */
export function jsonReport(body: Record<string, unknown>): string {
  return (
    JSON.stringify({ schemaVersion: SCHEMA_VERSION, ...(rename(body) as object) }, null, 2) + '\n'
  );
}
