/**
 * The read path: point lookups and scans over the memtables (newest first)
 * and the current Version's tables, at a seqno. Reads are synchronous and
 * run on the main thread; a scan pins the Version and the tables it reads
 * so that compaction cannot delete them under it.
 *
 * @module
 */
import type { RangeTombstoneIndex } from "./range_tombstones.ts";
import { compareBytes, prefixEnd } from "./coding.ts";
import type { Entry, EntryIterator } from "./entry.ts";
import { isLive, MAX_SEQ } from "./entry.ts";
import { ClosedError } from "./errors.ts";
import { LevelIterator, MergingIterator, visibleEntries } from "./iterator.ts";
import type { TableMeta } from "./manifest.ts";
import { NUM_LEVELS } from "./manifest.ts";
import type { Memtable } from "./memtable.ts";
import type { Immutable } from "./memtables.ts";
import { spaceKey } from "./batch.ts";
import type { TableCache } from "./table_cache.ts";
import type { ReadResult, ScanItem, ScanOptions } from "./types.ts";
import { MAX_KEY_SPACE } from "./types.ts";
import type { VersionSet } from "./version.ts";
import { findTableIndex, overlaps } from "./version.ts";

/** What reads look at (the Db's current state). */
export interface ReadSources {
  /** The live memtable. */
  memtable(): Memtable;
  /** The frozen memtables, newest first. */
  immutables(): readonly Immutable[];
  versions: VersionSet;
  tables: TableCache;
  clock(): number;
  closed(): boolean;
  /** The newest seqno visible to readers: a scan's default snapshot. */
  visibleSeq(): number;
  counters: { scans: number };
  /** The index of every range tombstone, undefined when there is none. */
  rangeTombstones(): RangeTombstoneIndex | undefined;
}

/** Point lookups and scans; one per Db. */
export class ReadPath {
  #src: ReadSources;
  /**
   * Where point reads build the stored key (space byte + key), and views of
   * it by length, made once each: a new array costs ~1.3 us, a new view
   * ~80 ns, a cached one nothing. Only synchronous code uses them, and
   * nothing keeps a view.
   */
  #keyScratch: Uint8Array;
  #scratchViews: (Uint8Array | undefined)[];

  constructor(src: ReadSources, maxKeyBytes: number) {
    this.#src = src;
    this.#keyScratch = new Uint8Array(maxKeyBytes + 1);
    this.#scratchViews = new Array(maxKeyBytes + 2).fill(undefined);
  }

  /**
   * The newest live value of a stored key at `seq` (what Db.get returns),
   * or undefined when it is absent, deleted or expired.
   */
  get(key: Uint8Array, seq: number, borrow = false): ReadResult | undefined {
    const e = this.find(key, seq, borrow);
    if (e === undefined || !isLive(e, this.#src.clock())) return undefined;
    if (this.#src.rangeTombstones()?.hides(key, e.seq, seq)) return undefined;
    return {
      value: e.value,
      version: e.seq,
      encoding: e.encoding,
      expiresAt: e.expiresAt,
    };
  }

  /** The version of `key`'s newest visible write; null when absent. */
  visibleVersion(key: Uint8Array): number | null {
    const e = this.find(key, MAX_SEQ);
    if (e === undefined || !isLive(e, this.#src.clock())) return null;
    return this.#src.rangeTombstones()?.hides(key, e.seq, MAX_SEQ)
      ? null
      : e.seq;
  }

  /**
   * The stored form of a checked key: a view of the scratch buffer, valid
   * until the next call.
   */
  storedKey(space: number, key: Uint8Array): Uint8Array {
    const s = this.#keyScratch;
    const n = key.length;
    s[0] = space;
    // A loop beats set()'s call overhead for short keys.
    if (n <= 32) { for (let i = 0; i < n; i++) s[i + 1] = key[i]; }
    else s.set(key, 1);
    return this.#scratchViews[n + 1] ??= s.subarray(0, n + 1);
  }

  /**
   * The newest entry (tombstones included) for a stored key at or below seq;
   * `borrow` as for TableReader.get.
   */
  find(key: Uint8Array, seq: number, borrow = false): Entry | undefined {
    let e = this.#src.memtable().get(key, seq);
    if (e) return e;
    for (const imm of this.#src.immutables()) {
      e = imm.mem.get(key, seq);
      if (e) return e;
    }
    const levels = this.#src.versions.current.levels;
    for (const t of levels[0]) {
      if (
        compareBytes(key, t.smallest) < 0 || compareBytes(key, t.largest) > 0
      ) continue;
      e = this.#src.tables.get(t.fileNumber).get(key, seq, borrow);
      if (e) return e;
    }
    for (let l = 1; l < NUM_LEVELS; l++) {
      const level = levels[l];
      if (level.length === 0) continue;
      const i = findTableIndex(level, key);
      if (i >= level.length || compareBytes(key, level[i].smallest) < 0) {
        continue;
      }
      e = this.#src.tables.get(level[i].fileNumber).get(key, seq, borrow);
      if (e) return e;
    }
    return undefined;
  }

  /**
   * The body of Db.scan: the newest visible version of each key of key
   * space `space` in the bounds of `opts`. Its first (internal) yield is the
   * snapshot point; the caller resumes it once at once (see Db.scan).
   */
  *scan(space: number, opts: ScanOptions): Generator<ScanItem> {
    let lower = opts.start;
    let upper = opts.end;
    if (opts.prefix !== undefined && opts.prefix.length > 0) {
      if (!lower || compareBytes(opts.prefix, lower) > 0) lower = opts.prefix;
      const pe = prefixEnd(opts.prefix);
      if (pe && (!upper || compareBytes(pe, upper) < 0)) upper = pe;
    }
    const limit = opts.limit ?? Infinity;
    if (
      (lower && upper && compareBytes(lower, upper) >= 0) || !(limit > 0)
    ) {
      yield undefined as unknown as ScanItem; // the snapshot point: nothing
      return;
    }
    // From here on, bounds are stored keys: the space's range at most.
    lower = spaceKey(space, lower);
    upper = upper !== undefined
      ? spaceKey(space, upper)
      : space < MAX_KEY_SPACE
      ? spaceKey(space + 1)
      : undefined;
    this.#src.counters.scans++;
    const snapshotSeq = opts.snapshot?.seq ?? this.#src.visibleSeq();
    const version = this.#src.versions.pin();
    const pinned = new Map<number, number>(); // file number -> pins held
    const closeTable = (t: TableMeta): void => {
      const n = pinned.get(t.fileNumber) ?? 0;
      if (n === 0) return;
      if (n === 1) pinned.delete(t.fileNumber);
      else pinned.set(t.fileNumber, n - 1);
      this.#src.tables.unpin(t.fileNumber);
    };
    const openTable = (t: TableMeta): EntryIterator => {
      const r = this.#src.tables.pin(t.fileNumber);
      pinned.set(t.fileNumber, (pinned.get(t.fileNumber) ?? 0) + 1);
      return r.iterator();
    };
    try {
      const children: EntryIterator[] = [this.#src.memtable().iterator()];
      for (const imm of this.#src.immutables()) {
        children.push(imm.mem.iterator());
      }
      for (const t of version.levels[0]) {
        if (overlaps(t, lower, upper)) children.push(openTable(t));
      }
      for (let l = 1; l < NUM_LEVELS; l++) {
        const tables = version.levels[l].filter((t) =>
          overlaps(t, lower, upper)
        );
        if (tables.length > 0) {
          children.push(new LevelIterator(tables, openTable, closeTable));
        }
      }
      const merged = new MergingIterator(children, opts.reverse ?? false);
      const now = this.#src.clock();
      const ranges = this.#src.rangeTombstones();
      // The snapshot point: scan() resumes the body up to here at once.
      yield undefined as unknown as ScanItem;
      const items = visibleEntries(merged, {
        snapshotSeq,
        now,
        lower,
        upper,
        reverse: opts.reverse ?? false,
        limit,
        ranges,
      });
      for (;;) {
        // close() closes the table files under a scan still in progress.
        if (this.#src.closed()) throw new ClosedError();
        const r = items.next();
        if (r.done) break;
        const item = r.value;
        item.key = item.key.subarray(1); // callers see their own keys
        yield item;
      }
    } finally {
      for (const [n, pins] of pinned) {
        for (let i = 0; i < pins; i++) this.#src.tables.unpin(n);
      }
      this.#src.versions.unpin(version);
    }
  }
}
