/**
 * `delete_range` through real HTTP: the `POST /kv/batch` op (start/end and
 * prefix, atomic with the batch's other ops), its 4xx answers, the change
 * feed's one `delete_range` item in the batch's event (cut to the watched
 * range), client.ts (`batch` and `watch`) against a live server, and scoped
 * tokens (a range must lie inside the token's prefix).
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { ShaleClient } from "../../client.ts";
import { b, b64, errorCode, withServer } from "./_helpers.ts";
import { SseReader } from "./_sse.ts";
import { Scope } from "../../server/scope.ts";

async function post(base: string, ops: unknown[]): Promise<Response> {
  return await fetch(`${base}/kv/batch`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ops }),
  });
}

async function keys(base: string): Promise<string[]> {
  const r = await fetch(`${base}/kv/range`);
  const text = await r.text();
  equal(r.status, 200, text);
  return (JSON.parse(text).items as { key: string }[]).map((i) => atob(i.key));
}

async function fill(base: string, names: string[]): Promise<void> {
  const r = await post(
    base,
    names.map((k) => ({ op: "put", key: b64(k), value: b64("x") })),
  );
  equal(r.status, 200, await r.text());
}

Deno.test("delete_range: start/end and prefix ops apply atomically with the batch's other ops", async () => {
  await withServer({}, async ({ base }) => {
    await fill(base, ["a", "b1", "b2", "c", "d/1", "d/2", "e"]);
    const r = await post(base, [
      { op: "put", key: b64("b3"), value: b64("deleted by the range after") },
      { op: "delete_range", start: b64("b"), end: b64("c") },
      { op: "delete_range", prefix: b64("d/") },
      { op: "put", key: b64("b9"), value: b64("kept: after the range") },
    ]);
    const text = await r.text();
    equal(r.status, 200, text);
    deepEqual(JSON.parse(text).applied, 4);
    deepEqual(await keys(base), ["a", "b9", "c", "e"]);
    equal((await fetch(`${base}/kv/b1`)).status, 404);
    // From a start key through the last key; "" starts at the first key.
    equal(
      (await post(base, [{ op: "delete_range", start: b64("c") }])).status,
      200,
    );
    deepEqual(await keys(base), ["a", "b9"]);
    equal((await post(base, [{ op: "delete_range", start: "" }])).status, 200);
    deepEqual(await keys(base), []);
  });
});

Deno.test("delete_range: bad ops get 400 or 414 with a JSON error, and nothing is written", async () => {
  await withServer({}, async ({ base }) => {
    await fill(base, ["a", "b", "c"]);
    const put = { op: "put", key: b64("new"), value: b64("v") };
    const cases: [unknown, number, string, RegExp][] = [
      [
        { op: "delete_range", start: b64("c"), end: b64("a") },
        400,
        "invalid_batch",
        /op 1: start must sort before end/,
      ],
      [
        { op: "delete_range", start: b64("a"), end: b64("a") },
        400,
        "invalid_batch",
        /before end/,
      ],
      [
        { op: "delete_range", prefix: "" },
        400,
        "invalid_batch",
        /prefix is empty/,
      ],
      [
        { op: "delete_range", prefix: b64("a"), start: b64("a") },
        400,
        "invalid_batch",
        /not both/,
      ],
      [{ op: "delete_range" }, 400, "invalid_batch", /needs "start"/],
      [
        { op: "delete_range", end: b64("b") },
        400,
        "invalid_batch",
        /needs "start"/,
      ],
      [
        { op: "delete_range", start: b64("a"), end: "" },
        400,
        "invalid_batch",
        /end is empty/,
      ],
      [
        { op: "delete_range", start: b64("a"), if_match: "1" },
        400,
        "invalid_batch",
        /unknown field "if_match"/,
      ],
      [{ op: "delete_range", start: "!!" }, 400, "invalid_base64", /start/],
      [
        { op: "delete_range", start: b64("a".repeat(4097)) },
        414,
        "key_too_long",
        /start is 4097 bytes/,
      ],
    ];
    for (const [op, status, code, re] of cases) {
      const r = await post(base, [put, op]);
      const text = await r.text();
      equal(r.status, status, `${JSON.stringify(op)}: ${text}`);
      equal(r.headers.get("content-type"), "application/json");
      equal(errorCode(text), code, text);
      match(JSON.parse(text).error.message, re);
    }
    deepEqual(await keys(base), ["a", "b", "c"], "no batch was applied");
  });
});

Deno.test("delete_range: the change feed sends one delete_range item in the batch's event, cut to the watched range", async () => {
  await withServer({}, async ({ base }) => {
    const r = await fetch(`${base}/kv/watch?start=${"m"}&end=${"p"}`);
    equal(r.status, 200);
    const s = new SseReader(r);
    equal((await s.next())?.event, "ready");
    const outside = await post(base, [
      { op: "delete_range", start: b64("a"), end: b64("m") }, // ends at m
      { op: "delete_range", prefix: b64("z") },
    ]);
    equal(outside.status, 200);
    const res = await post(base, [
      { op: "put", key: b64("n"), value: b64("1") },
      { op: "delete_range", start: b64("a"), end: b64("n") },
      { op: "delete_range", start: b64("o") },
    ]);
    const version = Number(JSON.parse(await res.text()).version);
    const ev = await s.next();
    equal(ev?.event, "change");
    equal(ev?.id, String(version), "the batch outside the range sent nothing");
    deepEqual(JSON.parse(ev!.data), {
      version,
      changes: [
        { key: b64("n"), type: "put", value: b64("1") },
        // Cut to the watched range [m, p).
        { type: "delete_range", start: b64("m"), end: b64("n") },
        { type: "delete_range", start: b64("o"), end: b64("p") },
      ],
    });
    await s.cancel();
  });
});

Deno.test("delete_range: client.ts batch sends it and watch reports it", async () => {
  await withServer({}, async ({ base }) => {
    const shale = new ShaleClient(base);
    const stop = new AbortController();
    const events = shale.watch({ prefix: "job/", signal: stop.signal });
    const first = events.next();
    await new Promise((r) => setTimeout(r, 50)); // let the stream start
    await shale.batch([
      { op: "put", key: "job/1", value: "a" },
      { op: "put", key: "job/2", value: "b" },
      { op: "put", key: "keep", value: "c" },
    ]);
    const r = await shale.batch([
      { op: "delete_range", prefix: "job/" },
      { op: "delete_range", start: b("k"), end: "kz" },
      { op: "put", key: "job/3", value: "d" },
    ]);
    equal(r.applied, 3);
    deepEqual(await keys(base), ["job/3"]);
    const e1 = await first;
    ok(!e1.done);
    const e2 = await events.next();
    ok(!e2.done);
    equal(e2.value.version, r.version);
    deepEqual(
      e2.value.changes.map((c) => [c.type, c.key, c.end]),
      [
        ["delete_range", b("job/"), b("job0")],
        ["put", b("job/3"), undefined],
      ],
    );
    stop.abort();
    await events.return(undefined);
  });
});

Deno.test("delete_range: a scoped token deletes ranges inside its prefix only, and its feed shows them cut to it", async () => {
  const ADMIN = "admin-token-0123456789";
  const RW = "app-rw-token-0123456789";
  const RO = "app-ro-token-0123456789";
  const handler = {
    authToken: ADMIN,
    scopedTokens: [
      { token: RW, scope: new Scope(b("app/"), true) },
      { token: RO, scope: new Scope(b("app/"), false) },
    ],
  };
  await withServer({ handler }, async ({ base, db }) => {
    for (const k of ["ap", "app/a", "app/b", "app0", "b"]) {
      await db.put(b(k), b("x"));
    }
    const send = (token: string, ops: unknown[]) =>
      fetch(`${base}/kv/batch`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${token}`,
        },
        body: JSON.stringify({ ops }),
      });
    const all = () =>
      [...db.scan()].map((i) => new TextDecoder().decode(i.key));
    for (
      const [token, op, re] of [
        [
          RW,
          { op: "delete_range", start: b64("a"), end: b64("app/z") },
          /op 0's range reaches outside/,
        ],
        [RW, { op: "delete_range", start: b64("app/") }, /outside/],
        [
          RW,
          { op: "delete_range", start: b64("app/"), end: b64("b") },
          /outside/,
        ],
        [RW, { op: "delete_range", prefix: b64("ap") }, /outside/],
        [RO, { op: "delete_range", prefix: b64("app/") }, /only read/],
      ] as const
    ) {
      const r = await send(token, [op]);
      const text = await r.text();
      equal(r.status, 403, text);
      equal(errorCode(text), "forbidden");
      match(JSON.parse(text).error.message, re);
    }
    deepEqual(all(), ["ap", "app/a", "app/b", "app0", "b"], "nothing deleted");

    const feed = await fetch(
      `${base}/kv/watch?prefix=${encodeURIComponent("app/")}`,
      {
        headers: { authorization: `Bearer ${RW}` },
      },
    );
    equal(feed.status, 200);
    const s = new SseReader(feed);
    equal((await s.next())?.event, "ready");
    const ok1 = await send(RW, [{ op: "delete_range", prefix: b64("app/") }]);
    equal(ok1.status, 200, await ok1.text());
    deepEqual(all(), ["ap", "app0", "b"]);
    // The admin deletes a wider range: the scoped feed sees only its part.
    const wide = await send(ADMIN, [{
      op: "delete_range",
      start: b64("a"),
      end: b64("c"),
    }]);
    equal(wide.status, 200, await wide.text());
    deepEqual(all(), []);
    const e1 = JSON.parse((await s.next())!.data);
    deepEqual(e1.changes, [
      { type: "delete_range", start: b64("app/"), end: b64("app0") },
    ]);
    const e2 = JSON.parse((await s.next())!.data);
    deepEqual(e2.changes, [
      { type: "delete_range", start: b64("app/"), end: b64("app0") },
    ]);
    await s.cancel();
  });
});
