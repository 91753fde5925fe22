/**
 * Run by kv_connect_test.ts: watch reports the initial state, a change made
 * through KV Connect, and a change made behind its back (the test process
 * writes the store directly after this script prints "ready").
 * Usage: deno run --unstable-kv -A watch.ts <url>.
 */
import assert from "node:assert/strict";

const kv = await Deno.openKv(Deno.args[0]);
try {
  await kv.set(["w", "a"], 1);
  const stream = kv.watch([["w", "a"], ["w"]]);
  const reader = stream.getReader();
  const next = async () => {
    const { value, done } = await reader.read();
    assert.equal(done, false);
    return value!.map((e) => e.value);
  };
  assert.deepEqual(await next(), [1, null]);
  await kv.set(["w", "a"], 2);
  assert.deepEqual(await next(), [2, null]);
  console.log("ready");
  // The test now writes ["w"] = "direct" straight into the store.
  assert.deepEqual(await next(), [2, "direct"]);
  await reader.cancel();
  console.log("ok");
} finally {
  kv.close();
}
