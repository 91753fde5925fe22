/**
 * Bloom filters over user keys, one per table (see engine/FORMAT.md, "Filter
 * block"). Imports only engine/hash.ts.
 *
 * ```
 * +---------------------------+---------+
 * | bit array (m/8 bytes)     | k (u8)  |
 * +---------------------------+---------+
 * ```
 *
 * Probing uses LevelDB's double hashing: one 32-bit hash h, a delta that is h
 * rotated right by 17 bits, and probe j tests bit (h + j*delta) mod m. One
 * hash per key keeps probes cheap in JS; with 10 bits per key and k = 7 the
 * measured false-positive rate is about 1%.
 *
 * @module
 */
import { fmix32 } from "./hash.ts";

/** Seed of {@link bloomHash}; fixed forever, since filters on disk depend on it. */
export const BLOOM_HASH_SEED = 0xbc9f1d34;

/** Largest k a reader understands; larger values are reserved and match everything. */
export const BLOOM_MAX_PROBES = 30;

/**
 * 32-bit MurmurHash3 (x86_32) of `key`. Chosen over LevelDB's hash for its
 * better avalanche on short, similar keys ("user:0001", "user:0002"), which
 * double hashing relies on.
 */
export function bloomHash(key: Uint8Array): number {
  return bloomHashAt(key, 0, key.length);
}

/** {@link bloomHash} of `key[off..off+n]`, without making a view of it. */
export function bloomHashAt(key: Uint8Array, off: number, n: number): number {
  let h = BLOOM_HASH_SEED;
  const end4 = off + (n & ~3);
  let i = off;
  for (; i < end4; i += 4) {
    let k = key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) |
      (key[i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rem = n & 3;
  if (rem !== 0) {
    let k = key[i];
    if (rem > 1) k |= key[i + 1] << 8;
    if (rem > 2) k |= key[i + 2] << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  return fmix32(h ^ n);
}

/** Number of probes for a bits-per-key budget: round(bits * ln 2), clamped to 1..30. */
export function bloomProbes(bitsPerKey: number): number {
  const k = Math.round(bitsPerKey * 0.69);
  return k < 1 ? 1 : k > BLOOM_MAX_PROBES ? BLOOM_MAX_PROBES : k;
}

/**
 * Builds a filter from key hashes (each from {@link bloomHash}). Duplicate
 * hashes are harmless but cost space. At least 64 bits are used so tiny
 * tables still get a useful filter.
 */
export function buildBloomFilter(
  hashes: ArrayLike<number>,
  bitsPerKey: number,
  count = hashes.length,
): Uint8Array {
  const k = bloomProbes(bitsPerKey);
  let bits = Math.ceil(count * bitsPerKey);
  if (bits < 64) bits = 64;
  const bytes = Math.ceil(bits / 8);
  // `>>> 0` types the modulus as an unsigned 32-bit integer, as h is, so
  // V8 compiles h % m to an integer remainder. As a plain number it
  // called out to a floating-point fmod per probe (h is often above 2^31,
  // outside the small-integer range): a 10k-key filter took 1.2-2.6 ms to
  // build that way, 0.20-0.43 ms this way (bench/micro/bloom_bench.ts).
  // Same bits either way.
  const m = (bytes * 8) >>> 0;
  const filter = new Uint8Array(bytes + 1);
  filter[bytes] = k;
  for (let i = 0; i < count; i++) {
    let h = hashes[i] >>> 0;
    const delta = ((h >>> 17) | (h << 15)) >>> 0;
    for (let j = 0; j < k; j++) {
      const pos = h % m;
      filter[pos >>> 3] |= 1 << (pos & 7);
      h = (h + delta) >>> 0;
    }
  }
  return filter;
}

/**
 * Collects key hashes while a table is written (4 bytes per key, never the
 * keys themselves) and builds the filter at the end.
 */
export class BloomFilterBuilder {
  #hashes = new Uint32Array(1024);
  #count = 0;

  constructor(readonly bitsPerKey: number) {}

  /** Number of hashes added so far. */
  get count(): number {
    return this.#count;
  }

  /** Adds a user key (callers add each distinct user key once). */
  addKey(key: Uint8Array): void {
    this.addHash(bloomHash(key));
  }

  /** Adds a hash computed by {@link bloomHash}. */
  addHash(h: number): void {
    if (this.#count === this.#hashes.length) {
      const next = new Uint32Array(this.#hashes.length * 2);
      next.set(this.#hashes);
      this.#hashes = next;
    }
    this.#hashes[this.#count++] = h;
  }

  /** The filter bytes for every hash added. */
  finish(): Uint8Array {
    return buildBloomFilter(this.#hashes, this.bitsPerKey, this.#count);
  }
}

/** Probes a filter with a precomputed {@link bloomHash}. False means "definitely absent". */
export function bloomMayContainHash(filter: Uint8Array, hash: number): boolean {
  const len = filter.length;
  if (len < 2) return false;
  const k = filter[len - 1];
  // Reserved for future filter kinds: answering "maybe" is always safe.
  if (k > BLOOM_MAX_PROBES) return true;
  // Unsigned 32-bit like h, so h % bits is an integer remainder (see
  // buildBloomFilter).
  const bits = ((len - 1) * 8) >>> 0;
  let h = hash >>> 0;
  const delta = ((h >>> 17) | (h << 15)) >>> 0;
  for (let j = 0; j < k; j++) {
    const pos = h % bits;
    if ((filter[pos >>> 3] & (1 << (pos & 7))) === 0) return false;
    h = (h + delta) >>> 0;
  }
  return true;
}

/** True when `key` may be in the set the filter was built from; false means definitely absent. */
export function bloomMayContain(filter: Uint8Array, key: Uint8Array): boolean {
  return bloomMayContainHash(filter, bloomHash(key));
}
