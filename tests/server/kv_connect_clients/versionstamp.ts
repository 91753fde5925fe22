/**
 * Run by kv_connect_test.ts with Deno's real KV client against a shale
 * server: keys with a versionstamp suffix (`kv.commitVersionstamp()`), the
 * semantics of Deno's upstream test "set with key versionstamp suffix".
 * Usage: deno run --unstable-kv -A versionstamp.ts <url>. Exits non-zero on
 * failure.
 */
import assert from "node:assert/strict";

const ZERO_VERSIONSTAMP = "00000000000000000000";
const kv = await Deno.openKv(Deno.args[0]);
try {
  assert.deepEqual(await Array.fromAsync(kv.list({ prefix: ["a"] })), []);

  const r1 = await kv.set(["a", kv.commitVersionstamp()], "b");
  assert.equal(r1.ok, true);
  assert.ok(r1.versionstamp > ZERO_VERSIONSTAMP);
  const l1 = await Array.fromAsync(kv.list({ prefix: ["a"] }));
  assert.equal(l1.length, 1);
  assert.equal(l1[0].key[1], r1.versionstamp);
  assert.equal(l1[0].value, "b");
  assert.equal(l1[0].versionstamp, r1.versionstamp);
  // The key read back is a plain key now.
  assert.equal((await kv.get(["a", r1.versionstamp])).value, "b");

  const r2 = await kv.atomic().set(["a", kv.commitVersionstamp()], "c")
    .commit();
  assert.ok(r2.ok);
  assert.ok(r2.versionstamp > r1.versionstamp);
  const l2 = await Array.fromAsync(kv.list({ prefix: ["a"] }));
  assert.equal(l2.length, 2);
  assert.equal(l2[1].key[1], r2.versionstamp);
  assert.equal(l2[1].value, "c");
  assert.equal(l2[1].versionstamp, r2.versionstamp);

  // One commit: a versionstamped key beside ordinary mutations and a check,
  // all sharing the commit's versionstamp; a deeper prefix works too.
  const r3 = await kv.atomic()
    .check({ key: ["guard"], versionstamp: null })
    .set(["log", "x", kv.commitVersionstamp()], { n: 3 })
    .set(["guard"], 1)
    .commit();
  assert.ok(r3.ok);
  const log = await Array.fromAsync(kv.list({ prefix: ["log", "x"] }));
  assert.deepEqual(log.map((e) => e.key), [["log", "x", r3.versionstamp]]);
  assert.deepEqual(log[0].value, { n: 3 });
  assert.equal((await kv.get(["guard"])).versionstamp, r3.versionstamp);

  // A failed check writes no versionstamped key either.
  const r4 = await kv.atomic()
    .check({ key: ["guard"], versionstamp: null })
    .set(["log", "x", kv.commitVersionstamp()], "never")
    .commit();
  assert.equal(r4.ok, false);
  assert.equal((await Array.fromAsync(kv.list({ prefix: ["log"] }))).length, 1);

  // Upstream: a versionstamp that is not the last key part is refused by
  // the client itself.
  await assert.rejects(
    () => kv.set(["a", kv.commitVersionstamp(), "a"], "x"),
    TypeError,
  );
  console.log("ok");
} finally {
  kv.close();
}
