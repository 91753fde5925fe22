import assert from "node:assert/strict";
import { compareBytes } from "../../engine/coding.ts";
import type { Entry, EntryIterator } from "../../engine/entry.ts";
import {
  compareEntries,
  KIND_DELETE,
  KIND_PUT,
  MAX_SEQ,
} from "../../engine/entry.ts";
import { Memtable } from "../../engine/memtable.ts";
import { bytes, enc, hex, Rng, testSeed, withSeed } from "../_helpers.ts";

function put(key: Uint8Array, seq: number, value = enc(`v${seq}`)): Entry {
  return { key, seq, kind: KIND_PUT, encoding: 0, expiresAt: 0, value };
}

function del(key: Uint8Array, seq: number): Entry {
  return {
    key,
    seq,
    kind: KIND_DELETE,
    encoding: 0,
    expiresAt: 0,
    value: new Uint8Array(0),
  };
}

/** "key@seq" for every entry from the iterator's position, forward. */
function forward(it: EntryIterator): string[] {
  const out: string[] = [];
  for (; it.valid(); it.next()) {
    out.push(`${hex(it.entry().key)}@${it.entry().seq}`);
  }
  return out;
}

function backward(it: EntryIterator): string[] {
  const out: string[] = [];
  for (; it.valid(); it.prev()) {
    out.push(`${hex(it.entry().key)}@${it.entry().seq}`);
  }
  return out;
}

Deno.test("an empty memtable finds nothing and its iterator is never valid", () => {
  const m = new Memtable();
  assert.equal(m.get(enc("a"), MAX_SEQ), undefined);
  assert.equal(m.count, 0);
  assert.equal(m.bytes, 0);
  const it = m.iterator();
  it.seekToFirst();
  assert.ok(!it.valid());
  it.seekToLast();
  assert.ok(!it.valid());
  it.seek(enc("a"));
  assert.ok(!it.valid());
  it.seekBefore(enc("a"));
  assert.ok(!it.valid());
});

Deno.test("get returns the newest version at or below the snapshot", () => {
  const m = new Memtable();
  const k = enc("k");
  m.add(put(k, 3, enc("three")));
  m.add(put(k, 1, enc("one")));
  m.add(del(k, 5));
  m.add(put(k, 7, enc("seven")));
  assert.equal(m.get(k, 0), undefined);
  assert.deepEqual(m.get(k, 1)?.value, enc("one"));
  assert.deepEqual(m.get(k, 2)?.value, enc("one"));
  assert.deepEqual(m.get(k, 4)?.value, enc("three"));
  assert.equal(m.get(k, 5)?.kind, KIND_DELETE, "tombstones are returned");
  assert.equal(m.get(k, 6)?.seq, 5);
  assert.deepEqual(m.get(k, MAX_SEQ)?.value, enc("seven"));
});

Deno.test("get does not confuse a key with its prefix or extension", () => {
  const m = new Memtable();
  m.add(put(bytes(1, 2), 1));
  m.add(put(bytes(1, 2, 0), 2));
  assert.equal(m.get(bytes(1), MAX_SEQ), undefined);
  assert.equal(m.get(bytes(1, 2), MAX_SEQ)?.seq, 1);
  assert.equal(m.get(bytes(1, 2, 0), MAX_SEQ)?.seq, 2);
  assert.equal(m.get(bytes(1, 2, 0, 0), MAX_SEQ), undefined);
});

Deno.test("keys with 0x00 and 0xFF bytes sort unsigned", () => {
  const m = new Memtable();
  const keys = [bytes(0xff), bytes(0x00), bytes(0x7f), bytes(0x80), bytes(0)];
  keys.forEach((k, i) => m.add(put(k, i + 1)));
  const it = m.iterator();
  it.seekToFirst();
  assert.deepEqual(forward(it), ["00@5", "00@2", "7f@3", "80@4", "ff@1"]);
});

Deno.test("count, bytes and the seqno range track every add", () => {
  const m = new Memtable();
  m.add(put(enc("a"), 10, new Uint8Array(100)));
  const one = m.bytes;
  assert.ok(one >= 101, "bytes count key and value");
  m.add(del(enc("b"), 4));
  m.add(put(enc("a"), 12, new Uint8Array(0)));
  assert.equal(m.count, 3);
  assert.ok(m.bytes > one);
  assert.equal(m.minSeq, 4);
  assert.equal(m.maxSeq, 12);
});

Deno.test("the iterator walks versions newest first within a key, both directions", () => {
  const m = new Memtable();
  m.add(put(enc("b"), 2));
  m.add(put(enc("a"), 1));
  m.add(put(enc("b"), 5));
  m.add(put(enc("a"), 9));
  m.add(del(enc("c"), 3));
  const it = m.iterator();
  it.seekToFirst();
  const fwd = forward(it);
  assert.deepEqual(fwd, ["61@9", "61@1", "62@5", "62@2", "63@3"]);
  it.seekToLast();
  assert.deepEqual(backward(it), [...fwd].reverse());
});

Deno.test("seek lands on the first entry at or after (key, seq)", () => {
  const m = new Memtable();
  for (const [k, s] of [["a", 1], ["c", 4], ["c", 2], ["e", 3]] as const) {
    m.add(put(enc(k), s));
  }
  const it = m.iterator();
  it.seek(enc("b"));
  assert.equal(it.entry().seq, 4);
  it.seek(enc("c"), 3);
  assert.equal(it.entry().seq, 2, "seq 3 skips the newer version 4");
  it.seek(enc("c"), 1);
  assert.deepEqual(it.entry().key, enc("e"));
  it.seek(enc("f"));
  assert.ok(!it.valid());
});

Deno.test("seekBefore lands on the oldest version of the greatest smaller key", () => {
  const m = new Memtable();
  for (const [k, s] of [["a", 1], ["c", 4], ["c", 2], ["e", 3]] as const) {
    m.add(put(enc(k), s));
  }
  const it = m.iterator();
  it.seekBefore(enc("e"));
  assert.deepEqual([hex(it.entry().key), it.entry().seq], ["63", 2]);
  it.seekBefore(enc("d"));
  assert.equal(it.entry().seq, 2);
  it.seekBefore(enc("c"));
  assert.deepEqual(it.entry().key, enc("a"));
  it.seekBefore(enc("a"));
  assert.ok(!it.valid());
  it.seekBefore(bytes(0xff, 0xff));
  assert.deepEqual(it.entry().key, enc("e"));
});

Deno.test("an iterator sees entries added after it was created", () => {
  const m = new Memtable();
  m.add(put(enc("a"), 1));
  const it = m.iterator();
  it.seekToFirst();
  m.add(put(enc("b"), 2));
  it.next();
  assert.ok(it.valid());
  assert.deepEqual(it.entry().key, enc("b"));
});

Deno.test("random adds match a sorted model in both directions, at every snapshot", async () => {
  await withSeed(testSeed(20240601), (rng: Rng) => {
    const m = new Memtable();
    const all: Entry[] = [];
    const seqs = Array.from({ length: 3000 }, (_, i) => i + 1);
    // Apply seqnos in a shuffled order: the skip list must not rely on it.
    for (let i = seqs.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [seqs[i], seqs[j]] = [seqs[j], seqs[i]];
    }
    for (const seq of seqs) {
      const key = rng.bytes(rng.range(1, 3)).map((b) => b % 24 + 0x60);
      const e = rng.chance(0.2) ? del(key, seq) : put(key, seq, rng.bytes(4));
      m.add(e);
      all.push(e);
    }
    all.sort((a, b) => compareEntries(a.key, a.seq, b.key, b.seq));
    const want = all.map((e) => `${hex(e.key)}@${e.seq}`);
    const it = m.iterator();
    it.seekToFirst();
    assert.deepEqual(forward(it), want);
    it.seekToLast();
    assert.deepEqual(backward(it), [...want].reverse());

    for (let probe = 0; probe < 400; probe++) {
      const key = rng.bytes(rng.range(1, 3)).map((b) => b % 24 + 0x60);
      const snap = rng.range(0, 3001);
      const newest = all.find((e) =>
        compareBytes(e.key, key) === 0 && e.seq <= snap
      );
      assert.equal(m.get(key, snap)?.seq, newest?.seq, `get ${hex(key)}`);

      it.seek(key, snap);
      const ge = all.find((e) => compareEntries(e.key, e.seq, key, snap) >= 0);
      assert.equal(it.valid() ? it.entry().seq : undefined, ge?.seq);

      it.seekBefore(key);
      const lt = all.findLast((e) => compareBytes(e.key, key) < 0);
      assert.equal(it.valid() ? it.entry().seq : undefined, lt?.seq);
    }
  });
});

Deno.test("addMany (sorted finger inserts) builds the same list as single adds", async () => {
  await withSeed(testSeed(9091), (rng: Rng) => {
    const viaMany = new Memtable();
    const viaAdd = new Memtable();
    let seq = 1;
    for (let round = 0; round < 60; round++) {
      // Groups as the commit loop makes them: several writes, some batches
      // repeating keys across writes, with distinct seqnos.
      const group: Entry[] = [];
      const n = 1 + rng.int(80);
      for (let i = 0; i < n; i++) {
        const key = enc(`k${rng.int(300)}`);
        const s = seq++;
        group.push(rng.int(5) === 0 ? del(key, s) : put(key, s));
      }
      viaMany.addMany(group, group.map((e) => String.fromCharCode(...e.key)));
      for (const e of group) viaAdd.add(e);
    }
    assert.deepEqual(
      (() => {
        const it = viaMany.iterator();
        it.seekToFirst();
        return forward(it);
      })(),
      (() => {
        const it = viaAdd.iterator();
        it.seekToFirst();
        return forward(it);
      })(),
    );
    for (let k = 0; k < 300; k++) {
      for (const snap of [MAX_SEQ, 1 + rng.int(seq)]) {
        const a = viaMany.get(enc(`k${k}`), snap);
        const b = viaAdd.get(enc(`k${k}`), snap);
        assert.equal(a?.seq, b?.seq, `k${k} at ${snap}`);
      }
    }
  });
});
