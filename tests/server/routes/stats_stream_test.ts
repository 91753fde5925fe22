/**
 * `GET /stats/stream`: events carry the `/stats` body plus rates and latency
 * over the last interval; auth as `/stats`; shutdown ends open streams.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { open } from "../../../mod.ts";
import { createHandler, type Handler } from "../../../server/app.ts";
import {
  intervalLatency,
  percentileMs,
  rates,
  type StatsEvent,
} from "../../../server/routes/stats_stream.ts";
import { LATENCY_BUCKETS } from "../../../server/metrics.ts";
import { withTempDir } from "../../_helpers.ts";

const BASE = "http://127.0.0.1:8080";

/** Reads SSE `data:` events off a response body. */
function eventReader(res: Response) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return {
    async next(): Promise<StatsEvent | undefined> {
      for (;;) {
        const end = buf.indexOf("\n\n");
        if (end >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data: "))
            .map((l) => l.slice(6)).join("\n");
          if (data !== "") return JSON.parse(data);
          continue;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buf += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

async function withHandler(
  opts: Parameters<typeof createHandler>[1],
  fn: (h: Handler) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "inline" });
    const h = createHandler(db, { statsStreamIntervalMs: 100, ...opts });
    try {
      await fn(h);
    } finally {
      h.drain();
      h.close();
      await db.close();
    }
  });
}

Deno.test("stats stream: first event at once, then rates of what happened between", async () => {
  await withHandler({}, async (h) => {
    const res = await h(new Request(`${BASE}/stats/stream`));
    equal(res.status, 200);
    equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const events = eventReader(res);
    const first = (await events.next())!;
    equal(first.rates, null);
    equal(first.latency, null);
    equal(first.intervalMs, 0);
    // The same body as /stats (numbers move; the shape does not).
    const stats = await (await h(new Request(`${BASE}/stats`))).json();
    deepEqual(Object.keys(first.stats), Object.keys(stats));
    deepEqual(Object.keys(first.stats.engine!), Object.keys(stats.engine));
    deepEqual(Object.keys(first.stats.server), Object.keys(stats.server));
    equal(first.stats.server.statsStreams, 1);
    deepEqual(first.stats.engine!.writeState, { state: "ok", reason: null });
    deepEqual(first.stats.engine!.background, {
      flushing: false,
      compacting: false,
      compactionNice: {
        requested: 10,
        applied: false,
        reason: "background is inline",
      },
    });

    // 5 puts, 3 gets (one a miss: 404 counts as a client error), 1 scan.
    for (let i = 0; i < 5; i++) {
      const r = await h(
        new Request(`${BASE}/kv/k${i}`, { method: "PUT", body: "v" }),
      );
      equal(r.status, 204);
    }
    for (const k of ["k0", "k1", "nope"]) {
      await (await h(new Request(`${BASE}/kv/${k}`))).body?.cancel();
    }
    await (await h(new Request(`${BASE}/kv/range?prefix=k`))).text();

    // Events come every 100 ms; collect until the work shows (the stats
    // request above may share an interval with it).
    let writes = 0, reads = 0, scans = 0, requests = 0, clientErrors = 0;
    let latencyCount = 0;
    for (let i = 0; i < 50 && (writes < 5 || reads < 3 || scans < 1); i++) {
      const e = (await events.next())!;
      ok(e.rates !== null && e.latency !== null);
      ok(e.intervalMs > 0);
      const s = e.intervalMs / 1000;
      writes += e.rates.writes * s;
      reads += e.rates.reads * s;
      scans += e.rates.scans * s;
      requests += e.rates.requests * s;
      clientErrors += e.rates.clientErrors * s;
      latencyCount += e.latency.count;
    }
    equal(Math.round(writes), 5);
    equal(Math.round(reads), 3);
    equal(Math.round(scans), 1);
    equal(Math.round(clientErrors), 1);
    // 9 data requests, the /stats, and the stream request itself (answered,
    // in the metrics' sense, once its headers went out after the first event).
    equal(Math.round(requests), 11);
    // Latency covers the data routes only (/kv/...), not /stats.
    equal(latencyCount, 9);
    await events.cancel();
  });
});

Deno.test("stats stream: needs the token like /stats; HEAD has no body", async () => {
  await withHandler({ authToken: "s3cret" }, async (h) => {
    const denied = await h(new Request(`${BASE}/stats/stream`));
    equal(denied.status, 401);
    equal((await denied.json()).error.code, "unauthorized");
    const head = await h(
      new Request(`${BASE}/stats/stream`, {
        method: "HEAD",
        headers: { authorization: "Bearer s3cret" },
      }),
    );
    equal(head.status, 200);
    equal(head.body, null);
    const post = await h(
      new Request(`${BASE}/stats/stream`, {
        method: "POST",
        headers: { authorization: "Bearer s3cret" },
      }),
    );
    equal(post.status, 405);
    await post.body?.cancel();
    const bad = await h(
      new Request(`${BASE}/stats/stream?x=1`, {
        headers: { authorization: "Bearer s3cret" },
      }),
    );
    equal(bad.status, 400);
    await bad.body?.cancel();
  });
});

Deno.test("stats stream: drain ends open streams so shutdown need not wait", async () => {
  await withHandler({}, async (h) => {
    const events = eventReader(await h(new Request(`${BASE}/stats/stream`)));
    ok(await events.next());
    h.drain();
    // The stream closes: at most the events already queued, then the end.
    let n = 0;
    while (await events.next() !== undefined) n++;
    ok(n <= 1, `${n} events after drain`);
    const stats = await (await h(new Request(`${BASE}/stats`))).json();
    equal(stats.server.statsStreams, 0);
    deepEqual(stats.server.health, { ok: false, code: "not_ready" });
  });
});

Deno.test("stats stream: a client that goes away frees its stream", async () => {
  await withHandler({}, async (h) => {
    const ac = new AbortController();
    const res = await h(
      new Request(`${BASE}/stats/stream`, { signal: ac.signal }),
    );
    const events = eventReader(res);
    ok(await events.next());
    ac.abort();
    const stats = await (await h(new Request(`${BASE}/stats`))).json();
    equal(stats.server.statsStreams, 0);
    await events.cancel().catch(() => {});
  });
});

Deno.test("percentileMs interpolates inside the bucket, like histogram_quantile", () => {
  const counts = new Array(LATENCY_BUCKETS.length + 1).fill(0);
  equal(percentileMs(counts, 0.5), null);
  // 100 requests in (0.5 ms, 1 ms]: p50 halfway, p99 near the top.
  counts[LATENCY_BUCKETS.indexOf(0.001)] = 100;
  equal(percentileMs(counts, 0.5), 0.75);
  equal(percentileMs(counts, 0.99), 0.995);
  // One slow request in +Inf: p99 stays in the fast bucket; p100 reports
  // the last finite bound.
  counts[LATENCY_BUCKETS.length] = 1;
  ok(percentileMs(counts, 0.99)! <= 1);
  equal(percentileMs(counts, 1), 10_000);
  // Per interval: only the difference of two cumulative snapshots counts.
  const before = counts.map(() => 0);
  before[LATENCY_BUCKETS.indexOf(0.001)] = 100;
  deepEqual(intervalLatency(before, counts), {
    count: 1,
    p50Ms: 10_000,
    p99Ms: 10_000,
  });
});

Deno.test("rates are per second and count 4xx and 5xx apart", () => {
  const body = (puts: number, byStatus: Record<string, number>) => ({
    engine: { ops: { puts, deletes: 0, gets: 0, scans: 0, userBytes: 0 } },
    server: {
      requests: Object.values(byStatus).reduce((a, b) => a + b, 0),
      byStatus,
    },
  });
  const r = rates(
    body(10, { "200": 10 }),
    body(30, { "200": 14, "404": 2, "503": 4 }),
    2,
  );
  equal(r.writes, 10);
  equal(r.requests, 5);
  equal(r.clientErrors, 1);
  equal(r.serverErrors, 2);
});
