// Run under Node by deno_kv_test.ts: client.ts (bundled to plain JS by
// `deno bundle`, since Node 20 cannot load TypeScript) against a shale
// server. Usage: node client.mjs <bundle.mjs> <base url> <token>
// Asserts inside; prints "ok" last.
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";

const [bundle, base, token] = process.argv.slice(2);
const { ShaleClient, ShaleClientError } = await import(
  pathToFileURL(bundle).href
);
const shale = new ShaleClient(base, { token, timeoutMs: 10_000 });
const text = (b) => new TextDecoder().decode(b);

const key = new Uint8Array([0x01, 0x00, 0x2f, 0xff, 0x25]);
const v = await shale.put(key, "binary", { ttl: 60 });
const e = await shale.get(key);
assert.equal(text(e.value), "binary");
assert.equal(e.version, v);
assert.ok(e.expiresAt > Date.now());
await shale.put("range", "a route-like key");
assert.equal(text((await shale.get("range")).value), "a route-like key");
await shale.put("..", "dots");
assert.equal(text((await shale.get("..")).value), "dots");

await assert.rejects(
  shale.put(key, "again", { ifAbsent: true }),
  (err) =>
    err instanceof ShaleClientError && err.status === 412 &&
    err.code === "precondition_failed",
);
await shale.put(key, "cas", { ifVersion: v });

const r = await shale.batch([
  { op: "put", key: "n/1", value: "1" },
  { op: "put", key: "n/2", value: "2" },
  { op: "put", key: "n/3", value: "3" },
  { op: "check", key: "n/9", ifAbsent: true },
]);
assert.equal(r.applied, 4);
const many = await shale.getMany(["n/1", "n/9", key]);
assert.deepEqual(many.map((x) => x && text(x.value)), ["1", null, "cas"]);
const listed = [];
for await (const item of shale.list({ prefix: "n/", pageSize: 1 })) {
  listed.push(text(item.key));
}
assert.deepEqual(listed, ["n/1", "n/2", "n/3"]);

await assert.rejects(
  new ShaleClient(base, { token: "wrong" }).get("n/1"),
  (err) => err instanceof ShaleClientError && err.code === "unauthorized",
);
const ac = new AbortController();
ac.abort(new Error("stop"));
await assert.rejects(shale.get("n/1", { signal: ac.signal }), /stop/);
await shale.delete(key);
assert.equal(await shale.get(key), null);
console.log("ok");
