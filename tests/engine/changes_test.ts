/**
 * engine/changes.ts: the change history and its hook in the commit loop —
 * groups in seqno order, visible when the listener runs, one group per
 * batch, a byte budget that moves the floor, and a history that survives
 * a reopen as far back as the WAL that recovery replays.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { type ChangeGroup, open } from "../../mod.ts";
import {
  CHANGE_OVERHEAD_BYTES,
  ChangeHistory,
  GROUP_OVERHEAD_BYTES,
} from "../../engine/changes.ts";
import { KIND_DELETE, KIND_PUT } from "../../engine/entry.ts";
import { dec, enc, withTempDir } from "../_helpers.ts";

function entry(key: string, seq: number, value = "v") {
  return {
    key: enc(key),
    seq,
    kind: KIND_PUT,
    encoding: 0,
    expiresAt: 0,
    value: enc(value),
  };
}

const summary = (groups: readonly ChangeGroup[] | undefined) =>
  groups?.map((g) => [g.version, g.changes.map((c) => dec(c.key))]);

Deno.test("ChangeHistory: after() reads groups above a version; the budget drops the oldest and raises the floor", () => {
  const h = new ChangeHistory(10, 1000);
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
  // Three groups, four changes, 7 bytes of keys and values.
  equal(h.bytes, 3 * GROUP_OVERHEAD_BYTES + 4 * CHANGE_OVERHEAD_BYTES + 7);
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

Deno.test("DbOptions.changeHistoryBytes is validated", async () => {
  await withTempDir(async (dir) => {
    let err: unknown;
    try {
      await open(dir, { changeHistoryBytes: -1 });
    } catch (e) {
      err = e;
    }
    ok(err instanceof RangeError);
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
