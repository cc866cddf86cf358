/**
 * Seeded randomness for tests: a small fast generator (sfc32) and the seed convention.
 *
 * A property test takes its seed from VMALLOC_SEED when set (to replay a failure), else from
 * the clock, and prints it, so every CI run explores new sequences and any failure can be
 * replayed exactly.
 */

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return n <= 0x100000000
      ? Math.floor((this.u32() / 0x100000000) * n)
      : Math.floor(this.float() * n);
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    return (this.u32() * 2 ** 21 + (this.u32() >>> 11)) / 2 ** 53;
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }

  chance(p: number): boolean {
    return this.float() < p;
  }
}

/** The seed for a property test, printed so a failure can be replayed with VMALLOC_SEED. */
export function testSeed(name: string): number {
  const env = process.env.VMALLOC_SEED;
  const seed =
    env !== undefined && env !== ''
      ? Number(env) >>> 0
      : (Date.now() ^ (Math.random() * 0x100000000)) >>> 0;
  console.log(`${name}: seed ${seed} (replay with VMALLOC_SEED=${seed})`);
  return seed;
}
