/**
 * Borrowed reads (engine/value_view.ts): `db[getBorrowed]` answers what
 * `db.get` answers, on every read path; on a mapped table its value is a
 * view into the map where `get` gives a copy; and a value copied before the
 * caller yields outlives the table it came from.
 */
import assert from "node:assert/strict";
import { mmapAvailable } from "../../engine/mmap.ts";
import { getBorrowed } from "../../engine/value_view.ts";
import { type Db, open, type ReadResult } from "../../mod.ts";
import { dec, enc, withTempDir } from "../_helpers.ts";

const N = 500;

function key(i: number): Uint8Array {
  return enc(`key${String(i).padStart(5, "0")}`);
}

function value(i: number, round: number): Uint8Array {
  return enc(`value ${i} of round ${round} `.repeat(3));
}

/** Writes N keys for `round`, then moves them into a table. */
async function fill(db: Db, round: number): Promise<void> {
  await db.batch(
    Array.from({ length: N }, (_, i) => ({
      type: "put" as const,
      key: key(i),
      value: value(i, round),
    })),
  );
  await db.flush();
}

/** True when `v` is a window on a larger buffer (not a buffer of its own). */
function isWindow(v: Uint8Array): boolean {
  return v.byteLength !== v.buffer.byteLength;
}

/** A read's answer, copied (the test must not keep borrowed bytes either). */
function seen(r: ReadResult | undefined): string | undefined {
  return r === undefined ? undefined : `${r.version} ${dec(r.value)}`;
}

/** Runs `fn` on a fresh store read through `readMode`, round 1 in a table. */
async function withFilledDb(
  readMode: "mmap" | "pread",
  fn: (db: Db) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", readMode });
    try {
      await fill(db, 1);
      await fn(db);
    } finally {
      await db.close();
    }
  });
}

for (const readMode of ["mmap", "pread"] as const) {
  Deno.test({
    name: `getBorrowed answers as get does (${readMode})`,
    ignore: readMode === "mmap" && !mmapAvailable(),
    fn: () =>
      withFilledDb(readMode, async (db) => {
        await db.put(key(0), enc("in the memtable"));
        await db.delete(key(1));
        for (const i of [0, 1, 2, N - 1, N, N + 7]) {
          const k = i === N + 7 ? enc("absent") : key(i);
          assert.equal(seen(db[getBorrowed](k)), seen(db.get(k)), `key ${i}`);
        }
      }),
  });
}

Deno.test({
  name: "getBorrowed lends the map's bytes where get copies them",
  ignore: !mmapAvailable(),
  fn: () =>
    withFilledDb("mmap", (db) => {
      const copy = db.get(key(5))!.value;
      assert.equal(isWindow(copy), false);
      assert.equal(isWindow(db[getBorrowed](key(5))!.value), true);
      assert.equal(dec(copy), dec(value(5, 1)));
      return Promise.resolve();
    }),
});

Deno.test({
  name: "a borrowed value copied at once outlives its compacted table",
  ignore: !mmapAvailable(),
  fn: () =>
    withFilledDb("mmap", async (db) => {
      const kept = db[getBorrowed](key(9))!.value.slice();
      // A Response copies its body when constructed, as the server needs.
      const body = new Response(
        db[getBorrowed](key(9))!.value as Uint8Array<ArrayBuffer>,
      );
      await fill(db, 2);
      // Rewrites every table: round 1's table is deleted and unmapped.
      await db.compactRange();
      assert.equal(dec(kept), dec(value(9, 1)));
      assert.equal(await body.text(), dec(value(9, 1)));
      assert.equal(dec(db[getBorrowed](key(9))!.value), dec(value(9, 2)));
    }),
});
