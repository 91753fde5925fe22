import assert from "node:assert/strict";
import { ByteReader, ByteWriter } from "../../engine/coding.ts";
import { crc32 } from "../../engine/crc.ts";
import type { Entry } from "../../engine/entry.ts";
import {
  ENCODING_U64LE,
  ENCODING_V8,
  KIND_DELETE,
  KIND_PUT,
} from "../../engine/entry.ts";
import { CorruptionError } from "../../engine/errors.ts";
import {
  batchRecordHead,
  CLOSE_MARKER_BYTES,
  closeMarker,
  decodeBatch,
  encodeBatch,
  frameBatch,
  frameRecord,
  LARGE_BATCH_BYTES,
  LOG_HEADER_SIZE,
  LOG_VERSION,
  logHeader,
  MANIFEST_MAGIC,
  RECORD_CLOSED,
  RECORD_EDIT,
  RECORD_HEADER_SIZE,
  WAL_MAGIC,
} from "../../engine/wal.ts";
import { parseLog } from "../../engine/log_read.ts";
import { encodeBatchOps } from "../../engine/batch_ops.ts";
import { open } from "../../mod.ts";
import { bytes, concat, enc, Rng, withTempDir } from "../_helpers.ts";
import {
  closedLogOf,
  corruptionAt,
  entry,
  FILE,
  logOf,
  THREE,
} from "./_log_fixtures.ts";

Deno.test("the log header is magic, version and three zero bytes", () => {
  const h = logHeader(WAL_MAGIC);
  assert.equal(h.length, LOG_HEADER_SIZE);
  assert.equal(new TextDecoder().decode(h.subarray(0, 4)), "SHWL");
  assert.equal(h[4], LOG_VERSION);
  assert.deepEqual([...h.subarray(5)], [0, 0, 0]);
  assert.equal(
    new TextDecoder().decode(logHeader(MANIFEST_MAGIC).subarray(0, 4)),
    "SHMF",
  );
});

Deno.test("a framed record is crc, length, type and payload, with the crc over length..payload", () => {
  const w = new ByteWriter();
  frameRecord(w, RECORD_EDIT, bytes(1, 2, 3));
  const b = w.finish();
  assert.equal(b.length, RECORD_HEADER_SIZE + 3);
  assert.deepEqual([...b.subarray(4, 8)], [3, 0, 0, 0]);
  assert.equal(b[8], RECORD_EDIT);
  assert.deepEqual([...b.subarray(9)], [1, 2, 3]);
  const crc = crc32(b.subarray(4));
  assert.equal(new DataView(b.buffer).getUint32(0, true), crc);
});
function roundTrip(seq: number, ops: Entry[]): Entry[] {
  const w = new ByteWriter();
  encodeBatch(w, seq, ops);
  return decodeBatch(w.finish(), FILE, 8);
}

Deno.test("a batch round trips keys with 0x00 and 0xFF and empty values", () => {
  const ops = [
    entry(bytes(0x00), KIND_PUT, new Uint8Array(0)),
    entry(bytes(0xff, 0xff), KIND_PUT, bytes(0x00, 0xff)),
    entry(bytes(0x00, 0x61, 0xff), KIND_DELETE),
    entry(new Uint8Array(4096).fill(0xff), KIND_PUT, new Uint8Array(70_000)),
  ];
  const got = roundTrip(42, ops);
  assert.equal(got.length, ops.length);
  for (let i = 0; i < ops.length; i++) {
    assert.equal(got[i].seq, 42, "every op shares the batch seqno");
    assert.deepEqual(got[i].key, ops[i].key);
    assert.deepEqual(got[i].value, ops[i].value);
    assert.equal(got[i].kind, ops[i].kind);
  }
});

Deno.test("a batch keeps expiry and value-encoding fields", () => {
  const ops = [
    entry(enc("a"), KIND_PUT, enc("v"), {
      expiresAt: 1_700_000_000_123,
      encoding: ENCODING_V8,
    }),
    entry(enc("b"), KIND_PUT, new Uint8Array(8), {
      encoding: ENCODING_U64LE,
    }),
    entry(enc("c"), KIND_PUT, enc("z"), {
      encoding: 255,
      expiresAt: Number.MAX_SAFE_INTEGER,
    }),
  ];
  const got = roundTrip(Number.MAX_SAFE_INTEGER, ops);
  assert.equal(got[0].seq, Number.MAX_SAFE_INTEGER);
  assert.deepEqual(
    got.map((e) => [e.encoding, e.expiresAt]),
    [[ENCODING_V8, 1_700_000_000_123], [ENCODING_U64LE, 0], [
      255,
      Number.MAX_SAFE_INTEGER,
    ]],
  );
});

Deno.test("a delete in a batch decodes with an empty value", () => {
  const [d] = roundTrip(1, [entry(enc("gone"), KIND_DELETE, enc("ignored"))]);
  assert.equal(d.kind, KIND_DELETE);
  assert.equal(d.value.length, 0);
});

Deno.test("a truncated batch payload is corruption naming file and record offset", () => {
  const w = new ByteWriter();
  encodeBatch(w, 5, [entry(enc("key"), KIND_PUT, enc("value"))]);
  const payload = w.finish();
  for (let cut = 0; cut < payload.length; cut++) {
    assert.throws(
      () => decodeBatch(payload.subarray(0, cut), FILE, 123),
      corruptionAt(FILE, 123),
      `cut ${cut}`,
    );
  }
});

Deno.test("trailing bytes after a batch are corruption", () => {
  const w = new ByteWriter();
  encodeBatch(w, 5, [entry(enc("key"), KIND_PUT, enc("value"))]);
  w.u8(0);
  assert.throws(() => decodeBatch(w.finish(), FILE, 8), /trailing bytes/);
});

Deno.test("an unknown op kind is corruption", () => {
  const w = new ByteWriter();
  encodeBatch(w, 5, [entry(enc("key"), KIND_PUT, enc("value"))]);
  const b = w.finish();
  b[9] = 7; // seq u64 (8) + count varint (1) -> kind
  assert.throws(() => decodeBatch(b, FILE, 8), /unknown op kind 7/);
});
Deno.test("a clean-close marker is a framed record of type 3 holding its own offset and the last seqno", () => {
  const m = closeMarker(300, 42);
  assert.equal(m.length, CLOSE_MARKER_BYTES);
  const r = parseLog(concat(logOf([]), m), FILE, WAL_MAGIC);
  assert.equal(r.records.length, 1);
  assert.equal(r.records[0].type, RECORD_CLOSED);
  assert.equal(
    r.closedAt,
    undefined,
    "an offset other than its own: no marker",
  );
  const b = closedLogOf(THREE);
  const log = parseLog(b, FILE, WAL_MAGIC);
  assert.equal(log.closedAt, b.length - CLOSE_MARKER_BYTES);
  assert.equal(log.records.length, 4);
});
Deno.test("a bug while decoding a batch surfaces as itself, never as corruption", () => {
  const w = new ByteWriter();
  encodeBatch(w, 5, [entry(enc("key"), KIND_PUT, enc("value"))]);
  const payload = w.finish();
  // Stand-in for a genuine bug: a RangeError that is no decode failure.
  const original = ByteReader.prototype.lengthPrefixed;
  ByteReader.prototype.lengthPrefixed = () => {
    throw new RangeError("Invalid typed array length: -1");
  };
  try {
    assert.throws(
      () => decodeBatch(payload, FILE, 8),
      (err) =>
        err instanceof RangeError && !(err instanceof CorruptionError) &&
        /Invalid typed array length/.test(err.message),
    );
  } finally {
    ByteReader.prototype.lengthPrefixed = original;
  }
});

Deno.test("a large batch's record written as head then ops is the record frameBatch writes", () => {
  const rng = new Rng(16);
  for (const size of [0, 1, 1000, LARGE_BATCH_BYTES + 17, 3 << 20]) {
    const { payload } = encodeBatchOps([{
      key: rng.bytes(1 + rng.int(40)),
      value: rng.bytes(size),
      seq: 0,
      kind: 1,
      encoding: 0,
      expiresAt: 0,
    }]);
    const w = new ByteWriter();
    frameBatch(w, 4242, payload);
    assert.deepEqual(
      concat(batchRecordHead(4242, payload), payload),
      w.finish(),
      `value of ${size} bytes`,
    );
  }
});

Deno.test("large and small batches committed in one group replay in order after a reopen", async () => {
  await withTempDir(async (dir) => {
    const rng = new Rng(61);
    const values = [
      rng.bytes(10),
      rng.bytes(LARGE_BATCH_BYTES + 5),
      rng.bytes(20),
      rng.bytes(1 << 20),
      rng.bytes(30),
    ];
    const db = await open(dir, { sync: "none", background: "inline" });
    // Not awaited one by one: the five form one commit group, the large
    // ones written by reference between the small ones.
    await Promise.all(values.map((v, i) => db.put(enc(`k${i}`), v)));
    await db.put(enc("k1"), values[3]); // a large overwrite, its own group
    await db.close();
    const again = await open(dir, { sync: "none", background: "inline" });
    try {
      const want = [values[0], values[3], values[2], values[3], values[4]];
      for (let i = 0; i < want.length; i++) {
        assert.deepEqual(
          (await again.get(enc(`k${i}`)))?.value,
          want[i],
          `k${i}`,
        );
      }
    } finally {
      await again.close();
    }
  });
});
