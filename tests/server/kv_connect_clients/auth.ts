/**
 * Run by kv_connect_test.ts with a wrong DENO_KV_ACCESS_TOKEN: opening the
 * database must fail and name the 401.
 * Usage: deno run --unstable-kv -A auth.ts <url>.
 */
import assert from "node:assert/strict";

await assert.rejects(
  async () => {
    const kv = await Deno.openKv(Deno.args[0]);
    try {
      await kv.get(["x"]);
    } finally {
      kv.close();
    }
  },
  (err: Error) => /401/.test(String(err)),
);
console.log("ok");
