/**
 * Run by kv_connect_test.ts with Deno's real KV client: the database sees
 * only what KV Connect wrote, never keys written through `/kv/`.
 * Usage: deno run --unstable-kv -A isolation.ts <url>. Exits non-zero on
 * failure.
 */
import assert from "node:assert/strict";

const kv = await Deno.openKv(Deno.args[0]);
try {
  assert.deepEqual(await Array.fromAsync(kv.list({ prefix: [] })), []);
  assert.equal((await kv.get(["a"])).versionstamp, null);
  assert.ok((await kv.set(["b"], "from kv connect")).ok);
  const all = await Array.fromAsync(kv.list({ prefix: [] }));
  assert.deepEqual(all.map((e) => e.key), [["b"]]);
  console.log("ok");
} finally {
  kv.close();
}
