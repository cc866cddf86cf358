/**
 * /proc/lock_stat for the simulated kernel: the kernel's layout, one line per lock class.
 *
 * Holds: aggregation of lock statistics by class (per-node locks of one kind are one class,
 * as lockdep keys them by their initialisation site) and the formatter.
 * Callers: Vmalloc.lockStat(), the CLI, the contention benchmark; LockTable.classStat() (the
 * sum over cpus of a class of record locks).
 *
 * Kernel: kernel/locking/lockdep_proc.c (lock_stat version 0.4). Times are microseconds with
 * two decimals. Differs from kernel: no per-call-site contention points (the kernel lists the
 * callers that contended below each class).
 */

import type { LockStat } from './lock-table.js';

/**
 * Adds the statistics `s` into `a` (counts and totals summed, minimum of the minimums, maximum
 * of the maximums). A minimum of 0 is "none yet", as in a lock's own words, except a wait
 * minimum with contentions behind it.
 */
export function addStat(a: LockStat, s: LockStat): void {
  if (s.contentions > 0 && (a.contentions === 0 || s.waitMin < a.waitMin)) a.waitMin = s.waitMin;
  if (s.holdMin > 0 && (a.holdMin === 0 || s.holdMin < a.holdMin)) a.holdMin = s.holdMin;
  a.acquisitions += s.acquisitions;
  a.contentions += s.contentions;
  a.conBounces += s.conBounces;
  a.acqBounces += s.acqBounces;
  a.waitMax = Math.max(a.waitMax, s.waitMax);
  a.waitTotal += s.waitTotal;
  a.holdMax = Math.max(a.holdMax, s.holdMax);
  a.holdTotal += s.holdTotal;
}

/** Sums statistics of locks with the same class name. */
export function aggregateByClass(stats: readonly LockStat[]): LockStat[] {
  const byName = new Map<string, LockStat>();
  for (const s of stats) {
    const a = byName.get(s.name);
    if (a === undefined) byName.set(s.name, { ...s });
    else addStat(a, s);
  }
  return [...byName.values()];
}

const COLUMNS = [
  'con-bounces',
  'contentions',
  'waittime-min',
  'waittime-max',
  'waittime-total',
  'waittime-avg',
  'acq-bounces',
  'acquisitions',
  'holdtime-min',
  'holdtime-max',
  'holdtime-total',
  'holdtime-avg',
];

const n14 = (n: number): string => String(Math.round(n)).padStart(14);
const t14 = (us: number): string => us.toFixed(2).padStart(14);

/** The kernel's /proc/lock_stat text; classes sorted by contentions, then acquisitions. */
export function formatLockStat(stats: readonly LockStat[]): string {
  const rows = aggregateByClass(stats)
    .filter((s) => s.acquisitions > 0)
    .sort((a, b) => b.contentions - a.contentions || b.acquisitions - a.acquisitions);
  const header = 'class name'.padStart(40) + ' ' + COLUMNS.map((c) => c.padStart(14)).join(' ');
  const rule = '-'.repeat(header.length);
  const lines = ['lock_stat version 0.4', rule, header, rule, ''];
  for (const s of rows) {
    lines.push(
      `${(s.name + ':').padStart(41)}` +
        [
          n14(s.conBounces),
          n14(s.contentions),
          t14(s.waitMin),
          t14(s.waitMax),
          t14(s.waitTotal),
          t14(s.contentions > 0 ? s.waitTotal / s.contentions : 0),
          n14(s.acqBounces),
          n14(s.acquisitions),
          t14(s.holdMin),
          t14(s.holdMax),
          t14(s.holdTotal),
          t14(s.acquisitions > 0 ? s.holdTotal / s.acquisitions : 0),
        ]
          .map((c) => ' ' + c)
          .join(''),
    );
  }
  return lines.join('\n') + '\n';
}
