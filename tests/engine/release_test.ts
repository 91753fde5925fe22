/** releaseBuffer: frees a buffer now, and only once. */
import assert from "node:assert/strict";
import { releaseBuffer } from "../../engine/release.ts";

Deno.test("releaseBuffer detaches the buffer: its views read as empty", () => {
  const b = new ArrayBuffer(1 << 20);
  const view = new Uint8Array(b);
  view.fill(7);
  releaseBuffer(b);
  assert.equal(b.detached, true);
  assert.equal(b.byteLength, 0);
  assert.equal(view.length, 0);
  releaseBuffer(b); // a second release is a no-op
  assert.equal(b.detached, true);
});

Deno.test("releaseBuffer gives the memory back at once, before any collection", () => {
  const before = Deno.memoryUsage().external;
  const bufs = Array.from({ length: 4 }, () => new ArrayBuffer(16 << 20));
  assert.ok(Deno.memoryUsage().external >= before + (60 << 20));
  for (const b of bufs) releaseBuffer(b);
  assert.ok(Deno.memoryUsage().external < before + (4 << 20));
});
