/**
 * The commit group's WAL records (engine/wal_group.ts): whatever mix of
 * small and large batches is added, the parts taken are, concatenated,
 * exactly each record framed on its own, in order; a large batch's ops are
 * passed by reference.
 */
import assert from "node:assert/strict";
import { ByteWriter } from "../../engine/coding.ts";
import { frameBatch, LARGE_BATCH_BYTES } from "../../engine/wal.ts";
import { WalGroupBuffer } from "../../engine/wal_group.ts";

function framed(seq: number, ops: Uint8Array): Uint8Array {
  const w = new ByteWriter();
  frameBatch(w, seq, ops);
  return w.finish();
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("small and large records come out in order, each framed as on its own", () => {
  const group = new WalGroupBuffer();
  const small = (n: number) => new Uint8Array(10 + n).fill(n);
  const large = new Uint8Array(LARGE_BATCH_BYTES).fill(7);
  const ops = [small(1), small(2), large, small(3), large, small(4)];
  ops.forEach((o, i) => group.add(i + 1, o));
  const parts = group.take();
  assert.deepEqual(concat(parts), concat(ops.map((o, i) => framed(i + 1, o))));
  assert.equal(parts.filter((p) => p === large).length, 2, "not copied");
});

Deno.test("take() starts the next group empty, and clear() drops the records", () => {
  const group = new WalGroupBuffer();
  group.add(1, new Uint8Array([1, 2, 3]));
  group.take();
  assert.deepEqual(group.take(), []);
  group.add(2, new Uint8Array([4]));
  group.add(3, new Uint8Array(LARGE_BATCH_BYTES));
  group.clear();
  assert.deepEqual(group.take(), []);
  group.add(4, new Uint8Array([5]));
  assert.deepEqual(concat(group.take()), framed(4, new Uint8Array([5])));
});
