/**
 * The kernel's get_random_*() helpers over a seeded generator (sfc32), so a test_vmalloc run
 * can be replayed with seed=.
 *
 * Callers: the test table and the driver's shuffle.
 */

export class KernelRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let k = 0; k < 16; k++) this.u32();
  }

  /** get_random_u32() */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** get_random_u8() */
  u8(): number {
    return this.u32() >>> 24;
  }

  /** get_random_u32_below(ceil): uniform in [0, ceil). */
  below(ceil: number): number {
    return Math.floor((this.u32() / 0x100000000) * ceil);
  }

  /** get_random_u32_inclusive(lo, hi): uniform in [lo, hi]. */
  inclusive(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }
}
