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
 * A seeded pseudo-random bijection of 0..n-1 that holds no table: `at(i)`
 * is the i-th element of a shuffled order, computed on demand. For drivers
 * whose dataset is large enough that {@link permutation}'s 4 bytes per key
 * would count against the memory they measure (bench/large.ts: 35 MiB for
 * 1 GiB of data). A four-round Feistel network over the smallest even
 * power of two >= n, walking the cycle until the result falls below n
 * (fewer than 4 steps on average; each input has its own cycle, so the map
 * stays a bijection).
 */
export function shuffledOrder(
  n: number,
  seed: number,
): { at(i: number): number } {
  if (!(n >= 1 && n <= 2 ** 30)) throw new RangeError(`bad n ${n}`);
  let half = 1;
  while (1 << (2 * half) < n) half++;
  const mask = (1 << half) - 1;
  const rnd = prng(seed);
  const [k0, k1, k2, k3] = [0, 1, 2, 3].map(() => (rnd() * 2 ** 32) | 0);
  const f = (x: number, k: number) => {
    let h = Math.imul(x ^ k, 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h, 0x85ebca77);
    return (h ^ (h >>> 13)) & mask;
  };
  const step = (v: number) => {
    const l0 = v >>> half, r0 = v & mask;
    const l1 = r0, r1 = l0 ^ f(r0, k0);
    const l2 = r1, r2 = l1 ^ f(r1, k1);
    const l3 = r2, r3 = l2 ^ f(r2, k2);
    return (r3 << half) | (l3 ^ f(r3, k3));
  };
  return {
    at(i: number): number {
      let v = step(i);
      while (v >= n) v = step(v);
      return v;
    },
  };
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
