/**
 * Range deletes (engine/range_tombstones.ts): the tombstone index and the
 * pure helpers, then through a Db: batch semantics, key spaces, conditions,
 * snapshots, flush, compaction reclaiming the space, reopen, backup and
 * restore, verify, the change history, and a directory written before range
 * deletes existed (tests/engine/fixtures/format2).
 */
import assert from "node:assert/strict";
import { InvalidArgumentError, open, verify } from "../../mod.ts";
import type { Db } from "../../mod.ts";
import { startBackup } from "../../engine/backup.ts";
import { restoreBackup } from "../../engine/restore.ts";
import {
  covers,
  deleteRangeEntry,
  dropCoveredOps,
  obsoleteTombstones,
  type RangeTombstone,
  RangeTombstoneIndex,
  tombstoneFromEntry,
} from "../../engine/range_tombstones.ts";
import { KIND_PUT, KIND_RANGE_DELETE } from "../../engine/entry.ts";
import { compareBytes } from "../../engine/coding.ts";
import {
  bytes,
  concat,
  dec,
  enc,
  testSeed,
  withSeed,
  withTempDir,
} from "../_helpers.ts";

/** A tombstone in key space 0 over [start, end) (end "" = to the space's end). */
function tomb(start: string, end: string, seq: number): RangeTombstone {
  return {
    start: concat(bytes(0), enc(start)),
    end: end === "" ? bytes(1) : concat(bytes(0), enc(end)),
    seq,
  };
}

const sk = (k: string) => concat(bytes(0), enc(k));

function keys(db: Db, o: Parameters<Db["scan"]>[0] = {}): string[] {
  return [...db.scan(o)].map((i) => dec(i.key));
}

interface RangeStats {
  rangeTombstones: { persisted: number; live: number };
  levels: { bytes: number }[];
}

function stats(db: Db): RangeStats {
  return db.stats() as unknown as RangeStats;
}

function tableBytes(db: Db): number {
  return stats(db).levels.reduce((n, l) => n + l.bytes, 0);
}

Deno.test("the tombstone index answers the highest covering seqno a snapshot sees", () => {
  const idx = new RangeTombstoneIndex([
    tomb("b", "f", 10),
    tomb("d", "h", 20),
    tomb("a", "", 5),
  ]);
  assert.equal(idx.size, 3);
  assert.equal(idx.coverSeq(sk("a"), 100), 5);
  assert.equal(idx.coverSeq(sk("c"), 100), 10);
  assert.equal(idx.coverSeq(sk("e"), 100), 20);
  assert.equal(idx.coverSeq(sk("e"), 15), 10, "seq 20 is after the snapshot");
  assert.equal(idx.coverSeq(sk("e"), 4), 0);
  assert.equal(idx.coverSeq(sk("f"), 100), 20, "end is exclusive");
  assert.equal(idx.coverSeq(sk("h"), 100), 5);
  assert.equal(idx.coverSeq(sk("zzz"), 100), 5, "to the end of the space");
  assert.equal(idx.coverSeq(bytes(1, 0x61), 100), 0, "not in space 1");
  assert.equal(idx.coverSeq(bytes(0), 100), 0, "before every start");
  assert.ok(idx.hides(sk("c"), 9, 100));
  assert.ok(!idx.hides(sk("c"), 10, 100), "the same seqno is not hidden");
  const unbounded: RangeTombstone = {
    start: bytes(255, 7),
    end: new Uint8Array(0),
    seq: 3,
  };
  const top = new RangeTombstoneIndex([unbounded]);
  assert.equal(top.coverSeq(bytes(255, 0xff, 0xff), 3), 3);
  assert.equal(top.coverSeq(bytes(255, 6), 3), 0);
});

Deno.test("the tombstone index agrees with a brute-force check on random and deeply nested ranges", async () => {
  await withSeed(testSeed(0x1d3), (rng) => {
    const key = () =>
      sk(String.fromCharCode(0x61 + rng.int(26), 0x61 + rng.int(26)));
    const ts: RangeTombstone[] = [];
    for (let i = 0; i < 300; i++) {
      let [a, b] = [key(), key()].sort(compareBytes);
      if (compareBytes(a, b) === 0) b = concat(b, bytes(0));
      ts.push({
        start: a,
        end: rng.chance(0.1) ? bytes(1) : b,
        seq: rng.range(1, 1000),
      });
    }
    const idx = new RangeTombstoneIndex(ts);
    for (let q = 0; q < 2000; q++) {
      const k = rng.chance(0.5) ? key() : concat(key(), bytes(rng.int(256)));
      const snap = rng.range(0, 1100);
      let want = 0;
      for (const t of ts) {
        if (t.seq <= snap && covers(t, k) && t.seq > want) want = t.seq;
      }
      assert.equal(idx.coverSeq(k, snap), want);
    }
  });
  // 20000 nested ranges: the index stays O(n log n) (a fragment list per
  // range would hold 2 * 10^8 seqnos).
  const nested: RangeTombstone[] = [];
  const n = 20000;
  const k4 = (i: number) => concat(bytes(0), Uint8Array.of(i >> 8, i & 255));
  for (let i = 0; i < n; i++) {
    nested.push({ start: k4(i), end: k4(2 * n - i), seq: i + 1 });
  }
  const started = performance.now();
  const big = new RangeTombstoneIndex(nested);
  assert.equal(big.coverSeq(k4(n), Infinity), n);
  assert.equal(big.coverSeq(k4(10), Infinity), 11);
  assert.equal(big.coverSeq(k4(n), 500), 500);
  assert.equal(big.coverSeq(k4(2 * n), Infinity), 0);
  const ms = performance.now() - started;
  assert.ok(ms < 5000, `building and querying took ${ms} ms`);
});

Deno.test("a tombstone is obsolete once no overlapping table can hold what it hides", () => {
  const t = tomb("b", "d", 10);
  const table = (lo: string, hi: string, minSeq: number, cleanSeq = 0) => ({
    smallest: sk(lo),
    largest: sk(hi),
    minSeq,
    cleanSeq,
  });
  assert.deepEqual(obsoleteTombstones([t], [table("c", "z", 3)]), []);
  assert.deepEqual(obsoleteTombstones([t], [table("c", "z", 3, 10)]), [t]);
  assert.deepEqual(obsoleteTombstones([t], [table("c", "z", 11)]), [t]);
  assert.deepEqual(obsoleteTombstones([t], [table("d", "z", 1)]), [t]);
  assert.deepEqual(obsoleteTombstones([t], [table("a", "b", 1)]), []);
  assert.deepEqual(obsoleteTombstones([t], []), [t]);
});

Deno.test("range-delete ops are checked, and a batch's earlier ops in the range are dropped", () => {
  const bad = (op: Parameters<typeof deleteRangeEntry>[0], re: RegExp) =>
    assert.throws(() => deleteRangeEntry(op, 3, 8), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.match(e.message, re);
      assert.match(e.message, /^op 3: /);
      return true;
    });
  bad({ type: "deleteRange", start: enc("b"), end: enc("a") }, /before end/);
  bad({ type: "deleteRange", start: enc("a"), end: enc("a") }, /before end/);
  bad({ type: "deleteRange", end: new Uint8Array(0) }, /end must not be/);
  bad({ type: "deleteRange", prefix: new Uint8Array(0) }, /prefix/);
  bad({ type: "deleteRange", prefix: enc("a"), end: enc("b") }, /not both/);
  bad({ type: "deleteRange", start: enc("123456789") }, /exceeds/);
  bad({ type: "deleteRange", start: "a" as unknown as Uint8Array }, /bytes/);
  const p = deleteRangeEntry({ type: "deleteRange", prefix: enc("ab") }, 0, 8);
  assert.equal(p.kind, KIND_RANGE_DELETE);
  assert.deepEqual([dec(p.key), dec(p.value)], ["ab", "ac"]);
  const all = deleteRangeEntry(
    { type: "deleteRange", prefix: bytes(255) },
    0,
    8,
  );
  assert.deepEqual([all.key, all.value], [bytes(255), new Uint8Array(0)]);
  const t = tombstoneFromEntry({ ...all, key: bytes(4, 255), seq: 9 });
  assert.deepEqual(t, { start: bytes(4, 255), end: bytes(5), seq: 9 });

  const put = (k: string) => ({
    key: enc(k),
    seq: 0,
    kind: KIND_PUT,
    encoding: 0,
    expiresAt: 0,
    value: enc("v"),
  });
  const range = deleteRangeEntry(
    { type: "deleteRange", start: enc("b"), end: enc("d") },
    1,
    8,
  );
  const kept = dropCoveredOps([put("a"), put("b"), put("c"), range, put("c")]);
  assert.deepEqual(kept.map((e) => dec(e.key)), ["a", "b", "c"]);
  assert.equal(kept[1].kind, KIND_RANGE_DELETE);
});

Deno.test("deleteRange hides keys at once in gets, scans, versions and conditions", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    for (const k of ["a", "b", "c", "d", "e"]) await db.put(enc(k), enc(k));
    await db.flush(); // some in a table ...
    await db.put(enc("c"), enc("c2")); // ... some in the memtable
    const snap = db.snapshot();
    const v = await db.deleteRange(enc("b"), enc("d"));
    assert.deepEqual(keys(db), ["a", "d", "e"]);
    assert.deepEqual(keys(db, { reverse: true }), ["e", "d", "a"]);
    assert.equal(db.get(enc("c")), undefined);
    assert.equal(db.version(enc("b")), null);
    assert.deepEqual(keys(db, { snapshot: snap }), ["a", "b", "c", "d", "e"]);
    assert.equal(dec(db.get(enc("c"), { snapshot: snap })!.value), "c2");
    snap.release();
    // The key is absent for conditions; a put on top of the range is seen.
    const v2 = await db.put(enc("b"), enc("b2"), { ifVersion: null });
    assert.ok(v2 > v);
    assert.deepEqual(keys(db), ["a", "b", "d", "e"]);
    // Batch: ops before the range delete inside it are deleted, after it kept.
    const v3 = await db.batch([
      { type: "put", key: enc("x1"), value: enc("1") },
      { type: "put", key: enc("y"), value: enc("1") },
      { type: "deleteRange", prefix: enc("x") },
      { type: "put", key: enc("x2"), value: enc("2") },
    ]);
    assert.deepEqual(keys(db), ["a", "b", "d", "e", "x2", "y"]);
    assert.equal(db.get(enc("x2"))!.version, v3);
    // Whole space from a start key on.
    await db.batch([{ type: "deleteRange", start: enc("e") }]);
    assert.deepEqual(keys(db), ["a", "b", "d"]);
    await assert.rejects(
      db.batch([{ type: "deleteRange", start: enc("b"), end: enc("a") }]),
      InvalidArgumentError,
    );
    await assert.rejects(
      db.batch([{
        type: "deleteRange",
        start: enc("a"),
        ifVersion: 1,
      } as never]),
      /takes no condition/,
    );
    await assert.rejects(
      db.batch([
        { type: "deleteRange", prefix: enc("a") },
        {
          type: "put",
          key: enc("p"),
          value: enc("v"),
          versionedKey: () => enc("q"),
        },
      ]),
      /versioned-key put/,
    );
    assert.deepEqual(keys(db), ["a", "b", "d"], "failed batches wrote nothing");
    await db.close();
  });
});

Deno.test("a condition racing an in-flight range delete sees it", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    const v1 = await db.put(enc("k"), enc("1"));
    // Both conditions are decided while the range delete is accepted but
    // not yet visible: they must count it, as they count in-flight puts.
    const del = db.deleteRange(enc("a"), enc("z"));
    const stale = db.put(enc("k"), enc("2"), { ifVersion: v1 });
    const fresh = db.put(enc("k"), enc("3"), { ifVersion: null });
    await assert.rejects(stale, { code: "precondition_failed" });
    const v3 = await fresh;
    assert.ok(v3 > await del);
    assert.equal(dec(db.get(enc("k"))!.value), "3");
    await db.close();
  });
});

Deno.test("range deletes stay inside their key space, space 255 included", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    const s1 = db.keySpace(1);
    const s255 = db.keySpace(255);
    for (const k of [bytes(0xff), bytes(0xff, 0xff), bytes(1)]) {
      await db.put(k, enc("0"));
      await s1.put(k, enc("1"));
      await s255.put(k, enc("255"));
    }
    await s1.deleteRange(bytes(0x80));
    await s255.batch([{ type: "deleteRange", prefix: bytes(0xff) }]);
    const ks = (s: { scan(): Iterable<{ key: Uint8Array }> }) =>
      [...s.scan()].map((i) => [...i.key].join("."));
    for (let round = 0; round < 2; round++) {
      assert.deepEqual(ks(db), ["1", "255", "255.255"]);
      assert.deepEqual(ks(s1), ["1"]);
      assert.deepEqual(ks(s255), ["1"]);
      await db.flush();
      await db.compactRange();
    }
    await db.close();
  });
});

Deno.test("compaction reclaims the space of a deleted range, once no snapshot needs it", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    const value = new Uint8Array(1000).fill(7);
    for (let i = 0; i < 2000; i++) {
      await db.put(enc(`k${String(i).padStart(5, "0")}`), value);
    }
    await db.compactRange();
    const full = tableBytes(db);
    const snap = db.snapshot();
    await db.deleteRange(enc("k00100"), enc("k01900"));
    assert.equal(keys(db).length, 200);
    await db.compactRange();
    assert.equal(
      stats(db).rangeTombstones.persisted,
      1,
      "a snapshot still reads the range",
    );
    assert.ok(tableBytes(db) >= full * 0.95, "the snapshot keeps the data");
    assert.equal(keys(db, { snapshot: snap }).length, 2000);
    snap.release();
    await db.compactRange();
    const after = tableBytes(db);
    assert.ok(
      after < full * 0.15,
      `tables hold ${after} bytes after compaction, ${full} before`,
    );
    assert.deepEqual(stats(db).rangeTombstones, { persisted: 0, live: 0 });
    assert.equal(keys(db).length, 200);
    await db.close();
    const again = await open(dir, { background: "inline" });
    assert.equal(keys(again).length, 200);
    assert.deepEqual(stats(again).rangeTombstones, { persisted: 0, live: 0 });
    await again.close();
  });
});

Deno.test("tombstones survive flush, reopen, backup and restore, and pass verify", async () => {
  await withTempDir(async (root) => {
    const dir = `${root}/db`;
    const db = await open(dir, { background: "inline" });
    for (let i = 0; i < 50; i++) await db.put(enc(`a${i}`), enc("x"));
    await db.flush();
    await db.deleteRange(enc("a1"), enc("a3")); // persisted by the flush
    await db.flush();
    await db.deleteRange(enc("a4"), enc("a5")); // only in the memtable + WAL
    const want = keys(db);
    assert.equal(want.length, 50 - 22 - 11);
    assert.deepEqual(stats(db).rangeTombstones, { persisted: 1, live: 2 });
    const backup = startBackup(db);
    const restored = `${root}/restored`;
    const summary = await restoreBackup(backup.stream(), restored);
    assert.equal(summary.version, db.visibleSeq);
    await db.close();
    assert.deepEqual(verify(dir).errors, []);
    for (const d of [dir, restored]) {
      const r = await open(d, { background: "inline" });
      assert.deepEqual(keys(r), want, d);
      assert.equal(stats(r).rangeTombstones.live, 2, d);
      await r.close();
    }
  });
});

Deno.test("the change history reports a range delete as one change inside its batch's group", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    const v = await db.batch([
      { type: "put", key: enc("a"), value: enc("1") },
      { type: "deleteRange", start: enc("b"), end: enc("d") },
      { type: "deleteRange", prefix: bytes(0xff) },
    ]);
    const check = (d: Db) => {
      const g = d.changes.after(v - 1)!.find((x) => x.version === v)!;
      assert.deepEqual(
        g.changes.map((c) => [c.type, dec(c.key), c.end && [...c.end]]),
        [
          ["put", "a", undefined],
          ["delete_range", "b", [0x64]],
          ["delete_range", "\xff", undefined],
        ].map(([t, k, e]) => [t, k === "\xff" ? dec(bytes(0xff)) : k, e]),
      );
    };
    check(db);
    await db.close();
    const again = await open(dir, { background: "inline" });
    check(again); // seeded from the replayed WAL
    await again.close();
  });
});

Deno.test("a directory written before range deletes opens, reads and takes them", async () => {
  await withTempDir(async (dir) => {
    const fixture = new URL("./fixtures/format2/", import.meta.url).pathname;
    for (const e of Deno.readDirSync(fixture)) {
      if (!e.name.endsWith(".md")) {
        Deno.copyFileSync(fixture + e.name, `${dir}/${e.name}`);
      }
    }
    const want: string[] = [];
    for (let i = 0; i < 20; i++) {
      if (i !== 5 && i !== 11) want.push(`k${String(i).padStart(2, "0")}`);
    }
    let db = await open(dir, { background: "inline" });
    assert.deepEqual(keys(db), want);
    assert.equal(dec(db.get(enc("k10"))!.value), "v10b");
    assert.equal(dec(db.get(enc("k12"))!.value), "v12c");
    assert.equal(dec(db.keySpace(1).get(enc("k15"))!.value), "space 1");
    await db.deleteRange(enc("k03"), enc("k13"));
    const left = want.filter((k) => k < "k03" || k >= "k13");
    assert.deepEqual(keys(db), left);
    await db.close();
    db = await open(dir, { background: "inline" });
    assert.deepEqual(keys(db), left);
    await db.compactRange();
    assert.deepEqual(keys(db), left);
    assert.equal(dec(db.keySpace(1).get(enc("k15"))!.value), "space 1");
    await db.close();
    assert.deepEqual(verify(dir).errors, []);
  });
});
