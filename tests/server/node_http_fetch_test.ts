import { deepEqual, equal } from "node:assert/strict";
import type * as http from "node:http";
import { writeResponse } from "../../server/node_http_fetch.ts";
import { withParts } from "../../server/response_parts.ts";

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

/**
 * A Response whose parts differ from its own headers and body, so the
 * recording shows which of the two was written.
 */
function marked(): Response {
  const own = new Response("from the Response", {
    headers: { "content-type": "text/plain" },
  });
  const body = new TextEncoder().encode("from the parts");
  return withParts(own, {
    "content-type": "text/x-parts",
    "content-length": String(body.length),
  }, body);
}

Deno.test("writeResponse: a response with parts is written from them, its body left unread", async () => {
  const { res, out } = recorder();
  const response = marked();
  await writeResponse(res, response, false, false);
  equal(out.status, 200);
  deepEqual(out.headers, {
    "content-type": "text/x-parts",
    "content-length": "14",
  });
  deepEqual(new TextDecoder().decode(out.body), "from the parts");
  equal(response.bodyUsed, false);
});

Deno.test("writeResponse: a connection that must close, or an HTTP/2 stream, takes the general path", async () => {
  for (const [closeAfter, h2] of [[true, false], [false, true]]) {
    const { res, out } = recorder();
    await writeResponse(res, marked(), closeAfter, h2);
    deepEqual(new TextDecoder().decode(out.body), "from the Response");
    equal(out.headers!["content-type"], "text/plain");
    equal(out.headers!["content-length"], "17");
    equal(out.headers!["connection"], closeAfter ? "close" : undefined);
  }
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
