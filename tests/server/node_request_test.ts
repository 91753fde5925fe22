/**
 * server/node_request.ts on a stand-in for a `node:http` request: headers
 * answer as a `Headers` built from the raw list does (the model), bodies
 * read whole, as a stream or through the Request methods, once.
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import type * as http from "node:http";
import { PassThrough } from "node:stream";
import { NodeRequest } from "../../server/node_request.ts";
import { prng } from "../_rng.ts";

const enc = new TextEncoder();

/**
 * A node request stand-in: a stream with a method and a raw header list;
 * `send` writes body chunks, then ends it (`complete`, as node:http sets
 * before the consumer sees the end) unless `cut`, which closes it early.
 */
function fakeRequest(method: string, raw: string[]) {
  const s = new PassThrough() as PassThrough & {
    method: string;
    rawHeaders: string[];
    complete: boolean;
  };
  s.method = method;
  s.rawHeaders = raw;
  s.complete = false;
  const send = (chunks: string[], cut = false) => {
    for (const c of chunks) s.write(enc.encode(c));
    if (cut) s.destroy();
    else {
      s.complete = true;
      s.end();
    }
  };
  return { req: s as unknown as http.IncomingMessage, send };
}

function request(method: string, raw: string[], hasBody = true) {
  const { req, send } = fakeRequest(method, raw);
  return {
    r: new NodeRequest(req, "http://h/kv/a", raw, hasBody),
    send,
  };
}

Deno.test("header() answers as Headers.get over the same raw list", () => {
  const rnd = prng(3);
  const names = ["Host", "host", "If-Match", "if-match", "X-A", "Accept"];
  const values = ["a", " b", "c\t", '"1", "2"', "", "  spaced  out "];
  for (let round = 0; round < 200; round++) {
    const raw: string[] = [];
    const n = Math.floor(rnd() * 6);
    for (let i = 0; i < n; i++) {
      raw.push(
        names[Math.floor(rnd() * names.length)],
        values[Math.floor(rnd() * values.length)],
      );
    }
    if (rnd() < 0.3) raw.unshift(":authority", "h2.example");
    const model = new Headers();
    for (let i = 0; i < raw.length; i += 2) {
      if (!raw[i].startsWith(":")) model.append(raw[i], raw[i + 1]);
    }
    const { r } = request("GET", raw, false);
    for (const name of ["host", "if-match", "x-a", "accept", "absent"]) {
      equal(r.header(name), model.get(name), `${name} in ${raw.join("|")}`);
    }
    equal(r.header(":authority"), null);
    // The Headers object, when asked for, holds the same; built once.
    deepEqual([...r.headers], [...model]);
    equal(r.headers, r.headers);
  }
});

Deno.test("bytes() collects the body into one buffer of its own, once", async () => {
  const { r, send } = request("PUT", ["Content-Length", "11"]);
  equal(r.method, "PUT");
  equal(r.url, "http://h/kv/a");
  ok(r.hasBody);
  const p = r.bytes();
  send(["hello", " ", "world"]);
  const body = await p;
  equal(new TextDecoder().decode(body), "hello world");
  // Not a slice of a shared pool: the whole ArrayBuffer is the body.
  equal(body.buffer.byteLength, 11);
  equal(r.bodyUsed, true);
  await rejects(r.bytes(), TypeError);
  await rejects(r.arrayBuffer(), TypeError);
  await rejects(r.text(), TypeError);
});

Deno.test("arrayBuffer() is the body's bytes", async () => {
  const { r, send } = request("POST", ["Content-Length", "3"]);
  send(["abc"]);
  deepEqual(new Uint8Array(await r.arrayBuffer()), enc.encode("abc"));
});

Deno.test("no announced body, GET and HEAD read as empty with a null body", async () => {
  for (const [method, hasBody] of [["PUT", false], ["GET", true]] as const) {
    const { r } = request(method, [], hasBody);
    equal(r.hasBody, false);
    equal(r.body, null);
    equal((await r.bytes()).length, 0);
  }
  const { r } = request("HEAD", [], true);
  equal(r.body, null);
  equal(await r.text(), "");
});

Deno.test("body is a stream of the chunks; after it, bytes() reads through it", async () => {
  const { r, send } = request("PUT", ["Transfer-Encoding", "chunked"]);
  const stream = r.body!;
  equal(r.body, stream);
  send(["ab", "cd"]);
  equal(await r.text(), "abcd");
  equal(r.bodyUsed, true);
  await rejects(r.bytes(), TypeError);
});

Deno.test("json(), and a clone, go through a real Request", async () => {
  const { r, send } = request("POST", [
    "Content-Type",
    "application/json",
    "Content-Length",
    "9",
  ]);
  send(['{"a":[1]}']);
  const copy = r.clone();
  equal(copy.headers.get("content-type"), "application/json");
  deepEqual(await r.json(), { a: [1] });
  deepEqual(await copy.json(), { a: [1] });
});

Deno.test("a client gone before the end of the body fails the read", async () => {
  const { r, send } = request("PUT", ["Content-Length", "100"]);
  const p = r.bytes();
  send(["partial"], true);
  await rejects(p, /closed the connection/);
});

Deno.test("the signal never aborts, as a constructed Request's", () => {
  const { r } = request("GET", [], false);
  equal(r.signal.aborted, false);
  equal(r.signal, r.signal);
});
