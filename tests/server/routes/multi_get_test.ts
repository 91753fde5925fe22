/**
 * `POST /kv/get` through the handler and through real HTTP: answers checked
 * against a Map model, one snapshot per answer under concurrent writes, and
 * every refusal with its status and code.
 */
import assert from "node:assert/strict";
import { open } from "../../../mod.ts";
import { createHandler } from "../../../server/app.ts";
import { multiGet } from "../../../server/routes/multi_get.ts";
import { HttpError } from "../../../server/_codec.ts";
import { EngineStore } from "../../../server/store/engine_store.ts";
import { hex, testSeed, withSeed, withTempDir } from "../../_helpers.ts";
import { b, b64, errorCode, rawRequest, withServer } from "../_helpers.ts";

interface Item {
  key: string;
  value: string;
  version: string;
}

function post(base: string, body: unknown, headers: HeadersInit = {}) {
  return fetch(`${base}/kv/get`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function expectError(
  res: Response,
  status: number,
  code: string,
): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(errorCode(text), code);
}

Deno.test("multi-get matches a Map model over binary keys, absent keys and duplicates", async () => {
  await withSeed(testSeed(1401), async (rng) => {
    await withServer({}, async (s) => {
      const model = new Map<string, { value: Uint8Array; version: string }>();
      const keys: Uint8Array[] = [];
      for (let i = 0; i < 300; i++) {
        const k = rng.bytes(rng.range(1, 24));
        k[0] = rng.range(0, 255);
        keys.push(k);
      }
      for (let round = 0; round < 400; round++) {
        const k = rng.pick(keys);
        if (rng.chance(0.2)) {
          await s.db.delete(k);
          model.delete(hex(k));
        } else {
          const v = rng.bytes(rng.int(64));
          const version = await s.db.put(k, v);
          model.set(hex(k), { value: v, version: String(version) });
        }
      }
      for (let q = 0; q < 20; q++) {
        const ask = Array.from(
          { length: rng.range(1, 60) },
          () => rng.pick(keys),
        );
        const res = await post(s.base, { keys: ask.map((k) => b64(k)) });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-type"), "application/json");
        const body = await res.json() as {
          items: (Item | null)[];
          snapshot: string;
        };
        assert.match(body.snapshot, /^[0-9]+$/);
        assert.equal(body.items.length, ask.length);
        ask.forEach((k, i) => {
          const want = model.get(hex(k));
          const got = body.items[i];
          if (want === undefined) {
            assert.equal(got, null, `key ${hex(k)} should be absent`);
          } else {
            assert.ok(got !== null, `key ${hex(k)} should be present`);
            assert.equal(got.key, b64(k));
            assert.equal(
              hex(Uint8Array.fromBase64(got.value)),
              hex(want.value),
            );
            assert.equal(got.version, want.version);
          }
        });
      }
    });
  });
});

Deno.test("multi-get reads every key at one snapshot while a writer rewrites them all", async () => {
  await withServer({}, async (s) => {
    const keys = Array.from({ length: 50 }, (_, i) => b(`snap/${i}`));
    await s.db.batch(keys.map((key) => ({
      type: "put" as const,
      key,
      value: b("0"),
    })));
    let stop = false;
    let generation = 0;
    // Each batch writes the same generation to all keys atomically: an
    // answer mixing generations would be a torn read.
    const writer = (async () => {
      while (!stop) {
        generation++;
        const ops = keys.map((k) => ({
          op: "put",
          key: b64(k),
          value: b64(String(generation)),
        }));
        const res = await fetch(`${s.base}/kv/batch`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ ops }),
        });
        assert.equal(res.status, 200, await res.text());
      }
    })();
    const seen = new Set<string>();
    try {
      for (let q = 0; q < 60; q++) {
        const res = await post(s.base, { keys: keys.map((k) => b64(k)) });
        const body = await res.json() as { items: Item[] };
        const values = new Set(body.items.map((it) => atob(it.value)));
        const versions = new Set(body.items.map((it) => it.version));
        assert.equal(values.size, 1, `torn read: ${[...values]}`);
        assert.equal(versions.size, 1);
        seen.add([...values][0]);
      }
    } finally {
      stop = true;
      await writer;
    }
    // The reads overlapped the writes: several generations were observed.
    assert.ok(seen.size > 1, `only saw generations ${[...seen]}`);
  });
});

Deno.test("multi-get refuses bad requests with 4xx JSON errors", async () => {
  await withServer({ handler: { maxKeyBytes: 16 } }, async (s) => {
    const noType = await fetch(`${s.base}/kv/get`, {
      method: "POST",
      body: JSON.stringify({ keys: [b64("a")] }),
    });
    await expectError(noType, 415, "unsupported_media_type");
    await expectError(
      await post(s.base, { keys: [b64("a")] }, {
        "content-type": "text/plain",
      }),
      415,
      "unsupported_media_type",
    );
    // A charset parameter is fine.
    const charset = await post(s.base, { keys: [b64("a")] }, {
      "content-type": "application/json; charset=utf-8",
    });
    assert.equal(charset.status, 200);
    await charset.body?.cancel();
    await expectError(await post(s.base, "{nope"), 400, "invalid_json");
    await expectError(await post(s.base, [b64("a")]), 400, "invalid_request");
    await expectError(await post(s.base, { keys: [] }), 400, "invalid_request");
    await expectError(
      await post(s.base, { keys: [b64("a")], snapshot: 1 }),
      400,
      "invalid_request",
    );
    await expectError(
      await post(s.base, { keys: ["!!"] }),
      400,
      "invalid_base64",
    );
    await expectError(await post(s.base, { keys: [7] }), 400, "invalid_base64");
    await expectError(await post(s.base, { keys: [""] }), 400, "invalid_key");
    await expectError(
      await post(s.base, { keys: [b64("x".repeat(17))] }),
      414,
      "key_too_long",
    );
    await expectError(
      await post(s.base, { keys: Array(1001).fill(b64("a")) }),
      413,
      "too_many_keys",
    );
    await expectError(
      await post(s.base, { keys: [b64("a")], pad: "x".repeat(8 << 20) }),
      413,
      "payload_too_large",
    );
    const get = await fetch(`${s.base}/kv/get`);
    assert.equal(get.headers.get("allow"), "POST");
    await expectError(get, 405, "method_not_allowed");
    const options = await fetch(`${s.base}/kv/get`, { method: "OPTIONS" });
    assert.equal(options.status, 204);
    assert.equal(options.headers.get("allow"), "POST");
    // A body with no framing at all is refused, not read as empty.
    const raw = await rawRequest(
      s.port,
      "POST /kv/get HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json",
    );
    assert.equal(raw.status, 411);
    assert.equal(errorCode(raw.body), "length_required");
    // Nothing was written by any of these.
    assert.equal([...s.db.scan({})].length, 0);
  });
});

Deno.test("the key named get stays reachable as /kv/%67et", async () => {
  await withServer({}, async (s) => {
    const put = await fetch(`${s.base}/kv/%67et`, { method: "PUT", body: "v" });
    assert.equal(put.status, 204);
    assert.equal(await (await fetch(`${s.base}/kv/%67et`)).text(), "v");
    const res = await post(s.base, { keys: [b64("get")] });
    const body = await res.json() as { items: Item[] };
    assert.equal(atob(body.items[0].value), "v");
  });
});

Deno.test("multi-get needs the token and is counted in /metrics", async () => {
  await withServer({ handler: { authToken: "t0k" } }, async (s) => {
    await expectError(
      await post(s.base, { keys: [b64("a")] }),
      401,
      "unauthorized",
    );
    const ok = await post(s.base, { keys: [b64("a")] }, {
      authorization: "Bearer t0k",
    });
    assert.deepEqual(await ok.json(), { items: [null], snapshot: "0" });
    const metrics = await (await fetch(`${s.base}/metrics`, {
      headers: { authorization: "Bearer t0k" },
    })).text();
    assert.match(
      metrics,
      /shale_http_requests_total\{route="\/kv\/get",method="POST",status="200"\} 1/,
    );
    // Auth is checked before routing, as for every /kv route.
    assert.match(
      metrics,
      /shale_http_requests_total\{route="other",method="POST",status="401"\} 1/,
    );
  });
});

Deno.test("multi-get through the handler: an answer over the byte limit is a 413, and the snapshot is released", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "inline" });
    try {
      const handler = createHandler(db, { log: () => {} });
      await db.put(b("big1"), new Uint8Array(600));
      await db.put(b("big2"), new Uint8Array(600));
      const request = () =>
        new Request("http://127.0.0.1/kv/get", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ keys: [b64("big1"), b64("big2")] }),
        });
      const readBody = async (req: Request) =>
        new Uint8Array(await req.arrayBuffer());
      const deps = {
        store: new EngineStore(db),
        readBody,
        checkKey: () => {},
        maxKeyBytes: 100,
        maxResponseBytes: 1000,
      };
      await assert.rejects(
        () => multiGet(request(), deps),
        (err) =>
          err instanceof HttpError && err.status === 413 &&
          err.code === "response_too_large",
      );
      assert.equal((db.stats() as { snapshots: number }).snapshots, 0);
      const res = await handler(request());
      assert.equal(res.status, 200);
      const body = await res.json() as { items: Item[] };
      assert.equal(body.items.length, 2);
      handler.close();
    } finally {
      await db.close();
    }
  });
});
