/**
 * The data every benchmark writes and reads: db_bench-style 16-byte keys
 * and 100-byte values, seeded permutations of the key order, and the
 * seeded PRNG (the project's one, from `tests/_rng.ts`).
 *
 * @module
 */
import { prng } from "../tests/_rng.ts";

export { prng };

/** Key width in bytes, as in db_bench. */
export const KEY_BYTES = 16;
/** Value width in bytes, as in db_bench. */
export const VALUE_BYTES = 100;

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, seed: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const rnd = prng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * The 16-byte key for integer `i`: zero-padded decimal, so byte order equals
 * numeric order. A fresh array each call (stores may keep the reference).
 */
export function keyFor(
  i: number,
  out: Uint8Array = new Uint8Array(KEY_BYTES),
): Uint8Array {
  let v = i;
  for (let p = KEY_BYTES - 1; p >= 0; p--) {
    out[p] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
  return out;
}

/** Random (incompressible) bytes that values are sliced from. */
export class ValuePool {
  readonly #pool: Uint8Array;
  #off = 0;
  constructor(seed: number, bytes = 1 << 20) {
    this.#pool = new Uint8Array(bytes);
    const rnd = prng(seed);
    for (let i = 0; i < bytes; i++) this.#pool[i] = (rnd() * 256) | 0;
  }
  /** The next `len`-byte value: a view into the pool, no copy. */
  next(len = VALUE_BYTES): Uint8Array {
    if (this.#off + len > this.#pool.length) this.#off = 0;
    const v = this.#pool.subarray(this.#off, this.#off + len);
    this.#off += 97; // odd stride: successive values differ
    return v;
  }
}
