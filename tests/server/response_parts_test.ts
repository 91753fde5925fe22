import { deepEqual, equal, ok } from "node:assert/strict";
import {
  PartsResponse,
  realResponse,
  responseParts,
} from "../../server/response_parts.ts";

const enc = new TextEncoder();

Deno.test("PartsResponse: the parts are given back as they are; a Response has none", () => {
  const body = enc.encode("hello");
  const headers = {
    "content-type": "text/plain",
    "content-length": String(body.length),
  };
  const res = new PartsResponse(201, headers, body);
  const parts = responseParts(res)!;
  equal(parts.status, 201);
  equal(parts.headers, headers);
  equal(parts.body, body);
  equal(res.status, 201);
  equal(res.ok, true);
  equal(res.bodyUsed, false);
  // Status checks do not build the Response: the parts stay.
  ok(responseParts(res) !== undefined);
  equal(responseParts(new Response(body, { headers })), undefined);
});

Deno.test("PartsResponse: read as a Response it is the one its parts describe, and the parts go", async () => {
  const body = enc.encode("hello");
  const headers = {
    "content-type": "text/plain",
    "content-length": String(body.length),
    etag: '"9"',
  };
  const res = new PartsResponse(200, headers, body);
  equal(res.headers.get("etag"), '"9"');
  equal(res.headers.get("content-type"), "text/plain");
  // Whatever reads it may change the headers: from now on the listener
  // must write the Response, not the parts.
  equal(responseParts(res), undefined);
  equal(await res.text(), "hello");
  equal(res.bodyUsed, true);

  const cloned = new PartsResponse(404, headers, body).clone();
  equal(cloned.status, 404);
  deepEqual(await cloned.bytes(), body);
});

Deno.test("PartsResponse: no body is a null body", async () => {
  const headers = { etag: '"7"' };
  const res = new PartsResponse(204, headers, undefined);
  deepEqual(responseParts(res), { status: 204, headers, body: undefined });
  equal(res.body, null);
  equal(res.headers.get("etag"), '"7"');
  equal(await res.text(), "");
});

Deno.test("realResponse: a PartsResponse becomes the Response it describes; a Response stays itself", async () => {
  const body = enc.encode("v");
  const parts = new PartsResponse(200, {
    "content-type": "text/plain",
    "content-length": "1",
  }, body);
  const real = realResponse(parts);
  ok(real instanceof Response);
  equal(real.status, 200);
  equal(real.headers.get("content-type"), "text/plain");
  equal(await real.text(), "v");
  equal(responseParts(parts), undefined);
  const plain = new Response("x");
  equal(realResponse(plain), plain);
});
