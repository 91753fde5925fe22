/**
 * Gateway mode (`shale serve --backend URL`): the REST API served from a
 * KV Connect backend, here a shale process with a token (`_gateway.ts`).
 * What the contract tests in http_test.ts do not cover: binary keys and
 * paging, batches, TTLs, multi-get, the backend's limits as 4xx, routes a
 * backend cannot serve, two gateways on one backend (linearizable
 * conditional writes), and the backend going away and coming back.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { checkKey, type Operation } from "../_linearizability.ts";
import { Rng, testSeed, withSeed } from "../_helpers.ts";
import { mustStart, stopServer } from "../_shale.ts";
import {
  BACKEND_TOKEN,
  startBackend,
  startGateway,
  withGateway,
} from "./_gateway.ts";
import { b64, errorCode, unb64 } from "./_helpers.ts";
import { encodeKey, versionOf } from "../../server/store/kv_connect_keys.ts";

const JSON_HEADERS = { "content-type": "application/json" };

async function batch(base: string, ops: unknown[]): Promise<Response> {
  return await fetch(`${base}/kv/batch`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ ops }),
  });
}

Deno.test("gateway: binary keys, paging with cursors, batches, TTLs, multi-get", async () => {
  await withGateway(async ({ base }) => {
    // Keys with 0x00 and 0xFF bytes round-trip and scan in byte order.
    const keys = ["", "\0", "\0\0", "\0\xff", "a", "a\0", "a\0b", "\xff"]
      .slice(1).map((k) => Uint8Array.from(k, (c) => c.charCodeAt(0)));
    const path = (k: Uint8Array) =>
      [...k].map((x) => "%" + x.toString(16).padStart(2, "0")).join("");
    for (const k of keys) {
      const r = await fetch(`${base}/kv/${path(k)}`, {
        method: "PUT",
        body: k,
      });
      equal(r.status, 204);
      match(r.headers.get("etag")!, /^"[0-9]+"$/);
    }
    const g = await fetch(`${base}/kv/${path(keys[2])}`);
    deepEqual(new Uint8Array(await g.arrayBuffer()), keys[2]);
    // Pages of 2, forward and reversed, list each key exactly once.
    for (const reverse of [false, true]) {
      const seen: string[] = [];
      let cursor = "";
      for (;;) {
        const r = await fetch(
          `${base}/kv/range?limit=2&reverse=${reverse}&cursor=${cursor}`,
        );
        const doc = await r.json();
        for (const i of doc.items) seen.push(i.key);
        if (doc.next === null) break;
        cursor = doc.next;
      }
      const want = keys.map((k) => k.toBase64());
      deepEqual(seen, reverse ? want.toReversed() : want);
    }

    // A batch is atomic: a failed check names its op and writes nothing.
    const v = await (await batch(base, [
      { op: "put", key: b64("x"), value: b64("1") },
      { op: "put", key: b64("y"), value: b64("2") },
      { op: "put", key: b64("t"), value: b64("3"), ttl: 1 },
    ])).json();
    const wroteAt = performance.now();
    equal((await fetch(`${base}/kv/t`)).status, 200);
    match(v.version, /^[0-9]+$/);
    const failed = await batch(base, [
      { op: "put", key: b64("x"), value: b64("new") },
      { op: "check", key: b64("x"), if_match: v.version },
      { op: "check", key: b64("y"), if_none_match: "*" },
    ]);
    equal(failed.status, 412);
    const err = await failed.json();
    equal(err.error.index, 2);
    equal(await (await fetch(`${base}/kv/x`)).text(), "1");
    // A batch of checks alone commits nothing and answers 200.
    const checked = await batch(base, [
      { op: "check", key: b64("x"), if_match: v.version },
      { op: "check", key: b64("absent"), if_none_match: "*" },
    ]);
    equal(checked.status, 200);
    equal((await checked.json()).applied, 2);
    // The same version twice is fine; a version past 80 bits never matches.
    const huge = await batch(base, [
      { op: "check", key: b64("x"), if_match: "9".repeat(25) },
    ]);
    equal(huge.status, 400);
    await huge.body?.cancel();

    // Multi-get reads at one snapshot, up to the backend's 10 keys.
    const mg = await fetch(`${base}/kv/get`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({ keys: [b64("x"), b64("nope"), b64("y")] }),
    });
    const doc = await mg.json();
    equal(unb64(doc.items[0].value), "1");
    equal(doc.items[1], null);
    equal(unb64(doc.items[2].value), "2");
    const many = await fetch(`${base}/kv/get`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({
        keys: Array.from({ length: 11 }, () => b64("x")),
      }),
    });
    equal(many.status, 413);
    match((await many.json()).error.message, /at most 10 keys/);

    // The TTL became the backend's expiry.
    const left = wroteAt + 1200 - performance.now();
    await new Promise((r) => setTimeout(r, Math.max(0, left)));
    equal((await fetch(`${base}/kv/t`)).status, 404);
  });
});

Deno.test("gateway: the backend's limits are 4xx naming them; engine-only routes 501", async () => {
  await withGateway(async ({ base }) => {
    const big = await fetch(`${base}/kv/big`, {
      method: "PUT",
      body: new Uint8Array(65537),
    });
    equal(big.status, 413);
    match((await big.json()).error.message, /65536/);
    // 1500 zero bytes encode to 3002 bytes on the backend.
    const zeros = "%00".repeat(1500);
    const long = await fetch(`${base}/kv/${zeros}`, {
      method: "PUT",
      body: "",
    });
    equal(long.status, 414);
    match((await long.json()).error.message, /backend's limit is 2048/);
    const ops = Array.from({ length: 1001 }, (_, i) => ({
      op: "put",
      key: b64(`k${i}`),
      value: "",
    }));
    const tooMany = await batch(base, ops);
    equal(tooMany.status, 413);
    match((await tooMany.json()).error.message, /at most 1000/);
    for (const path of ["/kv/watch", "/admin/backup", "/deno-kv"]) {
      const r = await fetch(base + path, {
        method: path === "/deno-kv" ? "POST" : "GET",
      });
      equal(r.status, 501, path);
      equal(errorCode(await r.text()), "not_supported_by_backend");
    }
    // KV Connect has no range delete: the whole batch is refused, unsent.
    const range = await batch(base, [
      { op: "put", key: b64("kept out"), value: b64("1") },
      { op: "delete_range", prefix: b64("k") },
    ]);
    equal(range.status, 501);
    const rangeError = (await range.json()).error;
    equal(rangeError.code, "not_supported_by_backend");
    match(rangeError.message, /op 1: delete_range needs shale's local engine/);
    // Every request above was refused before reaching the backend.
    let stats = await (await fetch(`${base}/stats`)).json();
    equal(stats.backend.calls, 0);
    equal((await fetch(`${base}/kv/small`, { method: "PUT" })).status, 204);
    stats = await (await fetch(`${base}/stats`)).json();
    ok(stats.backend.calls > 0);
    equal(stats.engine, undefined);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    match(metrics, /^shale_backend_calls_total [1-9]/m);
    match(metrics, /^shale_backend_up 1$/m);
  });
});

/** Statuses a correct gateway may answer in the concurrent run. */
const EXPECTED = new Set([200, 204, 404, 412]);

Deno.test("gateway: conditional writes through two gateways on one backend stay linearizable", async () => {
  const backend = await startBackend();
  const gateways = [startGateway(backend.url), startGateway(backend.url)];
  const keys = ["k0", "k1"];
  const histories = new Map<string, Operation[]>(keys.map((k) => [k, []]));
  const surprises: string[] = [];
  const deadline = performance.now() + 1500;
  const client = async (id: number, r: Rng) => {
    const seen = new Map<string, number>();
    for (let n = 0; performance.now() < deadline; n++) {
      // Each request goes to either gateway.
      const base = r.pick(gateways).base;
      const key = r.pick(keys);
      const known = seen.get(key);
      const p = r.next();
      const o: Operation = {
        client: id,
        kind: p < 0.3 ? "get" : p < 0.9 ? "put" : "delete",
        status: "ok",
        invoke: 0,
        ret: 0,
      };
      const headers: Record<string, string> = {};
      if (o.kind === "put") {
        o.value = `c${id}.${n}`;
        if (known !== undefined && r.chance(0.6)) o.ifMatch = known;
        else if (r.chance(0.5)) o.ifNoneMatch = true;
      } else if (o.kind === "delete" && known !== undefined) {
        o.ifMatch = known;
      }
      if (o.ifMatch !== undefined) headers["if-match"] = `"${o.ifMatch}"`;
      if (o.ifNoneMatch) headers["if-none-match"] = "*";
      o.invoke = performance.now();
      const res = await fetch(`${base}/kv/${key}`, {
        method: o.kind.toUpperCase(),
        headers,
        body: o.value,
      });
      const text = await res.text();
      o.ret = performance.now();
      if (!EXPECTED.has(res.status)) surprises.push(`${res.status} ${text}`);
      const etag = res.headers.get("etag");
      const version = etag === null ? undefined : Number(etag.slice(1, -1));
      if (res.status === 412) o.status = "failed";
      else if (res.status === 404) o.read = null;
      else if (o.kind === "get") {
        o.read = text;
        o.version = version;
      } else if (o.kind === "put") o.version = version;
      if (o.version !== undefined) seen.set(key, o.version);
      histories.get(key)!.push(o);
    }
  };
  try {
    await withSeed(testSeed(20261201), async (rng) => {
      await Promise.all(
        Array.from(
          { length: 6 },
          (_, i) => client(i, new Rng(rng.int(2 ** 31))),
        ),
      );
    });
  } finally {
    for (const g of gateways) await g.close();
    await stopServer(backend.server);
    await Deno.remove(backend.dir, { recursive: true });
  }
  deepEqual(surprises, []);
  const all = [...histories.values()].flat();
  ok(all.some((o) => o.kind === "put" && o.status === "ok"), "no write won");
  ok(all.some((o) => o.status === "failed"), "no condition failed");
  for (const [key, h] of histories) {
    const v = checkKey(h);
    ok(v.ok, `key ${key}: ${v.ok ? "" : v.report}`);
  }
});

Deno.test("gateway: backend stopped gives 503 backend_unavailable; service resumes when it returns", async () => {
  let backend = await startBackend();
  const port = backend.server.port;
  const scratch = await Deno.makeTempDir({ prefix: "shale-gw-unused-" });
  // The gateway as its own process: `shale serve --backend`, no data dir used.
  const gw = await mustStart(scratch, {
    args: ["--backend", backend.url],
    env: { SHALE_BACKEND_TOKEN: BACKEND_TOKEN },
  });
  try {
    const put = await fetch(`${gw.base}/kv/kept`, { method: "PUT", body: "v" });
    equal(put.status, 204);
    await stopServer(backend.server);

    const get = await fetch(`${gw.base}/kv/kept`);
    equal(get.status, 503);
    const e = (await get.json()).error;
    equal(e.code, "backend_unavailable");
    match(e.message, /did not answer/);
    const write = await fetch(`${gw.base}/kv/lost`, {
      method: "PUT",
      body: "x",
    });
    equal(write.status, 503);
    match((await write.json()).error.message, /was not applied/);
    const health = await fetch(`${gw.base}/health`);
    equal(health.status, 503);
    equal((await health.json()).error.code, "backend_unavailable");

    backend = await startBackend(backend.dir, port);
    const again = await fetch(`${gw.base}/kv/kept`);
    equal(again.status, 200);
    equal(await again.text(), "v");
    equal((await fetch(`${gw.base}/kv/lost`)).status, 404);
    // /health answers from a probe at most a second old.
    await new Promise((r) => setTimeout(r, 1100));
    const healthy = await fetch(`${gw.base}/health`);
    equal(healthy.status, 200);
    await healthy.body?.cancel();
    const metrics = await (await fetch(`${gw.base}/metrics`)).text();
    match(metrics, /^shale_backend_retries_total [1-9]/m);
    deepEqual([...Deno.readDirSync(scratch)], []);
  } finally {
    await stopServer(gw);
    await stopServer(backend.server);
    await Deno.remove(backend.dir, { recursive: true });
    await Deno.remove(scratch, { recursive: true });
  }
});

Deno.test("gateway: killing a gateway mid-write loses no acknowledged write", async () => {
  const backend = await startBackend();
  const scratch = await Deno.makeTempDir({ prefix: "shale-gw-unused-" });
  const gw = await mustStart(scratch, {
    args: ["--backend", backend.url],
    env: { SHALE_BACKEND_TOKEN: BACKEND_TOKEN },
  });
  const acked = new Map<string, string>(); // key -> ETag of its one write
  let killed = false;
  const writer = async (w: number) => {
    for (let i = 0; !killed; i++) {
      try {
        const r = await fetch(`${gw.base}/kv/w${w}-${i}`, {
          method: "PUT",
          body: `v${w}-${i}`,
        });
        await r.body?.cancel();
        if (r.status === 204) acked.set(`w${w}-${i}`, r.headers.get("etag")!);
      } catch {
        // Cut by the kill: its outcome is unknown, and it was not acknowledged.
      }
    }
  };
  const fresh = startGateway(backend.url);
  try {
    const writers = Array.from({ length: 4 }, (_, w) => writer(w));
    await new Promise((r) => setTimeout(r, 400));
    gw.kill("SIGKILL");
    await gw.exited;
    killed = true;
    await Promise.all(writers);
    ok(acked.size > 0, "no write was acknowledged before the kill");
    // Another gateway reads every acknowledged write, at its version.
    for (const [key, etag] of acked) {
      const r = await fetch(`${fresh.base}/kv/${key}`);
      equal(r.status, 200, key);
      equal(r.headers.get("etag"), etag, key);
      equal(await r.text(), `v${key.slice(1)}`);
    }
  } finally {
    await fresh.close();
    await stopServer(backend.server);
    await Deno.remove(backend.dir, { recursive: true });
    await Deno.remove(scratch, { recursive: true });
  }
});

Deno.test("gateway: the KV Connect client watches keys on the backend", async () => {
  await withGateway(async ({ base, store }) => {
    const ac = new AbortController();
    const key = encodeKey(new TextEncoder().encode("watched"));
    const frames = store.client.watch([key], ac.signal);
    // The first frame gives the key's state now: absent.
    const first = await frames.next();
    equal(first.done, false);
    equal(first.value![0].entry, undefined);
    const put = await fetch(`${base}/kv/watched`, { method: "PUT", body: "1" });
    equal(put.status, 204);
    const etag = put.headers.get("etag")!;
    for (;;) {
      const next = await frames.next();
      equal(next.done, false);
      const e = next.value![0].entry;
      if (e === undefined) continue;
      equal(new TextDecoder().decode(e.value), "1");
      equal(`"${versionOf(e.versionstamp)}"`, etag);
      break;
    }
    ac.abort();
    equal((await frames.next()).done, true);
  });
});
