/**
 * server/base64_slab.ts against a model: every field decodes to the bytes
 * `Uint8Array.fromBase64` gives (both alphabets, with and without padding),
 * later fields never overwrite earlier ones, and bad input is the same 400
 * as `fromBase64` in server/_codec.ts.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { fromBase64, HttpError } from "../../server/_codec.ts";
import { Base64Slab, SLAB_BYTES } from "../../server/base64_slab.ts";
import { prng } from "../_rng.ts";

/** `bytes` in one of the four spellings a client may send. */
function spell(bytes: Uint8Array, variant: number): string {
  const url = variant & 1 ? true : false;
  const text = bytes.toBase64({
    alphabet: url ? "base64url" : "base64",
    omitPadding: (variant & 2) !== 0,
  });
  return text;
}

Deno.test("fields decode as fromBase64 does and stay intact as slabs fill", () => {
  const rnd = prng(7);
  const slab = new Base64Slab();
  const want: Uint8Array[] = [];
  const got: Uint8Array[] = [];
  // Enough fields to fill several slabs, sizes from empty to past the
  // own-buffer threshold.
  for (let i = 0; i < 3000; i++) {
    const size = i % 97 === 0
      ? SLAB_BYTES / 4 + Math.floor(rnd() * 1000)
      : Math.floor(rnd() * 300);
    const bytes = new Uint8Array(size);
    for (let j = 0; j < size; j++) bytes[j] = Math.floor(rnd() * 256);
    const text = spell(bytes, i % 4);
    deepEqual(fromBase64(text, "model"), bytes);
    want.push(bytes);
    got.push(slab.decode(text, `field ${i}`));
  }
  // Checked after every decode is done: a field written over by a later
  // one would show here.
  for (let i = 0; i < want.length; i++) {
    deepEqual(got[i], want[i], `field ${i}`);
  }
  // Small fields share buffers; the large ones have their own.
  const buffers = new Set(got.map((b) => b.buffer));
  ok(buffers.size < 100, `${buffers.size} buffers for ${got.length} fields`);
  ok(got.some((b) => b.length > SLAB_BYTES / 4 && b.byteOffset === 0));
});

Deno.test("bad fields are a 400 invalid_base64 naming the field, and spoil nothing", () => {
  const slab = new Base64Slab();
  const first = slab.decode("aGVsbG8gd29ybGQ=", "op 0 key");
  const cases: [unknown, string][] = [
    ["aGVs$G8=", "op 1 key is not valid base64"],
    ["aGVsbG8-d29y/mQ", "op 1 key is not valid base64"], // mixed alphabets
    ["aGVsbG8gd29ybGQ=x", "op 1 key is not valid base64"],
    [42, "op 1 key must be a string"],
    [null, "op 1 key must be a string"],
  ];
  for (const [text, message] of cases) {
    throws(() => slab.decode(text, "op 1 key"), (err) => {
      ok(err instanceof HttpError);
      equal(err.status, 400);
      equal(err.code, "invalid_base64");
      equal(err.message, message);
      return true;
    });
    // The same verdict as the per-field decoder.
    throws(() => fromBase64(text, "op 1 key"), { message });
  }
  // A failed decode may have written into the free tail; the next field
  // takes that room and the earlier field is untouched.
  deepEqual(new TextDecoder().decode(first), "hello world");
  const next = slab.decode("Ynll", "op 2 key");
  equal(new TextDecoder().decode(next), "bye");
  equal(next.buffer, first.buffer);
  deepEqual(new TextDecoder().decode(first), "hello world");
});
