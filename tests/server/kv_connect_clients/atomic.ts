/**
 * Run by kv_connect_test.ts: atomic checks, shared versionstamps, sum / min /
 * max (with wrap-around), expireIn, and isolation between two databases.
 * Usage: deno run --unstable-kv -A atomic.ts <url of db a> <url of db b>.
 */
import assert from "node:assert/strict";

const kv = await Deno.openKv(Deno.args[0]);
const other = await Deno.openKv(Deno.args[1]);
const U64_MAX = 2n ** 64n - 1n;
const u64 = async (key: Deno.KvKey) =>
  (await kv.get<Deno.KvU64>(key)).value?.value;
try {
  // ---- checks
  const first = await kv.set(["acct"], 100);
  const pass = await kv.atomic()
    .check({ key: ["acct"], versionstamp: first.versionstamp })
    .set(["acct"], 90)
    .commit();
  assert.equal(pass.ok, true);
  const stale = await kv.atomic()
    .check({ key: ["acct"], versionstamp: first.versionstamp })
    .set(["acct"], 0)
    .commit();
  assert.equal(stale.ok, false);
  assert.equal((await kv.get(["acct"])).value, 90);
  const absent = await kv.atomic()
    .check({ key: ["fresh"], versionstamp: null })
    .set(["fresh"], 1)
    .commit();
  assert.equal(absent.ok, true);
  const exists = await kv.atomic()
    .check({ key: ["fresh"], versionstamp: null })
    .set(["fresh"], 2)
    .commit();
  assert.equal(exists.ok, false);
  assert.equal((await kv.get(["fresh"])).value, 1);
  // A failing check among passing ones writes nothing.
  const mixed = await kv.atomic()
    .check({ key: ["acct"], versionstamp: pass.ok ? pass.versionstamp : "" })
    .check({ key: ["fresh"], versionstamp: null })
    .set(["acct"], -1)
    .commit();
  assert.equal(mixed.ok, false);
  assert.equal((await kv.get(["acct"])).value, 90);

  // ---- several mutations share one versionstamp; versionstamps increase
  const multi = await kv.atomic()
    .set(["m", 1], "a")
    .set(["m", 2], "b")
    .delete(["fresh"])
    .sum(["m", "n"], 1n)
    .commit();
  assert.ok(multi.ok);
  for (const k of [["m", 1], ["m", 2], ["m", "n"]]) {
    assert.equal((await kv.get(k)).versionstamp, multi.versionstamp);
  }
  assert.equal((await kv.get(["fresh"])).value, null);
  assert.ok(multi.versionstamp > first.versionstamp);

  // ---- sum / min / max
  await kv.atomic().sum(["c"], 5n).commit(); // absent: takes the operand
  await kv.atomic().sum(["c"], 10n).sum(["c"], 1n).commit();
  assert.equal(await u64(["c"]), 16n);
  await kv.set(["c"], new Deno.KvU64(U64_MAX));
  await kv.atomic().sum(["c"], 3n).commit(); // wraps past 2^64
  assert.equal(await u64(["c"]), 2n);
  await kv.atomic().min(["lo"], 50n).max(["hi"], 50n).commit();
  await kv.atomic().min(["lo"], 70n).max(["hi"], 30n).commit();
  assert.equal(await u64(["lo"]), 50n);
  assert.equal(await u64(["hi"]), 50n);
  await kv.atomic().min(["lo"], 7n).max(["hi"], U64_MAX).commit();
  assert.equal(await u64(["lo"]), 7n);
  assert.equal(await u64(["hi"]), U64_MAX);
  // set then sum in one write sees the set.
  await kv.atomic().set(["sv"], new Deno.KvU64(1n)).sum(["sv"], 1n).commit();
  assert.equal(await u64(["sv"]), 2n);
  // Concurrent sums all land (the read-modify-write is atomic).
  await Promise.all(
    Array.from({ length: 20 }, () => kv.atomic().sum(["race"], 1n).commit()),
  );
  assert.equal(await u64(["race"]), 20n);
  // Summing onto a value that is not a KvU64 is the client's mistake: a 4xx.
  await kv.set(["str"], "text");
  await assert.rejects(() => kv.atomic().sum(["str"], 1n).commit());

  // ---- expireIn
  await kv.set(["tmp"], "soon gone", { expireIn: 300 });
  await kv.set(["keep"], "stays");
  assert.equal((await kv.get(["tmp"])).value, "soon gone");
  await new Promise((r) => setTimeout(r, 450));
  assert.equal((await kv.get(["tmp"])).value, null);
  assert.equal((await kv.get(["keep"])).value, "stays");
  const live = await Array.fromAsync(kv.list({ prefix: ["tmp"] }));
  assert.equal(live.length, 0);

  // ---- two databases do not see each other's keys
  await other.set(["acct"], "other db");
  assert.equal((await kv.get(["acct"])).value, 90);
  assert.equal((await other.get(["acct"])).value, "other db");
  assert.equal((await other.get(["m", 1])).value, null);
  const otherAll = await Array.fromAsync(other.list({ prefix: [] }));
  assert.deepEqual(otherAll.map((e) => e.key), [["acct"]]);
  console.log("ok");
} finally {
  kv.close();
  other.close();
}
