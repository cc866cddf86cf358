/** Byte patterns of the cross-worker hand-offs (shared by the test and its worker). */

import { Rng } from '../helpers/rng.js';

/** `len` pseudo-random bytes from `seed`. */
export function handoffPattern(seed: number, len: number): Uint8Array {
  const rng = new Rng(seed);
  const out = new Uint8Array(len);
  for (let k = 0; k < len; k += 4) {
    const v = rng.u32();
    out[k] = v & 0xff;
    out[k + 1] = (v >>> 8) & 0xff;
    out[k + 2] = (v >>> 16) & 0xff;
    out[k + 3] = v >>> 24;
  }
  return out;
}

/** What the reader of hand-off `id` writes into its last 8 bytes: its cpu, then a mark. */
export function stampOf(cpu: number, id: number): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint8(0, cpu);
  dv.setUint8(1, 0xa5);
  dv.setUint16(2, 0x5a5a, true);
  dv.setUint32(4, id, true);
  return b;
}
