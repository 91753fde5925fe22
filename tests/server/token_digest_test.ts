/**
 * server/token_digest.ts against node:crypto (the model): SHA-256 of every
 * length from 0 to 300 bytes, across the one-, two- and more-block
 * boundaries, of strings (UTF-8) too; and the digest comparison.
 */
import { deepEqual, equal } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  digestsEqual,
  matchesDigestOf,
  sha256,
  sha256Into,
} from "../../server/token_digest.ts";
import { prng } from "../_rng.ts";

const model = (data: Uint8Array | string) =>
  new Uint8Array(createHash("sha256").update(data).digest());

Deno.test("sha256 matches node:crypto for every length from 0 to 300 bytes", () => {
  const rnd = prng(5);
  for (let n = 0; n <= 300; n++) {
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = Math.floor(rnd() * 256);
    deepEqual(sha256(bytes), model(bytes), `length ${n}`);
  }
  // All-0xff bytes: every addition carries.
  deepEqual(
    sha256(new Uint8Array(64).fill(255)),
    model(new Uint8Array(64).fill(255)),
  );
});

Deno.test("sha256 of a string hashes its UTF-8 bytes", () => {
  for (
    const text of [
      "",
      "abc",
      "tok-0123456789abcdef0123",
      "é€😀",
      "x".repeat(119),
    ]
  ) {
    deepEqual(sha256(text), model(text), text);
  }
  // The FIPS 180-4 example.
  equal(
    Buffer.from(sha256("abc")).toString("hex"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("digestsEqual: equal only for the same bytes and length", () => {
  const a = sha256("one");
  equal(digestsEqual(a, sha256("one")), true);
  equal(digestsEqual(a, sha256("two")), false);
  for (let i = 0; i < 32; i++) {
    const b = a.slice();
    b[i] ^= 1;
    equal(digestsEqual(a, b), false, `byte ${i}`);
  }
  equal(digestsEqual(a, a.subarray(0, 31)), false);
  equal(digestsEqual(new Uint8Array(0), new Uint8Array(0)), true);
});

Deno.test("long inputs (past the scratch buffer) and the in-place forms", () => {
  const rnd = prng(9);
  for (const n of [503, 504, 505, 511, 512, 600, 4096]) {
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = Math.floor(rnd() * 256);
    deepEqual(sha256(bytes), model(bytes), `length ${n}`);
  }
  const long = "é".repeat(400); // 800 UTF-8 bytes: encodeInto stops short
  deepEqual(sha256(long), model(long));
  // A short input after a long one: no stale bytes in the padding.
  deepEqual(sha256("abc"), model("abc"));
  const out = new Uint8Array(32);
  sha256Into("tok", out);
  deepEqual(out, model("tok"));
  equal(matchesDigestOf("tok", model("tok")), true);
  equal(matchesDigestOf("toK", model("tok")), false);
  equal(matchesDigestOf("", model("tok")), false);
});
