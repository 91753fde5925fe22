/**
 * The REST client (`client.ts`) through real HTTP against a real server
 * (`Deno.serve` over a temp dir): random operations checked against a Map
 * model, binary keys, route-like and dot keys, conditions, TTL, paging,
 * batches, errors, timeouts and aborts.
 */
import assert from "node:assert/strict";
import {
  type BatchOp,
  type Entry,
  ShaleClient,
  ShaleClientError,
} from "../client.ts";
import { concat, hex, testSeed, withSeed } from "./_helpers.ts";
import { type TestServer, withServer } from "./server/_helpers.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

function clientFor(s: TestServer, token?: string): ShaleClient {
  return new ShaleClient(s.base, { token });
}

async function rejectsWith(
  p: Promise<unknown>,
  status: number,
  code: string,
): Promise<ShaleClientError> {
  try {
    await p;
  } catch (err) {
    assert.ok(
      err instanceof ShaleClientError,
      `not a ShaleClientError: ${err}`,
    );
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status);
    return err;
  }
  throw new Error(`expected ${status} ${code}, but the call succeeded`);
}

/** Sorted [hex key, entry] pairs of the model. */
function sortedModel(model: Map<string, Entry>): Entry[] {
  return [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, e]) => e);
}

Deno.test("client: random puts, deletes, conditions and batches match a Map model", async () => {
  await withSeed(testSeed(1402), async (rng) => {
    await withServer({}, async (s) => {
      const shale = clientFor(s);
      const model = new Map<string, Entry>();
      const keys: Uint8Array[] = [];
      for (let i = 0; i < 120; i++) {
        const k = rng.bytes(rng.range(1, 12));
        k[0] = rng.range(1, 255);
        keys.push(k);
      }
      for (let step = 0; step < 600; step++) {
        const key = rng.pick(keys);
        const cur = model.get(hex(key));
        const dice = rng.int(10);
        if (dice < 5) {
          const value = rng.bytes(rng.int(40));
          const cond = rng.int(3);
          if (cond === 0) {
            const v = await shale.put(key, value);
            model.set(hex(key), { key, value, version: v });
          } else if (cond === 1) {
            // ifVersion: right when present, a stale one otherwise.
            const want = cur?.version ?? 1;
            const p = shale.put(key, value, { ifVersion: want });
            if (cur !== undefined) {
              const v = await p;
              assert.ok(v > cur.version);
              model.set(hex(key), { key, value, version: v });
            } else {
              await rejectsWith(p, 412, "precondition_failed");
            }
          } else {
            const p = shale.put(key, value, { ifAbsent: true });
            if (cur === undefined) {
              model.set(hex(key), { key, value, version: await p });
            } else {
              await rejectsWith(p, 412, "precondition_failed");
            }
          }
        } else if (dice < 7) {
          await shale.delete(key);
          model.delete(hex(key));
        } else if (dice < 8) {
          const ops: BatchOp[] = [];
          for (let i = rng.range(1, 5); i > 0; i--) {
            const k = rng.pick(keys);
            ops.push(
              rng.chance(0.7)
                ? { op: "put", key: k, value: rng.bytes(rng.int(20)) }
                : { op: "delete", key: k },
            );
          }
          const r = await shale.batch(ops);
          assert.equal(r.applied, ops.length);
          for (const op of ops) {
            if (op.op === "put") {
              const k = op.key as Uint8Array;
              model.set(hex(k), {
                key: k,
                value: op.value as Uint8Array,
                version: r.version,
              });
            } else if (op.op === "delete") {
              model.delete(hex(op.key as Uint8Array));
            }
          }
        } else {
          const got = await shale.get(key);
          if (cur === undefined) assert.equal(got, null);
          else {
            assert.ok(got !== null);
            assert.equal(hex(got.value), hex(cur.value));
            assert.equal(got.version, cur.version);
            assert.equal(hex(got.key), hex(key));
          }
        }
      }
      // Every key through get and getMany, and the whole store through list.
      const many = await shale.getMany(keys);
      for (let i = 0; i < keys.length; i++) {
        const want = model.get(hex(keys[i]));
        const one = await shale.get(keys[i]);
        for (const got of [many[i], one]) {
          if (want === undefined) assert.equal(got, null);
          else {
            assert.equal(hex(got!.value), hex(want.value));
            assert.equal(got!.version, want.version);
          }
        }
      }
      const listed: Entry[] = [];
      for await (const e of shale.list({ pageSize: 7 })) listed.push(e);
      const want = sortedModel(model);
      assert.deepEqual(
        listed.map((e) => [hex(e.key), hex(e.value), e.version]),
        want.map((e) => [hex(e.key), hex(e.value), e.version]),
      );
      const reversed: string[] = [];
      for await (const e of shale.list({ reverse: true, pageSize: 5 })) {
        reversed.push(hex(e.key));
      }
      assert.deepEqual(reversed, want.map((e) => hex(e.key)).reverse());
    });
  });
});

Deno.test("client: binary keys with every byte 0x00..0xFF after a first byte 0x01..0xFF", async () => {
  await withServer({}, async (s) => {
    const shale = clientFor(s);
    const all = new Uint8Array(256).map((_, i) => i);
    const keys: Uint8Array[] = [];
    for (let first = 1; first < 256; first++) {
      keys.push(new Uint8Array([first]));
      keys.push(concat(new Uint8Array([first]), all));
    }
    for (const k of keys) await shale.put(k, concat(k, k));
    for (const k of keys) {
      const e = await shale.get(k);
      assert.ok(e !== null, `key ${hex(k)} missing`);
      assert.equal(hex(e.value), hex(concat(k, k)));
    }
    const got = await shale.getMany(keys.slice(0, 100));
    got.forEach((e, i) => assert.equal(hex(e!.key), hex(keys[i])));
    const listed: string[] = [];
    for await (const e of shale.list({ keysOnly: true, pageSize: 100 })) {
      assert.equal(e.value.length, 0);
      listed.push(hex(e.key));
    }
    assert.deepEqual(listed, keys.map(hex).sort());
    // Bounds and prefixes are binary too.
    const under: string[] = [];
    for await (const e of shale.list({ prefix: new Uint8Array([0xff, 0]) })) {
      under.push(hex(e.key));
    }
    assert.deepEqual(under, [hex(concat(new Uint8Array([0xff]), all))]);
    for (const k of keys) await shale.delete(k);
    assert.deepEqual(await shale.getMany(keys.slice(0, 3)), [null, null, null]);
  });
});

Deno.test({
  name: "client: a key starting with byte 0x00 round-trips",
  fn: async () => {
    await withServer({}, async (s) => {
      const shale = clientFor(s);
      const k = new Uint8Array([0, 1, 2]);
      await shale.put(k, "zero");
      assert.equal(text((await shale.get(k))!.value), "zero");
    });
  },
});

Deno.test("client: keys that look like routes, dot segments, slashes or escapes", async () => {
  await withServer({}, async (s) => {
    const shale = clientFor(s);
    const names = [
      "range",
      "get",
      "batch",
      ".",
      "..",
      "...",
      "a/../b",
      "./x",
      "/",
      "//",
      "%2F",
      "a b+c?d#e&f=g",
      "caf\u00e9 \u2713",
      "~-_.",
    ];
    for (const name of names) await shale.put(name, `v:${name}`);
    for (const name of names) {
      const e = await shale.get(name);
      assert.ok(e !== null, `key ${JSON.stringify(name)} missing`);
      assert.equal(text(e.value), `v:${name}`);
      assert.equal(hex(e.key), hex(new TextEncoder().encode(name)));
    }
    const listed: string[] = [];
    for await (const e of shale.list()) listed.push(text(e.key));
    assert.deepEqual(listed.sort(), [...names].sort());
    // The dot keys go through batch and multi-get, with their conditions.
    const v = (await shale.get(".."))!.version;
    await rejectsWith(
      shale.put("..", "x", { ifVersion: v + 1000 }),
      412,
      "precondition_failed",
    );
    await shale.put("..", "y", { ifVersion: v });
    await shale.delete(".");
    assert.equal(await shale.get("."), null);
    assert.equal(text((await shale.get(".."))!.value), "y");
  });
});

Deno.test("client: ETags, conditions on delete, TTL and expiry", async () => {
  await withServer({}, async (s) => {
    const shale = clientFor(s);
    const v1 = await shale.put("k", "1");
    assert.equal((await shale.get("k"))!.version, v1);
    await rejectsWith(
      shale.delete("k", { ifVersion: v1 + 1 }),
      412,
      "precondition_failed",
    );
    await rejectsWith(
      shale.delete("k", { ifAbsent: true }),
      412,
      "precondition_failed",
    );
    await shale.delete("k", { ifVersion: v1 });
    assert.equal(await shale.get("k"), null);
    await rejectsWith(
      shale.delete("k", { ifVersion: v1 }),
      412,
      "precondition_failed",
    );

    const before = Date.now();
    await shale.put("ttl", "soon", { ttl: 0.5 });
    const e = await shale.get("ttl");
    assert.ok(e !== null && e.expiresAt !== undefined);
    // Expires has whole seconds: within a second of the asked time.
    assert.ok(Math.abs(e.expiresAt - (before + 500)) < 1500);
    assert.equal(await shale.get("k2"), null);
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(await shale.get("ttl"), null);
    await shale.batch([{ op: "put", key: "bttl", value: "x", ttl: 0.3 }]);
    assert.ok((await shale.get("bttl")) !== null);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await shale.getMany(["bttl"]), [null]);
    await assert.rejects(
      shale.put("bad", "x", { ttl: -1 }),
      (err) =>
        err instanceof ShaleClientError && err.code === "invalid_parameter",
    );
  });
});

Deno.test("client: list bounds, limit and cursor pages", async () => {
  await withServer({}, async (s) => {
    let requests = 0;
    const shale = new ShaleClient(s.base, {
      fetch: (input, init) => {
        requests++;
        return fetch(input, init);
      },
    });
    const ops: BatchOp[] = [];
    for (let i = 0; i < 50; i++) {
      ops.push({
        op: "put",
        key: `n/${String(i).padStart(2, "0")}`,
        value: `${i}`,
      });
    }
    await shale.batch(ops);
    const collect = async (opts: Parameters<ShaleClient["list"]>[0]) => {
      const out: string[] = [];
      for await (const e of shale.list(opts)) out.push(text(e.key));
      return out;
    };
    requests = 0;
    const all = await collect({ prefix: "n/", pageSize: 10 });
    assert.equal(all.length, 50);
    assert.equal(requests, 5); // the 5th page says next: null
    assert.deepEqual(await collect({ start: "n/10", end: "n/13" }), [
      "n/10",
      "n/11",
      "n/12",
    ]);
    assert.deepEqual(await collect({ prefix: "n/", limit: 3, reverse: true }), [
      "n/49",
      "n/48",
      "n/47",
    ]);
    // Manual paging with listPage.
    const p1 = await shale.listPage({ prefix: "n/", pageSize: 30 });
    assert.equal(p1.items.length, 30);
    assert.ok(p1.next !== null);
    const p2 = await shale.listPage({
      prefix: "n/",
      pageSize: 30,
      cursor: p1.next,
    });
    assert.equal(p2.items.length, 20);
    assert.equal(p2.next, null);
    assert.equal(text(p2.items[0].key), "n/30");
    await rejectsWith(
      shale.listPage({ prefix: "m/", cursor: p1.next }),
      400,
      "invalid_cursor",
    );
    await rejectsWith(
      shale.listPage({ prefix: "n/", start: "a" }),
      400,
      "invalid_parameter",
    );
  });
});

Deno.test("client: batch conditions report the failing op; server errors are typed", async () => {
  await withServer({ handler: { authToken: "tok" } }, async (s) => {
    const shale = clientFor(s, "tok");
    const v = await shale.put("a", "1");
    const err = await rejectsWith(
      shale.batch([
        { op: "put", key: "b", value: "2" },
        { op: "check", key: "a", ifVersion: v },
        { op: "check", key: "a", ifAbsent: true },
      ]),
      412,
      "precondition_failed",
    );
    assert.equal(err.index, 2);
    assert.equal(await shale.get("b"), null); // nothing applied
    await rejectsWith(shale.get("x".repeat(5000)), 414, "key_too_long");
    await rejectsWith(shale.getMany([]), 400, "invalid_request");
    await rejectsWith(clientFor(s).get("a"), 401, "unauthorized");
    await rejectsWith(
      clientFor(s, "wrong").getMany(["a"]),
      401,
      "unauthorized",
    );
    assert.deepEqual(await shale.health(), { ok: true });
    s.handler.drain();
    const h = await shale.health();
    assert.equal(h.ok, false);
    assert.equal(h.code, "not_ready");
  });
});

Deno.test("client: timeouts, aborts, refused connections and non-shale answers", async () => {
  let release!: () => void;
  const hang = new Promise<void>((r) => (release = r));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      if (new URL(req.url).pathname === "/kv/%70lain") {
        return new Response("oops", { status: 500 });
      }
      await hang;
      return new Response(null, { status: 204, headers: { etag: '"1"' } });
    },
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const slow = new ShaleClient(base, { timeoutMs: 150 });
    const t0 = performance.now();
    await rejectsWith(slow.get("k"), 0, "timeout");
    assert.ok(performance.now() - t0 < 5000);
    // A per-call limit overrides the client's.
    await rejectsWith(
      new ShaleClient(base).put("k", "v", { timeoutMs: 100 }),
      0,
      "timeout",
    );
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    const pending = new ShaleClient(base).get("k", {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(pending, (err) => err === reason);
    const bad = await rejectsWith(
      new ShaleClient(base).get("plain"),
      500,
      "bad_response",
    );
    assert.match(bad.message, /oops/);
  } finally {
    release();
    await server.shutdown();
  }
  // Nothing listens there any more.
  await rejectsWith(
    new ShaleClient(`http://127.0.0.1:${server.addr.port}`).get("k"),
    0,
    "network_error",
  );
});
