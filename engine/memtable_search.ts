/**
 * Ordering and searching the memtable's skip list (engine/memtable.ts):
 * node records in a pool of 32-bit words (engine/memtable_layout.ts),
 * compared with a key held as words, either in the memtable's probe (a
 * read) or in the unlinked record of the node being inserted.
 *
 * Functions over the pool rather than methods, so that the search is in a
 * file of its own; every argument is a typed array or a number.
 *
 * @module
 */
import { keyAt, KLEN, LINKS, SEQ } from "./memtable_layout.ts";

/**
 * Order of node `n` against the key held as words in `src` from `at`
 * (`klen` bytes) at `seq`: negative when the node sorts before it in
 * internal order (key ascending, seqno descending), 0 when key and seq are
 * equal. The head (node 0) sorts first.
 */
export function compareNode(
  u: Uint32Array,
  f: Float64Array,
  n: number,
  src: Uint32Array,
  at: number,
  klen: number,
  seq: number,
): number {
  if (n === 0) return -1;
  const len = u[n + KLEN];
  const k = keyAt(u, n);
  const words = ((len < klen ? len : klen) + 3) >>> 2;
  for (let i = 0; i < words; i++) {
    const a = u[k + i];
    const b = src[at + i];
    if (a !== b) return a < b ? -1 : 1;
  }
  if (len !== klen) return len - klen;
  return seq - f[(n >>> 1) + SEQ];
}

/**
 * Returns the last node before (key, seq), 0 (the head) if none, and
 * sets `prev` (when given) to the last node before it at each of the
 * list's `height` levels. The key is as for {@link compareNode}.
 */
export function findLessThan(
  u: Uint32Array,
  f: Float64Array,
  height: number,
  src: Uint32Array,
  at: number,
  klen: number,
  seq: number,
  prev: Uint32Array | null = null,
): number {
  let x = 0;
  for (let level = height - 1; level >= 0; level--) {
    for (;;) {
      const next = u[x + LINKS + level];
      if (next !== 0 && compareNode(u, f, next, src, at, klen, seq) < 0) {
        x = next;
      } else break;
    }
    if (prev) prev[level] = x;
  }
  return x;
}

/** The last node of a list of `height` levels, 0 (the head) if empty. */
export function findLast(u: Uint32Array, height: number): number {
  let x = 0;
  for (let level = height - 1; level >= 0; level--) {
    for (;;) {
      const next = u[x + LINKS + level];
      if (next !== 0) x = next;
      else break;
    }
  }
  return x;
}

/**
 * Moves the splice (`prev`, `next`: at each level, the last node before
 * the key and the node after it, 0 for none) to the key held as words in
 * the pool from `at` (`klen` bytes, at `seq`), RocksDB's splice reuse for
 * keys inserted in order. The splice must be exact (`next[i]` is
 * `prev[i]`'s level-i link) and its `prev` nodes must sort before the key.
 *
 * It climbs from level 0 to the first level whose splice still brackets
 * the key, then searches down from there, each level starting at the node
 * found on the level above and stopping at most at that level's `next`
 * (known to sort after the key, so not compared). A commit group's sorted
 * random keys land a few dozen nodes apart, so that takes a few levels,
 * not the whole height: 13.3 node comparisons per insert against 19.4 for
 * the finger search it replaced (50k db_bench keys, groups of 1000).
 */
export function findFromSplice(
  u: Uint32Array,
  f: Float64Array,
  height: number,
  prev: Uint32Array,
  next: Uint32Array,
  at: number,
  klen: number,
  seq: number,
): void {
  const top = height - 1;
  let level = 0;
  while (level < top) {
    const nx = next[level];
    if (nx === 0 || compareNode(u, f, nx, u, at, klen, seq) > 0) break;
    level++;
  }
  if (level === top) {
    // Nothing brackets the key below the top: walk the top level.
    let x = prev[top];
    let nx = u[x + LINKS + top];
    while (nx !== 0 && compareNode(u, f, nx, u, at, klen, seq) < 0) {
      x = nx;
      nx = u[x + LINKS + top];
    }
    prev[top] = x;
    next[top] = nx;
  }
  for (let i = level - 1; i >= 0; i--) {
    const bound = next[i + 1];
    let x = prev[i + 1];
    let nx = u[x + LINKS + i];
    while (nx !== bound && compareNode(u, f, nx, u, at, klen, seq) < 0) {
      x = nx;
      nx = u[x + LINKS + i];
    }
    prev[i] = x;
    next[i] = nx;
  }
}
