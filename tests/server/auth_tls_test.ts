/** Bearer-token auth on and off, and HTTPS with a certificate made here. */
import { deepEqual, match } from "node:assert/strict";
import { errorCode, selfSignedCert, withServer } from "./_helpers.ts";

Deno.test("with auth on, every route but /health needs the bearer token", async () => {
  const token = "s3cret-token";
  await withServer({ handler: { authToken: token } }, async ({ base }) => {
    const health = await fetch(`${base}/health`);
    deepEqual(health.status, 200);
    await health.body?.cancel();

    for (
      const [method, path] of [
        ["PUT", "/kv/a"],
        ["GET", "/kv/a"],
        ["GET", "/kv/range"],
        ["POST", "/kv/batch"],
        ["GET", "/stats"],
        ["GET", "/metrics"],
        ["GET", "/nope"],
      ]
    ) {
      for (
        const auth of [
          undefined,
          "Bearer wrong",
          `Basic ${btoa("u:p")}`,
          "Bearer",
          `Bearer ${token}x`,
          `Bearer ${token.slice(0, -1)}`,
        ]
      ) {
        const r = await fetch(`${base}${path}`, {
          method,
          body: method === "GET" ? undefined : "{}",
          headers: auth === undefined ? {} : { authorization: auth },
        });
        deepEqual(r.status, 401, `${method} ${path} ${auth}`);
        deepEqual(r.headers.get("www-authenticate"), 'Bearer realm="shale"');
        deepEqual(errorCode(await r.text()), "unauthorized");
      }
    }
    const ok = await fetch(`${base}/kv/a`, {
      method: "PUT",
      body: "v",
      headers: { authorization: `Bearer ${token}` },
    });
    deepEqual(ok.status, 204);
    await ok.body?.cancel();
    const lower = await fetch(`${base}/kv/a`, {
      headers: { authorization: `bearer ${token}` },
    });
    deepEqual(lower.status, 200);
    deepEqual(await lower.text(), "v");
  });
});

Deno.test("with auth off, no token is needed and a stray one is ignored", async () => {
  await withServer({}, async ({ base }) => {
    const r = await fetch(`${base}/kv/a`, { method: "PUT", body: "v" });
    deepEqual(r.status, 204);
    await r.body?.cancel();
    const g = await fetch(`${base}/kv/a`, {
      headers: { authorization: "Bearer anything" },
    });
    deepEqual(g.status, 200);
    await g.body?.cancel();
  });
});

Deno.test("HTTPS with a self-signed certificate serves the API", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shale-tls-" });
  try {
    const { cert, key } = await selfSignedCert(dir);
    await withServer({ tls: { cert, key } }, async ({ base }) => {
      match(base, /^https:/);
      const client = Deno.createHttpClient({ caCerts: [cert] });
      try {
        const p = await fetch(`${base}/kv/tls`, {
          method: "PUT",
          body: "secure",
          client,
        });
        deepEqual(p.status, 204);
        await p.body?.cancel();
        const g = await fetch(`${base}/kv/tls`, { client });
        deepEqual(await g.text(), "secure");
        // Without trusting the certificate the client refuses.
        let refused = false;
        try {
          const r = await fetch(`${base}/health`);
          await r.body?.cancel();
        } catch {
          refused = true;
        }
        deepEqual(refused, true);
      } finally {
        client.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
