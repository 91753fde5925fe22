/**
 * server/guard.ts through the real server: the Host header cannot redirect a
 * request to another key, browsers cannot write cross-site, and without a
 * token only loopback (or configured) host names are served. Raw sockets,
 * because fetch and `new Request` normalise what these tests must send.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { errorCode, rawRequest, withServer } from "./_helpers.ts";
import { createHandler } from "../../server/app.ts";
import { open } from "../../mod.ts";
import { withTempDir } from "../_helpers.ts";

Deno.test("Host cannot redirect a request to another key (GET and DELETE)", async () => {
  await withServer({}, async ({ port, db }) => {
    const enc = new TextEncoder();
    await db.put(enc.encode("secret"), enc.encode("SECRET-VALUE"));
    await db.put(enc.encode("public"), enc.encode("public-value"));
    const get = await rawRequest(
      port,
      "GET /kv/public HTTP/1.1\r\nHost: 127.0.0.1/kv/secret#",
    );
    ok(!get.body.includes("SECRET-VALUE"), `leaked: ${get.body}`);
    equal(get.status, 400);
    equal(errorCode(get.body), "invalid_host");
    const del = await rawRequest(
      port,
      "DELETE /kv/public HTTP/1.1\r\nHost: 127.0.0.1/kv/secret?",
    );
    equal(del.status, 400);
    ok(db.get(enc.encode("secret")) !== undefined, "secret was deleted");
    // Userinfo and other non host[:port] shapes are refused the same way.
    for (const host of ["a@127.0.0.1", "127.0.0.1:80/x", "[::1", "a b"]) {
      const r = await rawRequest(port, `GET /health HTTP/1.1\r\nHost: ${host}`);
      equal(r.status, 400, host);
      equal(errorCode(r.body), "invalid_host");
    }
    // A well-formed Host still works, with or without port.
    for (
      const host of ["127.0.0.1", `127.0.0.1:${port}`, `localhost:${port}`]
    ) {
      const r = await rawRequest(
        port,
        `GET /kv/public HTTP/1.1\r\nHost: ${host}`,
      );
      equal(r.status, 200, host);
      equal(r.body, "public-value");
    }
  });
});

Deno.test("text/plain batches, foreign origins and cross-site requests are refused", async () => {
  await withServer({
    handler: { allowOrigins: ["https://app.example"] },
  }, async ({ base, port, db, handler }) => {
    const ops = JSON.stringify({
      ops: [{ op: "put", key: btoa("k"), value: btoa("v") }],
    });
    const plain = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: ops,
    });
    equal(plain.status, 415);
    equal(errorCode(await plain.text()), "unsupported_media_type");
    const foreign = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        origin: "https://evil.example",
      },
      body: ops,
    });
    equal(foreign.status, 403);
    equal(errorCode(await foreign.text()), "forbidden_origin");
    const nullOrigin = await fetch(`${base}/kv/k`, {
      method: "PUT",
      headers: { origin: "null" },
      body: "v",
    });
    equal(nullOrigin.status, 403);
    await nullOrigin.body?.cancel();
    const crossSite = await fetch(`${base}/kv/k`, {
      headers: { "sec-fetch-site": "cross-site" },
    });
    equal(crossSite.status, 403);
    equal(errorCode(await crossSite.text()), "cross_site");
    equal(db.get(new TextEncoder().encode("k")), undefined);
    // Same origin, and an allowed origin, pass.
    for (const origin of [base, "https://app.example"]) {
      const r = await fetch(`${base}/kv/batch`, {
        method: "POST",
        headers: {
          "content-type": "application/json; charset=utf-8",
          origin,
          "sec-fetch-site": origin === base ? "same-origin" : "cross-site",
        },
        body: ops,
      });
      equal(r.status, 200, origin);
      await r.body?.cancel();
    }
    // Without a token only loopback names are served (DNS rebinding).
    const rebound = await rawRequest(
      port,
      "GET /kv/k HTTP/1.1\r\nHost: attacker.example",
    );
    equal(rebound.status, 403);
    equal(errorCode(rebound.body), "host_not_allowed");
    const v6 = await rawRequest(
      port,
      `GET /kv/k HTTP/1.1\r\nHost: [::1]:${port}`,
    );
    equal(v6.status, 200);
    // /health answers probes under any name.
    const health = await rawRequest(
      port,
      "GET /health HTTP/1.1\r\nHost: lb.internal",
    );
    equal(health.status, 200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (
      const reason of [
        "unsupported_media_type",
        "forbidden_origin",
        "cross_site",
        "host_not_allowed",
      ]
    ) {
      ok(
        metrics.includes(`shale_http_refused_total{reason="${reason}"}`),
        reason,
      );
    }
    equal(handler.refusals.get("forbidden_origin"), 2);
  });
});

Deno.test("configured names are served without a token; any name with one", async () => {
  await withServer(
    { handler: { allowHosts: ["kv.lan"] } },
    async ({ port }) => {
      const r = await rawRequest(
        port,
        "GET /kv/x HTTP/1.1\r\nHost: kv.lan:8080",
      );
      equal(r.status, 404);
    },
  );
  await withServer(
    { handler: { authToken: "a-token-of-16-chars" } },
    async ({ port }) => {
      const r = await rawRequest(
        port,
        "GET /kv/x HTTP/1.1\r\nHost: db.example.com\r\nAuthorization: Bearer a-token-of-16-chars",
      );
      equal(r.status, 404);
    },
  );
});

Deno.test("KV Connect v1 endpoints come from --public-url or the validated Host", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "inline" });
    try {
      const withUrl = createHandler(db, {
        publicUrl: "https://kv.example.com",
        log: () => {},
      });
      const res = await withUrl(
        new Request("http://localhost/deno-kv/d", { method: "POST" }),
      );
      equal(res.status, 200);
      const doc = await res.json();
      deepEqual(doc.endpoints[0].url, "https://kv.example.com/deno-kv/d");
      const plain = createHandler(db, { log: () => {} });
      const res2 = await plain(
        new Request("http://127.0.0.1:9/deno-kv/d", {
          method: "POST",
          headers: { host: "127.0.0.1:9" },
        }),
      );
      deepEqual(
        (await res2.json()).endpoints[0].url,
        "http://127.0.0.1:9/deno-kv/d",
      );
      withUrl.close();
      plain.close();
    } finally {
      await db.close();
    }
  });
});
