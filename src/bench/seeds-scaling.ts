/**
 * `vmalloc bench seeds --scaling-out FILE`: allocation cost against the number of live areas
 * (1e3..1e6), for every registered design, as CSV or JSON for the report's figure.
 *
 * Holds: the setup (N live one-page areas, each followed by a three-page hole, all purged),
 * the timed operation (the 2018 RFC's test_2 pair through get_vm_area: 100 pages, then 1 page,
 * both removed), the time cap, and the CSV / JSON writers.
 * Invariant: every design gets the same layout and the same operations; a point's figure is
 * the median over rounds of the mean time per operation.
 * Callers: src/cli/bench-seeds.ts.
 *
 * Why this layout: the 100-page request fits no hole, so the 2018 first fit ('rfc2018') walks
 * all N holes and the <= 5.1 gap walk ('legacy') steps over all N busy areas once the 1-page
 * request (smaller than a hole it saw) has sent its cache to the bottom; the augmented tree
 * (global, nodes, offload2023) descends by subtree maximum. Those two are O(N) per operation,
 * so at 1e6 areas an operation takes milliseconds: each point is capped in time, not in size
 * (at least MIN_OPS operations, then until the time cap or the operation count is reached).
 */

import { createVmalloc } from '../api/vmalloc.js';
import { DESIGN_NAMES } from '../designs/registry.js';
import type { VmallocDesign } from '../mm/config.js';
import { median, nowNs } from './stats.js';

const P = 4096;
const MIN_OPS = 5;

export interface ScalingPoint {
  design: VmallocDesign;
  liveAreas: number;
  /** Median over rounds of the mean time of one operation (µs). */
  usPerOp: number;
  ops: number;
  setupMs: number;
  /** True when the time cap, not the operation count, ended the rounds. */
  capped: boolean;
}

export interface ScalingOptions {
  sizes: number[];
  designs?: readonly VmallocDesign[];
  /** Operations per round (default 2000). */
  ops?: number;
  rounds?: number;
  /** Time cap per point, all rounds (ms, default 3000). */
  capMs?: number;
  say?: (line: string) => void;
}

function point(design: VmallocDesign, n: number, o: ScalingOptions): ScalingPoint {
  const t0 = nowNs();
  const vm = createVmalloc({ design, nrCpus: 2, logger: null, physicalMemory: 2 ** 28 });
  const live = new Float64Array(n);
  const holes = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    live[i] = vm.getVmArea(P)!.addr; // 2 pages with the guard
    holes[i] = vm.getVmArea(2 * P)!.addr; // 3 pages with the guard
  }
  for (let i = 0; i < n; i++) vm.removeVmArea(holes[i]!);
  vm.purge();
  const setupMs = (nowNs() - t0) / 1e6;
  const op = (): void => {
    const a = vm.getVmArea(100 * P)!.addr;
    const b = vm.getVmArea(P)!.addr;
    vm.removeVmArea(a);
    vm.removeVmArea(b);
  };
  for (let i = 0; i < MIN_OPS; i++) op(); // the JIT's, untimed
  const perRound = o.ops ?? 2000;
  const rounds = o.rounds ?? 3;
  const capNs = (o.capMs ?? 3000) * 1e6;
  const means: number[] = [];
  let ops = 0;
  let capped = false;
  const start = nowNs();
  for (let r = 0; r < rounds && !capped; r++) {
    const r0 = nowNs();
    let k = 0;
    while (k < perRound) {
      op();
      k++;
      if (k >= MIN_OPS && nowNs() - start > capNs) {
        capped = true;
        break;
      }
    }
    means.push((nowNs() - r0) / 1000 / k);
    ops += k;
  }
  vm.purge();
  return { design, liveAreas: n, usPerOp: median(means), ops, setupMs, capped };
}

export function runScaling(o: ScalingOptions): ScalingPoint[] {
  const out: ScalingPoint[] = [];
  const designs = o.designs ?? DESIGN_NAMES;
  for (const n of o.sizes) {
    for (const d of designs) {
      const p = point(d, n, o);
      out.push(p);
      o.say?.(
        `scaling: ${d} at ${n} live areas: ${p.usPerOp.toFixed(2)} µs/op (${p.ops} ops${p.capped ? ', time-capped' : ''})`,
      );
    }
  }
  return out;
}

export function scalingCsv(points: readonly ScalingPoint[]): string {
  const lines = ['design,liveAreas,usPerOp,ops,setupMs,timeCapped'];
  for (const p of points)
    lines.push(
      `${p.design},${p.liveAreas},${p.usPerOp.toFixed(3)},${p.ops},${p.setupMs.toFixed(0)},${p.capped}`,
    );
  return lines.join('\n') + '\n';
}

export const SCALING_WHAT =
  'get_vm_area(100 pages) + get_vm_area(1 page) + remove_vm_area of both, with N live 1-page areas each followed by a 3-page hole (purged); µs per operation, median over rounds; O(N) designs (legacy, rfc2018) are capped in time per point, not in size';
