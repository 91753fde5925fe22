/** server/routes/batch.ts: the pure batch parser. */
import { deepEqual, equal, throws } from "node:assert/strict";
import { HttpError } from "../../../server/_codec.ts";
import { parseBatch } from "../../../server/routes/batch.ts";

const LIMITS = { maxBatchOps: 3, maxKeyBytes: 4, maxValueBytes: 8 };
const b64 = (s: string) => new TextEncoder().encode(s).toBase64();

function refused(doc: unknown, status: number, code: string, text: RegExp) {
  throws(
    () => parseBatch(doc, LIMITS, 0),
    (e) =>
      e instanceof HttpError && e.status === status && e.code === code &&
      text.test(e.message),
    JSON.stringify(doc),
  );
}

Deno.test("parseBatch turns ops into engine ops, TTLs into expiry times", () => {
  const ops = parseBatch(
    {
      ops: [
        {
          op: "put",
          key: b64("a"),
          value: b64("1"),
          ttl: 1.5,
          if_match: '"4"',
        },
        { op: "delete", key: b64("b"), if_none_match: "*" },
        { op: "check", key: b64("c"), if_match: "9" },
      ],
    },
    LIMITS,
    1000,
  );
  deepEqual(ops, [
    {
      type: "put",
      key: new TextEncoder().encode("a"),
      value: new TextEncoder().encode("1"),
      expiresAt: 2500,
      ifVersion: 4,
    },
    { type: "delete", key: new TextEncoder().encode("b"), ifVersion: null },
    { type: "check", key: new TextEncoder().encode("c"), ifVersion: 9 },
  ]);
});

Deno.test("parseBatch refuses bad documents, naming the op", () => {
  refused([], 400, "invalid_batch", /must be an object/);
  refused({ ops: [], x: 1 }, 400, "invalid_batch", /unknown field "x"/);
  refused({ ops: [] }, 400, "invalid_batch", /must not be empty/);
  const put = { op: "put", key: b64("a"), value: b64("v") };
  refused({ ops: [put, put, put, put] }, 413, "too_many_ops", /limit is 3/);
  refused({ ops: [{ ...put, op: "get" }] }, 400, "invalid_batch", /op 0/);
  refused(
    { ops: [put, { ...put, key: b64("abcde") }] },
    414,
    "key_too_long",
    /op 1/,
  );
  refused(
    { ops: [{ ...put, value: b64("123456789") }] },
    413,
    "value_too_large",
    /op 0/,
  );
  refused(
    { ops: [{ op: "check", key: b64("a") }] },
    400,
    "invalid_batch",
    /needs if_match/,
  );
  refused(
    { ops: [{ ...put, if_match: '"1"', if_none_match: "*" }] },
    400,
    "invalid_batch",
    /not both/,
  );
  refused(
    { ops: [{ ...put, ttl: "5" }] },
    400,
    "invalid_batch",
    /ttl must be a number/,
  );
  refused({ ops: [{ ...put, ttl: -1 }] }, 400, "invalid_parameter", /op 0 ttl/);
  equal(parseBatch({ ops: [put] }, LIMITS, 0).length, 1);
});

Deno.test("parseBatch turns delete_range ops into engine range deletes", () => {
  const e = (s: string) => new TextEncoder().encode(s);
  deepEqual(
    parseBatch(
      {
        ops: [
          { op: "delete_range", start: b64("a"), end: b64("c") },
          { op: "delete_range", start: "" },
          { op: "delete_range", prefix: b64("p/") },
        ],
      },
      LIMITS,
      0,
    ),
    [
      { type: "deleteRange", start: e("a"), end: e("c") },
      { type: "deleteRange", start: new Uint8Array(0), end: undefined },
      { type: "deleteRange", prefix: e("p/") },
    ],
  );
  refused(
    { ops: [{ op: "delete_range", start: b64("abcde") }] },
    414,
    "key_too_long",
    /op 0: start is 5 bytes; the limit is 4/,
  );
  refused(
    { ops: [{ op: "delete_range", prefix: b64("a"), end: b64("b") }] },
    400,
    "invalid_batch",
    /op 0: delete_range takes a prefix or start\/end, not both/,
  );
});
