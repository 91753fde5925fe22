/**
 * The commit group's WAL records (engine/wal_group.ts): whatever mix of
 * small and large batches is added, the parts taken are, concatenated,
 * the group's sync point and then exactly each record framed on its own, in
 * order; a large batch's ops are passed by reference.
 */
import assert from "node:assert/strict";
import { ByteWriter } from "../../engine/coding.ts";
import {
  frameBatch,
  LARGE_BATCH_BYTES,
  RECORD_SYNC_POINT,
  SYNC_POINT_BYTES,
  WAL_MAGIC,
  writeSyncPoint,
} from "../../engine/wal.ts";
import { parseLog } from "../../engine/log_read.ts";
import { logHeader } from "../../engine/wal.ts";
import { WalGroupBuffer } from "../../engine/wal_group.ts";

function framed(seq: number, ops: Uint8Array): Uint8Array {
  const w = new ByteWriter();
  frameBatch(w, seq, ops);
  return w.finish();
}

function syncPoint(durable: number): Uint8Array {
  const b = new Uint8Array(SYNC_POINT_BYTES);
  writeSyncPoint(b, 0, durable);
  return b;
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
  const parts = group.take(4242);
  assert.deepEqual(
    concat(parts),
    concat([syncPoint(4242), ...ops.map((o, i) => framed(i + 1, o))]),
  );
  assert.equal(parts.filter((p) => p === large).length, 2, "not copied");
});

Deno.test("take() starts the next group empty, and clear() drops the records", () => {
  const group = new WalGroupBuffer();
  group.add(1, new Uint8Array([1, 2, 3]));
  group.take(8);
  assert.deepEqual(group.take(8), []);
  group.add(2, new Uint8Array([4]));
  group.add(3, new Uint8Array(LARGE_BATCH_BYTES));
  group.clear();
  assert.deepEqual(group.take(8), []);
  group.add(4, new Uint8Array([5]));
  assert.deepEqual(
    concat(group.take(99)),
    concat([syncPoint(99), framed(4, new Uint8Array([5]))]),
  );
});

Deno.test("a group that starts with a large batch gets its sync point too, and the log parses", () => {
  const group = new WalGroupBuffer();
  group.add(1, new Uint8Array(LARGE_BATCH_BYTES).fill(3));
  group.add(2, new Uint8Array([9]));
  const log = concat([logHeader(WAL_MAGIC), ...group.take(8)]);
  const r = parseLog(log, "g.log", WAL_MAGIC);
  assert.deepEqual(r.records.map((x) => x.type), [RECORD_SYNC_POINT, 1, 1]);
  assert.equal(r.validEnd, log.length);
});
