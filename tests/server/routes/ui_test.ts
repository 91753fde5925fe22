/**
 * The dashboard's files: served without a token (they hold no data), with
 * a strict content security policy, `/` redirecting to `/ui`.
 */
import { equal, match, ok } from "node:assert/strict";
import { open } from "../../../mod.ts";
import { createHandler, type Handler } from "../../../server/app.ts";
import { withTempDir } from "../../_helpers.ts";

const BASE = "http://shale.test";

async function withHandler(fn: (h: Handler) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "inline" });
    const h = createHandler(db, { authToken: "s3cret" });
    try {
      await fn(h);
    } finally {
      h.close();
      await db.close();
    }
  });
}

Deno.test("ui: / redirects to /ui; the page, script and style need no token", async () => {
  await withHandler(async (h) => {
    const root = await h(new Request(`${BASE}/`));
    equal(root.status, 302);
    equal(root.headers.get("location"), "/ui");

    const page = await h(new Request(`${BASE}/ui`));
    equal(page.status, 200);
    equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    const csp = page.headers.get("content-security-policy") ?? "";
    match(csp, /default-src 'none'/);
    match(csp, /script-src 'self'/);
    const html = await page.text();
    match(html, /<script src="\/ui\/app.js" defer><\/script>/);
    // No external resources: every src/href is a local path.
    for (const m of html.matchAll(/(?:src|href)="([^"]*)"/g)) {
      ok(m[1].startsWith("/ui/"), `external resource ${m[1]}`);
    }

    const js = await h(new Request(`${BASE}/ui/app.js`));
    equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    match(await js.text(), /\/stats\/stream/);
    const css = await h(new Request(`${BASE}/ui/style.css`));
    equal(css.headers.get("content-type"), "text/css; charset=utf-8");
    ok((await css.text()).length > 1000);

    const head = await h(new Request(`${BASE}/ui`, { method: "HEAD" }));
    equal(head.status, 200);
    equal(head.body, null);
  });
});

Deno.test("ui: the API behind it stays protected; unknown files are 404", async () => {
  await withHandler(async (h) => {
    for (const path of ["/stats", "/stats/stream", "/kv/range"]) {
      const res = await h(new Request(`${BASE}${path}`));
      equal(res.status, 401, path);
      await res.body?.cancel();
    }
    const missing = await h(new Request(`${BASE}/ui/../stats`));
    equal(missing.status, 401);
    await missing.body?.cancel();
    const nope = await h(new Request(`${BASE}/ui/nope.js`));
    equal(nope.status, 404);
    equal((await nope.json()).error.code, "unknown_route");
    const post = await h(new Request(`${BASE}/ui`, { method: "POST" }));
    equal(post.status, 405);
    equal(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();
  });
});
