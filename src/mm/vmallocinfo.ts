/**
 * /proc/vmallocinfo, line for line.
 *
 * Holds: the formatter, fed with plain data (so the report and tests can use it too).
 * Callers: Vmalloc.vmallocinfo(), the CLI.
 *
 * Kernel: vmalloc_info_show() / s_show() (6.7) and show_purge_info(). One line per busy area:
 *
 *   0x<start>-0x<end> <size %7ld> [caller] [pages=N] [phys=0x...] [flag words] [vpages] [N0=..]
 *
 * with the size including the guard page, the flag words in the kernel's order (ioremap,
 * sparse, vmalloc, vmap, user, dma-coherent), areas still VM_UNINITIALIZED left out, and a
 * busy area without a vm_struct shown as "vm_map_ram" when it has VMAP_RAM. The lazily freed
 * ranges follow as "unpurged vm_area": before 6.9 merged ranges, from 6.9 the individual areas
 * of node 0, node 1, ..., after the busy areas of node 0, node 1, ... (so the busy lines are
 * sorted per node, not overall).
 * Differs from kernel: before 6.9 the kernel printed the lazy ranges from the step of the
 * last busy entry, so with no busy area at all (which never happens on a running kernel)
 * they were not shown; here they are always shown, in every design.
 */

import { VaFlags } from '../kva/vmap-area.js';
import { kernelHex } from '../shared/layout.js';
import { VmFlags } from './vm-struct.js';

export interface VmallocinfoArea {
  start: number;
  end: number;
  /** va->flags */
  vaFlags: number;
  vm: null | {
    addr: number;
    size: number;
    flags: number;
    nrPages: number;
    caller: string;
    physAddr: number;
    /** The pages array lives in vmalloc space (a nested vmalloc): "vpages". */
    pagesInVmalloc: boolean;
  };
}

export interface VmallocinfoSource {
  design: string;
  pageSize: number;
  numaInfo: boolean;
  /** Busy areas in the order the kernel walks them. */
  busy: VmallocinfoArea[];
  /** Lazily freed ranges in order. */
  lazy: { start: number; end: number }[];
}

const size7 = (n: number): string => String(n).padStart(7);

function physHex(n: number): string {
  return '0x' + n.toString(16).padStart(16, '0');
}

export function formatVmallocinfo(src: VmallocinfoSource): string {
  const out: string[] = [];
  for (const a of src.busy) {
    const vm = a.vm;
    if (vm === null) {
      if ((a.vaFlags & VaFlags.VMAP_RAM) !== 0) {
        out.push(
          `${kernelHex(a.start)}-${kernelHex(a.end)} ${size7(a.end - a.start)} vm_map_ram\n`,
        );
      }
      continue;
    }
    if ((vm.flags & VmFlags.VM_UNINITIALIZED) !== 0) continue;
    let line = `${kernelHex(vm.addr)}-${kernelHex(vm.addr + vm.size)} ${size7(vm.size)}`;
    if (vm.caller !== '') line += ` ${vm.caller}`;
    if (vm.nrPages !== 0) line += ` pages=${vm.nrPages}`;
    if (vm.physAddr !== 0) line += ` phys=${physHex(vm.physAddr)}`;
    if ((vm.flags & VmFlags.VM_IOREMAP) !== 0) line += ' ioremap';
    if ((vm.flags & VmFlags.VM_SPARSE) !== 0) line += ' sparse';
    if ((vm.flags & VmFlags.VM_ALLOC) !== 0) line += ' vmalloc';
    if ((vm.flags & VmFlags.VM_MAP) !== 0) line += ' vmap';
    if ((vm.flags & VmFlags.VM_USERMAP) !== 0) line += ' user';
    if ((vm.flags & VmFlags.VM_DMA_COHERENT) !== 0) line += ' dma-coherent';
    if (vm.pagesInVmalloc) line += ' vpages';
    if (src.numaInfo && vm.nrPages !== 0) line += ` N0=${vm.nrPages}`;
    out.push(line + '\n');
  }
  for (const r of src.lazy) {
    out.push(
      `${kernelHex(r.start)}-${kernelHex(r.end)} ${size7(r.end - r.start)} unpurged vm_area\n`,
    );
  }
  return out.join('');
}
