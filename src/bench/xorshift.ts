/**
 * xorshift64*, the generator of the C yardstick's benchmark, so both run the same sequence.
 *
 * Holds: a 64-bit generator on BigInt (used only outside timed loops, to fill tables).
 * Callers: src/bench/kva.ts.
 */

const MASK = (1n << 64n) - 1n;
const MUL = 0x2545f4914f6cdd1dn;

export class Xorshift64Star {
  private s: bigint;

  constructor(seed: bigint) {
    this.s = seed & MASK;
  }

  next(): bigint {
    let x = this.s;
    x ^= x >> 12n;
    x = (x ^ (x << 25n)) & MASK;
    x ^= x >> 27n;
    this.s = x;
    return (x * MUL) & MASK;
  }
}
