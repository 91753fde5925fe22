import { deepEqual, equal, ok } from "node:assert/strict";
import type * as http from "node:http";
import { writeResponse } from "../../server/node_http_fetch.ts";
import { PartsResponse } from "../../server/response_parts.ts";

/** What writeResponse did to a node:http response, recorded. */
interface Written {
  status?: number;
  headers?: Record<string, string>;
  body?: Uint8Array;
  ended: boolean;
}

/** A stand-in for http.ServerResponse that records a buffered answer. */
function recorder(): { res: http.ServerResponse; out: Written } {
  const out: Written = { ended: false };
  const res = {
    writeHead(status: number, headers: Record<string, string>) {
      out.status = status;
      out.headers = { ...headers };
    },
    end(body?: Uint8Array) {
      out.body = body;
      out.ended = true;
    },
  } as unknown as http.ServerResponse;
  return { res, out };
}

/** A PartsResponse, and what each of its parts holds. */
function marked(): PartsResponse {
  const body = new TextEncoder().encode("from the parts");
  return new PartsResponse(200, {
    "content-type": "text/x-parts",
    "content-length": String(body.length),
  }, body);
}

Deno.test("writeResponse: a PartsResponse is written from its parts, never built as a Response", async () => {
  const { res, out } = recorder();
  const response = marked();
  await writeResponse(res, response, false, false);
  equal(out.status, 200);
  deepEqual(out.headers, {
    "content-type": "text/x-parts",
    "content-length": "14",
  });
  deepEqual(new TextDecoder().decode(out.body), "from the parts");
  // Still unread: the writer took the parts, not the Response.
  ok(response.parts !== undefined);
  equal(response.bodyUsed, false);
});

Deno.test("writeResponse: a connection that must close, or an HTTP/2 stream, takes the general path", async () => {
  for (const [closeAfter, h2] of [[true, false], [false, true]]) {
    const { res, out } = recorder();
    const response = marked();
    await writeResponse(res, response, closeAfter, h2);
    equal(response.parts, undefined);
    deepEqual(new TextDecoder().decode(out.body), "from the parts");
    equal(out.headers!["content-type"], "text/x-parts");
    equal(out.headers!["content-length"], "14");
    equal(out.headers!["connection"], closeAfter ? "close" : undefined);
  }
});

Deno.test("writeResponse: a PartsResponse whose headers were edited is written as edited", async () => {
  const { res, out } = recorder();
  const response = marked();
  response.headers.set("x-edited", "1");
  await writeResponse(res, response, false, false);
  equal(out.headers!["x-edited"], "1");
  equal(out.headers!["content-type"], "text/x-parts");
  deepEqual(new TextDecoder().decode(out.body), "from the parts");
});

Deno.test("writeResponse: a response without parts is read back (headers, then the body)", async () => {
  const { res, out } = recorder();
  await writeResponse(
    res,
    new Response("abc", { status: 201, headers: { etag: '"3"' } }),
    false,
    false,
  );
  equal(out.status, 201);
  equal(out.headers!["etag"], '"3"');
  equal(out.headers!["content-length"], "3");
  deepEqual(new TextDecoder().decode(out.body), "abc");
});
