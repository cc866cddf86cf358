/**
 * vm_struct records: what vmalloc knows about a mapped area (address, size with the guard
 * page, flags, pages, caller), one 64-byte record per id in a record arena.
 *
 * Holds: the VM_* flag bits and the VmStore of records.
 * Invariant: a live vm_struct of a busy area has addr == va.start and size == va size; its
 * pages (nrPages of them, the area without its guard page) are listed at `pages` in the
 * page-array pool.
 * Callers: the vmalloc layer (src/mm/alloc-path.ts, free-path.ts, vmap.ts, checker.ts), vmallocinfo.
 *
 * Kernel: struct vm_struct, include/linux/vmalloc.h (flag values of 6.9+).
 *
 *   byte 0       8       16      24       32    36     40     44     48    52        56
 *       +-------+-------+-------+--------+-----+------+------+------+-----+---------+---+
 *       | addr  | size  | phys  | reqsize|flags|npages|pages |caller| va  |pages_vm | - |
 *       +-------+-------+-------+--------+-----+------+------+------+-----+---------+---+
 */

import {
  type ArenaBuffers,
  type ArenaOptions,
  RecordArena,
  createArenaBuffers,
} from '../shared/record-arena.js';

/** vm_struct flags (include/linux/vmalloc.h, 6.9+). */
export const VmFlags = {
  VM_IOREMAP: 0x001,
  VM_ALLOC: 0x002,
  VM_MAP: 0x004,
  VM_USERMAP: 0x008,
  VM_DMA_COHERENT: 0x010,
  VM_UNINITIALIZED: 0x020,
  VM_NO_GUARD: 0x040,
  VM_KASAN: 0x080,
  VM_FLUSH_RESET_PERMS: 0x100,
  VM_MAP_PUT_PAGES: 0x200,
  VM_ALLOW_HUGE_VMAP: 0x400,
  VM_SPARSE: 0x1000,
} as const;

export const VM_RECORD_BYTES = 64;
const F_ADDR = 0;
const F_SIZE = 1;
const F_PHYS = 2;
const F_REQUESTED = 3;
const I_FLAGS = 8;
const I_NR_PAGES = 9;
const I_PAGES = 10;
const I_CALLER = 11;
const I_VA = 12;
const I_PAGES_VM = 13;

export class VmStore extends RecordArena {
  static createBuffers(options: ArenaOptions = {}): ArenaBuffers {
    return createArenaBuffers(VM_RECORD_BYTES, 1 << 24, options);
  }

  /** A zeroed vm_struct, or 0 at the ceiling. Kernel: kzalloc(sizeof(struct vm_struct)). */
  allocZeroed(): number {
    const id = this.alloc();
    if (id !== 0) {
      this.f.fill(0, id * 8, id * 8 + 8);
    }
    return id;
  }

  addr(vm: number): number {
    return this.f[(vm << 3) + F_ADDR]!;
  }
  /** Size including the guard page. */
  size(vm: number): number {
    return this.f[(vm << 3) + F_SIZE]!;
  }
  setArea(vm: number, addr: number, size: number): void {
    this.f[(vm << 3) + F_ADDR] = addr;
    this.f[(vm << 3) + F_SIZE] = size;
  }
  physAddr(vm: number): number {
    return this.f[(vm << 3) + F_PHYS]!;
  }
  setPhysAddr(vm: number, v: number): void {
    this.f[(vm << 3) + F_PHYS] = v;
  }
  requestedSize(vm: number): number {
    return this.f[(vm << 3) + F_REQUESTED]!;
  }
  setRequestedSize(vm: number, v: number): void {
    this.f[(vm << 3) + F_REQUESTED] = v;
  }
  flags(vm: number): number {
    return this.i[(vm << 4) + I_FLAGS]!;
  }
  setFlags(vm: number, v: number): void {
    this.i[(vm << 4) + I_FLAGS] = v;
  }
  nrPages(vm: number): number {
    return this.i[(vm << 4) + I_NR_PAGES]!;
  }
  setNrPages(vm: number, v: number): void {
    this.i[(vm << 4) + I_NR_PAGES] = v;
  }
  /** Slot of the first pfn in the page-array pool. */
  pages(vm: number): number {
    return this.i[(vm << 4) + I_PAGES]!;
  }
  setPages(vm: number, v: number): void {
    this.i[(vm << 4) + I_PAGES] = v;
  }
  caller(vm: number): number {
    return this.i[(vm << 4) + I_CALLER]!;
  }
  setCaller(vm: number, v: number): void {
    this.i[(vm << 4) + I_CALLER] = v;
  }
  va(vm: number): number {
    return this.i[(vm << 4) + I_VA]!;
  }
  setVa(vm: number, v: number): void {
    this.i[(vm << 4) + I_VA] = v;
  }
  /** The vm_struct of the nested vmalloc holding this area's pages array, or 0 (kmalloc'd). */
  pagesVm(vm: number): number {
    return this.i[(vm << 4) + I_PAGES_VM]!;
  }
  setPagesVm(vm: number, v: number): void {
    this.i[(vm << 4) + I_PAGES_VM] = v;
  }

  /** get_vm_area_size(): the size without the guard page. */
  areaSize(vm: number, pageSize: number): number {
    const size = this.size(vm);
    return (this.flags(vm) & VmFlags.VM_NO_GUARD) !== 0 ? size : size - pageSize;
  }
}
