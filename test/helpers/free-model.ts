/**
 * The brute-force model of a range allocator: a sorted array of free intervals and a map of
 * live areas. Every answer is computed by a linear scan, so it is obviously right.
 */

export interface Interval {
  start: number;
  end: number;
}

export class FreeModel {
  /** Free intervals, sorted, disjoint, coalesced. */
  free: Interval[];
  /** Live areas: start -> end. */
  busy = new Map<number, number>();

  constructor(
    readonly spaceStart: number,
    readonly spaceEnd: number,
  ) {
    this.free = [{ start: spaceStart, end: spaceEnd }];
  }

  static alignUp(x: number, align: number): number {
    return align === 1 ? x : Math.ceil(x / align) * align;
  }

  /** Where an allocation in block `b` would start, or -1 if it does not fit there. */
  static fitIn(b: Interval, size: number, align: number, vstart: number): number {
    const nstart = FreeModel.alignUp(Math.max(b.start, vstart), align);
    return nstart + size <= b.end ? nstart : -1;
  }

  /** The lowest address satisfying the request, or -1. */
  lowestFit(size: number, align: number, vstart: number, vend: number): number {
    for (const b of this.free) {
      const at = FreeModel.fitIn(b, size, align, vstart);
      if (at >= 0 && at + size <= vend) return at;
    }
    return -1;
  }

  /**
   * The kernel's search with an inflated length: the first block (in address order) that is at
   * least `length` long and can hold the request at or after vstart, or -1 when none. Results of
   * the real search lie between lowestFit and this block's address.
   */
  firstBigEnough(size: number, align: number, vstart: number, length: number): number {
    for (const b of this.free) {
      if (b.end - b.start < length) continue;
      const at = FreeModel.fitIn(b, size, align, vstart);
      if (at >= 0) return at;
    }
    return -1;
  }

  /** Is [start, start + size) entirely free? */
  isFree(start: number, size: number): boolean {
    return this.free.some((b) => b.start <= start && start + size <= b.end);
  }

  take(start: number, size: number): void {
    const i = this.free.findIndex((b) => b.start <= start && start + size <= b.end);
    if (i < 0) throw new Error(`model: [${start}, ${start + size}) is not free`);
    const b = this.free[i]!;
    const parts: Interval[] = [];
    if (b.start < start) parts.push({ start: b.start, end: start });
    if (start + size < b.end) parts.push({ start: start + size, end: b.end });
    this.free.splice(i, 1, ...parts);
    this.busy.set(start, start + size);
  }

  release(start: number): boolean {
    const end = this.busy.get(start);
    if (end === undefined) return false;
    this.busy.delete(start);
    let i = 0;
    while (i < this.free.length && this.free[i]!.start < start) i++;
    this.free.splice(i, 0, { start, end });
    // Coalesce with the neighbours.
    if (i + 1 < this.free.length && this.free[i]!.end === this.free[i + 1]!.start) {
      this.free[i]!.end = this.free[i + 1]!.end;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1]!.end === this.free[i]!.start) {
      this.free[i - 1]!.end = this.free[i]!.end;
      this.free.splice(i, 1);
    }
    return true;
  }

  /** The live area containing addr, if any. */
  containing(addr: number): Interval | undefined {
    for (const [start, end] of this.busy) if (start <= addr && addr < end) return { start, end };
    return undefined;
  }
}
