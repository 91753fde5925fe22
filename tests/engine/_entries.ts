/**
 * Entries for the engine's unit tests: a put or a delete of a key at a
 * seqno, with the default encoding and no expiry.
 *
 * @module
 */
import type { Entry } from "../../engine/entry.ts";
import { KIND_DELETE, KIND_PUT } from "../../engine/entry.ts";

/** A put of `key` at `seq` (an empty value unless given). */
export function putEntry(
  key: Uint8Array,
  seq: number,
  value: Uint8Array = new Uint8Array(0),
): Entry {
  return { key, seq, kind: KIND_PUT, encoding: 0, expiresAt: 0, value };
}

/** A delete (tombstone) of `key` at `seq`. */
export function deleteEntry(key: Uint8Array, seq: number): Entry {
  return {
    key,
    seq,
    kind: KIND_DELETE,
    encoding: 0,
    expiresAt: 0,
    value: new Uint8Array(0),
  };
}
