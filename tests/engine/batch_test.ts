/**
 * Batch validation (engine/batch.ts) on its own: every bad op is refused
 * with an InvalidArgumentError naming it, and a valid batch becomes the
 * entries to write, one per key.
 */
import assert from "node:assert/strict";
import type { KeyStamp } from "../../engine/batch.ts";
import {
  checkKey,
  deleteOp,
  deleteRangeOp,
  keyStamps,
  putOp,
  stampKeys,
  validateBatch,
} from "../../engine/batch.ts";
import type { Entry } from "../../engine/entry.ts";
import { KIND_DELETE, KIND_PUT } from "../../engine/entry.ts";
import { InvalidArgumentError } from "../../engine/errors.ts";
import type { BatchOp } from "../../engine/types.ts";
import { dec, enc } from "../_helpers.ts";

const LIMITS = { maxKeyBytes: 8, maxValueBytes: 16 };

/** Asserts `ops` is refused with `message` (and `code`, when given). */
function refused(ops: unknown, message: RegExp, code = "invalid_argument") {
  assert.throws(
    () => validateBatch(ops as BatchOp[], LIMITS),
    (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.match(err.message, message);
      assert.equal(err.code, code);
      return true;
    },
  );
}

const k = enc("k");
const v = enc("v");

Deno.test("bad batches and bad ops are refused, naming the op", () => {
  refused([], /at least one op/);
  refused("not an array", /at least one op/);
  refused([{ type: "put", key: new Uint8Array(0), value: v }], /key must be 1/);
  refused([{ type: "put", key: "k", value: v }], /key must be 1/);
  refused(
    [{ type: "delete", key: enc("123456789") }],
    /key of 9 bytes exceeds the limit of 8/,
    "key_too_long",
  );
  refused(
    [putOp(k, v), { type: "put", key: enc("j"), value: new Uint8Array(17) }],
    /op 1: value of 17 bytes exceeds the limit of 16/,
    "value_too_large",
  );
  refused([{ type: "put", key: k, value: "v" }], /op 0: value must be bytes/);
  refused([putOp(k, v, { expiresAt: -1 })], /op 0: expiresAt must be/);
  refused([putOp(k, v, { expiresAt: 1.5 })], /op 0: expiresAt must be/);
  refused([putOp(k, v, { encoding: 256 })], /op 0: encoding must be 0..255/);
  refused([{ type: "upsert", key: k }], /op 0: type must be put, delete/);
  refused([deleteOp(k, { ifVersion: -2 })], /op 0: ifVersion must be/);
  refused([putOp(k, v, { ifVersion: 0.5 })], /op 0: ifVersion must be/);
  refused([{ type: "check", key: k }], /op 0: a check needs ifVersion/);
  refused(
    [{ ...deleteRangeOp(enc("a"), enc("b")), ifVersion: 1 }],
    /op 0: a range delete takes no condition/,
  );
  refused(
    [putOp(k, v, { versionedKey: "x" as never })],
    /op 0: versionedKey must be a function/,
  );
  refused(
    [putOp(k, v, { versionedKey: () => k, ifVersion: 3 })],
    /op 0: a put with a versioned key cannot take ifVersion/,
  );
  refused(
    [deleteRangeOp(enc("a")), putOp(k, v, { versionedKey: () => k })],
    /range delete cannot hold a versioned-key put/,
  );
});

Deno.test("a valid batch becomes one entry per written key; the last op for a key wins", () => {
  const { entries } = validateBatch([
    putOp(enc("a"), enc("1"), { expiresAt: 99, encoding: 2 }),
    deleteOp(enc("b")),
    { type: "check", key: enc("c"), ifVersion: null },
    putOp(enc("b"), enc("2")),
    deleteOp(enc("a")),
  ], LIMITS);
  const view = (e: Entry) => [
    dec(e.key),
    e.kind,
    dec(e.value),
    e.encoding,
    e.expiresAt,
  ];
  assert.deepEqual(
    entries.map(view).sort(),
    [["a", KIND_DELETE, "", 0, 0], ["b", KIND_PUT, "2", 0, 0]].sort(),
  );
  // A check writes nothing.
  assert.deepEqual(
    validateBatch([{ type: "check", key: k, ifVersion: 1 }], LIMITS).entries,
    [],
  );
});

Deno.test("checkKey enforces 1..maxKeyBytes", () => {
  checkKey(LIMITS, enc("12345678"));
  assert.throws(() => checkKey(LIMITS, new Uint8Array(0)), /1 or more bytes/);
  assert.throws(
    () => checkKey(LIMITS, enc("123456789")),
    (e) => e instanceof InvalidArgumentError && e.code === "key_too_long",
  );
});

Deno.test("versioned keys are stamped with the seqno, at the placeholder's length", () => {
  const ops: BatchOp[] = [
    putOp(enc("v:000"), v, {
      versionedKey: (seq) => enc(`v:${String(seq).padStart(3, "0")}`),
    }),
    putOp(enc("x"), v),
  ];
  const { entries, versioned } = validateBatch(ops, LIMITS);
  assert.ok(versioned);
  // Stored keys: a space byte, then the key (as the write path encodes).
  const encoded = entries.map((e) => ({
    ...e,
    key: new Uint8Array([0, ...e.key]),
  }));
  const stamps: KeyStamp[] = keyStamps(ops, entries, encoded, versioned);
  assert.equal(stamps.length, 1);
  assert.equal(stamps[0].op, 0);
  stampKeys(encoded, stamps, 42);
  assert.equal(dec(stamps[0].entry.key.subarray(1)), "v:042");
  assert.throws(
    () => stampKeys(encoded, stamps, 1234),
    /op 0: versionedKey must return 5 bytes .*got 6/,
  );
});

Deno.test("a stamped key equal to another key of the batch is refused", () => {
  const ops: BatchOp[] = [
    putOp(enc("k:0"), v, { versionedKey: (seq) => enc(`k:${seq}`) }),
    putOp(enc("k:7"), v),
  ];
  const { entries, versioned } = validateBatch(ops, LIMITS);
  const encoded = entries.map((e) => ({
    ...e,
    key: new Uint8Array([0, ...e.key]),
  }));
  const stamps = keyStamps(ops, entries, encoded, versioned!);
  stampKeys(encoded, stamps, 6); // "k:6": distinct, fine
  assert.throws(
    () => stampKeys(encoded, stamps, 7),
    /op 0: its versioned key equals another key of the batch/,
  );
});
