/**
 * Contract tests: every route and error of docs/HTTP.md over real HTTP
 * against `Deno.serve` on port 0. Those that need nothing but HTTP
 * ({@link contract}) also run against a shale process on Bun and as the
 * binary.
 */
import { deepEqual, match, ok } from "node:assert/strict";
import { FaultyFileSystem } from "../../engine/testing/faulty_fs.ts";
import {
  b,
  b64,
  errorCode,
  rawRequest,
  unb64,
  withServer,
} from "./_helpers.ts";
import {
  mustStart,
  type ShaleRuntime,
  stopServer,
  unavailable,
} from "../_shale.ts";
import { withGateway } from "./_gateway.ts";

/**
 * The contract tests that also run against a gateway onto a KV Connect
 * backend (docs/HTTP.md, "Gateway mode"): the data API. The others test
 * the engine's own figures and routes.
 */
const GATEWAY_CONTRACT = new Set([
  "PUT, GET, HEAD and DELETE round-trip a value with its ETag",
  "If-Match and If-None-Match make writes conditional",
  "racing If-Match writers: exactly one wins",
  "range: bounds, prefix, limit, reverse, keys_only",
]);

/**
 * Registers a test that needs only HTTP three times: in process on
 * `Deno.serve` (with `inProcess` options), and against `shale serve
 * --sync none <flags>` on Bun and as the binary; those of
 * {@link GATEWAY_CONTRACT} a fourth time, through a gateway.
 */
function contract(
  name: string,
  flags: string[],
  inProcess: Parameters<typeof withServer>[0],
  fn: (s: { base: string }) => Promise<void>,
): void {
  Deno.test(name, () => withServer(inProcess, fn));
  if (GATEWAY_CONTRACT.has(name)) {
    Deno.test(`[gateway] ${name}`, () => withGateway((g) => fn(g)));
  }
  for (const rt of ["bun", "binary"] as ShaleRuntime[]) {
    const why = unavailable(rt);
    Deno.test({
      name: `[${rt}] ${name}${why ? ` (ignored: ${why})` : ""}`,
      ignore: why !== undefined,
      async fn() {
        const dir = await Deno.makeTempDir({ prefix: "shale-contract-" });
        const s = await mustStart(dir, {
          runtime: rt,
          args: ["--sync", "none", ...flags],
        });
        try {
          await fn({ base: s.base });
        } finally {
          const status = await stopServer(s);
          deepEqual(status.code, 0, s.output());
          await Deno.remove(dir, { recursive: true });
        }
      },
    });
  }
}

async function put(
  base: string,
  key: string,
  value: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const res = await fetch(`${base}/kv/${key}`, {
    method: "PUT",
    body: value,
    headers,
  });
  await res.body?.cancel();
  return res;
}

async function text(res: Response): Promise<string> {
  return await res.text();
}

interface Item {
  key: string;
  value?: string;
  version: string;
}

contract(
  "PUT, GET, HEAD and DELETE round-trip a value with its ETag",
  [],
  {},
  async ({ base }) => {
    const p = await put(base, "users/42", "hello");
    deepEqual(p.status, 204);
    const etag = p.headers.get("etag");
    match(etag!, /^"\d+"$/);

    const g = await fetch(`${base}/kv/users/42`);
    deepEqual(g.status, 200);
    deepEqual(g.headers.get("content-type"), "application/octet-stream");
    deepEqual(g.headers.get("etag"), etag);
    // Written by the HTTP layer from the body (kv.ts leaves it out).
    deepEqual(g.headers.get("content-length"), "5");
    deepEqual(await g.text(), "hello");

    const h = await fetch(`${base}/kv/users/42`, { method: "HEAD" });
    deepEqual(h.status, 200);
    deepEqual(h.headers.get("etag"), etag);
    deepEqual(h.headers.get("content-length"), "5");
    deepEqual(await h.text(), "");

    const p2 = await put(base, "users/42", "");
    deepEqual(p2.status, 204);
    ok(
      Number(JSON.parse(p2.headers.get("etag")!)) > Number(JSON.parse(etag!)),
    );
    const g2 = await fetch(`${base}/kv/users/42`);
    deepEqual(await g2.text(), "");

    const d = await fetch(`${base}/kv/users/42`, { method: "DELETE" });
    deepEqual(d.status, 204);
    await d.body?.cancel();
    const g3 = await fetch(`${base}/kv/users/42`);
    deepEqual(g3.status, 404);
    deepEqual(errorCode(await g3.text()), "not_found");
    const h3 = await fetch(`${base}/kv/users/42`, { method: "HEAD" });
    deepEqual(h3.status, 404);
    await h3.body?.cancel();

    const d2 = await fetch(`${base}/kv/never-existed`, { method: "DELETE" });
    deepEqual(d2.status, 204);
    await d2.body?.cancel();
  },
);

Deno.test("keys are percent-decoded bytes and routing uses the raw path", async () => {
  await withServer({}, async ({ base, db, port }) => {
    deepEqual((await put(base, "%FF%00a", "binary")).status, 204);
    deepEqual(db.get(new Uint8Array([0xff, 0, 0x61]))?.value, b("binary"));
    deepEqual((await put(base, "%72ange", "r")).status, 204);
    deepEqual(db.get(b("range"))?.value, b("r"));
    deepEqual((await put(base, "a%2Fb", "slash")).status, 204);
    deepEqual(await text(await fetch(`${base}/kv/a/b`)), "slash");
    deepEqual((await put(base, "caf%C3%A9", "utf8")).status, 204);
    deepEqual(db.get(b("café"))?.value, b("utf8"));
    // "+" in a path is a literal plus
    deepEqual((await put(base, "a+b", "plus")).status, 204);
    deepEqual(db.get(b("a+b"))?.value, b("plus"));

    // GET /kv/range is the scan route, not the key "range".
    const r = await fetch(`${base}/kv/range?prefix=ran`);
    const doc = await r.json();
    deepEqual(doc.items.length, 1);
    deepEqual(unb64(doc.items[0].key), "range");

    const bad = await rawRequest(
      port,
      "GET /kv/a%ZZ HTTP/1.1\r\nHost: 127.0.0.1",
    );
    deepEqual(bad.status, 400);
    deepEqual(errorCode(bad.body), "invalid_encoding");
    const dots = await rawRequest(
      port,
      "GET /kv/../etc HTTP/1.1\r\nHost: 127.0.0.1",
    );
    deepEqual(dots.status, 400);
    deepEqual(errorCode(dots.body), "invalid_key");
  });
});

// The Bun listener reads Host and the body framing from the raw header
// list itself (serve_bun.ts): header names match in any letter case there
// as on Deno.
contract(
  "Host cannot redirect a request or pass for loopback, whatever its letter case",
  [],
  {},
  async ({ base }) => {
    const port = Number(new URL(base).port);
    deepEqual((await put(base, "secret", "SECRET-VALUE")).status, 204);
    deepEqual((await put(base, "public", "public-value")).status, 204);
    for (const name of ["Host", "HOST", "host"]) {
      const trick = await rawRequest(
        port,
        `GET /kv/public HTTP/1.1\r\n${name}: 127.0.0.1/kv/secret#`,
      );
      ok(!trick.body.includes("SECRET-VALUE"), `${name}: ${trick.body}`);
      deepEqual([trick.status, errorCode(trick.body)], [400, "invalid_host"]);
      // No token: only loopback names are served (DNS rebinding).
      const rebound = await rawRequest(
        port,
        `GET /kv/public HTTP/1.1\r\n${name}: attacker.example`,
      );
      deepEqual(
        [rebound.status, errorCode(rebound.body)],
        [403, "host_not_allowed"],
      );
      const local = await rawRequest(
        port,
        `GET /kv/public HTTP/1.1\r\n${name}: 127.0.0.1:${port}`,
      );
      deepEqual([local.status, local.body], [200, "public-value"], name);
    }
  },
);

contract(
  "PUT bodies framed by Content-Length (0 included) or chunked, in any letter case, are stored whole",
  [],
  {},
  async ({ base }) => {
    const port = Number(new URL(base).port);
    const cases: [string, string, string, string][] = [
      ["empty", "CONTENT-LENGTH: 0", "", ""],
      ["five", "content-Length: 5", "hello", "hello"],
      [
        "chunked",
        "Transfer-encoding: chunked",
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        "hello world",
      ],
    ];
    for (const [key, framing, body] of cases) {
      const r = await rawRequest(
        port,
        `PUT /kv/${key} HTTP/1.1\r\nHost: 127.0.0.1\r\n${framing}`,
        body,
      );
      deepEqual(r.status, 204, `${key}: ${r.body}`);
    }
    for (const [key, , , stored] of cases) {
      const g = await fetch(`${base}/kv/${key}`);
      deepEqual([g.status, await g.text()], [200, stored], key);
    }
  },
);

contract(
  "If-Match and If-None-Match make writes conditional",
  [],
  {},
  async ({ base }) => {
    const first = await put(base, "k", "v1", { "if-none-match": "*" });
    deepEqual(first.status, 204);
    const v1 = first.headers.get("etag")!;
    const again = await fetch(`${base}/kv/k`, {
      method: "PUT",
      body: "v",
      headers: { "if-none-match": "*" },
    });
    deepEqual(again.status, 412);
    deepEqual(errorCode(await again.text()), "precondition_failed");

    const stale = await fetch(`${base}/kv/k`, {
      method: "PUT",
      body: "v",
      headers: { "if-match": '"999999"' },
    });
    deepEqual(stale.status, 412);
    deepEqual(stale.headers.get("etag"), v1);
    await stale.body?.cancel();

    const ok = await put(base, "k", "v2", { "if-match": v1 });
    deepEqual(ok.status, 204);
    const v2 = ok.headers.get("etag")!;
    deepEqual(
      (await put(base, "k", "v3", { "if-match": `"1", ${v2}` })).status,
      204,
    );
    deepEqual((await put(base, "k", "v4", { "if-match": "*" })).status, 204);
    deepEqual(
      (await put(base, "absent", "x", { "if-match": "*" })).status,
      412,
    );

    // GET: If-None-Match gives 304, If-Match a 412 when stale.
    const cur = (await fetch(`${base}/kv/k`, { method: "HEAD" })).headers.get(
      "etag",
    )!;
    const nm = await fetch(`${base}/kv/k`, {
      headers: { "if-none-match": cur },
    });
    deepEqual(nm.status, 304);
    await nm.body?.cancel();
    const im = await fetch(`${base}/kv/k`, { headers: { "if-match": v1 } });
    deepEqual(im.status, 412);
    await im.body?.cancel();

    const badHeader = await fetch(`${base}/kv/k`, {
      method: "PUT",
      body: "x",
      headers: { "if-match": "no-quotes" },
    });
    deepEqual(badHeader.status, 400);
    deepEqual(errorCode(await badHeader.text()), "invalid_header");

    // DELETE honours If-Match, also against an absent key.
    const dStale = await fetch(`${base}/kv/k`, {
      method: "DELETE",
      headers: { "if-match": v1 },
    });
    deepEqual(dStale.status, 412);
    await dStale.body?.cancel();
    const dOk = await fetch(`${base}/kv/k`, {
      method: "DELETE",
      headers: { "if-match": cur },
    });
    deepEqual(dOk.status, 204);
    const dAbsent = await fetch(`${base}/kv/k`, {
      method: "DELETE",
      headers: { "if-match": cur },
    });
    deepEqual(dAbsent.status, 412);
    await dAbsent.body?.cancel();
  },
);

// On Bun the hot routes' answers are written from the parts they keep
// (server/response_parts.ts) rather than read back from the Response: the
// same headers and bytes, request after request on one connection, for
// values read from the memtable and from tables alike.
contract(
  "GET hits, 404s and PUTs answer in full, request after request",
  ["--memtable-size", "64KiB"],
  { db: { memtableBytes: 64 << 10 } },
  async ({ base }) => {
    const value = (i: number) => `v${i}-`.repeat(2048).slice(0, 4096);
    const etags: string[] = [];
    for (let i = 0; i < 40; i++) {
      const p = await put(base, `parts/${i}`, value(i));
      deepEqual([p.status, await p.text()], [204, ""]);
      match(p.headers.get("etag")!, /^"\d+"$/);
      etags.push(p.headers.get("etag")!);
    }
    // The first values are read from a table once a flush has run (a
    // mapped table on Bun and the binary: borrowed views, copied).
    for (let tries = 0;; tries++) {
      const stats = await (await fetch(`${base}/stats`)).json();
      if (stats.engine.ops.flushes > 0) break;
      ok(tries < 200, "no flush within 10 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    const ttl = await fetch(`${base}/kv/parts/ttl?ttl=60`, {
      method: "PUT",
      body: "short-lived",
    });
    deepEqual(ttl.status, 204);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 40; i++) {
        const g = await fetch(`${base}/kv/parts/${i}`);
        deepEqual(
          [
            g.status,
            g.headers.get("content-type"),
            g.headers.get("content-length"),
            g.headers.get("etag"),
            await g.text(),
          ],
          [200, "application/octet-stream", "4096", etags[i], value(i)],
          `parts/${i}`,
        );
      }
      const t = await fetch(`${base}/kv/parts/ttl`);
      ok(t.headers.get("expires") !== null);
      deepEqual([t.status, await t.text()], [200, "short-lived"]);
      for (let i = 0; i < 3; i++) {
        const miss = await fetch(`${base}/kv/parts/missing`);
        const body = await miss.text();
        deepEqual(
          [
            miss.status,
            miss.headers.get("content-type"),
            miss.headers.get("content-length"),
            errorCode(body),
          ],
          [404, "application/json", String(body.length), "not_found"],
        );
      }
    }
  },
);

contract("racing If-Match writers: exactly one wins", ["--sync", "always"], {
  db: { sync: "always" },
}, async ({ base }) => {
  const etag = (await put(base, "race", "0")).headers.get("etag")!;
  const results = await Promise.all(
    Array.from(
      { length: 8 },
      (_, i) => put(base, "race", `w${i}`, { "if-match": etag }),
    ),
  );
  deepEqual(results.filter((r) => r.status === 204).length, 1);
  deepEqual(results.filter((r) => r.status === 412).length, 7);
});

contract(
  "concurrent writes with sync=always share fsyncs (group commit)",
  ["--sync", "always"],
  { db: { sync: "always" } },
  async ({ base }) => {
    const n = 64;
    const res = await Promise.all(
      Array.from({ length: n }, (_, i) => put(base, `g${i}`, `v${i}`)),
    );
    ok(res.every((r) => r.status === 204));
    const stats = await (await fetch(`${base}/stats`)).json();
    ok(
      stats.engine.ops.walSyncs < n,
      `walSyncs ${stats.engine.ops.walSyncs}`,
    );
    for (let i = 0; i < n; i += 7) {
      deepEqual(await text(await fetch(`${base}/kv/g${i}`)), `v${i}`);
    }
  },
);

Deno.test("?ttl expires a key: 404 and absent from scans afterwards", async () => {
  let now = 1_700_000_000_000;
  const clock = () => now;
  await withServer({ db: { clock }, handler: { clock } }, async ({ base }) => {
    deepEqual((await put(base, "t/short?ttl=10", "s")).status, 204);
    deepEqual((await put(base, "t/frac?ttl=0.5", "f")).status, 204);
    deepEqual((await put(base, "t/keep", "k")).status, 204);
    const g = await fetch(`${base}/kv/t/short`);
    deepEqual(g.status, 200);
    deepEqual(
      g.headers.get("expires"),
      new Date(now + 10_000).toUTCString(),
    );
    await g.body?.cancel();

    const batch = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        ops: [{ op: "put", key: b64("t/batch"), value: b64("b"), ttl: 20 }],
      }),
    });
    deepEqual(batch.status, 200);
    await batch.body?.cancel();

    now += 11_000;
    const gone = await fetch(`${base}/kv/t/short`);
    deepEqual(gone.status, 404);
    await gone.body?.cancel();
    const scan = await (await fetch(`${base}/kv/range?prefix=t/`)).json();
    deepEqual(scan.items.map((i: Item) => unb64(i.key)), [
      "t/batch",
      "t/keep",
    ]);
    now += 10_000;
    const scan2 = await (await fetch(`${base}/kv/range?prefix=t/`)).json();
    deepEqual(scan2.items.map((i: Item) => unb64(i.key)), ["t/keep"]);

    for (const bad of ["0", "-1", "abc", "1e3", "99999999999999"]) {
      const r = await fetch(`${base}/kv/x?ttl=${bad}`, {
        method: "PUT",
        body: "v",
      });
      deepEqual(r.status, 400, bad);
      deepEqual(errorCode(await r.text()), "invalid_parameter");
    }
  });
});

contract(
  "range: bounds, prefix, limit, reverse, keys_only",
  [],
  {},
  async ({ base }) => {
    for (const k of ["a", "b", "b/1", "b/2", "c", "d"]) {
      deepEqual((await put(base, k, `v-${k}`)).status, 204);
    }
    const keys = async (q: string) => {
      const r = await fetch(`${base}/kv/range${q}`);
      deepEqual(r.status, 200, q);
      deepEqual(r.headers.get("content-type"), "application/json");
      const doc = await r.json();
      return { keys: doc.items.map((i: Item) => unb64(i.key)), doc };
    };
    deepEqual((await keys("")).keys, ["a", "b", "b/1", "b/2", "c", "d"]);
    deepEqual((await keys("?start=b&end=c")).keys, ["b", "b/1", "b/2"]);
    deepEqual((await keys("?start=b%2F")).keys, ["b/1", "b/2", "c", "d"]);
    deepEqual((await keys("?prefix=b/")).keys, ["b/1", "b/2"]);
    deepEqual((await keys("?prefix=b&reverse=true")).keys, [
      "b/2",
      "b/1",
      "b",
    ]);
    deepEqual((await keys("?end=b&reverse=1")).keys, ["a"]);
    deepEqual((await keys("?start=d&end=a")).keys, []);
    const limited = await keys("?limit=2");
    deepEqual(limited.keys, ["a", "b"]);
    deepEqual(typeof limited.doc.next, "string");
    const all = await keys("?limit=6");
    deepEqual(all.doc.next, null);
    const full = await keys("?prefix=c");
    deepEqual(unb64(full.doc.items[0].value), "v-c");
    match(full.doc.items[0].version, /^\d+$/);
    const ko = await keys("?prefix=c&keys_only=true");
    deepEqual(ko.doc.items[0].value, undefined);
    const head = await fetch(`${base}/kv/range`, { method: "HEAD" });
    deepEqual(head.status, 200);
    deepEqual(await head.text(), "");

    for (
      const q of [
        "?limit=0",
        "?limit=-1",
        "?limit=10001",
        "?limit=abc",
        "?reverse=maybe",
        "?prefix=a&start=a",
        "?cursor=not-a-cursor",
        "?bogus=1",
        "?start=%G0",
        "?limit=1&limit=2",
      ]
    ) {
      const r = await fetch(`${base}/kv/range${q}`);
      deepEqual(r.status, 400, q);
      errorCode(await r.text());
    }
    const maxed = await fetch(`${base}/kv/range?limit=10000`);
    deepEqual(maxed.status, 200);
    await maxed.body?.cancel();
  },
);

Deno.test("range cursors page through every key exactly once, even under writes", async () => {
  await withServer({}, async ({ base, db, handler }) => {
    const n = 250;
    const key = (i: number) => `k${String(i).padStart(4, "0")}`;
    const batchOps = Array.from({ length: n }, (_, i) => ({
      op: "put",
      key: b64(key(i)),
      value: b64(`v${i}`),
    }));
    const r = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ops: batchOps }),
    });
    deepEqual(r.status, 200);
    await r.body?.cancel();

    for (const reverse of [false, true]) {
      const before = [...db.scan()].map((i) => new TextDecoder().decode(i.key));
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const q: string = `?limit=37&reverse=${reverse}` +
          (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
        const page = await (await fetch(`${base}/kv/range${q}`)).json();
        seen.push(...page.items.map((i: Item) => unb64(i.key)));
        cursor = page.next;
        // Writes between pages, ahead of the cursor in both directions:
        // the pages keep reading the first page's snapshot.
        await put(base, `${key(125 + pages)}x`, "new");
        await (await fetch(`${base}/kv/${key(130 + pages)}`, {
          method: "DELETE",
        })).body?.cancel();
        pages++;
      } while (cursor !== null);
      deepEqual(new Set(seen).size, seen.length, "no key twice");
      deepEqual(seen, reverse ? before.reverse() : before);
      deepEqual(pages, Math.ceil(before.length / 37));
    }
    // Finished scans release their snapshots.
    const stats = await (await fetch(`${base}/stats`)).json();
    deepEqual(stats.server.cursors.open, 0);
    deepEqual(stats.engine.snapshots, 0);

    // A cursor for the other direction is refused.
    const fwd = await (await fetch(`${base}/kv/range?limit=1`)).json();
    const wrong = await fetch(
      `${base}/kv/range?reverse=true&cursor=${fwd.next}`,
    );
    deepEqual(wrong.status, 400);
    deepEqual(errorCode(await wrong.text()), "invalid_cursor");
    handler.close();
    deepEqual(db.stats().snapshots, 0);
  });
});

Deno.test("a cursor whose snapshot expired resumes after its last key", async () => {
  await withServer({ handler: { cursorTtlMs: 0 } }, async ({ base }) => {
    for (const k of ["a", "b", "c"]) await put(base, k, k);
    const p1 = await (await fetch(`${base}/kv/range?limit=1`)).json();
    await put(base, "a2", "new");
    const p2 =
      await (await fetch(`${base}/kv/range?limit=10&cursor=${p1.next}`)).json();
    deepEqual(p2.items.map((i: Item) => unb64(i.key)), ["a2", "b", "c"]);
    deepEqual(p2.next, null);
  });
});

Deno.test("batch applies all ops atomically or none", async () => {
  await withServer({}, async ({ base, db }) => {
    const post = (body: unknown) =>
      fetch(`${base}/kv/batch`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    await put(base, "gone", "x");
    const ok = await post({
      ops: [
        { op: "put", key: b64("x"), value: b64("1") },
        { op: "put", key: b64("y"), value: b64(new Uint8Array([0, 255])) },
        { op: "delete", key: b64("gone") },
      ],
    });
    deepEqual(ok.status, 200);
    const doc = await ok.json();
    deepEqual(doc.applied, 3);
    match(doc.version, /^\d+$/);
    deepEqual(db.get(b("x"))?.version, Number(doc.version));
    deepEqual(db.get(b("y"))?.value, new Uint8Array([0, 255]));
    deepEqual(db.get(b("gone")), undefined);

    // A failed condition applies nothing.
    const fail = await post({
      ops: [
        { op: "put", key: b64("x"), value: b64("2") },
        { op: "put", key: b64("z"), value: b64("3"), if_none_match: "*" },
        { op: "check", key: b64("y"), if_match: "1" },
      ],
    });
    deepEqual(fail.status, 412);
    const err = await fail.json();
    deepEqual(err.error.code, "precondition_failed");
    deepEqual(err.error.index, 2);
    // The engine's message already names the op: no doubled "op 2: op 2:".
    match(err.error.message, /^op 2: expected version 1, found \d+$/);
    deepEqual(db.get(b("x"))?.value, b("1"));
    deepEqual(db.get(b("z")), undefined);

    // A version too large to have been written fails its condition the same
    // way, with the op's index.
    const never = await post({
      ops: [
        { op: "put", key: b64("x"), value: b64("2") },
        { op: "check", key: b64("y"), if_match: "9".repeat(20) },
      ],
    });
    deepEqual(never.status, 412);
    const neverErr = await never.json();
    deepEqual(neverErr.error.code, "precondition_failed");
    deepEqual(neverErr.error.index, 1);
    deepEqual(db.get(b("x"))?.value, b("1"));

    const cas = await post({
      ops: [
        { op: "check", key: b64("y"), if_match: doc.version },
        {
          op: "put",
          key: b64("x"),
          value: b64("2"),
          if_match: `"${doc.version}"`,
        },
      ],
    });
    deepEqual(cas.status, 200);
    await cas.body?.cancel();
    deepEqual(db.get(b("x"))?.value, b("2"));

    const bad: [unknown, string][] = [
      ["{", "invalid_json"],
      ["[]", "invalid_batch"],
      [{ ops: [] }, "invalid_batch"],
      [{ ops: {} }, "invalid_batch"],
      [{ ops: [{ op: "frob", key: b64("a") }] }, "invalid_batch"],
      [{ ops: [{ op: "put", key: "!!!", value: "" }] }, "invalid_base64"],
      [{ ops: [{ op: "put", key: b64("a") }] }, "invalid_batch"],
      [{ ops: [{ op: "put", key: "", value: "" }] }, "invalid_batch"],
      [
        { ops: [{ op: "put", key: b64("a"), value: "", ttl: -1 }] },
        "invalid_parameter",
      ],
      [
        { ops: [{ op: "put", key: b64("a"), value: "", ttl: "5" }] },
        "invalid_batch",
      ],
      [{ ops: [{ op: "delete", key: b64("a"), extra: 1 }] }, "invalid_batch"],
      [{ ops: [{ op: "check", key: b64("a") }] }, "invalid_batch"],
      [
        { ops: [{ op: "delete", key: b64("a"), if_match: "x" }] },
        "invalid_batch",
      ],
      [{ ops: [], more: 1 }, "invalid_batch"],
    ];
    for (const [body, code] of bad) {
      const r = await post(body);
      deepEqual(r.status, 400, JSON.stringify(body));
      deepEqual(errorCode(await r.text()), code, JSON.stringify(body));
    }
    const notUtf8 = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Uint8Array([0x7b, 0xff, 0x7d]),
    });
    deepEqual(notUtf8.status, 400);
    deepEqual(errorCode(await notUtf8.text()), "invalid_json");

    const tooLongKey = await post({
      ops: [{ op: "delete", key: b64("k".repeat(4097)) }],
    });
    deepEqual(tooLongKey.status, 414);
    await tooLongKey.body?.cancel();

    const many = await post({
      ops: Array.from({ length: 10001 }, () => ({ op: "delete", key: "YQ" })),
    });
    deepEqual(many.status, 413);
    deepEqual(errorCode(await many.text()), "too_many_ops");
    const maxOps = await post({
      ops: Array.from(
        { length: 10000 },
        (_, i) => ({ op: "put", key: b64(`m${i}`), value: "" }),
      ),
    });
    deepEqual(maxOps.status, 200);
    await maxOps.body?.cancel();

    const get = await fetch(`${base}/kv/batch`);
    deepEqual(get.status, 405);
    deepEqual(get.headers.get("allow"), "POST");
    await get.body?.cancel();
  });
});

Deno.test("bodies over the limit get 413 while streaming; missing length 411", async () => {
  await withServer(
    { db: { maxValueBytes: 1024 }, handler: { maxBatchBytes: 2048 } },
    async ({ base, port, db }) => {
      const big = await fetch(`${base}/kv/big`, {
        method: "PUT",
        body: "x".repeat(1025),
      });
      deepEqual(big.status, 413);
      deepEqual(errorCode(await big.text()), "value_too_large");
      const exact = await fetch(`${base}/kv/big`, {
        method: "PUT",
        body: "x".repeat(1024),
      });
      deepEqual(exact.status, 204);
      await exact.body?.cancel();

      // Chunked, no declared length: refused once the stream passes the limit.
      const chunk = "y".repeat(600);
      const chunked = await rawRequest(
        port,
        "PUT /kv/big HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked",
        `258\r\n${chunk}\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`,
      );
      deepEqual(chunked.status, 413);
      deepEqual(errorCode(chunked.body), "value_too_large");
      deepEqual(db.get(b("big"))?.value.length, 1024);

      // Declared length far over the limit: answered without reading.
      const huge = await rawRequest(
        port,
        "PUT /kv/big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999",
      );
      deepEqual(huge.status, 413);
      const hugeBatch = await rawRequest(
        port,
        "POST /kv/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000",
      );
      deepEqual(hugeBatch.status, 413);
      deepEqual(errorCode(hugeBatch.body), "payload_too_large");

      const noLength = await rawRequest(
        port,
        "PUT /kv/nolen HTTP/1.1\r\nHost: 127.0.0.1",
      );
      deepEqual(noLength.status, 411);
      deepEqual(errorCode(noLength.body), "length_required");
      const noLengthBatch = await rawRequest(
        port,
        "POST /kv/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json",
      );
      deepEqual(noLengthBatch.status, 411);

      const longKey = await fetch(`${base}/kv/${"k".repeat(4097)}`);
      deepEqual(longKey.status, 414);
      deepEqual(errorCode(await longKey.text()), "key_too_long");
      const maxKey = await fetch(`${base}/kv/${"k".repeat(4096)}`, {
        method: "PUT",
        body: "v",
      });
      deepEqual(maxKey.status, 204);
      await maxKey.body?.cancel();
    },
  );
});

contract(
  "unknown routes 404, wrong methods 405 with Allow, OPTIONS lists methods",
  [],
  {},
  async ({ base }) => {
    for (const path of ["/kv", "/nope", "/kvx/a", "/health/x", "/ui/x"]) {
      const r = await fetch(`${base}${path}`);
      deepEqual(r.status, 404, path);
      deepEqual(errorCode(await r.text()), "unknown_route");
    }
    // "/" is the way to the dashboard.
    const root = await fetch(`${base}/`, { redirect: "manual" });
    deepEqual([root.status, root.headers.get("location")], [302, "/ui"]);
    await root.body?.cancel();
    // Its files are part of the program (on Bun and in the binary as well).
    for (
      const [path, type] of [["/ui", "text/html"], [
        "/ui/app.js",
        "text/javascript",
      ]]
    ) {
      const f = await fetch(`${base}${path}`);
      deepEqual([f.status, f.headers.get("content-type")?.split(";")[0]], [
        200,
        type,
      ]);
      ok((await f.text()).length > 1000, path);
    }
    const cases: [string, string, string][] = [
      ["POST", "/kv/a", "GET, HEAD, PUT, DELETE"],
      ["PATCH", "/kv/a", "GET, HEAD, PUT, DELETE"],
      ["PUT", "/kv/range", "GET, HEAD"],
      ["DELETE", "/kv/batch", "POST"],
      ["POST", "/health", "GET, HEAD"],
      ["PUT", "/stats", "GET, HEAD"],
      ["DELETE", "/metrics", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const r = await fetch(`${base}${path}`, {
        method,
        body: method === "GET" ? undefined : "",
      });
      deepEqual(r.status, 405, `${method} ${path}`);
      deepEqual(r.headers.get("allow"), allow);
      deepEqual(errorCode(await r.text()), "method_not_allowed");
    }
    const o = await fetch(`${base}/kv/a`, { method: "OPTIONS" });
    deepEqual(o.status, 204);
    deepEqual(o.headers.get("allow"), "GET, HEAD, PUT, DELETE");
    await o.body?.cancel();
    const empty = await fetch(`${base}/kv/`);
    deepEqual(empty.status, 400);
    deepEqual(errorCode(await empty.text()), "invalid_key");
  },
);

Deno.test("health is ok, then 503 while draining", async () => {
  await withServer({}, async ({ base, handler }) => {
    const r = await fetch(`${base}/health`);
    deepEqual(r.status, 200);
    deepEqual(await r.json(), { status: "ok" });
    handler.drain();
    const d = await fetch(`${base}/health`);
    deepEqual(d.status, 503);
    const doc = await d.json();
    deepEqual(doc.status, "unavailable");
    deepEqual(doc.error.code, "not_ready");
  });
});

Deno.test("a closed engine answers 503 not 500", async () => {
  await withServer({}, async ({ base, db, logs }) => {
    await db.close();
    for (
      const [method, path] of [["GET", "/kv/a"], ["PUT", "/kv/a"], [
        "GET",
        "/health",
      ]]
    ) {
      const r = await fetch(`${base}${path}`, {
        method,
        body: method === "PUT" ? "v" : undefined,
      });
      deepEqual(r.status, 503, `${method} ${path}`);
      errorCode(await r.text());
    }
    deepEqual(logs.filter((l) => l.includes("unhandled")), []);
  });
});

Deno.test("disk full answers 507 and writes resume after it; a failed fsync makes writes 503 read_only", async () => {
  const fs = new FaultyFileSystem();
  await withServer({ db: { fs, sync: "always" } }, async ({ base }) => {
    ok((await put(base, "before", "v")).status === 204);
    // One failed WAL append, as on ENOSPC; the truncate that undoes it
    // (also an "append" to the fault layer) succeeds.
    let faults = 1;
    fs.failWhen = (op, path) =>
      op === "append" && path.endsWith(".log") && faults-- > 0
        ? Object.assign(new Error("No space left on device (os error 28)"), {
          code: "ENOSPC",
        })
        : undefined;
    const full = await fetch(`${base}/kv/after`, { method: "PUT", body: "v" });
    deepEqual(full.status, 507);
    deepEqual(errorCode(await full.text()), "disk_full");
    const h = await fetch(`${base}/health`);
    deepEqual(h.status, 503);
    const doc = await h.json();
    deepEqual(doc.status, "unavailable");
    deepEqual(doc.error.code, "disk_full");
    // Reads still work, and writes resume once there is space.
    deepEqual(await text(await fetch(`${base}/kv/before`)), "v");
    fs.failWhen = undefined;
    deepEqual((await put(base, "after", "v")).status, 204);
    deepEqual((await fetch(`${base}/health`)).status, 200);
  });

  const fs2 = new FaultyFileSystem();
  await withServer({ db: { fs: fs2, sync: "always" } }, async ({ base }) => {
    fs2.failWhen = (op) =>
      op === "sync" ? new Error("EIO: i/o error") : undefined;
    const r = await fetch(`${base}/kv/x`, { method: "PUT", body: "v" });
    deepEqual(r.status, 503);
    errorCode(await r.text());
    fs2.failWhen = undefined;
    const r2 = await fetch(`${base}/kv/y`, { method: "PUT", body: "v" });
    deepEqual(r2.status, 503);
    deepEqual(errorCode(await r2.text()), "read_only");
    const h = await (await fetch(`${base}/health`)).json();
    deepEqual(h.error.code, "read_only");
  });
});

contract(
  "stats and metrics expose engine figures and request counters",
  [],
  {},
  async ({ base }) => {
    await put(base, "m", "v");
    await (await fetch(`${base}/kv/m`)).body?.cancel();
    await (await fetch(`${base}/kv/missing`)).body?.cancel();
    const stats = await (await fetch(`${base}/stats`)).json();
    deepEqual(typeof stats.engine.ops.puts, "number");
    ok(stats.server.requests >= 3);
    deepEqual(stats.server.byStatus["404"], 1);

    const m = await fetch(`${base}/metrics`);
    deepEqual(m.status, 200);
    match(
      m.headers.get("content-type")!,
      /^text\/plain; version=0\.0\.4/,
    );
    const body = await m.text();
    match(body, /^# HELP shale_http_requests_total /m);
    match(body, /^# TYPE shale_http_requests_total counter$/m);
    match(
      body,
      /^shale_http_requests_total\{route="\/kv\/\{key\}",method="GET",status="404"\} 1$/m,
    );
    match(
      body,
      /^# TYPE shale_http_request_duration_seconds histogram$/m,
    );
    match(
      body,
      /^shale_http_request_duration_seconds_bucket\{route="\/kv\/\{key\}",method="PUT",le="\+Inf"\} 1$/m,
    );
    match(body, /^shale_engine_ops_puts_total 1$/m);
    match(body, /^shale_engine_levels_tables\{level="0"\} \d+$/m);
    // Every sample line belongs to a declared family; counters end in _total.
    const types = new Map<string, string>();
    for (const line of body.trimEnd().split("\n")) {
      const t = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (t) {
        ok(!types.has(t[1]), `duplicate family ${t[1]}`);
        types.set(t[1], t[2]);
        if (t[2] === "counter") match(t[1], /_total$/);
        continue;
      }
      if (line.startsWith("#")) continue;
      const name = /^([a-z_:][a-z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
      ok(name, `bad sample line ${line}`);
      const family = types.has(name[1])
        ? name[1]
        : name[1].replace(/_(bucket|sum|count)$/, "");
      ok(types.has(family), `sample without TYPE: ${line}`);
      ok(!Number.isNaN(Number(name[3])), line);
    }
  },
);

Deno.test("every key is a user key: 0x00- and 0xFF-prefixed keys round-trip and /kv/range lists them in byte order", async () => {
  await withServer({}, async ({ base }) => {
    const keys = [
      [0x00],
      [0x00, 0x00],
      [0x00, 0x01, 0x61],
      [0x00, 0x02, 0x61, 0x00],
      [0x01],
      [0x61],
      [0xff],
      [0xff, 0xff],
    ].map((k) => new Uint8Array(k));
    const path = (k: Uint8Array) =>
      [...k].map((x) => "%" + x.toString(16).padStart(2, "0")).join("");
    for (const k of keys) {
      deepEqual((await put(base, path(k), `v${path(k)}`)).status, 204);
    }
    // A batch reaches the same keys.
    const res = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        ops: [{ op: "put", key: b64(new Uint8Array([0, 9])), value: b64("b") }],
      }),
    });
    deepEqual(res.status, 200, await res.text());
    keys.splice(4, 0, new Uint8Array([0, 9]));
    for (const k of keys) {
      const g = await fetch(`${base}/kv/${path(k)}`);
      deepEqual(g.status, 200, path(k));
      deepEqual(await g.text(), k[1] === 9 ? "b" : `v${path(k)}`);
    }
    // The longest key allowed, starting with 0x00.
    const long = new Uint8Array(4096);
    deepEqual((await put(base, path(long), "long")).status, 204);
    deepEqual(await (await fetch(`${base}/kv/${path(long)}`)).text(), "long");
    deepEqual(
      (await fetch(`${base}/kv/${path(long)}`, { method: "DELETE" })).status,
      204,
    );

    const listed = async (q: string) => {
      const r = await fetch(`${base}/kv/range${q}`);
      deepEqual(r.status, 200, q);
      return ((await r.json()).items as Item[]).map((i) => i.key);
    };
    const all = keys.map((k) => b64(k));
    deepEqual(await listed(""), all);
    deepEqual(await listed("?reverse=true"), [...all].reverse());
    deepEqual(await listed("?start=%00&end=%01"), all.slice(0, 5));
    deepEqual(await listed("?prefix=%00"), all.slice(0, 5));
    deepEqual(await listed("?prefix=%ff"), all.slice(7));
    deepEqual(await listed("?limit=2"), all.slice(0, 2));

    deepEqual(
      (await fetch(`${base}/kv/%00`, { method: "DELETE" })).status,
      204,
    );
    deepEqual((await fetch(`${base}/kv/%00`)).status, 404);
    deepEqual(await listed(""), all.slice(1));
  });
});

Deno.test("HEAD on /kv/range, /stats and /metrics carries GET's headers", async () => {
  await withServer({}, async ({ base }) => {
    for (const k of ["a", "b", "c"]) await put(base, k, `value-${k}`);
    for (const path of ["/kv/range?limit=2", "/stats", "/metrics"]) {
      const get = await fetch(`${base}${path}`);
      const body = await get.arrayBuffer();
      const head = await fetch(`${base}${path}`, { method: "HEAD" });
      deepEqual(head.status, 200, path);
      deepEqual(await head.text(), "", path);
      deepEqual(
        head.headers.get("content-type"),
        get.headers.get("content-type"),
        path,
      );
      const length = Number(head.headers.get("content-length"));
      // /stats and /metrics count requests, so only the range page's length
      // is the same from one request to the next.
      if (path.startsWith("/kv/range")) {
        deepEqual(length, body.byteLength, path);
      } else {
        ok(length > 100, `${path}: content-length ${length}`);
      }
    }
  });
});

Deno.test("a cursor reused with other range parameters is refused", async () => {
  await withServer({}, async ({ base }) => {
    for (const k of ["a1", "a2", "a3", "a4", "b1", "b2", "b3"]) {
      await put(base, k, "v");
    }
    const first = await (await fetch(`${base}/kv/range?prefix=a&limit=2`))
      .json();
    const cursor = encodeURIComponent(first.next);
    for (
      const other of [
        "prefix=b",
        "start=b",
        "start=a&end=a3",
        "end=z",
        "prefix=a&reverse=true",
        "",
      ]
    ) {
      const res = await fetch(`${base}/kv/range?${other}&cursor=${cursor}`);
      const body = await res.text();
      deepEqual(res.status, 400, `${other}: ${body}`);
      deepEqual(errorCode(body), "invalid_cursor", other);
    }
    // Same range: limit and keys_only may change from page to page.
    const next = await fetch(
      `${base}/kv/range?prefix=a&limit=5&keys_only=true&cursor=${cursor}`,
    );
    deepEqual(next.status, 200);
    deepEqual(
      (await next.json()).items.map((i: Item) => unb64(i.key)),
      ["a3", "a4"],
    );
  });
});

Deno.test("batch base64 is lenient as documented: alphabets, padding, whitespace", async () => {
  await withServer({}, async ({ base, db }) => {
    const keys = ["YQ==", "Yg", " Y w = = ", "ZB==", "_-8"];
    const res = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        ops: keys.map((key) => ({ op: "put", key, value: "dg" })),
      }),
    });
    deepEqual(res.status, 200, await res.text());
    for (const k of ["a", "b", "c", "d"]) {
      deepEqual(db.get(b(k))?.value, b("v"));
    }
    deepEqual(db.get(new Uint8Array([0xff, 0xef]))?.value, b("v"));
    const bad = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ops: [{ op: "put", key: "YQ=", value: "dg" }] }),
    });
    const body = await bad.text();
    deepEqual(bad.status, 400);
    deepEqual(errorCode(body), "invalid_base64");
  });
});
