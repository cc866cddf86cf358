/**
 * Small statistics and timing helpers for the benchmarks.
 *
 * Holds: a nanosecond clock, median, and the paired-ratio summary the benchmarks report
 * (machines here are shared and noisy, so a ratio measured pair by pair is the figure to trust).
 * Callers: src/bench/*.ts.
 */

/** Monotonic clock in nanoseconds (a double: exact up to 104 days). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export function min(values: readonly number[]): number {
  return values.length === 0 ? NaN : Math.min(...values);
}

export function max(values: readonly number[]): number {
  return values.length === 0 ? NaN : Math.max(...values);
}

/** Median of a[i] / b[i] over the pairs. */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  const r: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) r.push(a[i]! / b[i]!);
  return median(r);
}

/** A number printed with `digits` decimals, or '-' when it is not finite. */
export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}
