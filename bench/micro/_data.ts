/**
 * Inputs shared by the micro-benchmarks: db_bench-shaped entries (16-byte
 * decimal keys, 100-byte values) whose bytes live in one buffer, as the
 * write path's arena keeps a batch, and their binary-string keys.
 *
 * @module
 */
import { binaryString } from "../../engine/coding.ts";
import { type Entry, KIND_PUT } from "../../engine/entry.ts";
import { KEY_BYTES, keyFor, permutation, VALUE_BYTES } from "../_common.ts";

/** `n` put entries for a random permutation of 0..n-1, seqnos 1..n. */
export function makeEntries(
  n: number,
  seed: number,
): { entries: Entry[]; skeys: string[] } {
  const order = permutation(n, seed);
  const slab = new Uint8Array(n * (KEY_BYTES + VALUE_BYTES));
  const entries: Entry[] = [];
  const skeys: string[] = [];
  for (let i = 0; i < n; i++) {
    const off = i * (KEY_BYTES + VALUE_BYTES);
    const key = slab.subarray(off, off + KEY_BYTES);
    keyFor(order[i], key);
    const value = slab.subarray(off + KEY_BYTES, off + KEY_BYTES + VALUE_BYTES);
    value.fill(i & 0xff);
    entries.push({
      key,
      seq: i + 1,
      kind: KIND_PUT,
      encoding: 0,
      expiresAt: 0,
      value,
    });
    skeys.push(binaryString(key));
  }
  return { entries, skeys };
}
