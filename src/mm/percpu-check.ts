/**
 * check()'s view of the percpu allocator: every live chunk against the areas and the page
 * table, and its allocation map against its counters.
 *
 * Holds: checkPercpu(), which verifies the chunks and returns the frames their populated
 * pages use (so the whole-state check can count every mapped page and owned frame).
 * Invariant checked: see src/mm/percpu.ts and src/mm/percpu-chunk.ts.
 * Callers: the checker (src/mm/checker.ts).
 */

import { invariantFailure } from '../debug.js';
import { VaFlags } from '../kva/vmap-area.js';
import { kernelHex } from '../shared/layout.js';
import type { VmContext } from './shared-state.js';

export interface PercpuCheck {
  /** Frame -> the vm_struct of the unit that maps it. */
  frames: Map<number, number>;
  /** Pages mapped for chunks (every unit's). */
  mapped: number;
}

export function checkPercpu(ctx: VmContext): PercpuCheck {
  const chunks = ctx.pcpu;
  chunks.refresh();
  const g = chunks.g;
  const s = ctx.s;
  const frames = new Map<number, number>();
  let mapped = 0;
  let live = 0;
  for (let c = 0; c < chunks.slots; c++) {
    if (!chunks.isLive(c)) continue;
    live++;
    const base = chunks.base(c);
    const where = `percpu chunk #${c} at ${kernelHex(base)}`;
    const problem = chunks.checkMaps(c);
    if (problem !== null) invariantFailure(`${where}: ${problem}`);
    for (let cpu = 0; cpu < g.nrCpus; cpu++) {
      const addr = base + cpu * g.unitSize;
      const va = ctx.areas.find(ctx.cpu, addr);
      if (
        va === 0 ||
        s.start(va) !== addr ||
        s.size(va) !== g.unitSize ||
        (s.flags(va) & VaFlags.PCPU) === 0 ||
        s.vm(va) === 0
      )
        invariantFailure(`${where}: unit ${cpu} is not a busy pcpu area of ${g.unitSize} bytes`);
      const vm = s.vm(va);
      for (let p = 0; p < g.unitPages; p++) {
        const pfn = ctx.pageTable.lookup(addr + p * ctx.pageSize);
        if (!chunks.isPopulated(c, p)) {
          if (pfn >= 0) invariantFailure(`${where}: unit ${cpu} maps unpopulated page ${p}`);
          continue;
        }
        if (pfn < 0) invariantFailure(`${where}: unit ${cpu} does not map populated page ${p}`);
        if (frames.has(pfn)) invariantFailure(`${where}: pfn ${pfn} is mapped twice`);
        frames.set(pfn, vm);
        mapped++;
      }
    }
  }
  if (live !== chunks.live) invariantFailure(`percpu: ${chunks.live} chunks counted, ${live} live`);
  if (mapped !== chunks.populatedPages)
    invariantFailure(`percpu: ${chunks.populatedPages} pages counted, ${mapped} mapped`);
  return { frames, mapped };
}
