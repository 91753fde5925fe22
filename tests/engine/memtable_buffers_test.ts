import assert from "node:assert/strict";
import { BufferTable } from "../../engine/memtable_buffers.ts";

Deno.test("buffers are numbered in the order first seen, and keep their number", () => {
  const t = new BufferTable();
  const [a, b, c] = [
    new ArrayBuffer(8),
    new ArrayBuffer(8),
    new ArrayBuffer(8),
  ];
  assert.equal(t.numberOf(a), 0);
  assert.equal(t.numberOf(a), 0); // the remembered last buffer
  assert.equal(t.numberOf(b), 1);
  assert.equal(t.numberOf(a), 0); // found again after another one
  assert.equal(t.numberOf(c), 2);
  assert.equal(t.numberOf(b), 1);
  assert.deepEqual(t.buffers, [a, b, c]);
  assert.equal(t.buffers[t.numberOf(c)], c);
});

Deno.test("views of one buffer share its number", () => {
  const t = new BufferTable();
  const slab = new Uint8Array(64);
  const key = slab.subarray(3, 10);
  const value = slab.subarray(10, 20);
  assert.equal(t.numberOf(key.buffer), t.numberOf(value.buffer));
  assert.equal(t.buffers.length, 1);
});
