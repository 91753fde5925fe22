/**
 * The memtable's node record: how a skip list node lies in the node pool
 * (engine/memtable.ts), and the image of a pool that a flush walks in
 * another thread (engine/memtable_image.ts). Kept apart so that the walk,
 * the search (engine/memtable_search.ts) and the memtable read one layout.
 *
 * A node record is at an even word offset n (so that its two float64
 * fields are aligned): the fields below, then `height` links (node
 * numbers; 0 is "none", the head being node 0), then the key as
 * big-endian words (zero-padded), which compare as unsigned integers in
 * the byte order of the key.
 *
 * @module
 */

// deno-fmt-ignore
export const SEQ = 0, EXPIRES = 1, // float64 indexes (n / 2 + field)
  BUF = 4, KOFF = 5, KLEN = 6, VOFF = 7, VLEN = 8, META = 9, LINKS = 10;

/**
 * The tallest node: with a branching factor of 4 (LevelDB's), 4^12 = 16M
 * entries before the top level gets crowded, far beyond a memtable's.
 */
export const MAX_HEIGHT = 12;

/** Word offset of node n's key in pool `u` (after its links). */
export function keyAt(u: Uint32Array, n: number): number {
  return n + LINKS + (u[n + META] >>> 16);
}

/**
 * A frozen memtable's sorted contents as plain buffers, for a flush in
 * another thread (engine/jobs.ts): copies of the used node pool and of the
 * buffers holding key and value bytes. An image owns its buffers, so they
 * can be transferred to a worker rather than cloned (measured: the clone
 * had the longer tail on the main thread).
 */
export interface MemtableImage {
  pool: ArrayBuffer;
  bufs: ArrayBuffer[];
  /** The skip list's height (levels in use). */
  height: number;
}
