import assert from "node:assert/strict";
import {
  Arena,
  bigEndianWords,
  ByteReader,
  ByteWriter,
  compareBytes,
  DecodeError,
  equalBytes,
  hasPrefix,
  prefixEnd,
  readU32,
  readU64,
  varintLength,
  writeU32,
  writeU64,
} from "../../engine/coding.ts";
import { bytes, Rng, testSeed } from "../_helpers.ts";

const VARINT_CASES: [number, number[]][] = [
  [0, [0x00]],
  [1, [0x01]],
  [127, [0x7f]],
  [128, [0x80, 0x01]],
  [300, [0xac, 0x02]],
  [16383, [0xff, 0x7f]],
  [16384, [0x80, 0x80, 0x01]],
  [2 ** 32 - 1, [0xff, 0xff, 0xff, 0xff, 0x0f]],
  [2 ** 32, [0x80, 0x80, 0x80, 0x80, 0x10]],
];

Deno.test("varints encode to the documented LEB128 bytes", () => {
  for (const [v, want] of VARINT_CASES) {
    const w = new ByteWriter(1);
    w.varint(v);
    assert.deepEqual([...w.finish()], want, `varint ${v}`);
    assert.equal(varintLength(v), want.length, `varintLength ${v}`);
  }
});

Deno.test("varints round trip up to 2^53 - 1", () => {
  const values = [
    0,
    1,
    127,
    128,
    2 ** 21,
    2 ** 31,
    2 ** 35 + 7,
    2 ** 49 - 1,
    2 ** 52,
    Number.MAX_SAFE_INTEGER,
  ];
  const w = new ByteWriter(4);
  for (const v of values) w.varint(v);
  const r = new ByteReader(w.finish());
  for (const v of values) assert.equal(r.varint(), v);
  assert.equal(r.remaining, 0);
  for (const v of values) {
    const one = new ByteWriter();
    one.varint(v);
    assert.equal(one.pos, varintLength(v), `length of ${v}`);
  }
});

Deno.test("a truncated varint throws a DecodeError naming the field", () => {
  const r = new ByteReader(bytes(0x80, 0x80));
  assert.throws(() => r.varint("table size"), (err: unknown) => {
    assert.ok(err instanceof DecodeError);
    assert.match(err.message, /table size/);
    return true;
  });
});

Deno.test("a varint longer than 8 bytes is rejected", () => {
  const r = new ByteReader(new Uint8Array(12).fill(0x80));
  assert.throws(() => r.varint("seq"), /longer than 8 bytes/);
});

Deno.test("fixed-width integers are little-endian", () => {
  const w = new ByteWriter(1);
  w.u8(0xab);
  w.u32(0x01020304);
  w.u64(0x0102030405060);
  const b = w.finish();
  assert.deepEqual(
    [...b],
    [0xab, 4, 3, 2, 1, 0x60, 0x50, 0x40, 0x30, 0x20, 0x10, 0, 0],
  );
  const r = new ByteReader(b);
  assert.equal(r.u8(), 0xab);
  assert.equal(r.u32(), 0x01020304);
  assert.equal(r.u64(), 0x0102030405060);
  assert.equal(r.remaining, 0);
});

Deno.test("u32 and u64 helpers round trip their extremes", () => {
  const b = new Uint8Array(12);
  writeU32(b, 0, 0xffffffff);
  assert.equal(readU32(b, 0), 0xffffffff);
  writeU64(b, 4, Number.MAX_SAFE_INTEGER);
  assert.equal(readU64(b, 4), Number.MAX_SAFE_INTEGER);
  writeU64(b, 4, 0);
  assert.equal(readU64(b, 4), 0);
});

Deno.test("reading past the end throws instead of returning garbage", () => {
  const r = new ByteReader(bytes(1, 2, 3));
  assert.throws(() => r.u32("block crc"), /block crc runs past the end/);
  assert.throws(() => r.u64(), DecodeError);
  assert.throws(() => r.bytes(4, "value"), /value/);
  assert.equal(r.pos, 0, "a failed read does not move the cursor");
});

Deno.test("a reader honours its start and end bounds", () => {
  const r = new ByteReader(bytes(9, 1, 2, 9), 1, 3);
  assert.equal(r.remaining, 2);
  assert.deepEqual([...r.bytes(2)], [1, 2]);
  assert.throws(() => r.u8(), DecodeError);
});

Deno.test("length-prefixed bytes round trip, including empty ones", () => {
  const w = new ByteWriter(1);
  w.lengthPrefixed(new Uint8Array(0));
  w.lengthPrefixed(bytes(0x00, 0xff));
  w.lengthPrefixed(new Uint8Array(300).fill(7));
  const r = new ByteReader(w.finish());
  assert.equal(r.lengthPrefixed().length, 0);
  assert.deepEqual([...r.lengthPrefixed()], [0x00, 0xff]);
  const big = r.lengthPrefixed();
  assert.equal(big.length, 300);
  assert.ok(big.every((x) => x === 7));
});

Deno.test("a length prefix larger than the data is reported as running past the end", () => {
  const r = new ByteReader(bytes(5, 1, 2));
  assert.throws(() => r.lengthPrefixed("op key"), /op key runs past the end/);
});

Deno.test("a byte writer grows past its initial capacity and can be reset", () => {
  const w = new ByteWriter(1);
  for (let i = 0; i < 10_000; i++) w.u8(i & 0xff);
  const b = w.finish();
  assert.equal(b.length, 10_000);
  assert.equal(b[9_999], 9_999 & 0xff);
  w.reset();
  assert.equal(w.finish().length, 0);
  w.bytes(bytes(1, 2));
  assert.deepEqual([...w.view_()], [1, 2]);
});

Deno.test("finish returns a copy that later writes do not change", () => {
  const w = new ByteWriter(8);
  w.u8(1);
  const first = w.finish();
  w.reset();
  w.u8(2);
  assert.equal(first[0], 1);
});

Deno.test("compareBytes orders bytes unsigned and shorter prefixes first", () => {
  assert.ok(compareBytes(bytes(0x7f), bytes(0x80)) < 0);
  assert.ok(compareBytes(bytes(0xff), bytes(0x00)) > 0);
  assert.ok(compareBytes(bytes(1), bytes(1, 0)) < 0);
  assert.ok(compareBytes(new Uint8Array(0), bytes(0)) < 0);
  assert.equal(compareBytes(bytes(1, 2), bytes(1, 2)), 0);
  assert.ok(equalBytes(bytes(1, 2), bytes(1, 2)));
  assert.ok(!equalBytes(bytes(1, 2), bytes(1, 2, 3)));
  assert.ok(!equalBytes(bytes(1, 2), bytes(1, 3)));
});

Deno.test("compareBytes agrees with a sort of hex strings on random keys", () => {
  const rng = new Rng(7);
  const keys = Array.from(
    { length: 500 },
    () => rng.bytes(rng.int(6)),
  );
  const toHex = (b: Uint8Array) =>
    [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const byCompare = [...keys].sort(compareBytes).map(toHex);
  const byString = keys.map(toHex).sort();
  assert.deepEqual(byCompare, byString);
});

Deno.test("hasPrefix matches only true prefixes", () => {
  assert.ok(hasPrefix(bytes(1, 2, 3), bytes(1, 2)));
  assert.ok(hasPrefix(bytes(1), new Uint8Array(0)));
  assert.ok(!hasPrefix(bytes(1), bytes(1, 2)));
  assert.ok(!hasPrefix(bytes(1, 3), bytes(1, 2)));
});

Deno.test("prefixEnd increments the last byte below 0xFF and drops trailing 0xFFs", () => {
  assert.deepEqual([...prefixEnd(bytes(1, 2))!], [1, 3]);
  assert.deepEqual([...prefixEnd(bytes(1, 0xff))!], [2]);
  assert.deepEqual([...prefixEnd(bytes(0x00, 0xff, 0xff))!], [0x01]);
  assert.deepEqual([...prefixEnd(bytes(0xfe))!], [0xff]);
  assert.equal(prefixEnd(bytes(0xff)), undefined);
  assert.equal(prefixEnd(bytes(0xff, 0xff)), undefined);
  assert.equal(prefixEnd(new Uint8Array(0)), undefined);
});

Deno.test("prefixEnd does not modify its argument", () => {
  const p = bytes(1, 2);
  prefixEnd(p);
  assert.deepEqual([...p], [1, 2]);
});

Deno.test("every key with a prefix sorts below prefixEnd and at or above the prefix", () => {
  const rng = new Rng(11);
  for (let i = 0; i < 300; i++) {
    const prefix = rng.bytes(rng.range(1, 3)).map((b) =>
      rng.chance(0.4) ? 0xff : b
    );
    const end = prefixEnd(prefix);
    const key = new Uint8Array([...prefix, ...rng.bytes(rng.int(3))]);
    assert.ok(compareBytes(key, prefix) >= 0);
    if (end) assert.ok(compareBytes(key, end) < 0);
  }
});

Deno.test("an arena hands out disjoint zeroed arrays, aligned, and big ones apart", () => {
  const arena = new Arena(1024);
  const seen: Uint8Array[] = [];
  for (let n = 1; n <= 100; n++) {
    const a = arena.alloc(n % 120);
    assert.equal(a.length, n % 120);
    assert.ok(a.every((b) => b === 0), "zeroed");
    assert.equal(a.byteOffset % 8, 0, "8-byte aligned");
    a.fill(n);
    seen.push(a);
  }
  // No array was overwritten by a later one.
  seen.forEach((a, i) => assert.ok(a.every((b) => b === i + 1)));
  const big = arena.alloc(1000);
  assert.equal(big.byteOffset, 0);
  assert.equal(
    big.buffer.byteLength,
    1000,
    "own buffer past an eighth of a slab",
  );
});

Deno.test("bigEndianWords packs four bytes a word, big-endian, zero-padding the last", () => {
  const out = new Uint32Array(3).fill(0xdeadbeef);
  bigEndianWords(bytes(0x01, 0x02, 0x03, 0x04, 0xff, 0x80), out);
  assert.deepEqual([...out], [0x01020304, 0xff800000, 0xdeadbeef]);
  bigEndianWords(bytes(), out); // writes nothing
  assert.equal(out[0], 0x01020304);
});

Deno.test("word runs from bigEndianWords compare like the bytes (then by length)", () => {
  // The memtable's comparison: words up to the shorter length, then the
  // length. Short keys with trailing zeros and 0xFF bytes are the edge.
  const rng = new Rng(testSeed(31));
  const words = (b: Uint8Array) => {
    const w = new Uint32Array((b.length + 3) >>> 2);
    bigEndianWords(b, w);
    return w;
  };
  const byWords = (a: Uint8Array, b: Uint8Array) => {
    const [x, y] = [words(a), words(b)];
    const n = Math.min((a.length + 3) >>> 2, (b.length + 3) >>> 2);
    for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
    return Math.sign(a.length - b.length);
  };
  for (let i = 0; i < 5000; i++) {
    const a = Uint8Array.from(
      { length: rng.int(10) },
      () => rng.pick([0, 1, 0x7f, 0x80, 0xff]),
    );
    const b = rng.chance(0.3) ? a.slice(0, rng.int(a.length + 1)) : Uint8Array
      .from({ length: rng.int(10) }, () => rng.pick([0, 1, 0x7f, 0x80, 0xff]));
    assert.equal(byWords(a, b), Math.sign(compareBytes(a, b)), `${a} vs ${b}`);
  }
});
