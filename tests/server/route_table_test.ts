/**
 * The route table's machinery (server/route_table.ts): what each pattern
 * matches and is labelled, HEAD derived from GET, and the 405/OPTIONS answer.
 */
import assert from "node:assert/strict";
import {
  methodNotAllowed,
  PUBLIC,
  read,
  route,
  SCOPED,
} from "../../server/route_table.ts";
import type { Ctx } from "../../server/context.ts";
import { HttpError } from "../../server/_codec.ts";

const noop = () => new Response(null);

Deno.test("an exact pattern matches itself only", () => {
  const r = route("/stats", { GET: noop });
  assert.equal(r.name, "/stats");
  assert.ok(r.match("/stats"));
  for (const p of ["/stats/", "/stats/stream", "/stat", "/", "/Stats"]) {
    assert.ok(!r.match(p), p);
  }
  assert.equal(r.public, undefined);
  assert.equal(r.scoped, undefined);
});

Deno.test("/a/* matches /a and everything below it, labelled /a", () => {
  const r = route("/deno-kv/*", { GET: noop }, PUBLIC);
  assert.equal(r.name, "/deno-kv");
  assert.equal(r.public, true);
  for (const p of ["/deno-kv", "/deno-kv/", "/deno-kv/db/snapshot_read"]) {
    assert.ok(r.match(p), p);
  }
  for (const p of ["/deno-kvx", "/deno", "/x/deno-kv"]) {
    assert.ok(!r.match(p), p);
  }
});

Deno.test("/a/{key} matches every path below /a/, keeping the pattern as its label", () => {
  const r = route("/kv/{key}", { GET: noop }, SCOPED);
  assert.equal(r.name, "/kv/{key}");
  assert.equal(r.scoped, true);
  for (const p of ["/kv/a", "/kv/%72ange", "/kv/a/b", "/kv/"]) {
    assert.ok(r.match(p), p);
  }
  for (const p of ["/kv", "/kvx/a", "/k/v"]) assert.ok(!r.match(p), p);
});

Deno.test("opts.match replaces the pattern's matcher, not its label", () => {
  const r = route("/ui", { GET: noop }, {
    public: true,
    match: (p) => p === "/" || p.startsWith("/ui"),
  });
  assert.equal(r.name, "/ui");
  assert.ok(r.match("/") && r.match("/ui/app.js"));
  assert.ok(!r.match("/kv/ui"));
  // It also wins over the /* and /{key} forms.
  const w = route("/a/*", {}, { match: (p) => p === "/b" });
  assert.equal(w.name, "/a");
  assert.ok(w.match("/b") && !w.match("/a"));
});

Deno.test("read(): HEAD answers GET's status and headers with Content-Length and no body", async () => {
  const ctx = {} as Ctx;
  const body = "héllo"; // 6 bytes in UTF-8
  const methods = read(() =>
    new Response(body, { status: 201, headers: { "x-test": "1" } })
  );
  assert.deepEqual(Object.keys(methods), ["GET", "HEAD"]);
  const get = await methods.GET(ctx);
  assert.equal(await get.text(), body);
  const head = await methods.HEAD(ctx);
  assert.equal(head.status, 201);
  assert.equal(head.headers.get("x-test"), "1");
  assert.equal(head.headers.get("content-length"), "6");
  assert.equal(head.body, null);
  // A Content-Length the route set is kept as is.
  const sized = read(() =>
    new Response("abc", { headers: { "content-length": "3" } })
  );
  const h2 = await sized.HEAD(ctx);
  assert.equal(h2.headers.get("content-length"), "3");
  assert.equal(h2.body, null);
  // No body: no Content-Length invented.
  const empty = await read(() => new Response(null, { status: 204 })).HEAD(ctx);
  assert.equal(empty.status, 204);
  assert.equal(empty.headers.get("content-length"), null);
});

Deno.test("methodNotAllowed: 204 with Allow to OPTIONS, else a 405 HttpError with Allow", () => {
  const ok = methodNotAllowed("OPTIONS", "GET, HEAD");
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get("allow"), "GET, HEAD");
  assert.throws(() => methodNotAllowed("PATCH", "GET, HEAD"), (e) => {
    assert.ok(e instanceof HttpError);
    assert.equal(e.status, 405);
    assert.equal(e.code, "method_not_allowed");
    assert.deepEqual(e.headers, { allow: "GET, HEAD" });
    assert.equal(
      e.message,
      "method PATCH is not allowed here (allowed: GET, HEAD)",
    );
    return true;
  });
  // A long method name is clipped in the message.
  assert.throws(() => methodNotAllowed("X".repeat(100), "GET"), (e) => {
    assert.ok(e instanceof HttpError);
    assert.match(e.message, /^method X{16}\.\.\. is not allowed/);
    return true;
  });
});
