import { deepEqual, equal } from "node:assert/strict";
import { responseParts, withParts } from "../../server/response_parts.ts";

Deno.test("withParts: the parts stay beside their Response; other Responses have none", async () => {
  const body = new TextEncoder().encode("hello");
  const headers = {
    "content-type": "text/plain",
    "content-length": String(body.length),
  };
  const res = withParts(new Response(body, { headers }), headers, body);
  const parts = responseParts(res)!;
  equal(parts.headers, headers);
  equal(parts.body, body);
  // The Response itself is untouched: a caller that reads it gets the same.
  deepEqual(await res.text(), "hello");
  deepEqual(res.headers.get("content-length"), "5");
  equal(responseParts(new Response(body, { headers })), undefined);
});

Deno.test("withParts: a response without a body keeps undefined as its body", () => {
  const headers = { etag: '"7"' };
  const res = withParts(
    new Response(null, { status: 204, headers }),
    headers,
    undefined,
  );
  deepEqual(responseParts(res), { headers, body: undefined });
});
