/**
 * Log images for the WAL tests (tests/engine/wal_test.ts writes them,
 * tests/engine/log_read_test.ts reads them back): a log of framed batch
 * records, optionally ended by a clean-close marker, batch entries, and the
 * check that an error is corruption at a given file and offset.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ByteWriter } from "../../engine/coding.ts";
import type { Entry } from "../../engine/entry.ts";
import { CorruptionError } from "../../engine/errors.ts";
import {
  closeMarker,
  frameRecord,
  logHeader,
  RECORD_BATCH,
  WAL_MAGIC,
} from "../../engine/wal.ts";
import { concat, enc } from "../_helpers.ts";

/** The path the in-memory log images are said to come from. */
export const FILE = "/data/000007.log";

/** A WAL image: header followed by one framed record per payload. */
export function logOf(payloads: Uint8Array[], magic = WAL_MAGIC): Uint8Array {
  const w = new ByteWriter();
  w.bytes(logHeader(magic));
  for (const p of payloads) frameRecord(w, RECORD_BATCH, p);
  return w.finish();
}

/** Three records of different lengths. */
export const THREE = [
  enc("first record"),
  enc("second"),
  enc("third and last"),
];

/** An assert.throws check: a CorruptionError naming `file` and `offset`. */
export function corruptionAt(file: string, offset: number) {
  return (err: unknown) => {
    assert.ok(err instanceof CorruptionError, `got ${err}`);
    assert.equal(err.code, "corruption");
    assert.equal(err.file, file);
    assert.equal(err.offset, offset);
    assert.ok(err.message.includes(file), "message names the file");
    assert.ok(err.message.includes(String(offset)), "message names the offset");
    return true;
  };
}

/** logOf(payloads) ended by a clean-close marker. */
export function closedLogOf(payloads: Uint8Array[]): Uint8Array {
  const b = logOf(payloads);
  return concat(b, closeMarker(b.length, 42));
}

/** An op of a write batch (seqno 0: a batch gives all its ops its one seqno). */
export function entry(
  key: Uint8Array,
  kind: number,
  value: Uint8Array = new Uint8Array(0),
  extra: Partial<Entry> = {},
): Entry {
  return { key, seq: 0, kind, encoding: 0, expiresAt: 0, value, ...extra };
}
