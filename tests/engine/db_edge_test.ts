import assert from "node:assert/strict";
import type { Db } from "../../mod.ts";
import { open, ShaleError } from "../../mod.ts";
import type { DbOptions } from "../../engine/types.ts";
import { bytes, enc, hex, NoSyncFileSystem, withTempDir } from "../_helpers.ts";

function hasCode(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof ShaleError, `expected a ShaleError, got ${err}`);
    assert.equal(err.code, code);
    return true;
  };
}

async function withDb(
  options: DbOptions,
  fn: (db: Db, dir: string) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline", ...options });
    try {
      await fn(db, dir);
    } finally {
      await db.close();
    }
  });
}

function keysOf(items: Iterable<{ key: Uint8Array }>): string[] {
  return [...items].map((i) => hex(i.key));
}

Deno.test("an empty value is stored and read back as empty, not absent", async () => {
  await withDb({}, async (db, dir) => {
    const v = await db.put(enc("k"), new Uint8Array(0));
    assert.equal(db.get(enc("k"))?.value.length, 0);
    assert.equal(db.version(enc("k")), v);
    await db.flush();
    assert.equal(db.get(enc("k"))?.value.length, 0);
    await db.close();
    const again = await open(dir, { background: "inline" });
    try {
      assert.equal(again.get(enc("k"))?.value.length, 0);
      assert.deepEqual(keysOf(again.scan()), ["6b"]);
    } finally {
      await again.close();
    }
  });
});

Deno.test("a 16 MiB value round trips through the WAL, a flush and a reopen", async () => {
  await withTempDir(async (dir) => {
    const big = new Uint8Array(16 << 20);
    for (let i = 0; i < big.length; i += 4093) big[i] = i & 0xff;
    big[big.length - 1] = 0xab;
    let db = await open(dir, { background: "inline", sync: "none" });
    try {
      await db.put(enc("big"), big);
      assert.deepEqual(db.get(enc("big"))?.value, big);
      await db.close();
      db = await open(dir, { background: "inline", sync: "none" });
      assert.deepEqual(db.get(enc("big"))?.value, big, "replayed from the WAL");
      await db.flush();
      assert.deepEqual(db.get(enc("big"))?.value, big, "read from a table");
    } finally {
      await db.close();
    }
  });
});

Deno.test("a value of 16 MiB + 1 is rejected with value_too_large and nothing is written", async () => {
  await withDb({}, async (db) => {
    const before = db.lastSeq;
    await assert.rejects(
      db.put(enc("k"), new Uint8Array((16 << 20) + 1)),
      hasCode("value_too_large"),
    );
    await assert.rejects(
      db.batch([
        { type: "put", key: enc("a"), value: bytes(1) },
        { type: "put", key: enc("k"), value: new Uint8Array((16 << 20) + 1) },
      ]),
      hasCode("value_too_large"),
      "one oversized op rejects the whole batch",
    );
    assert.equal(db.lastSeq, before, "no seqno was used");
    assert.equal(db.get(enc("a")), undefined);
    assert.equal(db.get(enc("k")), undefined);
    assert.equal((db.stats() as { wal: { bytes: number } }).wal.bytes, 8);
  });
});

Deno.test("the value limit is configurable", async () => {
  await withDb({ maxValueBytes: 10 }, async (db) => {
    await db.put(enc("k"), new Uint8Array(10));
    await assert.rejects(
      db.put(enc("k"), new Uint8Array(11)),
      hasCode("value_too_large"),
    );
  });
});

Deno.test("a 4096-byte key is accepted and a 4097-byte key is rejected with key_too_long", async () => {
  await withDb({}, async (db) => {
    const k = new Uint8Array(4096).fill(0xff);
    await db.put(k, enc("v"));
    await db.flush();
    assert.deepEqual(db.get(k)?.value, enc("v"));
    const tooLong = new Uint8Array(4097);
    await assert.rejects(db.put(tooLong, enc("v")), hasCode("key_too_long"));
    await assert.rejects(db.delete(tooLong), hasCode("key_too_long"));
    assert.throws(() => db.get(tooLong), hasCode("key_too_long"));
    await assert.rejects(
      db.put(new Uint8Array(0), enc("v")),
      hasCode("invalid_argument"),
      "an empty key is rejected",
    );
  });
});

Deno.test("keys containing 0x00 and 0xFF are distinct and sort unsigned", async () => {
  await withDb({}, async (db) => {
    const keys = [
      bytes(0x00),
      bytes(0x00, 0x00),
      bytes(0x00, 0xff),
      bytes(0x7f),
      bytes(0x80),
      bytes(0xff),
      bytes(0xff, 0x00),
      bytes(0xff, 0xff, 0xff),
    ];
    for (const k of [...keys].reverse()) await db.put(k, k);
    const want = keys.map(hex);
    assert.deepEqual(keysOf(db.scan()), want);
    await db.flush();
    assert.deepEqual(keysOf(db.scan()), want);
    for (const k of keys) assert.deepEqual(db.get(k)?.value, k);
    assert.equal(db.get(bytes(0x00, 0x00, 0x00)), undefined);
  });
});

Deno.test("prefix scans at 0xFF boundaries include exactly the keys with the prefix", async () => {
  await withDb({}, async (db) => {
    const keys = [
      bytes(0xfe),
      bytes(0xfe, 0xff),
      bytes(0xfe, 0xff, 0xff),
      bytes(0xff),
      bytes(0xff, 0x00),
      bytes(0xff, 0xfe),
      bytes(0xff, 0xff),
      bytes(0xff, 0xff, 0x00),
      bytes(0xff, 0xff, 0xff),
    ];
    for (const k of keys) await db.put(k, bytes(1));
    await db.flush();
    await db.put(bytes(0xff, 0xff, 0x01), bytes(2)); // one in the memtable
    const scan = (prefix: Uint8Array, reverse = false) =>
      keysOf(db.scan({ prefix, reverse }));
    assert.deepEqual(scan(bytes(0xff, 0xff)), [
      "ffff",
      "ffff00",
      "ffff01",
      "ffffff",
    ]);
    assert.deepEqual(scan(bytes(0xff, 0xff), true), [
      "ffffff",
      "ffff01",
      "ffff00",
      "ffff",
    ]);
    assert.deepEqual(scan(bytes(0xfe, 0xff)), ["feff", "feffff"]);
    assert.deepEqual(scan(bytes(0xfe, 0xff), true), ["feffff", "feff"]);
    assert.deepEqual(scan(bytes(0xff, 0xff, 0xff)), ["ffffff"]);
    assert.equal(scan(bytes(0xff)).length, 7);
    assert.deepEqual(
      keysOf(
        db.scan({ prefix: bytes(0xff), start: bytes(0xff, 0xfe), limit: 2 }),
      ),
      ["fffe", "ffff"],
    );
    assert.deepEqual(
      keysOf(db.scan({ prefix: bytes(0xff), end: bytes(0xff, 0xfe) })),
      ["ff", "ff00"],
    );
  });
});

Deno.test("reverse scans honour start, end and limit across memtable and tables", async () => {
  await withDb({ memtableBytes: 4096 }, async (db) => {
    for (let i = 0; i < 300; i++) {
      await db.put(bytes(i >> 8, i & 0xff), bytes(i & 0xff));
    }
    for (let i = 0; i < 300; i += 3) await db.delete(bytes(i >> 8, i & 0xff));
    const live = [];
    for (let i = 0; i < 300; i++) {
      if (i % 3 !== 0) live.push(hex(bytes(i >> 8, i & 0xff)));
    }
    assert.deepEqual(keysOf(db.scan({ reverse: true })), [...live].reverse());
    assert.deepEqual(
      keysOf(
        db.scan({ reverse: true, start: bytes(0, 10), end: bytes(0, 20) }),
      ),
      ["0013", "0011", "0010", "000e", "000d", "000b", "000a"],
    );
    assert.deepEqual(keysOf(db.scan({ reverse: true, limit: 2 })), [
      "012b",
      "012a",
    ]);
    assert.deepEqual(
      keysOf(db.scan({ reverse: true, end: bytes(0, 3), limit: 5 })),
      ["0002", "0001"],
    );
    assert.deepEqual(keysOf(db.scan({ start: bytes(9), end: bytes(1) })), []);
    assert.deepEqual(keysOf(db.scan({ limit: 0 })), []);
  });
});

Deno.test("200k keys across many tables read back exactly, forward and reverse", async () => {
  await withTempDir(async (dir) => {
    const options: DbOptions = {
      background: "inline",
      sync: "none",
      memtableBytes: 1 << 20,
      fs: new NoSyncFileSystem(),
    };
    const db = await open(dir, options);
    const n = 200_000;
    const key = (i: number) => {
      const k = new Uint8Array(8);
      new DataView(k.buffer).setUint32(0, i * 2654435761 >>> 0);
      new DataView(k.buffer).setUint32(4, i);
      return k;
    };
    try {
      const batch = 500;
      for (let i = 0; i < n; i += batch) {
        const writes: Promise<number>[] = [];
        for (let j = i; j < i + batch; j++) {
          writes.push(db.put(key(j), key(j).subarray(4)));
        }
        await Promise.all(writes);
      }
      await db.flush();
      const stats = db.stats() as {
        levels: { tables: number }[];
        ops: { flushes: number };
      };
      const tables = stats.levels.reduce((s, l) => s + l.tables, 0);
      assert.ok(stats.ops.flushes >= 10, `flushes: ${stats.ops.flushes}`);
      assert.ok(tables >= 2, `tables: ${tables}`);
      for (let i = 0; i < n; i += 997) {
        assert.deepEqual(db.get(key(i))?.value, key(i).subarray(4), `key ${i}`);
      }
      let count = 0;
      let prev: Uint8Array | undefined;
      for (const item of db.scan()) {
        if (prev) {
          assert.ok(hex(prev) < hex(item.key), "ascending, no duplicates");
        }
        prev = item.key;
        count++;
      }
      assert.equal(count, n);
      assert.equal(db.scan({ reverse: true }).toArray().length, n);
    } finally {
      await db.close();
    }
  });
});

Deno.test("a second open of a locked directory fails with code locked, and close releases the lock", async () => {
  await withTempDir(async (dir) => {
    const first = await open(dir, { background: "inline" });
    try {
      await first.put(enc("k"), enc("v"));
      await assert.rejects(open(dir, { background: "inline" }), (err) => {
        hasCode("locked")(err);
        assert.match((err as Error).message, new RegExp(dir));
        return true;
      });
      assert.deepEqual(
        first.get(enc("k"))?.value,
        enc("v"),
        "first still works",
      );
    } finally {
      await first.close();
    }
    const second = await open(dir, { background: "inline" });
    try {
      assert.deepEqual(second.get(enc("k"))?.value, enc("v"));
    } finally {
      await second.close();
    }
  });
});

Deno.test("a closed database rejects reads and writes with code closed", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    await db.close();
    await db.close(); // idempotent
    await assert.rejects(db.put(enc("k"), enc("v")), hasCode("closed"));
    assert.throws(() => db.get(enc("k")), hasCode("closed"));
    assert.throws(() => db.scan().next(), hasCode("closed"));
    assert.equal(db.health().ok, false);
  });
});

Deno.test("close settles every pending write and the acknowledged ones survive a reopen", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    const early = Array.from(
      { length: 20 },
      (_, i) => db.put(bytes(i), bytes(i)),
    );
    await Promise.resolve();
    await Promise.resolve(); // let the first writes reach the commit queue
    const late = Array.from(
      { length: 20 },
      (_, i) => db.put(bytes(100 + i), bytes(i)),
    );
    // Handled before close() runs: it refuses the writes that reach the
    // commit pipeline after its call.
    const all = Promise.allSettled([...early, ...late]);
    await db.close();
    const settled = await all;
    const acked: number[] = [];
    settled.forEach((r, i) => {
      if (r.status === "fulfilled") acked.push(i < 20 ? i : 80 + i);
      else hasCode("closed")(r.reason);
    });
    assert.ok(acked.length >= 20, `queued writes finished: ${acked.length}`);
    const again = await open(dir, { background: "inline" });
    try {
      for (const k of acked) assert.ok(again.get(bytes(k)), `key ${k}`);
      assert.equal(again.scan().toArray().length, acked.length);
    } finally {
      await again.close();
    }
  });
});

Deno.test("stats reports counters, memtable, WAL, levels, block cache and recovery", async () => {
  await withDb({}, async (db) => {
    await db.put(enc("a"), enc("1"));
    await db.delete(enc("b"));
    await db.batch([{ type: "put", key: enc("c"), value: enc("3") }, {
      type: "delete",
      key: enc("d"),
    }]);
    db.get(enc("a"));
    db.scan().toArray();
    await db.flush();
    db.get(enc("a"));
    const s = db.stats() as Record<string, Record<string, unknown>>;
    assert.doesNotThrow(() => JSON.stringify(s), "JSON-serialisable");
    const ops = s.ops as Record<string, number>;
    assert.equal(ops.puts, 2);
    assert.equal(ops.deletes, 2);
    assert.equal(ops.batches, 1);
    assert.equal(ops.gets, 2);
    assert.equal(ops.scans, 1);
    assert.ok(ops.walSyncs >= 1);
    assert.ok(ops.walSyncs <= 3);
    assert.equal(ops.flushes, 1);
    assert.deepEqual(s.seq, { last: 3, visible: 3 });
    assert.equal(typeof (s.memtable as Record<string, number>).bytes, "number");
    assert.equal(typeof (s.wal as Record<string, number>).bytes, "number");
    const levels = s.levels as unknown as {
      level: number;
      tables: number;
      bytes: number;
    }[];
    assert.equal(levels.length, 7);
    assert.equal(levels[0].tables, 1);
    assert.ok(levels[0].bytes > 0);
    for (const k of ["hits", "misses"]) {
      assert.equal(
        typeof (s.blockCache as Record<string, number>)[k],
        "number",
      );
    }
    for (const k of ["bloomChecks", "bloomFalsePositives"]) {
      assert.equal(typeof (s.tables as Record<string, number>)[k], "number", k);
    }
    assert.equal(typeof (s.recovery as Record<string, number>).ms, "number");
    assert.equal((s.recovery as Record<string, number>).tornTails, 0);
  });
});

Deno.test("two racing ifVersion puts: exactly one wins even before its fsync completes", async () => {
  await withDb({}, async (db) => {
    const v0 = await db.put(enc("k"), enc("v0"));
    for (let round = 0; round < 5; round++) {
      const base = db.version(enc("k"))!;
      const a = db.put(enc("k"), enc(`a${round}`), { ifVersion: base });
      // a is accepted but not yet durable: the second writer must see it.
      const b = db.put(enc("k"), enc(`b${round}`), { ifVersion: base });
      const [ra, rb] = await Promise.allSettled([a, b]);
      assert.equal(ra.status, "fulfilled");
      assert.equal(rb.status, "rejected");
      hasCode("precondition_failed")((rb as PromiseRejectedResult).reason);
      assert.deepEqual(db.get(enc("k"))?.value, enc(`a${round}`));
      assert.ok(db.version(enc("k"))! > v0);
    }
  });
});

Deno.test("a write is not readable before it is durable, but conditions already see it", async () => {
  await withDb({}, async (db) => {
    const p = db.put(enc("k"), enc("v"));
    const q = assert.rejects(
      db.put(enc("k"), enc("w"), { ifVersion: null }),
      hasCode("precondition_failed"),
    );
    assert.equal(db.get(enc("k")), undefined, "not visible before durable");
    const seq = await p;
    await q;
    assert.equal(db.version(enc("k")), seq);
    const d = db.delete(enc("k"));
    const stale = assert.rejects(
      db.put(enc("k"), enc("x"), { ifVersion: seq }),
      hasCode("precondition_failed"),
    );
    await d;
    await stale;
    assert.equal(db.version(enc("k")), null);
    await db.put(enc("k"), enc("x"), { ifVersion: null });
  });
});

Deno.test("a racing If-None-Match create lets exactly one writer create the key", async () => {
  await withDb({}, async (db) => {
    const results = await Promise.allSettled(
      Array.from(
        { length: 8 },
        (_, i) => db.put(enc("new"), bytes(i), { ifVersion: null }),
      ),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    assert.deepEqual(db.get(enc("new"))?.value, bytes(0));
  });
});

Deno.test("a failing condition in a batch applies none of its ops and names the op", async () => {
  await withDb({}, async (db) => {
    const v = await db.put(enc("a"), enc("1"));
    await assert.rejects(
      db.batch([
        { type: "put", key: enc("x"), value: enc("new") },
        { type: "check", key: enc("a"), ifVersion: v },
        { type: "delete", key: enc("a"), ifVersion: v + 1 },
      ]),
      (err: unknown) => {
        hasCode("precondition_failed")(err);
        assert.equal((err as { index: number }).index, 2);
        return true;
      },
    );
    assert.equal(db.get(enc("x")), undefined);
    assert.equal(db.version(enc("a")), v);
    const seq = await db.batch([
      { type: "put", key: enc("x"), value: enc("new"), ifVersion: null },
      { type: "delete", key: enc("a"), ifVersion: v },
    ]);
    assert.equal(db.get(enc("x"))?.version, seq);
    assert.equal(db.get(enc("a")), undefined);
  });
});

Deno.test("a batch that names one key twice reads the same before and after a flush, both directions", async () => {
  await withDb({}, async (db) => {
    await db.batch([
      { type: "put", key: enc("k"), value: enc("first") },
      { type: "put", key: enc("k"), value: enc("second") },
    ]);
    const before = {
      get: db.get(enc("k"))?.value,
      fwd: db.scan().toArray().map((i) => i.value),
      rev: db.scan({ reverse: true }).toArray().map((i) => i.value),
    };
    assert.deepEqual(before.fwd, before.rev, "forward and reverse scans agree");
    assert.deepEqual(before.fwd, [before.get]);
    await db.flush();
    assert.deepEqual(db.get(enc("k"))?.value, before.get, "same after a flush");
    assert.deepEqual(db.scan().toArray().map((i) => i.value), before.fwd);
  });
});

Deno.test("a put copies its key and value: changing the caller's buffers later changes nothing", async () => {
  await withDb({}, async (db) => {
    const key = enc("key1");
    const value = enc("value");
    await db.put(key, value);
    value[0] = 0x58; // "X"
    key[3] = 0x39; // "key9"
    assert.deepEqual(db.get(enc("key1"))?.value, enc("value"));
    assert.equal(db.get(enc("key9")), undefined);
    assert.deepEqual(keysOf(db.scan()), [hex(enc("key1"))]);
  });
});
