/**
 * A brute-force model of the 'legacy' design's policy, for tests: the busy areas (lazily freed
 * ones included) as a sorted array, the search cache as four numbers, the purge list as a
 * stack. It predicts the address of every allocation and the whole cache state.
 *
 * The search is written gap by gap (each gap between neighbouring areas, and the one above
 * the last, offers its lowest aligned address at or above the scan start) rather than as the
 * design's walk from area to area; the cache rules are the kernel's (kernel-facts.md 11.1).
 */

export interface ModelArea {
  start: number;
  end: number;
  lazy: boolean;
}

export interface ModelCache {
  area: { start: number; end: number } | null;
  holeSize: number;
  vstart: number;
  align: number;
}

const up = (x: number, a: number): number => Math.ceil(x / a) * a;

export class LegacyModel {
  /** Every area of the busy tree, sorted by start. */
  readonly areas: ModelArea[] = [];
  cache: ModelArea | null = null;
  hole = 0;
  vstart = 0;
  align = 0;
  /** The purge list, newest last (a purge pops from the end: newest first). */
  readonly purgeList: ModelArea[] = [];
  lazyPages = 0;

  constructor(
    readonly pageSize: number,
    readonly lazyMaxPages: number,
  ) {}

  /** One search (no purge): the address, or -1. */
  search(size: number, align: number, vstart: number, vend: number): number {
    const permissive =
      this.cache === null || size < this.hole || vstart < this.vstart || align < this.align;
    if (permissive) {
      this.cache = null;
      this.hole = 0;
    }
    this.vstart = vstart;
    this.align = align;
    if (this.cache !== null && up(this.cache.end, align) < vstart) {
      this.cache = null;
      this.hole = 0;
    }
    // The gaps to try, in order: above the cached area, or all of them from the bottom.
    const from = this.cache === null ? 0 : this.areas.indexOf(this.cache) + 1;
    const scanStart = this.cache === null ? vstart : this.cache.end;
    let gapStart = from === 0 ? -Infinity : this.areas[from - 1]!.end;
    for (let k = from; k <= this.areas.length; k++) {
      const gapEnd = k < this.areas.length ? this.areas[k]!.start : Infinity;
      const cand = up(Math.max(gapStart, scanStart), align);
      if (cand + size > vend) return -1;
      if (cand + size <= gapEnd) return this.insert(cand, size);
      if (gapEnd - cand > this.hole) this.hole = gapEnd - cand;
      gapStart = k < this.areas.length ? this.areas[k]!.end : Infinity;
    }
    return -1; // not reached: the last gap is unbounded
  }

  private insert(addr: number, size: number): number {
    const a: ModelArea = { start: addr, end: addr + size, lazy: false };
    let at = 0;
    while (at < this.areas.length && this.areas[at]!.start < addr) at++;
    this.areas.splice(at, 0, a);
    this.cache = a;
    return addr;
  }

  /** What alloc_vmap_area() does: search, on failure purge and search once more. */
  alloc(size: number, align: number, vstart: number, vend: number): number {
    const r = this.search(size, align, vstart, vend);
    if (r >= 0) return r;
    this.purge();
    return this.search(size, align, vstart, vend);
  }

  /** Erases an area, moving the cache off it first (the kernel's rule on free). */
  private erase(a: ModelArea): void {
    const at = this.areas.indexOf(a);
    if (this.cache !== null) {
      if (a.end < this.vstart) this.cache = null;
      else if (a.start <= this.cache.start) this.cache = at > 0 ? this.areas[at - 1]! : null;
    }
    this.areas.splice(at, 1);
  }

  /** A vfree(): the area turns lazy; past lazy_max_pages() a purge runs at once. */
  free(start: number): void {
    const a = this.areas.find((x) => x.start === start && !x.lazy);
    if (a === undefined) throw new Error(`model: no busy area at ${start}`);
    a.lazy = true;
    this.purgeList.push(a);
    this.lazyPages += (a.end - a.start) / this.pageSize;
    if (this.lazyPages > this.lazyMaxPages) this.purge();
  }

  purge(): void {
    while (this.purgeList.length > 0) this.erase(this.purgeList.pop()!);
    this.lazyPages = 0;
  }

  cacheState(): ModelCache {
    const c = this.cache;
    return {
      area: c === null ? null : { start: c.start, end: c.end },
      holeSize: this.hole,
      vstart: this.vstart,
      align: this.align,
    };
  }
}
