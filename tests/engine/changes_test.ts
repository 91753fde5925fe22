/**
 * engine/changes.ts: the change history and its hook in the commit loop —
 * groups in seqno order, visible when the listener runs, one group per
 * batch, a byte budget that moves the floor, and a history that survives
 * a reopen as far back as the WAL that recovery replays.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import {
  type ChangeGroup,
  InvalidArgumentError,
  open,
  USER_KEY_SPACE,
} from "../../mod.ts";
import {
  CHANGE_OVERHEAD_BYTES,
  ChangeHistory,
  GROUP_OVERHEAD_BYTES,
  LAZY_GROUP_OVERHEAD_BYTES,
} from "../../engine/changes.ts";
import {
  KIND_DELETE,
  KIND_PUT,
  KIND_RANGE_DELETE,
} from "../../engine/entry.ts";
import { encodeBatchOps } from "../../engine/batch_ops.ts";
import { dec, enc, withTempDir } from "../_helpers.ts";

/** A WAL entry as the engine publishes it: its key is a stored key. */
function entry(key: string, seq: number, value = "v", space = USER_KEY_SPACE) {
  return {
    key: stored(space, key),
    seq,
    kind: KIND_PUT,
    encoding: 0,
    expiresAt: 0,
    value: enc(value),
  };
}

/** The stored form of `key` in `space` (engine/FORMAT.md). */
function stored(space: number, key: string): Uint8Array {
  return new Uint8Array([space, ...enc(key)]);
}

const summary = (groups: readonly ChangeGroup[] | undefined) =>
  groups?.map((g) => [g.version, g.changes.map((c) => dec(c.key))]);

Deno.test("ChangeHistory: after() reads groups above a version; the budget drops the oldest and raises the floor", () => {
  // Room for the three groups below and a little more.
  const h = new ChangeHistory(
    10,
    3 * GROUP_OVERHEAD_BYTES + 4 * CHANGE_OVERHEAD_BYTES + 100,
  );
  deepEqual(h.after(10), []);
  h.publish(11, [entry("a", 11)]);
  h.publish(13, [entry("b", 13), entry("c", 13)]); // seqnos may skip
  h.publish(14, [{ ...entry("a", 14), kind: KIND_DELETE, value: enc("") }]);
  equal(h.head, 14);
  deepEqual(summary(h.after(10)), [[11, ["a"]], [13, ["b", "c"]], [14, [
    "a",
  ]]]);
  deepEqual(summary(h.after(11)), [[13, ["b", "c"]], [14, ["a"]]]);
  deepEqual(summary(h.after(12)), [[13, ["b", "c"]], [14, ["a"]]]);
  deepEqual(summary(h.after(13, 1)), [[14, ["a"]]]);
  equal(h.after(14)?.length, 0);
  equal(h.after(9), undefined, "below the floor");
  equal(h.after(14)?.length, 0);
  equal(h.after(13)![0].changes[0].type, "delete");
  // Three groups, four changes, 11 bytes: four stored keys of 2 bytes
  // (space byte and key) and three 1-byte values.
  equal(h.bytes, 3 * GROUP_OVERHEAD_BYTES + 4 * CHANGE_OVERHEAD_BYTES + 11);
  equal(h.published, h.bytes);
  h.maxBytes = h.bytes - 1;
  equal(h.floor, 11, "the oldest group went");
  equal(h.after(10), undefined);
  deepEqual(summary(h.after(11)), [[13, ["b", "c"]], [14, ["a"]]]);
  h.maxBytes = 0;
  equal(h.floor, 14);
  equal(h.groups, 0);
  deepEqual(h.after(14), []);
});

Deno.test("ChangeHistory: many groups through a small budget keep exactly the newest ones", () => {
  const h = new ChangeHistory(0, 50 * (GROUP_OVERHEAD_BYTES + 50));
  for (let v = 1; v <= 5000; v++) h.publish(v, [entry(`k${v % 10}`, v)]);
  const kept = h.after(h.floor)!;
  equal(kept[0].version, h.floor + 1);
  equal(kept.at(-1)!.version, 5000);
  equal(kept.length, h.groups);
  ok(h.bytes <= h.maxBytes);
  for (let i = 1; i < kept.length; i++) {
    equal(kept[i].version, kept[i - 1].version + 1);
  }
});

Deno.test("ChangeHistory: a dropped group is released at once, not when the array is next compacted", () => {
  // Held past the budget, dropped groups (and the write buffers their
  // payloads view) looked live to every full collection: under a steady
  // write load V8 then ran one every ~10% of heap growth, each freeing
  // almost nothing, while the history held up to twice its budget.
  const h = new ChangeHistory(0, 50 * (GROUP_OVERHEAD_BYTES + 50));
  for (let v = 1; v <= 5000; v++) {
    h.publish(v, [entry(`k${v % 10}`, v)]);
    equal(
      h.heldGroups,
      h.groups,
      `after version ${v}: ${h.heldGroups} groups held for ${h.groups} retained`,
    );
  }
  h.maxBytes = 0;
  equal(h.groups, 0);
  equal(h.heldGroups, 0);
});

Deno.test("Db.changes: listeners run in seqno order once a write is visible; a batch is one group", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "inline" });
    try {
      const seen: [number, string[], boolean][] = [];
      const off = db.changes.subscribe((g) => {
        const k = g.changes[0].key;
        seen.push([
          g.version,
          g.changes.map((c) => `${c.type} ${dec(c.key)}`),
          // Visible to readers when the listener runs.
          db.visibleSeq >= g.version &&
          (g.changes[0].type === "delete" || db.get(k) !== undefined),
        ]);
      });
      const v1 = db.put(enc("a"), enc("1"));
      const v2 = db.batch([
        { type: "put", key: enc("b"), value: enc("2") },
        { type: "delete", key: enc("a") },
      ]);
      const v3 = db.delete(enc("b"));
      const versions = await Promise.all([v1, v2, v3]);
      deepEqual(seen, [
        [versions[0], ["put a"], true],
        [versions[1], ["put b", "delete a"], true],
        [versions[2], ["delete b"], true],
      ]);
      off();
      await db.put(enc("c"), enc("3"));
      equal(seen.length, 3, "unsubscribed");
      equal(db.changes.head, db.visibleSeq);
    } finally {
      await db.close();
    }
  });
});

Deno.test("Db.changes: after a reopen the history holds the replayed WAL; after a flush it starts at the last version", async () => {
  await withTempDir(async (dir) => {
    let db = await open(dir, { sync: "always", background: "inline" });
    const v1 = await db.put(enc("a"), enc("1"));
    const v2 = await db.batch([
      { type: "put", key: enc("b"), value: enc("2") },
      { type: "put", key: enc("c"), value: enc("3") },
    ]);
    await db.close();

    db = await open(dir, { sync: "always", background: "inline" });
    try {
      equal(db.changes.floor, v1 - 1);
      deepEqual(summary(db.changes.after(v1 - 1)), [[v1, ["a"]], [v2, [
        "b",
        "c",
      ]]]);
      await db.flush();
    } finally {
      await db.close();
    }

    db = await open(dir, { sync: "always", background: "inline" });
    try {
      equal(db.changes.floor, v2, "flushed writes are no longer history");
      equal(db.changes.after(v1), undefined);
      deepEqual(db.changes.after(v2), []);
      const v3 = await db.put(enc("d"), enc("4"));
      deepEqual(summary(db.changes.after(v2)), [[v3, ["d"]]]);
    } finally {
      await db.close();
    }
  });
});

Deno.test("ChangeHistory: each change carries its key space and the key as written, never the stored key", () => {
  const h = new ChangeHistory(0, 1 << 20);
  const stamped = entry("k", 1, "x", 1);
  const wal = [entry("\x00a", 1), stamped];
  h.publish(1, wal);
  h.publish(2, [entry("b", 2, "y", 255)], true); // as recovery does
  const [g1, g2] = h.after(0)!;
  deepEqual(
    g1.changes.map((c) => [c.space, dec(c.key), dec(c.value)]),
    [[USER_KEY_SPACE, "\x00a", "v"], [1, "k", "x"]],
  );
  deepEqual(
    g2.changes.map((c) => [c.space, dec(c.key), dec(c.value)]),
    [[255, "b", "y"]],
  );
  // Published without a copy, a change is a view of the entry's bytes; a
  // copied one (recovery) owns its bytes, so it pins no log buffer.
  equal(g1.changes[1].key.buffer, stamped.key.buffer);
  equal(g2.changes[0].key.byteLength, g2.changes[0].key.buffer.byteLength);
  // Stored keys are counted: "\x00a" is 3 stored bytes, "k" and "b" 2.
  equal(
    h.bytes,
    2 * GROUP_OVERHEAD_BYTES + 3 * CHANGE_OVERHEAD_BYTES + (3 + 1) +
      (2 + 1) + (2 + 1),
  );
});

Deno.test("ChangeHistory: a group published with its encoded ops reads as the eager one and counts its payload, not per-change objects", () => {
  const ops = [
    entry("a", 0, "1"),
    { ...entry("b", 0), kind: KIND_DELETE, value: enc("") },
    { ...entry("c", 0), kind: KIND_RANGE_DELETE, value: stored(0, "f") },
    { ...entry("g", 0), kind: KIND_RANGE_DELETE, value: enc("") },
    { ...entry("h", 0, "2", 7), encoding: 3, expiresAt: 1234 },
  ].map((e) => ({ ...e, key: e.key.subarray(1) })); // user keys, space 0
  const { payload, entries } = encodeBatchOps(ops, undefined, 0);
  const eager = new ChangeHistory(0, 1 << 20);
  const lazy = new ChangeHistory(0, 1 << 20);
  eager.publish(9, entries);
  lazy.publish(9, entries, false, payload);
  // It keeps the payload (carved at 8-byte alignment) and one small object.
  equal(lazy.bytes, LAZY_GROUP_OVERHEAD_BYTES + ((payload.length + 7) & ~7));
  ok(lazy.bytes < eager.bytes);
  const [e] = eager.after(0)!;
  const [l] = lazy.after(0)!;
  equal(l.version, 9);
  deepEqual(l.changes, e.changes);
  equal(l.changes, l.changes); // the same array while it is held
  equal(l.changes[0].key.buffer, payload.buffer); // views, no copies
});

Deno.test("Db.changes: writes to every key space are recorded with their space; user keys lose no byte", async () => {
  await withTempDir(async (dir) => {
    let db = await open(dir, { sync: "always", background: "inline" });
    const live: [number, string][] = [];
    db.changes.subscribe((g) => {
      for (const c of g.changes) live.push([c.space, dec(c.key)]);
    });
    // A user key that starts with 0x00 looks like a stored key of space 0:
    // it must come out whole.
    await db.put(enc("\x00zero"), enc("1"));
    await db.keySpace(1).put(enc("kvc"), enc("2"));
    await db.keySpace(7).batch([
      { type: "put", key: enc("p"), value: enc("3") },
      { type: "delete", key: enc("q") },
    ]);
    const expected = [
      [USER_KEY_SPACE, "\x00zero"],
      [1, "kvc"],
      [7, "p"],
      [7, "q"],
    ];
    deepEqual(live, expected);
    await db.close();
    // The history recovery seeds from the WAL says the same.
    db = await open(dir, { sync: "always", background: "inline" });
    try {
      const replayed = db.changes.after(db.changes.floor)!.flatMap((g) =>
        g.changes.map((c) => [c.space, dec(c.key)])
      );
      deepEqual(replayed, expected);
    } finally {
      await db.close();
    }
  });
});

Deno.test("DbOptions.changeHistoryBytes is validated like every option", async () => {
  await withTempDir(async (dir) => {
    for (const bad of [-1, 1.5, NaN, "64MiB"]) {
      let err: unknown;
      try {
        await open(`${dir}/never`, {
          changeHistoryBytes: bad as number,
        });
      } catch (e) {
        err = e;
      }
      ok(err instanceof InvalidArgumentError, `${bad}: got ${err}`);
      equal(err.code, "invalid_argument");
      ok(err.message.includes("changeHistoryBytes"), err.message);
    }
    const h = new ChangeHistory(0);
    let err: unknown;
    try {
      h.maxBytes = -1;
    } catch (e) {
      err = e;
    }
    ok(err instanceof InvalidArgumentError, `maxBytes: got ${err}`);
  });
});

Deno.test("Db.changes: a listener that throws is unsubscribed and the store keeps taking writes", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "inline" });
    try {
      let calls = 0;
      db.changes.subscribe(() => {
        calls++;
        throw new Error("listener bug");
      });
      await db.put(enc("a"), enc("1"));
      await db.put(enc("b"), enc("2"));
      equal(calls, 1);
      equal((db.changes.listenerError as Error).message, "listener bug");
      equal(db.health().ok, true);
      equal(dec(db.get(enc("b"))!.value), "2");
    } finally {
      await db.close();
    }
  });
});
