/**
 * Range tombstones: what `deleteRange` writes. One tombstone deletes every
 * key of [start, end) written before it, without reading a single key.
 *
 * A tombstone `t` hides an entry `e` for a reader at snapshot S when
 * `t.seq <= S`, `t` covers `e.key` and `e.seq < t.seq`. Entries written by
 * the same batch (same seqno) are not hidden: a batch's ops apply in order,
 * and the batch drops its own earlier point ops inside a range it deletes
 * (see {@link dropCoveredOps}), so a put after the range delete survives.
 *
 * Where tombstones live (layouts: engine/FORMAT.md, "Range tombstones"):
 * - In the WAL, as one op of their batch (kind 2), so a range delete is as
 *   atomic and crash-safe as any other op of the batch.
 * - In the memtable the batch went to (`Memtable.rangeDels`), not in its
 *   skip list: point reads and scans of keys never meet them.
 * - Once that memtable is flushed, in the manifest (a "range tombstone
 *   added" field of the flush's edit), not in tables.
 *
 * Why the manifest and not a range-del block per table (as LevelDB's
 * descendants do): a per-table block must be fragmented at table bounds,
 * moved and cut by every compaction, and widens table bounds; a tombstone
 * in the manifest is one record, read at open, and every reader sees the
 * whole set at once. The price is that the set is in memory and consulted
 * whole: it suits a store that deletes ranges now and then (thousands of
 * live tombstones, not millions). Tombstones are dropped as soon as nothing
 * they cover is left, so the set stays small.
 *
 * Reclaiming space: a compaction drops every entry hidden by a tombstone
 * with seq at most its smallest snapshot (every reader sees the tombstone),
 * and records that in each output table's `cleanSeq`. A tombstone is
 * obsolete, and dropped from the manifest, once no table overlapping its
 * range can hold an entry it hides: each such table either has only newer
 * entries (`minSeq >= t.seq`) or was written by a compaction that applied
 * it (`cleanSeq >= t.seq`). Memtables need no check: a tombstone reaches
 * the manifest only when its memtable is flushed, and memtables flush
 * oldest first, so every entry older than it is in a table by then.
 *
 * @module
 */
import { binaryString, compareBytes, prefixEnd } from "./coding.ts";
import type { Entry } from "./entry.ts";
import { KIND_RANGE_DELETE } from "./entry.ts";
import { InvalidArgumentError } from "./errors.ts";
import type { DeleteRangeOp } from "./types.ts";

const EMPTY = new Uint8Array(0);
/** Sorts after every binary string of bytes: the end of an unbounded range. */
const INFINITY = "\u0100";

/**
 * A range tombstone over stored keys (key-space byte + user key). `end` is
 * exclusive; an empty `end` means no upper bound (only for key space 255,
 * whose keys have no next space to stop at).
 */
export interface RangeTombstone {
  readonly start: Uint8Array;
  readonly end: Uint8Array;
  readonly seq: number;
}

/** True when `t` covers the stored key `key`. */
export function covers(t: RangeTombstone, key: Uint8Array): boolean {
  return compareBytes(key, t.start) >= 0 &&
    (t.end.length === 0 || compareBytes(key, t.end) < 0);
}

/** True when `t`'s range meets the inclusive key range [lo, hi]. */
export function overlapsBounds(
  t: RangeTombstone,
  lo: Uint8Array,
  hi: Uint8Array,
): boolean {
  return compareBytes(t.start, hi) <= 0 &&
    (t.end.length === 0 || compareBytes(t.end, lo) > 0);
}

/** A string naming a tombstone exactly (seq, start and end). */
export function tombstoneId(t: RangeTombstone): string {
  return `${t.seq}/${t.start.length}/${binaryString(t.start)}${
    binaryString(t.end)
  }`;
}

/**
 * The tombstone a range-delete entry (kind 2, as the WAL and the write
 * path carry it) stands for. The entry's key is the stored start key; its
 * value is the end as a user key, empty for "to the end of the key space".
 * Copies the bytes: the tombstone outlives the buffers the entry views.
 */
export function tombstoneFromEntry(e: Entry): RangeTombstone {
  const space = e.key[0];
  let end: Uint8Array;
  if (e.value.length > 0) {
    end = new Uint8Array(e.value.length + 1);
    end[0] = space;
    end.set(e.value, 1);
  } else end = space < 255 ? Uint8Array.of(space + 1) : EMPTY;
  return { start: e.key.slice(), end, seq: e.seq };
}

/**
 * The range-delete entry (kind 2) that stands for `t`, as a WAL batch
 * carries it: the inverse of {@link tombstoneFromEntry}.
 */
export function entryFromTombstone(t: RangeTombstone): Entry {
  const space = t.start[0];
  const toSpaceEnd = t.end.length === 0 ||
    (t.end.length === 1 && t.end[0] === space + 1);
  return {
    key: t.start,
    seq: t.seq,
    kind: KIND_RANGE_DELETE,
    encoding: 0,
    expiresAt: 0,
    value: toSpaceEnd ? EMPTY : t.end.subarray(1),
  };
}

/**
 * Checks a `deleteRange` op (op `i` of its batch) and returns its entry
 * (seq 0, key and value as given: the write path adds the key-space byte
 * to the key). Start and end are user keys: start inclusive (omitted or
 * empty: the space's first key), end exclusive (omitted: to the space's
 * end); `prefix` instead of both deletes every key starting with it.
 */
export function deleteRangeEntry(
  op: DeleteRangeOp,
  i: number,
  maxKeyBytes: number,
): Entry {
  const bytes = (v: unknown, what: string): Uint8Array | undefined => {
    if (v === undefined) return undefined;
    if (!(v instanceof Uint8Array)) {
      throw new InvalidArgumentError(`op ${i}: ${what} must be bytes`);
    }
    if (v.length > maxKeyBytes) {
      throw new InvalidArgumentError(
        `op ${i}: ${what} of ${v.length} bytes exceeds the limit of ${maxKeyBytes}`,
        "key_too_long",
      );
    }
    return v;
  };
  let start = bytes(op.start, "start") ?? EMPTY;
  let end = bytes(op.end, "end");
  const prefix = bytes(op.prefix, "prefix");
  if (prefix !== undefined) {
    if (op.start !== undefined || op.end !== undefined) {
      throw new InvalidArgumentError(
        `op ${i}: a range delete takes a prefix or start/end, not both`,
      );
    }
    if (prefix.length === 0) {
      throw new InvalidArgumentError(`op ${i}: prefix must not be empty`);
    }
    start = prefix;
    end = prefixEnd(prefix);
  }
  if (end !== undefined) {
    if (end.length === 0) {
      throw new InvalidArgumentError(
        `op ${i}: end must not be empty (omit it to delete to the end)`,
      );
    }
    if (compareBytes(start, end) >= 0) {
      throw new InvalidArgumentError(
        `op ${i}: start must sort before end (the range is empty)`,
      );
    }
  }
  return {
    key: start,
    seq: 0,
    kind: KIND_RANGE_DELETE,
    encoding: 0,
    expiresAt: 0,
    value: end ?? EMPTY,
  };
}

/**
 * Inside one batch the ops apply in order, but all share one seqno, which a
 * range tombstone does not hide: so a range delete removes the batch's own
 * earlier point ops on keys it covers (they would be deleted by it), here.
 * `entries` are user-key entries of one space as {@link deleteRangeEntry}
 * and the write path build them; returns the survivors, in order.
 */
export function dropCoveredOps(entries: readonly Entry[]): Entry[] {
  const out: Entry[] = [];
  for (const e of entries) {
    if (e.kind === KIND_RANGE_DELETE) {
      for (let j = out.length - 1; j >= 0; j--) {
        const p = out[j];
        if (p.kind === KIND_RANGE_DELETE) continue;
        if (
          compareBytes(p.key, e.key) >= 0 &&
          (e.value.length === 0 || compareBytes(p.key, e.value) < 0)
        ) out.splice(j, 1);
      }
    }
    out.push(e);
  }
  return out;
}

/**
 * An immutable index over a set of tombstones for reads: the key space cut
 * into fragments at every start and end, and a segment tree over the
 * fragments in which each tombstone's seqno sits in the O(log n) nodes that
 * make up its span (so nested ranges cost O(n log n) memory, not O(n^2)).
 * A lookup is a binary search for the key's fragment, then one binary
 * search per node on the path up from it.
 */
export class RangeTombstoneIndex {
  /** Fragment i covers [bounds[i], bounds[i + 1]) (binary strings). */
  #bounds: string[];
  /** Leaves start at #leaves; node n's children are 2n and 2n + 1. */
  #leaves: number;
  /** Seqnos per tree node, highest first. */
  #nodes: number[][];
  /** Number of tombstones indexed. */
  readonly size: number;

  constructor(tombstones: Iterable<RangeTombstone>) {
    const keyed = [...tombstones].map((t) => ({
      seq: t.seq,
      s: binaryString(t.start),
      e: t.end.length === 0 ? INFINITY : binaryString(t.end),
    }));
    this.size = keyed.length;
    const points = new Set<string>();
    for (const k of keyed) {
      points.add(k.s);
      points.add(k.e);
    }
    this.#bounds = [...points].sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
    const at = new Map(this.#bounds.map((b, i) => [b, i]));
    let leaves = 1;
    while (leaves < this.#bounds.length) leaves *= 2;
    this.#leaves = leaves;
    this.#nodes = Array.from({ length: 2 * leaves }, () => []);
    for (const k of keyed) {
      // Fragments [from, to) are the tombstone's span.
      let l = at.get(k.s)! + leaves;
      let r = at.get(k.e)! + leaves;
      for (; l < r; l >>= 1, r >>= 1) {
        if (l & 1) this.#nodes[l++].push(k.seq);
        if (r & 1) this.#nodes[--r].push(k.seq);
      }
    }
    for (const n of this.#nodes) if (n.length > 1) n.sort((a, b) => b - a);
  }

  /**
   * The highest seqno of an indexed tombstone covering stored key `key`
   * that a reader at `snapshot` sees; 0 when none.
   */
  coverSeq(key: Uint8Array, snapshot: number): number {
    const b = this.#bounds;
    if (b.length === 0) return 0;
    const k = binaryString(key);
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (b[mid] <= k) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return 0; // before the first fragment
    let best = 0;
    for (let n = lo - 1 + this.#leaves; n >= 1; n >>= 1) {
      const seqs = this.#nodes[n];
      if (seqs.length === 0 || seqs[0] <= best) continue;
      // The first seqno <= snapshot (the list is highest first).
      let a = 0;
      let z = seqs.length;
      while (a < z) {
        const mid = (a + z) >>> 1;
        if (seqs[mid] > snapshot) a = mid + 1;
        else z = mid;
      }
      if (a < seqs.length && seqs[a] > best) best = seqs[a];
    }
    return best;
  }

  /** True when a tombstone seen at `snapshot` hides entry (key, seq). */
  hides(key: Uint8Array, seq: number, snapshot: number): boolean {
    return seq < this.coverSeq(key, snapshot);
  }
}

/** What {@link obsoleteTombstones} needs to know of a table. */
export interface TableSpan {
  smallest: Uint8Array;
  largest: Uint8Array;
  minSeq: number;
  /** Tombstones up to this seqno were applied when it was written. */
  cleanSeq?: number;
}

/**
 * The persisted tombstones nothing needs any more: every table that
 * overlaps one holds no entry it hides (see the module comment).
 */
export function obsoleteTombstones(
  tombstones: Iterable<RangeTombstone>,
  tables: Iterable<TableSpan>,
): RangeTombstone[] {
  const all = [...tables];
  const out: RangeTombstone[] = [];
  for (const t of tombstones) {
    const needed = all.some((x) =>
      x.minSeq < t.seq && (x.cleanSeq ?? 0) < t.seq &&
      overlapsBounds(t, x.smallest, x.largest)
    );
    if (!needed) out.push(t);
  }
  return out;
}
