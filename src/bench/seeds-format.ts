/**
 * `vmalloc bench seeds`: the table (Markdown) and the JSON of the rows.
 *
 * Holds: formatSeeds() (one line per claim: the seed's figures and ratio, ours, where ours
 * were measured, the verdict; then each row's reason and notes) and seedsJson() (figure fields
 * carry their unit in the name: seedOldUs, oursNewMs, oursOldContentions...; the CLI prints
 * them through its jsonReport(), whose schemaVersion they share: 2, where this file's own
 * version 1 called the scaling points' time usPerOp, now perOpUs).
 * Callers: src/cli/bench-seeds.ts.
 */

import { oursRatio, seedRatio, type SeedRow, type SeedUnit } from './seeds-rows.js';

const UNIT_TEXT: Record<SeedUnit, string> = {
  Us: 'µs',
  Ms: 'ms',
  S: 's',
  Cycles: 'cycles',
  Contentions: 'contentions',
  ConBounces: 'con-bounces',
  Percent: '%',
};

function num(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (Math.abs(v) >= 1e9) return v.toExponential(3);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

const ratio = (r: number): string =>
  Number.isFinite(r) ? `${r >= 100 ? r.toFixed(0) : r.toFixed(2)}x` : '-';

export function formatSeeds(rows: readonly SeedRow[]): string {
  const out: string[] = [];
  out.push(
    '| seed | claim | old -> new | seed: old | seed: new | seed ratio | ours: old | ours: new | ours ratio | beside | measured on | verdict |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---|',
  );
  for (const r of rows) {
    const su = UNIT_TEXT[r.seed.unit];
    const ou = r.ours ? UNIT_TEXT[r.ours.unit] : '';
    const beside = r.beside.map((b) => `${b.design} ${num(b.value)} ${ou}`).join(', ') || '-';
    out.push(
      `| ${r.year} (${r.seed.file.slice(0, 3)}) | ${r.workload} | ${r.oldDesign} -> ${r.newDesign} | ` +
        `${num(r.seed.old)} ${su} | ${num(r.seed.new)} ${su} | ${ratio(seedRatio(r.seed))} | ` +
        (r.ours
          ? `${num(r.ours.old)} ${ou} | ${num(r.ours.new)} ${ou} | ${ratio(oursRatio(r))} | `
          : '- | - | - | ') +
        `${beside} | ${r.measuredOn} | ${r.verdict} |`,
    );
  }
  out.push('', 'Verdicts:', '');
  for (const r of rows) out.push(`- ${r.id}: **${r.verdict}**: ${r.reason}`);
  const notes = rows.flatMap((r) => r.notes);
  if (notes.length > 0) {
    out.push('', 'Notes:', '');
    for (const n of notes) out.push(`- ${n}`);
  }
  return out.join('\n');
}

/** A finite number, or null (JSON has no Infinity / NaN). */
const j = (v: number): number | null => (Number.isFinite(v) ? v : null);

export function seedsJson(rows: readonly SeedRow[]): Record<string, unknown>[] {
  return rows.map((r) => {
    const o: Record<string, unknown> = {
      id: r.id,
      year: r.year,
      seedFile: r.seed.file,
      seedMachine: r.seed.machine,
      workload: r.workload,
      oldDesign: r.oldDesign,
      newDesign: r.newDesign,
      [`seedOld${r.seed.unit}`]: r.seed.old,
      [`seedNew${r.seed.unit}`]: r.seed.new,
      seedRatio: j(seedRatio(r.seed)),
      measuredOn: r.measuredOn,
    };
    if (r.ours) {
      o[`oursOld${r.ours.unit}`] = r.ours.old;
      o[`oursNew${r.ours.unit}`] = r.ours.new;
      o['oursRatio'] = j(oursRatio(r));
      o['oursPairRatios'] = r.ours.ratios.map(j);
      o['pairs'] = r.ours.pairs;
      o['beside'] = r.beside.map((b) => ({ design: b.design, [`value${r.ours!.unit}`]: b.value }));
    } else {
      o['oursRatio'] = null;
    }
    o['sizeFactor'] = r.sizeFactor;
    o['verdict'] = r.verdict;
    o['reason'] = r.reason;
    o['notes'] = r.notes;
    return o;
  });
}
