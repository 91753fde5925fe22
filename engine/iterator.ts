/**
 * Iterators that combine sources: a heap merge of many sorted sources, a
 * concatenation over one sorted level, and the filter that turns internal
 * entries into what a user sees at one snapshot (newest visible version per
 * key, tombstones and expired entries hidden).
 *
 * @module
 */
import { compareBytes, equalBytes } from "./coding.ts";
import type { Entry, EntryIterator } from "./entry.ts";
import { compareEntries, isLive, MAX_SEQ } from "./entry.ts";
import type { TableMeta } from "./manifest.ts";
import type { ScanItem } from "./types.ts";
import { findTableIndex } from "./version.ts";
import type { RangeTombstoneIndex } from "./range_tombstones.ts";

/**
 * Merges sorted children into one stream, moving in one direction only:
 * ascending internal order, or descending when `reverse`.
 *
 * Each heap item keeps its child's current key and seq beside it (as
 * Pebble's mergingIter keeps its items), read once when the child moves:
 * a compare reads two items instead of calling entry() through the
 * child's layers (level, table iterator) twice. What is left of a step is
 * mostly compareBytes on keys that share long prefixes. A child's key
 * bytes must stay unchanged until that child moves again, which every
 * EntryIterator promises (engine/entry.ts).
 */
export class MergingIterator {
  #heap: HeapItem[] = [];
  #sign: number;

  constructor(readonly children: EntryIterator[], readonly reverse: boolean) {
    this.#sign = reverse ? -1 : 1;
  }

  /** Positions every child at `bound`: first >= bound ascending, last < bound descending. */
  start(bound: Uint8Array | undefined): void {
    const heap: HeapItem[] = [];
    for (const c of this.children) {
      if (!this.reverse) bound ? c.seek(bound, MAX_SEQ) : c.seekToFirst();
      else bound ? c.seekBefore(bound) : c.seekToLast();
      if (!c.valid()) continue;
      const e = c.entry();
      heap.push({ it: c, key: e.key, seq: e.seq });
    }
    this.#heap = heap;
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  valid(): boolean {
    return this.#heap.length > 0;
  }

  entry(): Entry {
    return this.#heap[0].it.entry();
  }

  /** Moves one step in the iterator's direction. */
  step(): void {
    const h = this.#heap;
    const top = h[0];
    const it = top.it;
    if (this.reverse) it.prev();
    else it.next();
    if (it.valid()) {
      const e = it.entry();
      top.key = e.key;
      top.seq = e.seq;
    } else {
      const last = h.pop()!;
      if (h.length === 0) return;
      h[0] = last;
    }
    this.#down(0);
  }

  /** `a` sorts before `b` in the merge's direction. */
  #less(a: HeapItem, b: HeapItem): boolean {
    return this.#sign * compareEntries(a.key, a.seq, b.key, b.seq) < 0;
  }

  #down(i: number): void {
    const h = this.#heap;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      let m = l;
      if (l + 1 < n && this.#less(h[l + 1], h[l])) m = l + 1;
      if (!this.#less(h[m], h[i])) return;
      const t = h[i];
      h[i] = h[m];
      h[m] = t;
      i = m;
    }
  }
}

/** A merge child with its current key and seq, read once per move. */
interface HeapItem {
  it: EntryIterator;
  key: Uint8Array;
  seq: number;
}

/**
 * Concatenates the tables of one sorted, non-overlapping level, opening each
 * table only when the cursor reaches it.
 */
export class LevelIterator implements EntryIterator {
  #index = -1;
  #cur: EntryIterator | undefined;

  /**
   * `closeTable` is told when the cursor leaves a table, so a long scan
   * holds one table of the level open at a time, not every table it passed.
   */
  constructor(
    readonly tables: readonly TableMeta[],
    readonly openTable: (t: TableMeta) => EntryIterator,
    readonly closeTable: (t: TableMeta) => void = () => {},
  ) {}

  #open(i: number): EntryIterator | undefined {
    if (this.#cur !== undefined) this.closeTable(this.tables[this.#index]);
    this.#index = i;
    this.#cur = i >= 0 && i < this.tables.length
      ? this.openTable(this.tables[i])
      : undefined;
    return this.#cur;
  }

  #skipForward(): void {
    while (this.#cur && !this.#cur.valid()) {
      this.#open(this.#index + 1)?.seekToFirst();
    }
  }

  #skipBackward(): void {
    while (this.#cur && !this.#cur.valid()) {
      this.#open(this.#index - 1)?.seekToLast();
    }
  }

  seek(key: Uint8Array, seq = MAX_SEQ): void {
    this.#open(findTableIndex(this.tables, key))?.seek(key, seq);
    this.#skipForward();
  }
  seekToFirst(): void {
    this.#open(0)?.seekToFirst();
    this.#skipForward();
  }
  seekToLast(): void {
    this.#open(this.tables.length - 1)?.seekToLast();
    this.#skipBackward();
  }
  seekBefore(key: Uint8Array): void {
    let i = findTableIndex(this.tables, key);
    if (
      i >= this.tables.length || compareBytes(this.tables[i].smallest, key) >= 0
    ) i--;
    const it = this.#open(i);
    if (it) it.seekBefore(key);
    this.#skipBackward();
  }
  valid(): boolean {
    return this.#cur !== undefined && this.#cur.valid();
  }
  next(): void {
    this.#cur!.next();
    this.#skipForward();
  }
  prev(): void {
    this.#cur!.prev();
    this.#skipBackward();
  }
  entry(): Entry {
    return this.#cur!.entry();
  }
}

/** Bounds and snapshot of a visible-entry scan. */
export interface VisibleScan {
  snapshotSeq: number;
  now: number;
  /** Inclusive lower bound. */
  lower?: Uint8Array;
  /** Exclusive upper bound. */
  upper?: Uint8Array;
  reverse: boolean;
  limit: number;
  /** Range tombstones: a key whose newest visible version they hide is skipped. */
  ranges?: RangeTombstoneIndex;
}

function toItem(e: Entry): ScanItem {
  return {
    key: e.key,
    value: e.value,
    version: e.seq,
    encoding: e.encoding,
    expiresAt: e.expiresAt,
  };
}

/**
 * Yields, in key order (or reverse), the newest version of each key with
 * seq <= snapshotSeq, skipping keys whose newest such version is a tombstone
 * or has expired.
 */
export function* visibleEntries(
  it: MergingIterator,
  s: VisibleScan,
): Generator<ScanItem> {
  let count = 0;
  if (s.limit <= 0) return;
  if (!s.reverse) {
    it.start(s.lower);
    let lastKey: Uint8Array | undefined;
    for (; it.valid(); it.step()) {
      const e = it.entry();
      if (s.upper && compareBytes(e.key, s.upper) >= 0) return;
      if (e.seq > s.snapshotSeq) continue;
      if (lastKey !== undefined && equalBytes(e.key, lastKey)) continue;
      lastKey = e.key;
      if (!isLive(e, s.now)) continue;
      if (s.ranges?.hides(e.key, e.seq, s.snapshotSeq)) continue;
      yield toItem(e);
      if (++count >= s.limit) return;
    }
    return;
  }
  // Descending: a key's versions arrive oldest first, so the newest visible
  // one is the last with seq <= snapshot before the key changes.
  it.start(s.upper);
  let curKey: Uint8Array | undefined;
  let cand: Entry | undefined;
  for (; it.valid(); it.step()) {
    const e = it.entry();
    if (s.lower && compareBytes(e.key, s.lower) < 0) break;
    if (curKey === undefined || !equalBytes(e.key, curKey)) {
      if (cand && visible(cand, s)) {
        yield toItem(cand);
        if (++count >= s.limit) return;
      }
      curKey = e.key;
      cand = undefined;
    }
    if (e.seq <= s.snapshotSeq) cand = { ...e };
  }
  if (cand && visible(cand, s)) yield toItem(cand);
}

/** A key's newest version at the snapshot is shown: live, not range-deleted. */
function visible(e: Entry, s: VisibleScan): boolean {
  return isLive(e, s.now) &&
    !(s.ranges?.hides(e.key, e.seq, s.snapshotSeq) ?? false);
}
