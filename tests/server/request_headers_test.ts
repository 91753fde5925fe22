/**
 * Reading request headers without `req.headers` (server/request_headers.ts):
 * on a request served by Deno the answer is what `req.headers.get` gives
 * (missing, repeated and differently cased headers included), and a
 * handler that reads only through it still gets its synchronous answer
 * sent; an in-process `new Request` falls back to its Headers.
 */
import { deepEqual, equal } from "node:assert/strict";
import { requestHeader } from "../../server/request_headers.ts";

const NAMES = ["host", "x-one", "x-multi", "x-absent", "content-length"];

/** Serves one request with `handler`, sends `headers`, returns the answer text. */
async function serveOnce(
  handler: (req: Request) => Response,
  headers: [string, string][],
): Promise<string> {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    handler,
  );
  try {
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/kv/a`, {
      method: "PUT",
      body: "value",
      headers,
    });
    return await res.text();
  } finally {
    ac.abort();
    await server.finished;
  }
}

const SENT: [string, string][] = [
  ["X-One", "1"],
  ["x-multi", "a"],
  ["x-multi", "b"],
];

Deno.test("requestHeader answers what req.headers.get answers on a served request", async () => {
  const fast = JSON.parse(
    await serveOnce(
      (req) => Response.json(NAMES.map((n) => requestHeader(req, n))),
      SENT,
    ),
  );
  const slow = JSON.parse(
    await serveOnce(
      (req) => Response.json(NAMES.map((n) => req.headers.get(n))),
      SENT,
    ),
  );
  deepEqual(fast.slice(1), slow.slice(1)); // host differs by port only
  deepEqual(fast.slice(1), ["1", "a, b", null, "5"]);
  equal(typeof fast[0], "string");
  equal(fast[0].startsWith("127.0.0.1:"), true);
});

Deno.test("requestHeader falls back to the Headers of an in-process request", () => {
  const req = new Request("http://127.0.0.1/kv/a", {
    headers: [["X-One", "1"], ["x-multi", "a"], ["x-multi", "b"]],
  });
  deepEqual(
    ["x-one", "x-multi", "x-absent"].map((n) => requestHeader(req, n)),
    ["1", "a, b", null],
  );
});
