// Run under Node by deno_kv_test.ts: the npm package @deno/kv (Deno KV's
// client for Node) against shale's KV Connect. Usage:
//   node deno_kv.mjs <url> <token>
// Asserts inside; exits non-zero on the first failure and prints "ok" last.
import assert from "node:assert/strict";

// Imported by a computed name so that `deno check tests/` (which sees this
// file) does not try to resolve a package only Node's node_modules holds.
const PACKAGE = "@deno/kv";
const { openKv } = await import(PACKAGE);

const [url, token] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A wrong token is refused at open (the metadata exchange).
await assert.rejects(
  async () => {
    const bad = await openKv(url, { accessToken: "wrong-token" });
    await bad.get(["x"]);
  },
  /401|unauthori[sz]ed|invalid token/i,
);

// The token from the option (DENO_KV_ACCESS_TOKEN works too: the test runs
// both ways).
const kv = await openKv(
  url,
  process.env.DENO_KV_ACCESS_TOKEN ? {} : { accessToken: token },
);
try {
  // ---- set / get / getMany / delete
  const r = await kv.set(["users", "ada"], { name: "Ada", born: 1815 });
  assert.equal(r.ok, true);
  assert.match(r.versionstamp, /^[0-9a-f]{20}$/);
  const got = await kv.get(["users", "ada"]);
  assert.deepEqual(got.value, { name: "Ada", born: 1815 });
  assert.equal(got.versionstamp, r.versionstamp);
  assert.equal((await kv.get(["users", "nobody"])).value, null);
  await kv.set(["users", "bob"], "Bob");
  await kv.set(["users", "cy", 1n], new Uint8Array([0, 1, 255]));
  const many = await kv.getMany([["users", "bob"], ["users", "nobody"]]);
  assert.deepEqual(many.map((e) => e.value), ["Bob", null]);

  // ---- list: prefix, reverse, limit, cursor
  const keys = [];
  for await (const e of kv.list({ prefix: ["users"] })) keys.push(e.key);
  assert.deepEqual(keys, [["users", "ada"], ["users", "bob"], [
    "users",
    "cy",
    1n,
  ]]);
  const rev = [];
  for await (const e of kv.list({ prefix: ["users"] }, { reverse: true })) {
    rev.push(e.key[1]);
  }
  assert.deepEqual(rev, ["cy", "bob", "ada"]);
  const first = kv.list({ prefix: ["users"] }, { limit: 1 });
  const firstItems = [];
  for await (const e of first) firstItems.push(e.key[1]);
  assert.deepEqual(firstItems, ["ada"]);
  const rest = [];
  for await (
    const e of kv.list({ prefix: ["users"] }, { cursor: first.cursor })
  ) rest.push(e.key[1]);
  assert.deepEqual(rest, ["bob", "cy"]);
  const binary = await kv.get(["users", "cy", 1n]);
  assert.deepEqual([...binary.value], [0, 1, 255]);
  await kv.delete(["users", "bob"]);
  assert.equal((await kv.get(["users", "bob"])).value, null);

  // ---- atomic: a passing check commits, a stale one does not
  const ok = await kv.atomic()
    .check({ key: ["users", "ada"], versionstamp: r.versionstamp })
    .check({ key: ["users", "zed"], versionstamp: null })
    .set(["users", "ada"], { name: "Ada L." })
    .set(["users", "zed"], "Zed")
    .commit();
  assert.equal(ok.ok, true);
  const stale = await kv.atomic()
    .check({ key: ["users", "ada"], versionstamp: r.versionstamp })
    .set(["users", "ada"], "lost")
    .commit();
  assert.equal(stale.ok, false);
  assert.deepEqual((await kv.get(["users", "ada"])).value, { name: "Ada L." });

  // ---- sum / min / max on KvU64, wrapping past 2^64
  await kv.atomic().sum(["visits"], 5n).commit();
  await kv.atomic().sum(["visits"], 7n).commit();
  assert.equal((await kv.get(["visits"])).value.value, 12n);
  await kv.atomic().sum(["visits"], 2n ** 64n - 2n).commit();
  assert.equal((await kv.get(["visits"])).value.value, 10n);
  await kv.atomic().max(["visits"], 40n).commit();
  await kv.atomic().min(["visits"], 30n).commit();
  assert.equal((await kv.get(["visits"])).value.value, 30n);

  // ---- expireIn
  await kv.set(["session"], "short", { expireIn: 300 });
  assert.equal((await kv.get(["session"])).value, "short");
  let expired = false;
  for (let i = 0; i < 50 && !expired; i++) {
    await sleep(100);
    expired = (await kv.get(["session"])).value === null;
  }
  assert.ok(expired, "a key set with expireIn: 300 was still there after 5 s");

  // ---- watch. @deno/kv sends a first entry list only once some watched
  // key exists, then one whenever a versionstamp changes.
  await kv.set(["watched"], "zero");
  const reader = kv.watch([["watched"]]).getReader();
  const next = async () => (await reader.read()).value[0];
  assert.equal((await next()).value, "zero");
  await kv.set(["watched"], "one");
  assert.equal((await next()).value, "one");
  const two = await kv.set(["watched"], "two");
  const seen = await next();
  assert.equal(seen.value, "two");
  assert.equal(seen.versionstamp, two.versionstamp);
  await kv.delete(["watched"]);
  const gone = await next();
  assert.equal(gone.value, null);
  assert.equal(gone.versionstamp, null);
  await reader.cancel();
} finally {
  kv.close();
}
console.log("ok");
