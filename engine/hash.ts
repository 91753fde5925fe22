/**
 * MurmurHash3's 32-bit finalizer, shared by the bloom filter's key hash
 * (whose bits are part of the table format: engine/FORMAT.md, "Filter
 * block") and the memtable's hash index. A leaf module: imports nothing.
 *
 * @module
 */

/** Mixes every bit of `h` into every bit of the 32-bit result. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
