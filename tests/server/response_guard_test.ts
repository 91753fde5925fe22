import assert from "node:assert/strict";
import { ConnectionStats } from "../../server/connection_stats.ts";
import { LARGE_RESPONSE_BYTES } from "../../server/connection_limits.ts";
import {
  CHUNK_TIMED,
  guardResponse,
  markSmall,
} from "../../server/response_guard.ts";

function options() {
  return {
    writeTimeoutMs: 1000,
    maxResponseMemoryBytes: 1 << 20,
    stats: new ConnectionStats(),
  };
}

Deno.test("a response vouched small passes the guard as it is; a large one vouched for is still chunked and counted", async () => {
  const opts = options();
  const small = markSmall(new Response(new Uint8Array(100)), 100);
  assert.equal(guardResponse(small, opts), small);
  assert.equal((await small.arrayBuffer()).byteLength, 100);

  // markSmall refuses to vouch for a body of LARGE_RESPONSE_BYTES or more:
  // the headers decide, as for any other response.
  const bytes = new Uint8Array(LARGE_RESPONSE_BYTES);
  const big = markSmall(
    new Response(bytes, {
      headers: { "content-length": String(bytes.length) },
    }),
    bytes.length,
  );
  const out = guardResponse(big, opts);
  assert.notEqual(out, big);
  assert.ok(CHUNK_TIMED.has(out));
  assert.equal(opts.stats.responseBytesInFlight, bytes.length);
  assert.equal((await out.arrayBuffer()).byteLength, bytes.length);
  assert.equal(opts.stats.responseBytesInFlight, 0);
});

Deno.test("responses without a body (204, 304) pass the guard untouched", () => {
  const opts = options();
  for (const status of [204, 304]) {
    const res = new Response(null, { status, headers: { etag: '"1"' } });
    assert.equal(guardResponse(res, opts), res);
  }
  assert.equal(opts.stats.responseBytesInFlight, 0);
});
