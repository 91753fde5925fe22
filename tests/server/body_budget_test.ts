/**
 * Memory bounds on request bodies: the server-wide budget of body bytes
 * being read (server/body_budget.ts) and the JSON nesting check that runs
 * before JSON.parse (server/json_depth.ts).
 */
import { equal, ok } from "node:assert/strict";
import { errorCode, withServer } from "./_helpers.ts";
import { BodyBudget } from "../../server/body_budget.ts";
import { checkJsonDepth } from "../../server/json_depth.ts";

/** A body stream that sends `first` now and the rest when `finish` is called. */
function slowBody(first: number) {
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      ctl = c;
      c.enqueue(new Uint8Array(first).fill(1));
    },
  });
  let done = false;
  const finish = () => {
    if (!done) ctl.close();
    done = true;
  };
  return { stream, finish };
}

Deno.test("bodies past the server-wide budget wait, then get 503 overloaded", async () => {
  await withServer({
    handler: { maxBodyMemoryBytes: 1000, bodyWaitMs: 150 },
  }, async ({ base, handler }) => {
    const holder = slowBody(900);
    const first = fetch(`${base}/kv/held`, {
      method: "PUT",
      body: holder.stream,
    });
    try {
      // Wait until the first body's bytes are counted.
      for (let i = 0; i < 100; i++) {
        const stats = await (await fetch(`${base}/stats`)).json();
        if (stats.server.bodyBytesInFlight >= 900) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const t0 = performance.now();
      const second = await fetch(`${base}/kv/other`, {
        method: "PUT",
        body: new Uint8Array(500),
      });
      const waited = performance.now() - t0;
      equal(second.status, 503);
      equal(second.headers.get("retry-after"), "1");
      equal(errorCode(await second.text()), "overloaded");
      ok(waited >= 140, `answered after ${waited} ms, before the wait`);
    } finally {
      holder.finish();
    }
    equal((await first).status, 204);
    // With the budget free again, the same body goes through.
    const third = await fetch(`${base}/kv/other`, {
      method: "PUT",
      body: new Uint8Array(500),
    });
    equal(third.status, 204);
    equal(handler.refusals.get("overloaded"), 1);
  });
});

Deno.test("a waiting body gets in when room frees up; a lone body always fits", async () => {
  const budget = new BodyBudget(100, 1000);
  const a = budget.lease();
  await a.take(80);
  const b = budget.lease();
  let got = false;
  const waiting = b.take(50).then(() => got = true);
  await new Promise((r) => setTimeout(r, 20));
  equal(got, false);
  equal(budget.waiting, 1);
  a.release();
  await waiting;
  equal(budget.used, 50);
  b.release();
  const big = budget.lease();
  await big.take(500); // alone: proceeds past the budget
  equal(budget.used, 500);
  big.release();
  equal(budget.used, 0);
});

Deno.test("deeply nested JSON is refused before parsing", async () => {
  await withServer({}, async ({ base }) => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const res = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: `{"ops":${deep}}`,
    });
    equal(res.status, 400);
    equal(errorCode(await res.text()), "json_too_deep");
  });
  // Brackets inside strings do not count; escapes are skipped.
  checkJsonDepth(new TextEncoder().encode(`{"a":"[[[[\\"[[[["}`), "x", 2);
});

Deno.test("the default batch limit is 8 MiB", async () => {
  await withServer({}, async ({ base }) => {
    const res = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Uint8Array((8 << 20) + 1).fill(0x20),
    });
    equal(res.status, 413);
    equal(errorCode(await res.text()), "payload_too_large");
  });
});
