/**
 * Scoped tokens (`--token-file`) through real HTTP against the handler on
 * `Deno.serve`: a read token cannot write, a prefix token cannot read, list,
 * watch, multi-get or batch outside its prefix (range ends just past the
 * prefix, cursors reused by another token), admin routes and KV Connect
 * need the admin token, and the admin token keeps every power.
 */
import { deepEqual, equal, match } from "node:assert/strict";
import { b, b64, unb64, withServer } from "./_helpers.ts";
import { SseReader } from "./_sse.ts";
import { Scope } from "../../server/scope.ts";
import type { ScopedToken } from "../../server/token_file.ts";

const ADMIN = "admin-token-0123456789";
const APP_RW = "app-rw-token-0123456789";
const APP_RO = "app-ro-token-0123456789";
const OTHER_RW = "other-rw-token-0123456789";

const enc = new TextEncoder();
const TOKENS: ScopedToken[] = [
  { token: APP_RW, scope: new Scope(enc.encode("app/"), true) },
  { token: APP_RO, scope: new Scope(enc.encode("app/"), false) },
  { token: OTHER_RW, scope: new Scope(enc.encode("apq"), true) },
];
const HANDLER = { authToken: ADMIN, scopedTokens: TOKENS };

function auth(token: string, extra: Record<string, string> = {}) {
  return { authorization: `Bearer ${token}`, ...extra };
}

/** Sends a request; returns status and parsed JSON body (or text). */
async function call(
  url: string,
  token: string,
  init: RequestInit = {},
): Promise<{ status: number; body: unknown; text: string }> {
  const r = await fetch(url, {
    ...init,
    headers: auth(token, init.headers as Record<string, string>),
  });
  const text = await r.text();
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, body, text };
}

/** Asserts a 403 `forbidden` with a JSON error body. */
function forbidden(
  r: { status: number; body: unknown; text: string },
  message?: RegExp,
) {
  equal(r.status, 403, r.text);
  const err = (r.body as { error: { code: string; message: string } }).error;
  equal(err.code, "forbidden");
  if (message) match(err.message, message);
}

function batchBody(ops: unknown[]): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ops }),
  };
}

async function seed(base: string) {
  for (const k of ["apo", "app", "app/a", "app/b", "app0", "apq", "zzz"]) {
    const r = await call(`${base}/kv/${k}`, ADMIN, { method: "PUT", body: k });
    equal(r.status, 204, r.text);
  }
}

Deno.test("scoped tokens: a read token reads its prefix and cannot write (403 JSON)", async () => {
  await withServer({ handler: HANDLER }, async ({ base }) => {
    await seed(base);
    const got = await call(`${base}/kv/app/a`, APP_RO);
    equal(got.status, 200);
    equal(got.text, "app/a");
    forbidden(
      await call(`${base}/kv/app/a`, APP_RO, { method: "PUT", body: "x" }),
      /may only read/,
    );
    forbidden(await call(`${base}/kv/app/a`, APP_RO, { method: "DELETE" }));
    forbidden(
      await call(
        `${base}/kv/batch`,
        APP_RO,
        batchBody([
          { op: "put", key: b64("app/a"), value: b64("x") },
        ]),
      ),
      /may only read/,
    );
    // A batch of checks only reads: a read token may send it.
    const check = await call(
      `${base}/kv/batch`,
      APP_RO,
      batchBody([{ op: "check", key: b64("app/zz"), if_none_match: "*" }]),
    );
    equal(check.status, 200, check.text);
    // Nothing changed.
    equal((await call(`${base}/kv/app/a`, ADMIN)).text, "app/a");
  });
});

Deno.test("scoped tokens: a prefix token cannot touch single keys outside its prefix", async () => {
  await withServer({ handler: HANDLER }, async ({ base }) => {
    await seed(base);
    equal((await call(`${base}/kv/app/b`, APP_RW)).status, 200);
    const put = await call(`${base}/kv/app/new`, APP_RW, {
      method: "PUT",
      body: "v",
    });
    equal(put.status, 204, put.text);
    // "app" and "app0" share bytes with "app/" but do not start with it.
    for (const k of ["app", "app0", "apo", "zzz", "ap"]) {
      forbidden(await call(`${base}/kv/${k}`, APP_RW), /outside this token/);
      forbidden(
        await call(`${base}/kv/${k}`, APP_RW, { method: "PUT", body: "x" }),
      );
      forbidden(await call(`${base}/kv/${k}`, APP_RW, { method: "DELETE" }));
      const head = await fetch(`${base}/kv/${k}`, {
        method: "HEAD",
        headers: auth(APP_RW),
      });
      equal(head.status, 403);
    }
    // An absent key outside the prefix is 403 too, not 404: no existence leak.
    forbidden(await call(`${base}/kv/nothing-here`, APP_RW));
    equal((await call(`${base}/kv/zzz`, ADMIN)).text, "zzz");
  });
});

Deno.test("scoped tokens: range listing only inside the prefix, tricky edges included", async () => {
  await withServer({ handler: HANDLER }, async ({ base }) => {
    await seed(base);
    const keys = async (query: string, token = APP_RW) => {
      const r = await call(`${base}/kv/range?${query}`, token);
      equal(r.status, 200, r.text);
      return (r.body as { items: { key: string }[] }).items.map((i) =>
        unb64(i.key)
      );
    };
    deepEqual(await keys("prefix=app/"), ["app/a", "app/b"]);
    deepEqual(await keys("prefix=app/a"), ["app/a"]);
    // end exactly at the prefix's end ("app0") is inside.
    deepEqual(await keys("start=app/&end=app0"), ["app/a", "app/b"]);
    deepEqual(await keys("start=app/b&end=app/c&reverse=true"), ["app/b"]);
    for (
      const q of [
        "", // the whole store
        "prefix=", // the empty prefix is the whole store
        "prefix=ap", // wider than the token's prefix
        "prefix=app", // "app" and "app0" are outside
        "start=app/", // no end: runs past the prefix
        "end=app0", // no start: runs before the prefix
        "start=app/&end=app0%00", // one byte past the prefix's end
        "start=app&end=app0", // starts one key before the prefix
        "start=apo&end=app/z",
        "start=zzz&end=zzzz", // wholly outside
        "start=app/b&end=app0%00&reverse=true",
      ]
    ) {
      forbidden(await call(`${base}/kv/range?${q}`, APP_RW), /outside/);
    }
    // The admin token lists everything.
    deepEqual((await keys("", ADMIN)).length, 7);
  });
});

Deno.test("scoped tokens: a cursor cannot be reused by a token of another prefix", async () => {
  await withServer({ handler: HANDLER }, async ({ base }) => {
    await seed(base);
    for (const k of ["apq/1", "apq/2", "apq/3"]) {
      await call(`${base}/kv/${k}`, ADMIN, { method: "PUT", body: k });
    }
    // OTHER_RW (prefix "apq") pages through its keys...
    const page = await call(`${base}/kv/range?prefix=apq/&limit=1`, OTHER_RW);
    equal(page.status, 200, page.text);
    const cursor = (page.body as { next: string }).next;
    equal(typeof cursor, "string");
    const c = encodeURIComponent(cursor);
    // ...APP_RW repeating OTHER_RW's bounds is refused for the bounds...
    forbidden(
      await call(`${base}/kv/range?prefix=apq/&limit=1&cursor=${c}`, APP_RW),
    );
    // ...and with its own bounds the cursor does not fit them.
    const own = await call(
      `${base}/kv/range?prefix=app/&limit=1&cursor=${c}`,
      APP_RW,
    );
    equal(own.status, 400, own.text);
    equal(
      (own.body as { error: { code: string } }).error.code,
      "invalid_cursor",
    );
    // The cursor still serves its own token.
    const next = await call(
      `${base}/kv/range?prefix=apq/&limit=1&cursor=${c}`,
      OTHER_RW,
    );
    equal(next.status, 200, next.text);
    deepEqual(
      (next.body as { items: { key: string }[] }).items.map((i) =>
        unb64(i.key)
      ),
      ["apq/2"],
    );
  });
});

Deno.test("scoped tokens: multi-get and batch are refused whole when one key is outside", async () => {
  await withServer({ handler: HANDLER }, async ({ base }) => {
    await seed(base);
    const get = (keys: string[], token = APP_RW) =>
      call(`${base}/kv/get`, token, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ keys: keys.map((k) => b64(k)) }),
      });
    const ok = await get(["app/a", "app/zz"]);
    equal(ok.status, 200, ok.text);
    forbidden(await get(["app/a", "zzz"]), /key 1/);
    forbidden(await get(["app"]));

    for (
      const ops of [
        [{ op: "put", key: b64("app/x"), value: b64("1") }, {
          op: "put",
          key: b64("zzz"),
          value: b64("stolen"),
        }],
        [{ op: "delete", key: b64("app0") }],
        // A check outside the prefix would reveal another key's version.
        [{ op: "check", key: b64("zzz"), if_none_match: "*" }, {
          op: "put",
          key: b64("app/x"),
          value: b64("1"),
        }],
      ]
    ) {
      forbidden(await call(`${base}/kv/batch`, APP_RW, batchBody(ops)));
    }
    // Nothing of the refused batches was applied.
    equal((await call(`${base}/kv/app/x`, ADMIN)).status, 404);
    equal((await call(`${base}/kv/zzz`, ADMIN)).text, "zzz");
    equal((await call(`${base}/kv/app0`, ADMIN)).text, "app0");
    const good = await call(
      `${base}/kv/batch`,
      APP_RW,
      batchBody([{ op: "put", key: b64("app/x"), value: b64("1") }]),
    );
    equal(good.status, 200, good.text);
  });
});

Deno.test("scoped tokens: the change feed only inside the prefix, and it sees only its keys", async () => {
  await withServer({ handler: HANDLER }, async ({ base }) => {
    for (const q of ["", "?prefix=ap", "?start=app/", "?start=app/&end=b"]) {
      // Status first: a feed wrongly opened would never end its body.
      const res = await fetch(`${base}/kv/watch${q}`, {
        headers: auth(APP_RO),
      });
      if (res.status !== 403) await res.body?.cancel();
      const text = await res.text();
      forbidden({ status: res.status, body: JSON.parse(text), text });
    }
    const r = await fetch(`${base}/kv/watch?prefix=app/`, {
      headers: auth(APP_RO),
    });
    equal(r.status, 200);
    const feed = new SseReader(r);
    equal((await feed.next())?.event, "ready");
    for (const k of ["app0", "zzz", "app/1", "app", "app/2"]) {
      await call(`${base}/kv/${k}`, ADMIN, { method: "PUT", body: k });
    }
    const seen: string[] = [];
    while (seen.length < 2) {
      const ev = await feed.next();
      equal(ev?.event, "change");
      for (const c of JSON.parse(ev!.data).changes) seen.push(unb64(c.key));
    }
    deepEqual(seen, ["app/1", "app/2"]);
    await feed.cancel();
  });
});

Deno.test("scoped tokens: admin routes, stats and KV Connect need the admin token; the admin keeps every power", async () => {
  await withServer({ handler: HANDLER }, async ({ base }) => {
    for (
      const path of ["/admin/backup", "/stats", "/metrics", "/stats/stream"]
    ) {
      forbidden(await call(`${base}${path}`, APP_RW), /admin token/);
    }
    // Unknown routes still answer 404 to any valid token, 401 to others.
    equal((await call(`${base}/nope`, APP_RW)).status, 404);
    equal((await call(`${base}/kv/app/a`, "not-a-token-at-all-x")).status, 401);
    // KV Connect checks the admin token only.
    const kvc = await fetch(`${base}/deno-kv/v2`, {
      method: "POST",
      headers: auth(APP_RW, { "content-type": "application/json" }),
      body: JSON.stringify({ supportedVersions: [1, 2, 3] }),
    });
    equal(kvc.status, 401, await kvc.text());
    const adminKvc = await fetch(`${base}/deno-kv/v2`, {
      method: "POST",
      headers: auth(ADMIN, { "content-type": "application/json" }),
      body: JSON.stringify({ supportedVersions: [1, 2, 3] }),
    });
    equal(adminKvc.status, 200, await adminKvc.text());
    // Admin: any key, any route.
    equal(
      (await call(`${base}/kv/zzz`, ADMIN, { method: "PUT", body: "z" }))
        .status,
      204,
    );
    equal((await call(`${base}/metrics`, ADMIN)).status, 200);
    const stats = await call(`${base}/stats`, ADMIN);
    equal(stats.status, 200);
  });
});

Deno.test("scoped tokens: reloading replaces the tokens at once; they need an admin token", async () => {
  await withServer({ handler: HANDLER }, async ({ base, handler }) => {
    equal((await call(`${base}/kv/app/a`, APP_RO)).status, 404);
    handler.setScopedTokens([
      { token: APP_RO, scope: new Scope(b("app/"), true) },
    ]);
    // Now read-write; the dropped tokens are unknown.
    equal(
      (await call(`${base}/kv/app/a`, APP_RO, { method: "PUT", body: "1" }))
        .status,
      204,
    );
    equal((await call(`${base}/kv/app/a`, APP_RW)).status, 401);
  });
  let threw = "";
  try {
    await withServer({ handler: { scopedTokens: TOKENS } }, () => {
      throw new Error("started");
    });
  } catch (err) {
    threw = (err as Error).message;
  }
  match(threw, /need an admin token/);
});
