/** server/body.ts: the REST body reader and its limit policy. */
import { deepEqual, equal, rejects } from "node:assert/strict";
import { HttpError } from "../../server/_codec.ts";
import { readBody } from "../../server/body.ts";
import { BodyBudget } from "../../server/body_budget.ts";

const LIMIT = { bytes: 8, code: "value_too_large", what: "value" };

/** A request whose body arrives as these chunks (no Content-Length). */
function streamed(chunks: string[], headers: Record<string, string> = {}) {
  const enc = new TextEncoder();
  return new Request("http://127.0.0.1/", {
    method: "PUT",
    headers,
    body: new ReadableStream({
      start(c) {
        for (const s of chunks) c.enqueue(enc.encode(s));
        c.close();
      },
    }),
  });
}

async function read(req: Request, budget = new BodyBudget(1 << 20, 10)) {
  const counted: number[] = [];
  const lease = budget.lease();
  try {
    const body = await readBody(req, lease, LIMIT, (n) => counted.push(n));
    return { text: new TextDecoder().decode(body), counted };
  } finally {
    lease.release();
  }
}

function httpError(status: number, code: string) {
  return (e: unknown) =>
    e instanceof HttpError && e.status === status && e.code === code;
}

Deno.test("a body within the limit is read whole, and counted", async () => {
  deepEqual(await read(streamed(["abc", "de"])), {
    text: "abcde",
    counted: [3, 2],
  });
  const declared = new Request("http://127.0.0.1/", {
    method: "PUT",
    headers: { "content-length": "3" },
    body: "xyz",
  });
  deepEqual(await read(declared), { text: "xyz", counted: [3] });
});

Deno.test("past the limit: 413 with the route's code, declared or streamed", async () => {
  await rejects(
    read(streamed(["12345", "6789"])),
    httpError(413, "value_too_large"),
  );
  const declared = new Request("http://127.0.0.1/", {
    method: "PUT",
    headers: { "content-length": "9" },
    body: "123456789",
  });
  await rejects(read(declared), httpError(413, "value_too_large"));
});

Deno.test("framing: a bad Content-Length is 400; an unframed empty body 411", async () => {
  const bad = new Request("http://127.0.0.1/", {
    method: "PUT",
    headers: { "content-length": "1e3" },
    body: "x",
  });
  await rejects(read(bad), httpError(400, "invalid_header"));
  await rejects(read(streamed([])), httpError(411, "length_required"));
  const chunked = streamed([], { "transfer-encoding": "chunked" });
  equal((await read(chunked)).text, "");
});

Deno.test("a body over the server's budget waits, then gets 503 overloaded", async () => {
  const budget = new BodyBudget(4, 10);
  const hog = budget.lease();
  await hog.take(4);
  try {
    await rejects(
      read(streamed(["abc"]), budget),
      httpError(503, "overloaded"),
    );
  } finally {
    hog.release();
  }
});

Deno.test("a large declared body is read chunk by chunk into one buffer; a length that does not match is 400 body_read_failed", async () => {
  const big = { bytes: 4 << 20, code: "value_too_large", what: "value" };
  const chunk = new Uint8Array(64 * 1024);
  const request = (chunks: number, declared: number) =>
    new Request("http://127.0.0.1/", {
      method: "PUT",
      headers: { "content-length": String(declared) },
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < chunks; i++) c.enqueue(chunk.map(() => i));
          c.close();
        },
      }),
    });
  const budget = new BodyBudget(16 << 20, 10);
  const lease = budget.lease();
  try {
    const body = await readBody(request(32, 2 << 20), lease, big, () => {});
    deepEqual(body.length, 2 << 20);
    deepEqual([body[0], body[65536], body[(2 << 20) - 1]], [0, 1, 31]);
    for (const declared of [(2 << 20) + 1, (2 << 20) - 1]) {
      const other = budget.lease();
      await rejects(
        readBody(request(32, declared), other, big, () => {}),
        httpError(400, "body_read_failed"),
      );
      other.release();
    }
  } finally {
    lease.release();
  }
});
