/**
 * `GET /kv/watch`, the change feed, through real HTTP against the handler
 * on `Deno.serve`: event format, ranges, batches as one event, resume
 * exactly once after a consumer is killed, 410 on a resume point the
 * history no longer holds, heartbeats, auth and metrics. The process-level
 * tests (kill -9 of the server, a consumer that never reads, Bun) are in
 * `watch_process_test.ts`.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { b, b64, errorCode, withServer } from "./_helpers.ts";
import { type ChangePayload, SseReader } from "./_sse.ts";
import { lintMetrics } from "./_promlint.ts";
import { kvConnectSpace } from "../../server/kv_connect/keyspace.ts";
import { Rng, testSeed } from "../_helpers.ts";

async function put(base: string, key: string, value: string) {
  const r = await fetch(`${base}/kv/${key}`, { method: "PUT", body: value });
  equal(r.status, 204, await r.text());
}

async function batch(base: string, ops: unknown[]): Promise<number> {
  const r = await fetch(`${base}/kv/batch`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ops }),
  });
  const text = await r.text();
  equal(r.status, 200, text);
  return Number(JSON.parse(text).version);
}

async function watch(
  base: string,
  query = "",
  headers: Record<string, string> = {},
): Promise<SseReader> {
  const r = await fetch(`${base}/kv/watch${query}`, { headers });
  equal(r.status, 200, r.status === 200 ? "" : await r.text());
  equal(r.headers.get("content-type"), "text/event-stream");
  return new SseReader(r);
}

/** The `ready` event every stream starts with; returns its version. */
async function ready(s: SseReader): Promise<number> {
  const ev = await s.next();
  equal(ev?.event, "ready");
  const v = JSON.parse(ev!.data).version;
  equal(ev!.id, String(v));
  return v;
}

async function change(s: SseReader): Promise<ChangePayload> {
  const ev = await s.next();
  equal(ev?.event, "change", JSON.stringify(ev));
  const p = JSON.parse(ev!.data) as ChangePayload;
  equal(ev!.id, String(p.version));
  return p;
}

Deno.test("watch: puts, deletes and a batch arrive in commit order; a batch is one event with one version", async () => {
  await withServer({}, async ({ base }) => {
    const s = await watch(base, "?prefix=user%2F");
    await ready(s);
    await put(base, "user%2Fa", "one");
    await put(base, "other", "not in range");
    const v = await batch(base, [
      { op: "put", key: b64("user/b"), value: b64("two") },
      { op: "delete", key: b64("user/a") },
      { op: "put", key: b64("zzz"), value: b64("out of range") },
    ]);
    const del = await fetch(`${base}/kv/user%2Fb`, { method: "DELETE" });
    equal(del.status, 204);
    const first = await change(s);
    deepEqual(first.changes, [
      { key: b64("user/a"), type: "put", value: b64("one") },
    ]);
    const grouped = await change(s);
    equal(grouped.version, v);
    deepEqual(grouped.changes, [
      { key: b64("user/b"), type: "put", value: b64("two") },
      { key: b64("user/a"), type: "delete" },
    ]);
    const last = await change(s);
    ok(last.version > v);
    deepEqual(last.changes, [{ key: b64("user/b"), type: "delete" }]);
    await s.cancel();
  });
});

Deno.test("watch: shows the user key space only, each key whole (a leading 0x00 included)", async () => {
  await withServer({}, async ({ base, db }) => {
    const s = await watch(base);
    const since = await ready(s);
    // KV Connect databases live in their own key space; others are internal.
    await kvConnectSpace(db).put(b("kv-connect"), b("hidden"));
    await db.keySpace(2).batch([
      { type: "put", key: b("two"), value: b("hidden") },
      { type: "delete", key: b("gone") },
    ]);
    const zero = new Uint8Array([0, 0x7a]);
    const v = await batch(base, [
      { op: "put", key: b64(zero), value: b64("one") },
      { op: "put", key: b64(new Uint8Array([1, 0x7a])), value: b64("two") },
    ]);
    const p = await change(s);
    equal(p.version, v, "the other spaces' writes are not events");
    ok(p.version > since + 2);
    deepEqual(p.changes, [
      { key: b64(zero), type: "put", value: b64("one") },
      { key: b64(new Uint8Array([1, 0x7a])), type: "put", value: b64("two") },
    ]);
    // Ranges bound the user key, not the stored one: [0x01, 0x02) holds
    // the second key only.
    const ranged = await watch(base, `?since=${since}&start=%01&end=%02`);
    await ready(ranged);
    deepEqual((await change(ranged)).changes, [
      { key: b64(new Uint8Array([1, 0x7a])), type: "put", value: b64("two") },
    ]);
    await s.cancel();
    await ranged.cancel();
  });
});

Deno.test("watch: values=false and value_limit send sizes; start/end bound the range; TTL is shown", async () => {
  await withServer({}, async ({ base }) => {
    const noValues = await watch(base, "?values=false");
    const limited = await watch(base, "?start=b&end=d&value_limit=3");
    await ready(noValues);
    await ready(limited);
    await put(base, "a", "12345");
    await put(base, "b", "123");
    await put(base, "c", "1234");
    await put(base, "d", "1");
    const r = await fetch(`${base}/kv/c?ttl=60`, { method: "PUT", body: "x" });
    equal(r.status, 204);
    const sizes = [];
    for (let i = 0; i < 5; i++) sizes.push((await change(noValues)).changes[0]);
    deepEqual(sizes.map((c) => c.value_size), [5, 3, 4, 1, 1]);
    ok(sizes.every((c) => c.value === undefined));
    deepEqual((await change(limited)).changes, [
      { key: b64("b"), type: "put", value: b64("123") },
    ]);
    deepEqual((await change(limited)).changes, [
      { key: b64("c"), type: "put", value_size: 4 },
    ]);
    const ttl = (await change(limited)).changes[0];
    equal(ttl.key, b64("c"));
    ok(ttl.expires_at! > Date.now() + 50_000);
    await noValues.cancel();
    await limited.cancel();
  });
});

Deno.test("watch: streams with the same range and options get the same events; others get their own", async () => {
  await withServer({}, async ({ base }) => {
    // Two pairs of streams that share a spec (events encoded once per pair),
    // and one stream alone; every stream must see exactly its own view.
    const users = [
      await watch(base, "?prefix=u%2F"),
      await watch(base, "?prefix=u%2F"),
    ];
    const sizes = [
      await watch(base, "?prefix=u%2F&values=false"),
      await watch(base, "?prefix=u%2F&values=false"),
    ];
    const other = await watch(base, "?prefix=o%2F");
    for (const s of [...users, ...sizes, other]) await ready(s);
    for (let i = 0; i < 20; i++) {
      await put(base, i % 2 === 0 ? `u%2F${i}` : `o%2F${i}`, `v${i}`);
    }
    for (let i = 0; i < 20; i += 2) {
      const key = b64(`u/${i}`);
      for (const s of users) {
        deepEqual((await change(s)).changes, [
          { key, type: "put", value: b64(`v${i}`) },
        ]);
      }
      for (const s of sizes) {
        deepEqual((await change(s)).changes, [
          { key, type: "put", value_size: `v${i}`.length },
        ]);
      }
    }
    for (let i = 1; i < 20; i += 2) {
      deepEqual((await change(other)).changes, [
        { key: b64(`o/${i}`), type: "put", value: b64(`v${i}`) },
      ]);
    }
    // One of a pair closes; the other goes on alone.
    await users[0].cancel();
    await put(base, "u%2Flast", "x");
    deepEqual((await change(users[1])).changes, [
      { key: b64("u/last"), type: "put", value: b64("x") },
    ]);
    for (const s of [users[1], ...sizes, other]) await s.cancel();
  });
});

Deno.test("watch: a consumer killed mid-stream resumes with Last-Event-ID (or since) and sees each change exactly once", async () => {
  const rng = new Rng(testSeed(14));
  await withServer({}, async ({ base }) => {
    const N = 300;
    const seen = new Map<string, number>();
    let s = await watch(base);
    await ready(s);
    // Writes go on concurrently while the consumer is killed and resumes
    // several times, alternating the header and ?since=.
    const writer = (async () => {
      for (let i = 0; i < N; i++) {
        if (i % 3 === 0) {
          await batch(base, [
            { op: "put", key: b64(`k${i}`), value: b64(`v${i}`) },
            { op: "put", key: b64(`k${i}b`), value: b64(`v${i}`) },
          ]);
        } else await put(base, `k${i}`, `v${i}`);
      }
    })();
    let resumes = 0;
    let lastVersion = 0;
    while (seen.size < N + N / 3) {
      const p = await change(s);
      ok(p.version > lastVersion, "versions only grow");
      lastVersion = p.version;
      for (const c of p.changes) {
        const k = atob(c.key);
        seen.set(k, (seen.get(k) ?? 0) + 1);
      }
      if (rng.int(20) === 0) {
        const id = s.lastId!;
        await s.cancel();
        resumes++;
        s = resumes % 2 === 0
          ? await watch(base, "", { "last-event-id": id })
          : await watch(base, `?since=${id}`);
        equal(await ready(s), Number(id));
      }
    }
    await writer;
    ok(resumes > 3, `only ${resumes} resumes`);
    for (const [k, n] of seen) equal(n, 1, `${k} seen ${n} times`);
    equal(seen.size, N + N / 3);
    await s.cancel();
  });
});

Deno.test("watch: a resume point the history no longer holds is refused with 410, never a silent gap", async () => {
  await withServer(
    { db: { changeHistoryBytes: 4096 } },
    async ({ base, db }) => {
      for (let i = 0; i < 40; i++) await put(base, `k${i}`, "x".repeat(200));
      ok(db.changes.floor > 1, "the history dropped its oldest groups");
      const old = await fetch(`${base}/kv/watch?since=1`);
      equal(old.status, 410);
      equal(errorCode(await old.text()), "history_gone");
      const viaHeader = await fetch(`${base}/kv/watch`, {
        headers: { "last-event-id": "0" },
      });
      equal(viaHeader.status, 410);
      await viaHeader.body?.cancel();
      const ahead = await fetch(`${base}/kv/watch?since=${db.visibleSeq + 5}`);
      equal(ahead.status, 410);
      equal(errorCode(await ahead.text()), "version_unknown");
      // The floor itself is still a valid resume point.
      const s = await watch(base, `?since=${db.changes.floor}`);
      await ready(s);
      const p = await change(s);
      equal(p.version, db.changes.floor + 1);
      await s.cancel();
    },
  );
});

Deno.test("watch: bad parameters get 400 with a JSON error; other methods 405", async () => {
  await withServer({}, async ({ base }) => {
    for (
      const q of [
        "?since=abc",
        "?since=-1",
        "?values=maybe",
        "?value_limit=x",
        "?prefix=a&start=b",
        "?limit=3",
      ]
    ) {
      const r = await fetch(`${base}/kv/watch${q}`);
      equal(r.status, 400, q);
      equal(errorCode(await r.text()), "invalid_parameter", q);
    }
    const bad = await fetch(`${base}/kv/watch`, {
      headers: { "last-event-id": "1e5" },
    });
    equal(bad.status, 400);
    await bad.body?.cancel();
    const post = await fetch(`${base}/kv/watch`, { method: "POST" });
    equal(post.status, 405);
    equal(post.headers.get("allow"), "GET");
    await post.body?.cancel();
  });
});

Deno.test("watch: needs the token like every /kv route", async () => {
  await withServer({ handler: { authToken: "sekret" } }, async ({ base }) => {
    const r = await fetch(`${base}/kv/watch`);
    equal(r.status, 401);
    equal(errorCode(await r.text()), "unauthorized");
    const s = await watch(base, "", { authorization: "Bearer sekret" });
    await ready(s);
    await s.cancel();
  });
});

Deno.test("watch: heartbeats keep an idle stream alive and carry the position past out-of-range writes", async () => {
  await withServer(
    { handler: { watch: { heartbeatMs: 50 } } },
    async ({ base }) => {
      const s = await watch(base, "?prefix=quiet");
      const start = await ready(s);
      await put(base, "loud", "1");
      await put(base, "loud", "2");
      const t0 = Date.now();
      while (s.comments < 3) {
        // No event is dispatched; the reader only counts comments.
        await Promise.race([
          s.next(200).catch(() => undefined),
          new Promise((r) => setTimeout(r, 200)),
        ]);
        ok(Date.now() - t0 < 10_000, "heartbeats keep coming");
      }
      equal(Number(s.lastId), start + 2);
      await s.cancel();
    },
  );
});

Deno.test("watch: metrics count streams, events and resumes in promtool-clean form", async () => {
  await withServer({}, async ({ base }) => {
    const s = await watch(base);
    const v = await ready(s);
    await put(base, "a", "1");
    await change(s);
    const again = await watch(base, `?since=${v}`);
    await ready(again);
    await change(again);
    const text = await (await fetch(`${base}/metrics`)).text();
    deepEqual(lintMetrics(text), []);
    match(text, /^shale_watch_streams_open 2$/m);
    match(text, /^shale_watch_events_sent_total 2$/m);
    match(text, /^shale_watch_resumes_total 1$/m);
    match(text, /^shale_watch_drops_total 0$/m);
    // /stats (and so the dashboard) carries the same count.
    const stats = await (await fetch(`${base}/stats`)).json();
    equal(stats.server.watchStreams, 2);
    await s.cancel();
    await again.cancel();
    // The server sees the cancel once the socket closes.
    for (let i = 0; i < 100; i++) {
      const m = await (await fetch(`${base}/metrics`)).text();
      if (/^shale_watch_streams_open 0$/m.test(m)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("streams stayed open after the clients left");
  });
});
