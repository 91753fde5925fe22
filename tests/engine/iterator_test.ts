/**
 * The combining iterators (engine/iterator.ts) against sorted-array
 * models: the heap merge, the level concatenation, and the visible-entry
 * filter (newest version at a snapshot; tombstones, expired entries and
 * range-deleted keys hidden; bounds, limit, both directions).
 */
import assert from "node:assert/strict";
import { compareBytes } from "../../engine/coding.ts";
import type { Entry, EntryIterator } from "../../engine/entry.ts";
import {
  compareEntries,
  KIND_DELETE,
  KIND_PUT,
  MAX_SEQ,
} from "../../engine/entry.ts";
import {
  LevelIterator,
  MergingIterator,
  visibleEntries,
} from "../../engine/iterator.ts";
import type { TableMeta } from "../../engine/manifest.ts";
import type { RangeTombstone } from "../../engine/range_tombstones.ts";
import { RangeTombstoneIndex } from "../../engine/range_tombstones.ts";
import { bytes, hex, Rng, testSeed, withSeed } from "../_helpers.ts";

/** A cursor over entries already in internal order. */
class ArrayIterator implements EntryIterator {
  #i = -1;
  constructor(readonly entries: readonly Entry[]) {}
  #lowerBound(key: Uint8Array, seq: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.entries[mid];
      if (compareEntries(e.key, e.seq, key, seq) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  seek(key: Uint8Array, seq = MAX_SEQ): void {
    this.#i = this.#lowerBound(key, seq);
  }
  seekToFirst(): void {
    this.#i = 0;
  }
  seekToLast(): void {
    this.#i = this.entries.length - 1;
  }
  seekBefore(key: Uint8Array): void {
    this.#i = this.#lowerBound(key, MAX_SEQ) - 1;
  }
  valid(): boolean {
    return this.#i >= 0 && this.#i < this.entries.length;
  }
  next(): void {
    this.#i++;
  }
  prev(): void {
    this.#i--;
  }
  entry(): Entry {
    return this.entries[this.#i];
  }
}

const sortEntries = (es: Entry[]) =>
  es.sort((a, b) => compareEntries(a.key, a.seq, b.key, b.seq));
const id = (e: Entry) => `${hex(e.key)}@${e.seq}`;

/** Random entries with unique (key, seq), keys from a small alphabet. */
function randomEntries(rng: Rng, n: number, keys = 40): Entry[] {
  const seqs = new Set<number>();
  const out: Entry[] = [];
  while (out.length < n) {
    const seq = rng.range(1, 10 * n);
    if (seqs.has(seq)) continue;
    seqs.add(seq);
    const k = rng.int(keys);
    const kind = rng.chance(0.2) ? KIND_DELETE : KIND_PUT;
    out.push({
      key: bytes(0x10 + (k >> 3), k & 7, ...(k % 3 === 0 ? [0] : [])),
      seq,
      kind,
      encoding: 0,
      expiresAt: kind === KIND_PUT && rng.chance(0.15) ? rng.range(1, 200) : 0,
      value: bytes(seq & 0xff),
    });
  }
  return out;
}

Deno.test("the merge yields the union of its children in internal order, both ways, from any bound", async () => {
  await withSeed(testSeed(1101), (rng) => {
    for (let round = 0; round < 30; round++) {
      const all = randomEntries(rng, rng.range(0, 120));
      const children: Entry[][] = Array.from(
        { length: rng.range(1, 5) },
        () => [],
      );
      for (const e of all) rng.pick(children).push(e);
      const sorted = sortEntries([...all]);
      const bound = rng.chance(0.3) ? undefined : rng.pick(all)?.key;
      for (const reverse of [false, true]) {
        const it = new MergingIterator(
          children.map((c) => new ArrayIterator(sortEntries(c))),
          reverse,
        );
        it.start(bound);
        const got: string[] = [];
        for (; it.valid(); it.step()) got.push(id(it.entry()));
        const want = reverse
          ? sorted.filter((e) => !bound || compareBytes(e.key, bound) < 0)
            .reverse()
          : sorted.filter((e) => !bound || compareBytes(e.key, bound) >= 0);
        assert.deepEqual(got, want.map(id), `reverse=${reverse}`);
      }
    }
  });
});

/**
 * A child that rewrites one Entry and one key buffer on every move, as the
 * compaction's table cursors do (engine/sstable/block_cursor.ts): the merge
 * may rely on a child's key only until that child moves.
 */
class ReusingIterator extends ArrayIterator {
  #e: Entry = { ...randomEntries(new Rng(1), 1)[0] };
  #buf = new Uint8Array(8);
  override entry(): Entry {
    const src = super.entry();
    this.#buf.fill(0xee);
    this.#buf.set(src.key);
    Object.assign(this.#e, src, {
      key: this.#buf.subarray(0, src.key.length),
    });
    return this.#e;
  }
  override next(): void {
    this.#buf.fill(0xee);
    super.next();
  }
  override prev(): void {
    this.#buf.fill(0xee);
    super.prev();
  }
}

Deno.test("the merge copes with children that rewrite their entry and key bytes on every move", async () => {
  await withSeed(testSeed(1103), (rng) => {
    for (let round = 0; round < 30; round++) {
      const all = randomEntries(rng, rng.range(0, 120));
      const children: Entry[][] = Array.from(
        { length: rng.range(1, 6) },
        () => [],
      );
      for (const e of all) rng.pick(children).push(e);
      const sorted = sortEntries([...all]);
      for (const reverse of [false, true]) {
        const it = new MergingIterator(
          children.map((c) => new ReusingIterator(sortEntries(c))),
          reverse,
        );
        it.start(undefined);
        const got: string[] = [];
        for (; it.valid(); it.step()) got.push(id(it.entry()));
        const want = reverse ? [...sorted].reverse() : sorted;
        assert.deepEqual(got, want.map(id), `reverse=${reverse}`);
      }
    }
  });
});

Deno.test("a level iterator walks its tables as one sorted run, holding one table open", async () => {
  await withSeed(testSeed(1102), (rng) => {
    for (let round = 0; round < 20; round++) {
      const sorted = sortEntries(randomEntries(rng, rng.range(1, 150), 60));
      // Cut into tables at key changes (a key never spans two tables).
      const tables: { meta: TableMeta; entries: Entry[] }[] = [];
      let cur: Entry[] = [];
      for (let i = 0; i < sorted.length; i++) {
        cur.push(sorted[i]);
        const last = i === sorted.length - 1;
        if (
          last || (compareBytes(sorted[i].key, sorted[i + 1].key) !== 0 &&
            rng.chance(0.15))
        ) {
          tables.push({
            meta: {
              fileNumber: tables.length + 1,
              level: 1,
              size: 0,
              entries: cur.length,
              minSeq: 0,
              maxSeq: 0,
              smallest: cur[0].key,
              largest: cur[cur.length - 1].key,
            },
            entries: cur,
          });
          cur = [];
        }
      }
      let open = 0;
      const it = new LevelIterator(
        tables.map((t) => t.meta),
        (m) => {
          open++;
          assert.ok(open <= 1, "one table open at a time");
          return new ArrayIterator(tables[m.fileNumber - 1].entries);
        },
        () => open--,
      );
      const model = new ArrayIterator(sorted);
      const same = (what: string) => {
        assert.equal(it.valid(), model.valid(), what);
        if (model.valid()) {
          assert.equal(id(it.entry()), id(model.entry()), what);
        }
      };
      it.seekToFirst();
      model.seekToFirst();
      for (; model.valid(); it.next(), model.next()) same("forward");
      same("forward end");
      it.seekToLast();
      model.seekToLast();
      for (; model.valid(); it.prev(), model.prev()) same("backward");
      same("backward end");
      for (let probe = 0; probe < 20; probe++) {
        const key = rng.chance(0.5)
          ? rng.pick(sorted).key
          : bytes(0x10 + rng.int(10), rng.int(9));
        const seq = rng.chance(0.5) ? MAX_SEQ : rng.range(1, 1500);
        it.seek(key, seq);
        model.seek(key, seq);
        same(`seek ${hex(key)}@${seq}`);
        for (let j = 0; j < 3 && model.valid(); j++) {
          it.next();
          model.next();
          same("next after seek");
        }
        it.seekBefore(key);
        model.seekBefore(key);
        same(`seekBefore ${hex(key)}`);
        for (let j = 0; j < 3 && model.valid(); j++) {
          it.prev();
          model.prev();
          same("prev after seekBefore");
        }
      }
    }
  });
});

Deno.test("visible entries: the newest version at the snapshot, live and not range-deleted, within bounds and limit", async () => {
  await withSeed(testSeed(1103), (rng) => {
    for (let round = 0; round < 60; round++) {
      const all = randomEntries(rng, rng.range(0, 150), 30);
      const sorted = sortEntries([...all]);
      const maxSeq = all.reduce((m, e) => Math.max(m, e.seq), 0);
      const snapshotSeq = rng.chance(0.3) ? MAX_SEQ : rng.range(0, maxSeq + 1);
      const now = rng.range(0, 250);
      const keys = [...new Set(sorted.map((e) => hex(e.key)))];
      const keyOf = (h: string) => sorted.find((e) => hex(e.key) === h)!.key;
      const pickKey = () =>
        keys.length > 0 && rng.chance(0.7)
          ? keyOf(rng.pick(keys))
          : bytes(0x10 + rng.int(5), rng.int(8));
      const tombstones: RangeTombstone[] = [];
      for (let i = rng.int(3); i > 0; i--) {
        let [a, b] = [pickKey(), pickKey()];
        if (compareBytes(a, b) > 0) [a, b] = [b, a];
        tombstones.push({ start: a, end: b, seq: rng.range(1, maxSeq + 2) });
      }
      const lower = rng.chance(0.5) ? pickKey() : undefined;
      const upper = rng.chance(0.5) ? pickKey() : undefined;
      const limit = rng.chance(0.3) ? rng.range(0, 5) : Infinity;
      const reverse = rng.chance(0.5);

      // The model: per key, the newest version at the snapshot.
      const want: string[] = [];
      for (const h of keys) {
        const key = keyOf(h);
        if (lower && compareBytes(key, lower) < 0) continue;
        if (upper && compareBytes(key, upper) >= 0) continue;
        const newest = sorted.find((e) =>
          hex(e.key) === h && e.seq <= snapshotSeq
        );
        if (!newest || newest.kind !== KIND_PUT) continue;
        if (newest.expiresAt !== 0 && newest.expiresAt <= now) continue;
        const hidden = tombstones.some((t) =>
          t.seq > newest.seq && t.seq <= snapshotSeq &&
          compareBytes(key, t.start) >= 0 && compareBytes(key, t.end) < 0
        );
        if (!hidden) want.push(id(newest));
      }
      if (reverse) want.reverse();

      const children: Entry[][] = [[], []];
      for (const e of all) rng.pick(children).push(e);
      const it = new MergingIterator(
        children.map((c) => new ArrayIterator(sortEntries(c))),
        reverse,
      );
      const got = [
        ...visibleEntries(it, {
          snapshotSeq,
          now,
          lower,
          upper,
          reverse,
          limit,
          ranges: tombstones.length > 0
            ? new RangeTombstoneIndex(tombstones)
            : undefined,
        }),
      ].map((item) => `${hex(item.key)}@${item.version}`);
      assert.deepEqual(
        got,
        want.slice(0, limit),
        `round ${round}, reverse=${reverse}`,
      );
    }
  });
});
