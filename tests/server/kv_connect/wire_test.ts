/**
 * The protobuf wire layer of KV Connect (server/kv_connect/wire.ts) on its
 * own: varint edge cases, the per-field readers' wire-type checks,
 * `decodeRepeated`, and the Writer against the size helpers the encoders
 * rely on to pre-size their buffers.
 */
import assert from "node:assert/strict";
import {
  bytesFieldSize,
  decodeRepeated,
  lenFieldSize,
  ProtobufError,
  Reader,
  uintFieldSize,
  varintSize,
  WIRE_I32,
  WIRE_I64,
  WIRE_LEN,
  WIRE_VARINT,
  Writer,
} from "../../../server/kv_connect/wire.ts";
import { bytes, Rng, testSeed } from "../../_helpers.ts";

/** Asserts that `fn` throws a ProtobufError whose message matches `re`. */
function refuses(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ProtobufError, String(e));
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("varints: boundaries, 32-bit truncation and the full 64 bits", () => {
  assert.equal(new Reader(bytes(0x7f), "m").varint32(), 127);
  assert.equal(new Reader(bytes(0x80, 0x01), "m").varint32(), 128);
  assert.equal(new Reader(bytes(0xac, 0x02), "m").varint32(), 300);
  // 2^32 - 1 reads as -1 in 32 bits (signed), 4294967295 unsigned.
  const u32max = bytes(0xff, 0xff, 0xff, 0xff, 0x0f);
  assert.equal(new Reader(u32max, "m").varint32(), -1);
  assert.equal(new Reader(u32max, "m").varint32() >>> 0, 4294967295);
  // Ten bytes: -1 as int64, all 64 bits set.
  const minus1 = bytes(...Array(9).fill(0xff), 0x01);
  assert.equal(new Reader(minus1, "m").varint32(), -1);
  assert.equal(new Reader(minus1, "m").varint64(), (1n << 64n) - 1n);
  // 2^35 keeps its high bits in 64, loses them in 32.
  const big = bytes(0x80, 0x80, 0x80, 0x80, 0x80, 0x01);
  assert.equal(new Reader(big, "m").varint64(), 1n << 35n);
  assert.equal(new Reader(big, "m").varint32(), 0);
});

Deno.test("the reader refuses truncated and over-long input, naming the message", () => {
  refuses(
    () => new Reader(bytes(0x80), "Msg").varint32(),
    /^Msg: truncated varint$/,
  );
  refuses(() => new Reader(bytes(0x80), "Msg").varint64(), /truncated varint/);
  const eleven = bytes(...Array(10).fill(0x80), 0x01);
  refuses(() => new Reader(eleven, "Msg").varint32(), /longer than 10 bytes/);
  refuses(() => new Reader(eleven, "Msg").varint64(), /longer than 10 bytes/);
  refuses(
    () => new Reader(bytes(3, 1, 2), "Msg").bytes(),
    /^Msg: length 3 runs past the end of the message$/,
  );
  refuses(() => new Reader(bytes(0x00), "Msg").tag(), /field number 0/);
});

Deno.test("bytes() is a view into the message, and tags split number and wire type", () => {
  const buf = bytes(0x7a, 2, 0xaa, 0xbb, 0x08, 5);
  const r = new Reader(buf, "m");
  assert.deepEqual(r.tag(), [15, WIRE_LEN]);
  const v = r.bytes();
  assert.deepEqual([...v], [0xaa, 0xbb]);
  assert.equal(v.buffer, buf.buffer);
  assert.equal(v.byteOffset, 2);
  assert.deepEqual(r.tag(), [1, WIRE_VARINT]);
  assert.equal(r.varint32(), 5);
  assert.ok(r.done);
  // Field numbers past 15 take a two-byte tag.
  assert.deepEqual(new Reader(bytes(0x80, 0x01), "m").tag(), [16, WIRE_VARINT]);
});

Deno.test("skip passes over every wire type but groups, and checks fixed-field lengths", () => {
  const r = new Reader(
    bytes(
      ...[0x96, 0x01], // varint
      ...[1, 2, 3, 4, 5, 6, 7, 8], // fixed64
      ...[2, 9, 9], // length-delimited
      ...[1, 2, 3, 4], // fixed32
      0x2a,
    ),
    "m",
  );
  r.skip(WIRE_VARINT);
  r.skip(WIRE_I64);
  r.skip(WIRE_LEN);
  r.skip(WIRE_I32);
  assert.equal(r.varint32(), 42);
  assert.ok(r.done);
  refuses(() => new Reader(bytes(), "m").skip(3), /unsupported wire type 3/);
  refuses(() => new Reader(bytes(), "m").skip(4), /unsupported wire type 4/);
  refuses(
    () => new Reader(bytes(1, 2, 3), "m").skip(WIRE_I64),
    /truncated fixed field/,
  );
  refuses(
    () => new Reader(bytes(1, 2, 3), "m").skip(WIRE_I32),
    /truncated fixed field/,
  );
});

Deno.test("field readers check the wire type before reading", () => {
  assert.deepEqual([...new Reader(bytes(1, 7), "m").lenField(WIRE_LEN, "k")], [
    7,
  ]);
  assert.equal(new Reader(bytes(0x05), "m").int32Field(WIRE_VARINT, "n"), 5);
  assert.equal(new Reader(bytes(0x02), "m").boolField(WIRE_VARINT, "b"), true);
  assert.equal(new Reader(bytes(0x00), "m").boolField(WIRE_VARINT, "b"), false);
  const minus1 = bytes(...Array(9).fill(0xff), 0x01);
  assert.equal(new Reader(minus1, "m").int64Field(WIRE_VARINT, "t"), -1n);
  refuses(
    () => new Reader(bytes(1), "Check").lenField(WIRE_VARINT, "key"),
    /^Check: field key has wire type 0, expected 2$/,
  );
  refuses(
    () => new Reader(bytes(1, 1), "m").int32Field(WIRE_LEN, "limit"),
    /field limit has wire type 2, expected 0/,
  );
  refuses(
    () => new Reader(bytes(1), "m").boolField(WIRE_I32, "reverse"),
    /field reverse has wire type 5, expected 0/,
  );
  refuses(
    () => new Reader(bytes(1), "m").int64Field(WIRE_I64, "expire"),
    /field expire has wire type 1, expected 0/,
  );
});

Deno.test("decodeRepeated keeps order, skips other fields and names the inner message", () => {
  const msg = bytes(
    ...[0x0a, 1, 0x61], // field 1: "a"
    ...[0x10, 9], // field 2 (varint): skipped
    ...[0x0a, 2, 0x62, 0x63], // field 1: "bc"
    ...[0x0a, 0], // field 1: empty
  );
  const got = decodeRepeated(msg, "Outer", 1, "items", (b) => [...b]);
  assert.deepEqual(got, [[0x61], [0x62, 0x63], []]);
  assert.deepEqual(decodeRepeated(bytes(), "Outer", 1, "items", (b) => b), []);
  refuses(
    () => decodeRepeated(bytes(0x08, 1), "Outer", 1, "items", (b) => b),
    /^Outer: field items has wire type 0, expected 2$/,
  );
  refuses(
    () =>
      decodeRepeated(bytes(0x0a, 1, 0x80), "Outer", 1, "items", (b) => {
        return new Reader(b, "Inner").varint32();
      }),
    /^Inner: truncated varint$/,
  );
});

Deno.test("the writer fills exactly the size the helpers compute, and round-trips", () => {
  const seed = testSeed(1101);
  const rng = new Rng(seed);
  for (let i = 0; i < 500; i++) {
    // Values across every varint length up to 2^53 - 1.
    const bits = rng.int(54);
    const v = Math.floor(rng.next() * 2 ** bits);
    const data = rng.bytes(rng.chance(0.2) ? 0 : rng.int(300));
    const inner = rng.bytes(rng.int(200));
    const size = uintFieldSize(v) + bytesFieldSize(data) +
      lenFieldSize(bytesFieldSize(inner));
    const w = new Writer(size);
    w.uint(1, v);
    w.bytes(2, data);
    w.begin(3, bytesFieldSize(inner));
    w.bytes(1, inner);
    assert.equal(w.buf.length, size, `seed ${seed}, round ${i}`);
    // A zero and an empty byte string are omitted (proto3 defaults).
    const r = new Reader(w.buf, "m");
    if (v !== 0) {
      assert.deepEqual(r.tag(), [1, WIRE_VARINT]);
      assert.equal(r.varint64(), BigInt(v), `seed ${seed}, round ${i}`);
    }
    if (data.length > 0) {
      assert.deepEqual(r.tag(), [2, WIRE_LEN]);
      assert.deepEqual(r.bytes(), data);
    }
    assert.deepEqual(r.tag(), [3, WIRE_LEN]);
    const nested = new Reader(r.bytes(), "n");
    if (inner.length > 0) {
      assert.deepEqual(nested.tag(), [1, WIRE_LEN]);
      assert.deepEqual(nested.bytes(), inner);
    }
    assert.ok(nested.done && r.done);
  }
});

Deno.test("size helpers: varint lengths at each 7-bit boundary", () => {
  assert.equal(varintSize(0), 1);
  assert.equal(varintSize(127), 1);
  assert.equal(varintSize(128), 2);
  assert.equal(varintSize(16383), 2);
  assert.equal(varintSize(16384), 3);
  assert.equal(varintSize(2 ** 53 - 1), 8);
  assert.equal(uintFieldSize(0), 0);
  assert.equal(uintFieldSize(300), 3);
  assert.equal(bytesFieldSize(new Uint8Array(0)), 0);
  assert.equal(bytesFieldSize(new Uint8Array(200)), 1 + 2 + 200);
  assert.equal(lenFieldSize(0), 2);
});
