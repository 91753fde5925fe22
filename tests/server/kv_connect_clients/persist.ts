/**
 * Run by kv_connect_test.ts twice around a server restart. `write` stores
 * values and prints their versionstamps as JSON; `read` checks that the same
 * values come back with the same versionstamps.
 * Usage: deno run --unstable-kv -A persist.ts <url> write|read [json].
 */
import assert from "node:assert/strict";

const [url, mode, before] = Deno.args;
const kv = await Deno.openKv(url);
try {
  if (mode === "write") {
    const a = await kv.set(["p", "a"], { n: 1 });
    const b = await kv.atomic().sum(["p", "count"], 41n).commit();
    assert.ok(b.ok);
    console.log(JSON.stringify({ a: a.versionstamp, b: b.versionstamp }));
  } else {
    const want = JSON.parse(before);
    const a = await kv.get(["p", "a"]);
    assert.deepEqual(a.value, { n: 1 });
    assert.equal(a.versionstamp, want.a);
    const c = await kv.get<Deno.KvU64>(["p", "count"]);
    assert.equal(c.value?.value, 41n);
    assert.equal(c.versionstamp, want.b);
    const after = await kv.set(["p", "later"], true);
    assert.ok(after.versionstamp > want.b, "versionstamps keep increasing");
    console.log("ok");
  }
} finally {
  kv.close();
}
