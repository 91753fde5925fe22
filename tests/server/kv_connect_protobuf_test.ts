/**
 * The hand-written protobuf codec and the keyspace helpers of KV Connect:
 * exact bytes for the encoders, and edge cases for the decoders.
 */
import assert from "node:assert/strict";
import {
  AW_CHECK_FAILURE,
  decodeAtomicWrite,
  decodeSnapshotRead,
  decodeWatch,
  encodeAtomicWriteOutput,
  encodeSnapshotReadOutput,
  encodeWatchFrame,
  KEEPALIVE_FRAME,
  M_SUM,
  ProtobufError,
  VE_LE64,
} from "../../server/kv_connect/protobuf.ts";
import {
  dataPrefix,
  fromVersionstamp,
  idKey,
  isValidName,
  toVersionstamp,
  VERSIONSTAMP_SUFFIX_BYTES,
  writeVersionstampSuffix,
} from "../../server/kv_connect/keyspace.ts";
import { prefixEnd } from "../../mod.ts";

const b = (...xs: number[]) => new Uint8Array(xs);

Deno.test("decodeSnapshotRead reads ranges and skips unknown fields of every wire type", () => {
  const range = b(
    0x0a,
    2,
    0x02,
    0x61, // start
    0x12,
    1,
    0xff, // end
    0x18,
    0xe8,
    0x07, // limit 1000
    0x20,
    1, // reverse
    0x28,
    5, // unknown varint field 5
    0x31,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8, // unknown fixed64 field 6
    0x3d,
    1,
    2,
    3,
    4, // unknown fixed32 field 7
    0x42,
    1,
    9, // unknown bytes field 8
  );
  const msg = b(0x0a, range.length, ...range, 0x0a, 0);
  const ranges = decodeSnapshotRead(msg);
  assert.equal(ranges.length, 2);
  assert.deepEqual(ranges[0].start, b(0x02, 0x61));
  assert.deepEqual(ranges[0].end, b(0xff));
  assert.equal(ranges[0].limit, 1000);
  assert.equal(ranges[0].reverse, true);
  assert.deepEqual(ranges[1], {
    start: b(),
    end: b(),
    limit: 0,
    reverse: false,
  });
});

Deno.test("a negative int32 (ten-byte varint) decodes as negative", () => {
  const range = b(
    0x18,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    1,
  );
  assert.equal(
    decodeSnapshotRead(b(0x0a, range.length, ...range))[0].limit,
    -1,
  );
});

Deno.test("decoders reject truncated, overlong and mistyped input", () => {
  const bad: [Uint8Array, RegExp][] = [
    [b(0x0a), /truncated varint/],
    [b(0x0a, 5, 1), /runs past the end/],
    [b(0x08, 1), /field ranges has wire type 0/],
    [b(0x4b), /unsupported wire type 3/],
    [b(0x00), /field number 0/],
    [
      b(0x28, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0),
      /longer than 10 bytes/,
    ],
    [b(0x39, 1, 2), /truncated fixed field/],
  ];
  for (const [bytes, re] of bad) {
    assert.throws(() => decodeSnapshotRead(bytes), (e: Error) => {
      assert.ok(e instanceof ProtobufError, String(e));
      assert.match(e.message, re);
      return true;
    });
  }
});

Deno.test("decodeAtomicWrite reads checks, mutations with 64-bit expiry, and counts enqueues", () => {
  const value = b(0x0a, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0x10, VE_LE64);
  const expire = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]; // 2^42
  const mutation = b(
    0x0a,
    1,
    0x07,
    0x12,
    value.length,
    ...value,
    0x18,
    M_SUM,
    0x20,
    ...expire,
    0x38,
    1,
  );
  const check = b(0x0a, 1, 0x05, 0x12, 10, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0);
  const msg = b(
    0x0a,
    check.length,
    ...check,
    0x12,
    mutation.length,
    ...mutation,
    0x1a,
    0,
    0x1a,
    2,
    0x10,
    1,
  );
  const aw = decodeAtomicWrite(msg);
  assert.equal(aw.checks.length, 1);
  assert.equal(fromVersionstamp(aw.checks[0].versionstamp), 9);
  const m = aw.mutations[0];
  assert.deepEqual(m.key, b(7));
  assert.equal(m.type, M_SUM);
  assert.equal(m.expireAtMs, 2n ** 42n);
  assert.equal(m.sumClamp, true);
  assert.deepEqual(m.value, {
    data: b(1, 0, 0, 0, 0, 0, 0, 0),
    encoding: VE_LE64,
  });
  assert.equal(aw.enqueues, 2);
});

Deno.test("decodeWatch reads keys", () => {
  assert.deepEqual(
    decodeWatch(b(0x0a, 3, 0x0a, 1, 0x41, 0x0a, 0)),
    [b(0x41), b()],
  );
});

/** Bytes from space-separated hex pairs; `|` separates commented groups. */
const hex = (s: string) =>
  new Uint8Array(
    s.replaceAll("|", " ").trim().split(/\s+/).map((x) => parseInt(x, 16)),
  );

Deno.test("encoders write canonical proto3 bytes", () => {
  const entry = {
    key: b(0x02, 0x61, 0),
    value: b(9),
    encoding: 1,
    versionstamp: toVersionstamp(1),
  };
  // KvEntry: key | value | encoding V8 | versionstamp
  const entryHex = "0a 03 02 61 00 | 12 01 09 | 18 01 | " +
    "22 0a 00 00 00 00 00 00 00 01 00 00";
  assert.deepEqual(
    encodeSnapshotReadOutput([[entry], []]),
    // ranges[0] { values[0] } | ranges[1] {} | strongly consistent | SR_SUCCESS
    hex(`0a 18 0a 16 ${entryHex} | 0a 00 | 20 01 | 40 01`),
  );
  assert.deepEqual(
    encodeAtomicWriteOutput(AW_CHECK_FAILURE, b(), [0, 2, 300]),
    // status | failed_checks packed: 0, 2, 300
    hex("08 02 | 22 04 00 02 ac 02"),
  );
  assert.deepEqual(
    encodeWatchFrame([{ changed: true }, { changed: true, entry }]),
    // LE length | status | key 0 changed, absent | key 1 changed, entry
    hex(`22 00 00 00 | 08 01 | 12 02 08 01 | 12 1a 08 01 12 16 ${entryHex}`),
  );
  assert.deepEqual(KEEPALIVE_FRAME, b(0, 0, 0, 0));
});

Deno.test("versionstamps are seqnos in big-endian with two zero bytes", () => {
  assert.deepEqual(toVersionstamp(258), b(0, 0, 0, 0, 0, 0, 1, 2, 0, 0));
  assert.equal(fromVersionstamp(toVersionstamp(2 ** 40 + 7)), 2 ** 40 + 7);
  assert.equal(fromVersionstamp(b(0, 0, 0, 0, 0, 0, 0, 1, 0, 1)), -1);
  assert.equal(fromVersionstamp(b(0xff, 0, 0, 0, 0, 0, 0, 1, 0, 0)), -1);
  assert.equal(fromVersionstamp(b(1, 2)), -1);
});

Deno.test("a versionstamp key suffix is the tuple string of the versionstamp's hex digits", () => {
  const key = new Uint8Array(2 + VERSIONSTAMP_SUFFIX_BYTES).fill(0xee);
  writeVersionstampSuffix(key, 0x0102abcdef);
  assert.deepEqual(key.subarray(0, 2), b(0xee, 0xee));
  assert.equal(key[2], 0x02);
  assert.equal(
    new TextDecoder().decode(key.subarray(3, 23)),
    "0000000102abcdef0000",
  );
  assert.equal(key[23], 0x00);
});

Deno.test("database prefixes are prefix-free and names are restricted", () => {
  assert.deepEqual(dataPrefix("ab"), b(1, 0x61, 0x62, 0));
  assert.deepEqual(idKey("ab"), b(2, 0x61, 0x62, 0));
  assert.deepEqual(prefixEnd(dataPrefix("ab")), b(1, 0x61, 0x62, 1));
  // "a" is not a prefix of "ab" once terminated.
  const a = dataPrefix("a");
  const ab = dataPrefix("ab");
  assert.notDeepEqual(ab.subarray(0, a.length), a);
  for (const ok of ["default", "my-db_1.x", "A".repeat(64)]) {
    assert.ok(isValidName(ok), ok);
  }
  for (const bad of ["", "a/b", "a b", "é", "x\0", "A".repeat(65)]) {
    assert.ok(!isValidName(bad), bad);
  }
});
