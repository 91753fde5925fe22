/**
 * Conditional writes are linearizable: a condition is decided against every
 * accepted write (in-flight ones included), but a failed condition that
 * depended on a write readers cannot see yet is answered only once that
 * write is visible, and re-checked when that write fails.
 */
import assert from "node:assert/strict";
import type { BatchOp, Db, ReadResult } from "../../mod.ts";
import { open, ShaleError } from "../../mod.ts";
import { FaultyFileSystem } from "../../engine/testing/faulty_fs.ts";
import { dec, enc, withTempDir } from "../_helpers.ts";
import { HeldSyncFs } from "../_held_sync_fs.ts";

async function withHeldDb(
  fn: (db: Db, fs: HeldSyncFs) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const fs = new HeldSyncFs();
    const db = await open(dir, { fs, background: "inline" });
    try {
      await fn(db, fs);
    } finally {
      fs.release();
      fs.failWhen = undefined;
      await db.close();
    }
  });
}

/** What a reader saw at the moment a write settled. */
interface Settled {
  ok: boolean;
  code?: string;
  /** db.get(key) run synchronously when the outcome arrived. */
  seen: ReadResult | undefined;
}

/** Records the outcome of `p` and what `get(key)` returns right when it arrives. */
function observe(db: Db, key: Uint8Array, p: Promise<number>): {
  done: Promise<Settled>;
  settled: () => boolean;
} {
  let settled = false;
  const done = p.then(
    () => ({ ok: true, seen: db.get(key) }),
    (err) => ({
      ok: false,
      code: err instanceof ShaleError ? err.code : String(err),
      seen: db.get(key),
    }),
  ).finally(() => settled = true);
  return { done, settled: () => settled };
}

/** Gives the event loop a few turns (timers included). */
function turns(): Promise<void> {
  return new Promise((r) => setTimeout(r, 20));
}

Deno.test("a failed If-None-Match waits until the in-flight create it lost to is visible", async () => {
  await withHeldDb(async (db, fs) => {
    const k = enc("k");
    fs.hold();
    const a = db.put(k, enc("a"), { ifVersion: null });
    await fs.reached;
    const b = observe(db, k, db.put(k, enc("b"), { ifVersion: null }));
    await turns();
    assert.equal(
      b.settled(),
      false,
      "the 412 must not be answered while the write it lost to is invisible",
    );
    fs.release();
    const version = await a;
    const r = await b.done;
    assert.equal(r.ok, false);
    assert.equal(r.code, "precondition_failed");
    assert.equal(r.seen?.version, version, "a read after the 412 sees a");
    assert.equal(dec(r.seen!.value), "a");
  });
});

Deno.test("failed If-Match, delete and check ops wait for the in-flight write they depended on", async () => {
  await withHeldDb(async (db, fs) => {
    const k = enc("k");
    const v0 = await db.put(k, enc("v0"));
    const cases: [string, (v: number) => Promise<number>][] = [
      ["put ifVersion", (v) => db.put(k, enc("x"), { ifVersion: v })],
      ["delete ifVersion", (v) => db.delete(k, { ifVersion: v })],
      ["check", (v) => db.batch([{ type: "check", key: k, ifVersion: v }])],
      ["batch", (v) =>
        db.batch([
          { type: "put", key: enc("other"), value: enc("y") },
          { type: "check", key: k, ifVersion: v },
        ])],
    ];
    let current = v0;
    for (const [name, conditional] of cases) {
      fs.hold();
      const a = db.put(k, enc(`after ${name}`));
      await fs.reached;
      const b = observe(db, k, conditional(current));
      await turns();
      assert.equal(b.settled(), false, `${name}: answered too early`);
      fs.release();
      current = await a;
      const r = await b.done;
      assert.equal(r.code, "precondition_failed", name);
      assert.equal(r.seen?.version, current, `${name}: the read sees a`);
    }
    assert.equal(db.get(enc("other")), undefined);
  });
});

Deno.test("a check-only batch that passes because of an in-flight delete waits for it", async () => {
  await withHeldDb(async (db, fs) => {
    const k = enc("k");
    await db.put(k, enc("v0"));
    fs.hold();
    const a = db.delete(k);
    await fs.reached;
    const b = observe(
      db,
      k,
      db.batch([{ type: "check", key: k, ifVersion: null }]),
    );
    await turns();
    assert.equal(b.settled(), false, "answered before the delete is visible");
    fs.release();
    await a;
    const r = await b.done;
    assert.equal(r.ok, true);
    assert.equal(r.seen, undefined, "a read after the check sees the delete");
  });
});

Deno.test("a condition that lost to an in-flight write is re-checked when that write fails", async () => {
  await withTempDir(async (dir) => {
    const fs = new FaultyFileSystem();
    const db = await open(dir, { fs, background: "inline" });
    try {
      const k = enc("k");
      let failures = 1;
      fs.failWhen = (op, path) =>
        op === "append" && path.endsWith(".log") && failures-- > 0
          ? new Error("No space left on device (os error 28)")
          : undefined;
      // Both are accepted in the same tick: a is queued (in flight) when b
      // is checked, then a's WAL append hits the full disk.
      const a = db.put(k, enc("a"), { ifVersion: null });
      const b = db.put(k, enc("b"), { ifVersion: null });
      const [ra, rb] = await Promise.allSettled([a, b]);
      assert.equal(ra.status, "rejected");
      assert.equal(
        ((ra as PromiseRejectedResult).reason as ShaleError).code,
        "disk_full",
      );
      assert.equal(
        rb.status,
        "fulfilled",
        `b lost only to a write that failed: ${
          (rb as PromiseRejectedResult).reason
        }`,
      );
      assert.equal(dec(db.get(k)!.value), "b");
      assert.equal(db.version(k), (rb as PromiseFulfilledResult<number>).value);
    } finally {
      fs.failWhen = undefined;
      await db.close();
    }
  });
});

Deno.test("two racing conditional writes never both win while the first is in flight", async () => {
  await withHeldDb(async (db, fs) => {
    const k = enc("k");
    const v0 = await db.put(k, enc("v0"));
    fs.hold();
    const ops: BatchOp[] = [{
      type: "put",
      key: k,
      value: enc("a"),
      ifVersion: v0,
    }];
    const a = db.batch(ops);
    await fs.reached;
    const b = db.put(k, enc("b"), { ifVersion: v0 });
    fs.release();
    const [ra, rb] = await Promise.allSettled([a, b]);
    assert.equal(ra.status, "fulfilled");
    assert.equal(rb.status, "rejected");
    assert.equal(dec(db.get(k)!.value), "a");
  });
});
