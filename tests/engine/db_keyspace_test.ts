/**
 * Key spaces: the public API owns the whole user key space (no reserved
 * bytes), `keySpace(id)` handles reach separate spaces that never see each
 * other's keys, puts can carry their own version inside the key, and a data
 * directory in the previous on-disk format is refused with advice.
 */
import assert from "node:assert/strict";
import type { BatchOp, Db, KeySpace, ScanOptions } from "../../mod.ts";
import {
  FormatVersionError,
  InvalidArgumentError,
  open,
  ShaleError,
} from "../../mod.ts";
import {
  bytes,
  concat,
  dec,
  enc,
  hex,
  NoSyncFileSystem,
  Rng,
  SortedModel,
  testSeed,
  withSeed,
  withTempDir,
} from "../_helpers.ts";
import type { ModelScan } from "../_helpers.ts";

/** Keys that start (and end) with 0x00 and 0xFF, sharing prefixes. */
function keyPool(rng: Rng, n: number): Uint8Array[] {
  const alphabet = [0x00, 0x01, 0x02, 0x61, 0xfe, 0xff];
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  while (out.length < n) {
    const k = new Uint8Array(rng.range(1, 5));
    for (let i = 0; i < k.length; i++) k[i] = rng.pick(alphabet);
    if (seen.has(hex(k))) continue;
    seen.add(hex(k));
    out.push(k);
  }
  return out;
}

function summary(
  items: Iterable<{ key: Uint8Array; value: Uint8Array; version: number }>,
): string[] {
  return [...items].map((i) => `${hex(i.key)}=${hex(i.value)}@${i.version}`);
}

Deno.test("random ops in two key spaces match two sorted maps, with 0x00/0xFF keys, flushes and reopens", async () => {
  await withSeed(testSeed(0x5bace1), (rng) =>
    withTempDir(async (dir) => {
      const options = {
        background: "inline" as const,
        sync: "none" as const,
        memtableBytes: 8 * 1024,
        fs: new NoSyncFileSystem(),
      };
      let db: Db = await open(dir, options);
      const keys = keyPool(rng, 120);
      const models = [new SortedModel(), new SortedModel()];
      const spaceOf = (s: number): KeySpace => s === 0 ? db : db.keySpace(1);
      const checkAll = (what: string) => {
        for (let s = 0; s < 2; s++) {
          assert.deepEqual(
            summary(spaceOf(s).scan()),
            summary(models[s].scan()),
            `${what}: space ${s}`,
          );
        }
      };
      for (let step = 0; step < 2500; step++) {
        const s = rng.int(2);
        const kv = spaceOf(s);
        const model = models[s];
        const k = rng.pick(keys);
        const r = rng.next();
        if (r < 0.35) {
          const v = rng.bytes(rng.range(0, 40));
          model.set(k, v, await kv.put(k, v));
        } else if (r < 0.45) {
          await kv.delete(k);
          model.delete(k);
        } else if (r < 0.55) {
          // A conditional batch: conditions see only this space's keys.
          const k2 = rng.pick(keys);
          const want = model.get(k)?.version ?? null;
          const ops: BatchOp[] = [
            { type: "check", key: k, ifVersion: want },
            { type: "put", key: k2, value: bytes(step & 0xff) },
          ];
          const seq = await kv.batch(ops);
          model.set(k2, bytes(step & 0xff), seq);
          await assert.rejects(
            kv.batch([{ type: "delete", key: k, ifVersion: seq + 1 }]),
            (e: unknown) =>
              e instanceof ShaleError && e.code === "precondition_failed",
          );
        } else if (r < 0.75) {
          const got = kv.get(k);
          const want = model.get(k);
          assert.equal(
            got && `${hex(got.value)}@${got.version}`,
            want && `${hex(want.value)}@${want.version}`,
            `step ${step}: get ${hex(k)} in space ${s}`,
          );
          assert.equal(kv.version(k), want?.version ?? null);
        } else if (r < 0.9) {
          const o: ModelScan = {};
          if (rng.chance(0.4)) o.prefix = rng.pick(keys).slice(0, 1);
          if (rng.chance(0.3)) o.start = rng.pick(keys);
          if (rng.chance(0.3)) o.end = rng.pick(keys);
          if (rng.chance(0.4)) o.reverse = true;
          if (rng.chance(0.3)) o.limit = rng.range(1, 10);
          assert.deepEqual(
            summary(kv.scan(o as ScanOptions)),
            summary(model.scan(o)),
            `step ${step}: scan ${JSON.stringify(o)} in space ${s}`,
          );
        } else if (r < 0.96) {
          await db.flush();
        } else if (r < 0.985) {
          await db.compactUntilIdle();
        } else {
          await db.close();
          db = await open(dir, options);
          checkAll(`step ${step}: after reopen`);
        }
      }
      checkAll("the end");
      await db.close();
    }));
});

Deno.test("the key-space byte is not counted against the key-length limit", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { background: "inline" });
    try {
      const max = new Uint8Array(4096).fill(0xff);
      for (const kv of [db, db.keySpace(1), db.keySpace(255)]) {
        const seq = await kv.put(max, enc("v"));
        assert.equal(kv.get(max)?.version, seq);
        assert.throws(
          () => kv.get(new Uint8Array(4097)),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.code === "key_too_long",
        );
        assert.throws(() => kv.get(new Uint8Array(0)), InvalidArgumentError);
      }
      await db.flush();
      for (const kv of [db, db.keySpace(1), db.keySpace(255)]) {
        const all = [...kv.scan()];
        assert.equal(all.length, 1);
        assert.deepEqual(all[0].key, max);
      }
      assert.equal(db.keySpace(0), db, "space 0 is the Db's own");
      assert.equal(db.keySpace(7), db.keySpace(7), "handles are reused");
      for (const bad of [-1, 256, 1.5, NaN]) {
        assert.throws(() => db.keySpace(bad), InvalidArgumentError);
      }
    } finally {
      await db.close();
    }
  });
});

Deno.test("a put with a versioned key stores its own version in the key, across reopen and flush", async () => {
  await withTempDir(async (dir) => {
    let db = await open(dir, { background: "inline" });
    const prefix = enc("log/");
    const keyOf = (v: number) =>
      concat(prefix, enc(v.toString(16).padStart(16, "0")));
    const placeholder = concat(prefix, new Uint8Array(16));
    const kv = db.keySpace(3);
    const s1 = await kv.batch([
      { type: "put", key: placeholder, value: enc("one"), versionedKey: keyOf },
      { type: "put", key: enc("plain"), value: enc("p") },
    ]);
    const s2 = await kv.put(placeholder, enc("two"), { versionedKey: keyOf });
    assert.ok(s2 > s1);
    const listed = () =>
      [...db.keySpace(3).scan({ prefix })].map((i) =>
        `${dec(i.key)}=${dec(i.value)}@${i.version}`
      );
    const want = [`${dec(keyOf(s1))}=one@${s1}`, `${dec(keyOf(s2))}=two@${s2}`];
    assert.deepEqual(listed(), want);
    assert.equal(db.keySpace(3).get(placeholder), undefined);
    assert.equal(db.get(keyOf(s1)), undefined, "space 0 does not see it");
    await db.close();
    db = await open(dir, { background: "inline" }); // WAL replay
    assert.deepEqual(listed(), want);
    await db.flush();
    assert.deepEqual(listed(), want);

    const kv2 = db.keySpace(3);
    const before = db.lastSeq;
    // Refused before a version is used up: bad builder output, conditions.
    await assert.rejects(
      kv2.put(placeholder, enc("x"), { versionedKey: () => enc("short") }),
      /versionedKey must return 20 bytes/,
    );
    await assert.rejects(
      kv2.put(placeholder, enc("x"), {
        versionedKey: () => {
          throw new Error("builder broke");
        },
      }),
      /builder broke/,
    );
    await assert.rejects(
      kv2.put(placeholder, enc("x"), { versionedKey: keyOf, ifVersion: null }),
      InvalidArgumentError,
    );
    // A versioned key that lands on another op's key in the same batch.
    const next = db.lastSeq + 1;
    await assert.rejects(
      kv2.batch([
        { type: "put", key: keyOf(next), value: enc("a") },
        { type: "put", key: placeholder, value: enc("b"), versionedKey: keyOf },
      ]),
      /op 1: its versioned key equals another key of the batch/,
    );
    assert.equal(db.lastSeq, before, "no version was used up");
    assert.deepEqual(listed(), want);
    await db.close();
  });
});

Deno.test("a data directory in on-disk format 1 is refused with advice, and left untouched", async () => {
  await withTempDir(async (dir) => {
    const fixture = new URL("./fixtures/format1/", import.meta.url).pathname;
    const names: string[] = [];
    for (const e of Deno.readDirSync(fixture)) {
      if (e.name.endsWith(".md")) continue;
      names.push(e.name);
      Deno.copyFileSync(fixture + e.name, `${dir}/${e.name}`);
    }
    const snapshot = () =>
      names.map((n) => hex(Deno.readFileSync(`${dir}/${n}`))).join();
    const before = snapshot();
    await assert.rejects(open(dir), (e: unknown) => {
      assert.ok(e instanceof FormatVersionError, String(e));
      assert.equal(e.code, "unsupported_format");
      assert.equal(e.found, 1);
      assert.match(e.message, /MANIFEST-000002/);
      assert.match(e.message, /format 1/);
      assert.match(e.message, /empty directory/);
      return true;
    });
    assert.equal(snapshot(), before, "nothing was rewritten or removed");
  });
});
