/**
 * The order a commit group is inserted into the memtable in: internal
 * order (key ascending, seqno descending), so that each insert starts from
 * where the previous one left off (memtable.ts, `addMany`).
 *
 * Sorting the group with a comparator over the keys cost about as much as
 * the sorted inserts saved. Here each entry is packed into one float64:
 * the first few key bytes after the prefix every key of the group shares,
 * then the entry's index. A typed array sorts numbers natively, without a
 * call per comparison; only entries whose packed bytes tie are then put in
 * order by a full comparison, and with keys that differ anywhere near
 * their shared prefix such runs are short.
 *
 * @module
 */
import type { Entry } from "./entry.ts";

/**
 * A packed value is the next `bytes` key bytes after the shared prefix,
 * then the entry's index in `53 - 8 * bytes` bits, an exact integer in a
 * float64: 5 bytes and 13 index bits for groups of up to 8192 entries (a
 * commit group of db_bench's 1000-op batches), 4 bytes and 21 bits up to
 * 2M; larger groups use the comparator alone.
 */
const LAYOUTS = [{ bytes: 5, span: 2 ** 13 }, { bytes: 4, span: 2 ** 21 }];
/** Tie runs up to this long are put in order by insertion. */
const SHORT_RUN = 8;

/**
 * Indexes into `entries` in internal order: by key (unsigned bytes, a
 * prefix first), then seqno descending. Entries with equal key and seqno
 * keep their given order.
 */
export function internalOrder(entries: readonly Entry[]): Uint32Array {
  const n = entries.length;
  const order = new Uint32Array(n);
  const layout = LAYOUTS.find((l) => n <= l.span);
  if (layout === undefined) {
    const all = Array.from(order.keys());
    all.sort((a, b) => compareFrom(entries, 0, a, b));
    order.set(all);
    return order;
  }
  if (n === 0) return order;
  const { bytes, span } = layout;
  const p = sharedPrefix(entries);
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    packed[i] = bytesAt(entries[i].key, p, bytes) * span + i;
  }
  packed.sort();
  let runStart = 0;
  let runHead = -1;
  for (let i = 0; i < n; i++) {
    const v = packed[i];
    const head = Math.floor(v / span);
    order[i] = v - head * span;
    if (head !== runHead) {
      if (i - runStart > 1) sortRun(entries, order, runStart, i, p + bytes);
      runStart = i;
      runHead = head;
    }
  }
  if (n - runStart > 1) sortRun(entries, order, runStart, n, p + bytes);
  return order;
}

/** Length of the prefix that every key of `entries` (at least one) shares. */
function sharedPrefix(entries: readonly Entry[]): number {
  const first = entries[0].key;
  let p = first.length;
  for (let i = 1; i < entries.length && p > 0; i++) {
    const k = entries[i].key;
    const m = k.length < p ? k.length : p;
    let j = 0;
    while (j < m && k[j] === first[j]) j++;
    p = j;
  }
  return p;
}

/** Bytes p..p+count-1 of `key` as a big-endian unsigned number, zero-padded. */
function bytesAt(key: Uint8Array, p: number, count: number): number {
  let v = 0;
  if (p + count <= key.length) {
    for (let i = p, end = p + count; i < end; i++) v = v * 256 + key[i];
  } else {
    for (let i = p, end = p + count; i < end; i++) {
      v = v * 256 + (i < key.length ? key[i] : 0);
    }
  }
  return v;
}

/**
 * Sorts order[from..to), whose keys agree (zero-padded) up to byte `at`,
 * by full comparison.
 */
function sortRun(
  entries: readonly Entry[],
  order: Uint32Array,
  from: number,
  to: number,
  at: number,
): void {
  if (to - from <= SHORT_RUN) {
    for (let i = from + 1; i < to; i++) {
      const x = order[i];
      let j = i;
      while (j > from && compareFrom(entries, at, order[j - 1], x) > 0) {
        order[j] = order[j - 1];
        j--;
      }
      order[j] = x;
    }
    return;
  }
  const run = Array.from(order.subarray(from, to));
  run.sort((a, b) => compareFrom(entries, at, a, b));
  order.set(run, from);
}

/**
 * Internal order of entries a and b whose keys agree (zero-padded) before
 * byte `at`; ties keep index order.
 */
function compareFrom(
  entries: readonly Entry[],
  at: number,
  a: number,
  b: number,
): number {
  const x = entries[a];
  const y = entries[b];
  const kx = x.key;
  const ky = y.key;
  const m = kx.length < ky.length ? kx.length : ky.length;
  for (let i = at; i < m; i++) {
    if (kx[i] !== ky[i]) return kx[i] - ky[i];
  }
  if (kx.length !== ky.length) return kx.length - ky.length;
  if (x.seq !== y.seq) return y.seq - x.seq;
  return a - b;
}
