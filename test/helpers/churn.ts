/**
 * Random vmalloc/vfree/read/write traffic with owner signatures, for the multi-worker tests.
 *
 * Every page of every area a Churner allocates gets a signature (its cpu, the area's sequence
 * number, the page index) at its start and a tail word at its end; every page is verified right
 * before the area is freed, and random pages in between. Live areas are also claimed, page by
 * page (guard page included), in a map of owners shared by every thread (Atomics), so an area
 * handed to two threads at once is caught even though each has its own page frames.
 */

import type { Vmalloc } from '../../src/index.js';
import type { Rng } from './rng.js';

export const SIG_MAGIC = 0x5167_0000;

/** Pages of address space the owner map covers, from VMALLOC_START. */
export const OWNER_MAP_PAGES = 1 << 22;

export interface LiveArea {
  addr: number;
  /** Mapped pages (the guard page not counted). */
  pages: number;
  /** The area's sequence number in its cpu's run. */
  seq: number;
  /** cpu that allocated and signed it. */
  cpu: number;
}

export interface ChurnCounters {
  allocs: number;
  frees: number;
  alignedAllocs: number;
  zeroAllocs: number;
  pageChecks: number;
  /** vmalloc returned null. */
  failures: number;
  /** Area pages beyond the owner map (not claimed). */
  outside: number;
  maxLive: number;
}

/** The 16-byte signature at the start of page `index` of an area, and the 4-byte tail. */
export function signature(cpu: number, seq: number, index: number): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, (SIG_MAGIC | cpu) >>> 0, true);
  dv.setUint32(4, seq, true);
  dv.setUint32(8, index, true);
  dv.setUint32(12, Math.imul(seq ^ 0x9e3779b9, 31 + cpu) ^ index, true);
  return b;
}

export function tail(cpu: number, seq: number, index: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, (seq * 2654435761 + cpu * 97 + index) >>> 0, true);
  return b;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

export function writeSignatures(vm: Vmalloc, a: LiveArea): void {
  const page = vm.pageSize;
  for (let k = 0; k < a.pages; k++) {
    vm.write(a.addr + k * page, signature(a.cpu, a.seq, k));
    vm.write(a.addr + (k + 1) * page - 4, tail(a.cpu, a.seq, k));
  }
}

/** Checks page `k` of `a` through `vm`; a description of the damage, or null. */
export function checkPage(vm: Vmalloc, a: LiveArea, k: number): string | null {
  const page = vm.pageSize;
  const head = vm.read(a.addr + k * page, 16);
  const end = vm.read(a.addr + (k + 1) * page - 4, 4);
  if (same(head, signature(a.cpu, a.seq, k)) && same(end, tail(a.cpu, a.seq, k))) return null;
  const dv = new DataView(head.buffer);
  return (
    `cpu ${vm.cpu}: page ${k} of area 0x${a.addr.toString(16)} (cpu ${a.cpu}, seq ${a.seq}, ` +
    `${a.pages} pages) holds magic|cpu 0x${dv.getUint32(0, true).toString(16)} seq ${dv.getUint32(4, true)} ` +
    `page ${dv.getUint32(8, true)}`
  );
}

/** Every page of `a`: the first damage found, or null. */
export function checkArea(vm: Vmalloc, a: LiveArea): string | null {
  for (let k = 0; k < a.pages; k++) {
    const bad = checkPage(vm, a, k);
    if (bad !== null) return bad;
  }
  return null;
}

export class Churner {
  readonly live: LiveArea[] = [];
  readonly counters: ChurnCounters = {
    allocs: 0,
    frees: 0,
    alignedAllocs: 0,
    zeroAllocs: 0,
    pageChecks: 0,
    failures: 0,
    outside: 0,
    maxLive: 0,
  };
  /** Bad signatures, overlaps and other errors (the first few). */
  readonly errors: string[] = [];
  private seq = 0;
  private readonly page: number;

  constructor(
    readonly vm: Vmalloc,
    private readonly rng: Rng,
    /** Owner map: byte per page from VMALLOC_START, 0 free, else cpu + 1. */
    private readonly owners: Uint8Array,
    private readonly maxLive = 64,
  ) {
    this.page = vm.pageSize;
  }

  private error(msg: string): void {
    if (this.errors.length < 20) this.errors.push(msg);
  }

  /** One random operation. */
  step(): void {
    const n = this.live.length;
    const r = this.rng.float();
    if (n < 8 || (n < this.maxLive && r < 0.5)) this.alloc();
    else if (r < 0.88) this.free(this.rng.below(n));
    else this.spotCheck();
  }

  private sizePages(): number {
    const r = this.rng.float();
    if (r < 0.8) return this.rng.range(1, 8);
    if (r < 0.95) return this.rng.range(9, 64);
    return this.rng.range(65, 300); // pages array below a page: no nested vmalloc
  }

  alloc(): LiveArea | null {
    const vm = this.vm;
    const page = this.page;
    const pages = this.sizePages();
    const bytes = this.rng.chance(0.3) ? pages * page - this.rng.below(page) : pages * page;
    const align = this.rng.chance(0.1) ? page << this.rng.below(5) : 1;
    const zero = this.rng.chance(0.1);
    const addr = zero ? vm.vzalloc(bytes, { align }) : vm.vmalloc(bytes, { align });
    if (addr === null) {
      this.counters.failures++;
      return null;
    }
    this.counters.allocs++;
    if (align > 1) {
      this.counters.alignedAllocs++;
      if (addr % align !== 0)
        this.error(`cpu ${vm.cpu}: 0x${addr.toString(16)} not aligned to ${align}`);
    }
    const a: LiveArea = { addr, pages, seq: ++this.seq, cpu: vm.cpu };
    const end = addr + (pages + 1) * page;
    for (const b of this.live) {
      if (addr < b.addr + (b.pages + 1) * page && b.addr < end)
        this.error(
          `cpu ${vm.cpu}: new area 0x${addr.toString(16)}+${pages + 1}p overlaps own live area 0x${b.addr.toString(16)}+${b.pages + 1}p`,
        );
    }
    this.claim(a);
    if (zero) {
      this.counters.zeroAllocs++;
      const probe = pages <= 16 ? vm.read(addr, pages * page) : vm.read(addr, page);
      if (!probe.every((x) => x === 0))
        this.error(`cpu ${vm.cpu}: vzalloc area 0x${addr.toString(16)} is not zeroed`);
    }
    writeSignatures(vm, a);
    this.live.push(a);
    if (this.live.length > this.counters.maxLive) this.counters.maxLive = this.live.length;
    return a;
  }

  /** Marks every page of `a` (guard included) as ours in the shared owner map. */
  private claim(a: LiveArea): void {
    const first = (a.addr - this.vm.vmallocStart) / this.page;
    const me = a.cpu + 1;
    for (let p = first; p <= first + a.pages; p++) {
      if (p >= OWNER_MAP_PAGES) {
        this.counters.outside++;
        continue;
      }
      const was = Atomics.compareExchange(this.owners, p, 0, me);
      if (was !== 0)
        this.error(
          `cpu ${a.cpu}: page ${p - first} of new area 0x${a.addr.toString(16)} belongs to a live area of cpu ${was - 1}`,
        );
    }
  }

  private unclaim(a: LiveArea): void {
    const first = (a.addr - this.vm.vmallocStart) / this.page;
    const me = a.cpu + 1;
    for (let p = first; p <= first + a.pages && p < OWNER_MAP_PAGES; p++) {
      const was = Atomics.compareExchange(this.owners, p, me, 0);
      if (was !== me)
        this.error(
          `cpu ${this.vm.cpu}: page ${p - first} of area 0x${a.addr.toString(16)} was taken by cpu ${was - 1} while live`,
        );
    }
  }

  /** Verifies every page of live area `i`, then frees it. */
  free(i: number): void {
    const a = this.live[i]!;
    this.live[i] = this.live[this.live.length - 1]!;
    this.live.pop();
    this.release(a);
  }

  /** Verifies and frees an area (possibly signed by another cpu), through this churner's vm. */
  release(a: LiveArea): void {
    const bad = checkArea(this.vm, a);
    this.counters.pageChecks += a.pages;
    if (bad !== null) this.error(`before vfree: ${bad}`);
    this.unclaim(a);
    this.vm.vfree(a.addr);
    this.counters.frees++;
  }

  private spotCheck(): void {
    if (this.live.length === 0) return;
    const a = this.live[this.rng.below(this.live.length)]!;
    const bad = checkPage(this.vm, a, this.rng.below(a.pages));
    this.counters.pageChecks++;
    if (bad !== null) this.error(bad);
  }

  /** Frees every live area but `keep` of them (verifying each); returns those kept. */
  freeAllBut(keep: number): LiveArea[] {
    while (this.live.length > keep) this.free(this.rng.below(this.live.length));
    return this.live.splice(0);
  }
}
