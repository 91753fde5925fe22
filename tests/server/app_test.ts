/** The handler called directly with `new Request(...)`: no sockets. */
import { deepEqual, ok } from "node:assert/strict";
import { type Db, type ErrorCode, open } from "../../mod.ts";
import { getBorrowed } from "../../engine/value_view.ts";
import { createHandler, ERROR_STATUS } from "../../server/app.ts";
import { HeldSyncFs } from "../_held_sync_fs.ts";

async function withDb(fn: (db: Db) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shale-app-" });
  const db = await open(dir, { sync: "none", background: "inline" });
  try {
    await fn(db);
  } finally {
    await db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("every engine error code maps to a 4xx or 5xx status", () => {
  const codes: ErrorCode[] = [
    "invalid_argument",
    "key_too_long",
    "value_too_large",
    "precondition_failed",
    "corruption",
    "closed",
    "read_only",
    "disk_full",
    "locked",
    "io_error",
  ];
  for (const c of codes) ok(ERROR_STATUS[c] >= 400, c);
  deepEqual(ERROR_STATUS.disk_full, 507);
  deepEqual(ERROR_STATUS.key_too_long, 414);
});

Deno.test("the handler answers a Request without any listener", async () => {
  await withDb(async (db) => {
    const h = createHandler(db);
    const put = await h(
      new Request("http://localhost/kv/a", { method: "PUT", body: "1" }),
    );
    deepEqual(put.status, 204);
    const get = await h(new Request("http://localhost/kv/a"));
    deepEqual(await get.text(), "1");
    h.close();
  });
});

Deno.test("an unexpected engine failure is logged and answered 500 with the JSON shape", async () => {
  await withDb(async (db) => {
    const logs: string[] = [];
    const broken = new Proxy(db, {
      get(target, prop) {
        if (prop === "get" || prop === getBorrowed) {
          return () => {
            throw new TypeError("boom");
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const h = createHandler(broken, { log: (_l, m) => logs.push(m) });
    const res = await h(new Request("http://localhost/kv/a"));
    deepEqual(res.status, 500);
    deepEqual(await res.json(), {
      error: { code: "internal", message: "internal server error" },
    });
    deepEqual(logs, ["unhandled error"]);
    deepEqual(h.metrics.toJSON().serverErrors, 1);
  });
});

Deno.test("a 412 is answered only once the write it lost to is visible to a GET", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shale-app-" });
  const fs = new HeldSyncFs();
  const db = await open(dir, { fs, background: "inline" });
  const h = createHandler(db);
  try {
    const cases: [string, Record<string, string>][] = [
      ["If-None-Match", { "if-none-match": "*" }],
      ["If-Match", { "if-match": '"1"' }],
    ];
    await h(
      new Request("http://localhost/kv/k", { method: "PUT", body: "v1" }),
    );
    await h(new Request("http://localhost/kv/k", { method: "DELETE" }));
    for (const [name, headers] of cases) {
      fs.hold();
      // A: creates the key; its fsync is held, so it is in flight.
      const a = h(
        new Request("http://localhost/kv/k", {
          method: "PUT",
          body: `a ${name}`,
          headers: { "if-none-match": "*" },
        }),
      );
      await fs.reached;
      // B loses to A: its 412 must wait until A is visible.
      const b = h(
        new Request("http://localhost/kv/k", {
          method: "PUT",
          body: "b",
          headers,
        }),
      ).then(async (res) => {
        const get = await h(new Request("http://localhost/kv/k"));
        return { status: res.status, get: get.status, body: await get.text() };
      });
      let answered = false;
      b.then(() => answered = true);
      await new Promise((r) => setTimeout(r, 20));
      deepEqual(answered, false, `${name}: 412 before A is visible`);
      fs.release();
      deepEqual((await a).status, 204);
      deepEqual(await b, { status: 412, get: 200, body: `a ${name}` }, name);
      await h(new Request("http://localhost/kv/k", { method: "DELETE" }));
    }
  } finally {
    fs.release();
    h.close();
    await db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve answers a GET from the engine synchronously, hit or miss, with the handler's answers", async () => {
  await withDb(async (db) => {
    const h = createHandler(db);
    await h(new Request("http://localhost/kv/a", { method: "PUT", body: "1" }));
    // A Response, not a promise: the listener then needs no promise per layer.
    const hit = h.serve(new Request("http://localhost/kv/a"));
    ok(hit instanceof Response);
    deepEqual(hit.status, 200);
    deepEqual(await hit.text(), "1");
    const miss = h.serve(new Request("http://localhost/kv/b"));
    ok(miss instanceof Response);
    deepEqual(miss.status, 404);
    deepEqual(miss.headers.get("content-type"), "application/json");
    const viaHandler = await h(new Request("http://localhost/kv/b"));
    deepEqual(await miss.json(), {
      error: { code: "not_found", message: "key not found" },
    });
    deepEqual(await viaHandler.json(), {
      error: { code: "not_found", message: "key not found" },
    });
    // Both count in the metrics like any request.
    const text = h.metrics.render(undefined);
    ok(text.includes('route="/kv/{key}",method="GET",status="404"} 2'), text);
    h.close();
  });
});

Deno.test("a request is timed from the listener's receivedAt when it gives one", async () => {
  await withDb(async (db) => {
    const h = createHandler(db);
    const res = await h.serve(new Request("http://localhost/kv/a"), {
      receivedAt: performance.now() - 2000,
    });
    deepEqual(res.status, 404);
    const text = await (await h(new Request("http://localhost/metrics")))
      .text();
    const sum =
      /shale_http_request_duration_seconds_sum\{route="\/kv\/\{key\}",method="GET"\} (\S+)/
        .exec(text);
    ok(sum !== null, text);
    ok(Number(sum[1]) >= 2, sum[1]);
    h.close();
  });
});
