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
import { deleteEntry, putEntry } from "./_entries.ts";
import { bytes, enc, hex, Rng, testSeed, withSeed } from "../_helpers.ts";

function put(key: Uint8Array, seq: number, value = enc(`v${seq}`)): Entry {
  return putEntry(key, seq, value);
}

const del = deleteEntry;

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

Deno.test("addMany (sorted splice inserts) builds the same list as single adds", async () => {
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
      viaMany.addMany(group);
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

Deno.test("addMany splices large groups into a large list as a sorted model orders them", async () => {
  // Groups of hundreds to thousands of keys with a long shared prefix (a
  // space byte and zero-padded decimals, as db_bench's) into a list that
  // grows to ~20k entries and gains levels mid-group; some keys recur
  // across groups (newer versions) and some groups hold two versions.
  await withSeed(testSeed(3131), (rng: Rng) => {
    const m = new Memtable();
    const all: Entry[] = [];
    const newest = new Map<string, number>();
    let seq = 1;
    const key = (i: number) => {
      const k = new Uint8Array(17);
      k[0] = 1;
      k.set(enc(String(i).padStart(16, "0")), 1);
      return k;
    };
    while (all.length < 20_000) {
      const group: Entry[] = [];
      for (let w = 0, writes = 1 + rng.int(3); w < writes; w++) {
        const s = seq++;
        const n = rng.range(1, 1500);
        const seen = new Set<number>();
        for (let i = 0; i < n; i++) {
          const k = rng.int(50_000);
          if (seen.has(k)) continue; // one op per key in a write
          seen.add(k);
          group.push(rng.int(6) === 0 ? del(key(k), s) : put(key(k), s));
        }
      }
      m.addMany(group);
      for (const e of group) {
        all.push(e);
        newest.set(hex(e.key), Math.max(newest.get(hex(e.key)) ?? 0, e.seq));
      }
    }
    const sorted = [...all].sort((a, b) =>
      compareEntries(a.key, a.seq, b.key, b.seq)
    );
    const it = m.iterator();
    it.seekToFirst();
    assert.deepEqual(forward(it), sorted.map((e) => `${hex(e.key)}@${e.seq}`));
    assert.equal(m.count, all.length);
    for (let probe = 0; probe < 2000; probe++) {
      const k = key(rng.int(50_000));
      assert.equal(m.get(k, MAX_SEQ)?.seq, newest.get(hex(k)), hex(k));
    }
  });
});

Deno.test("keys differing in trailing zero bytes or across 4-byte words sort as bytes", async () => {
  // The list compares keys as zero-padded big-endian words, then by length:
  // keys over {00, 01, ff} of lengths 1..9 probe every padding case.
  await withSeed(testSeed(5150), (rng: Rng) => {
    const m = new Memtable();
    const all: Entry[] = [];
    const seen = new Set<string>();
    let seq = 1;
    while (all.length < 600) {
      const key = rng.bytes(rng.range(1, 9)).map((b) => [0, 1, 0xff][b % 3]);
      const e = put(key, seq++, rng.bytes(rng.int(3)));
      all.push(e);
      seen.add(hex(key));
    }
    for (let i = 0; i < all.length; i += 50) {
      const group = all.slice(i, i + 50);
      m.addMany(group);
    }
    const sorted = [...all].sort((a, b) =>
      compareEntries(a.key, a.seq, b.key, b.seq)
    );
    const it = m.iterator();
    it.seekToFirst();
    assert.deepEqual(forward(it), sorted.map((e) => `${hex(e.key)}@${e.seq}`));
    for (let probe = 0; probe < 300; probe++) {
      const key = rng.bytes(rng.range(1, 9)).map((b) => [0, 1, 0xff][b % 3]);
      const newest = sorted.find((e) => compareBytes(e.key, key) === 0);
      assert.equal(m.get(key, MAX_SEQ)?.seq, newest?.seq, hex(key));
      assert.equal(newest !== undefined, seen.has(hex(key)));
      it.seekBefore(key);
      const lt = sorted.findLast((e) => compareBytes(e.key, key) < 0);
      assert.equal(it.valid() ? it.entry().seq : undefined, lt?.seq);
    }
  });
});

Deno.test("growth of the node pool, hash index and probe keeps entries and iterators intact", async () => {
  // Starts far below the sizes reached here (4096 pool words, 1024 index
  // slots, 256-byte probe keys), so each grows several times, with an
  // iterator open across the growth.
  await withSeed(testSeed(777), (rng: Rng) => {
    const m = new Memtable();
    const first = put(bytes(0), 1, enc("first"));
    m.add(first);
    const it = m.iterator();
    it.seekToFirst();
    const all: Entry[] = [first];
    // Keys and values as views into shared buffers at odd offsets (the
    // write path's form), and some values in a buffer of their own.
    let shared = new Uint8Array(0);
    let pos = 0;
    for (let seq = 2; seq <= 6000; seq++) {
      const klen = rng.chance(0.05) ? rng.range(257, 700) : rng.range(1, 40);
      const vlen = rng.int(60);
      if (pos + klen + vlen > shared.length) {
        shared = new Uint8Array(64 * 1024);
        pos = 1;
      }
      const key = shared.subarray(pos, pos + klen);
      key.set(rng.bytes(klen));
      key[0] = 1 + rng.int(40); // many versions of keys with a short head
      if (klen < 3) key.fill(key[0]);
      let value: Uint8Array = shared.subarray(pos + klen, pos + klen + vlen);
      value.set(rng.bytes(vlen));
      if (rng.chance(0.1)) value = rng.bytes(vlen);
      pos += klen + vlen + 1;
      const e: Entry = {
        key,
        seq,
        kind: vlen === 0 && rng.chance(0.5) ? KIND_DELETE : KIND_PUT,
        encoding: rng.int(256),
        expiresAt: rng.chance(0.5) ? 0 : 8.64e15 - seq,
        value,
      };
      m.add(e);
      all.push(e);
    }
    const big = put(bytes(0xff, 0xff), 2 ** 52 + 3, enc("big seqno"));
    m.add(big);
    all.push(big);
    assert.equal(m.count, all.length);

    // The iterator opened before any growth walks on into the new pool.
    assert.equal(it.entry().seq, 1);
    it.next();
    const sorted = [...all].sort((a, b) =>
      compareEntries(a.key, a.seq, b.key, b.seq)
    );
    assert.equal(it.entry().seq, sorted[1].seq);
    it.seekToFirst();
    const got: Entry[] = [];
    for (; it.valid(); it.next()) got.push(it.entry());
    assert.equal(got.length, sorted.length);
    for (let i = 0; i < sorted.length; i++) {
      const [a, b] = [got[i], sorted[i]];
      assert.deepEqual(
        [hex(a.key), a.seq, a.kind, a.encoding, a.expiresAt, hex(a.value)],
        [hex(b.key), b.seq, b.kind, b.encoding, b.expiresAt, hex(b.value)],
      );
    }
    it.seekToLast();
    assert.equal(it.entry().seq, 2 ** 52 + 3);
    for (let probe = 0; probe < 500; probe++) {
      const e = all[rng.int(all.length)];
      const snap = rng.chance(0.5) ? MAX_SEQ : rng.range(1, 6000);
      const newest = sorted.find((x) =>
        compareBytes(x.key, e.key) === 0 && x.seq <= snap
      );
      const r = m.get(e.key.slice(), snap);
      assert.equal(r?.seq, newest?.seq);
      if (r) assert.equal(hex(r.value), hex(newest!.value));
    }
  });
});

Deno.test("a key larger than twice the initial node pool is stored and found", () => {
  const m = new Memtable();
  const small = put(bytes(1), 1);
  const big = put(new Uint8Array(40_000).fill(0xab), 2, enc("big"));
  m.add(small);
  m.add(big);
  assert.deepEqual(m.get(big.key.slice(), MAX_SEQ)?.value, enc("big"));
  const it = m.iterator();
  it.seekToLast();
  assert.deepEqual(it.entry().key, big.key);
  it.prev();
  assert.deepEqual(it.entry().key, bytes(1));
  it.seek(big.key);
  assert.equal(it.entry().seq, 2);
});
