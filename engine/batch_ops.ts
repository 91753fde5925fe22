/**
 * The ops of a write batch as the WAL stores them (the part of a batch
 * record after its seqno; engine/FORMAT.md): encoded once per write into
 * a buffer the memtable and the change history keep views of, and decoded
 * by recovery, backups and the change history.
 *
 * ```
 * ops := count varint | op*
 * op  := kind u8 | encoding u8 | expiresAt varint | key (varint len + bytes)
 *        [ value (varint len + bytes) ]   -- puts, and range deletes (the end)
 * ```
 *
 * @module
 */
import {
  type Arena,
  ByteReader,
  DecodeError,
  putVarint,
  varintLength,
} from "./coding.ts";
import type { Entry } from "./entry.ts";
import { KIND_DELETE, KIND_PUT, KIND_RANGE_DELETE } from "./entry.ts";

const EMPTY = new Uint8Array(0);

/**
 * Encodes the part of a batch after its seqno (count and ops) into one
 * exactly-sized buffer, and returns entries whose keys and values are views
 * into it. This is the write path's only copy of the caller's bytes: one
 * allocation per write or batch instead of two per op, and the memtable
 * keeps the views. `space` (the write path always passes it) puts the
 * key-space byte in front of every key.
 */
export function encodeBatchOps(
  ops: readonly Entry[],
  arena?: Arena,
  space?: number,
): { payload: Uint8Array; entries: Entry[] } {
  // With `space`, each stored key is that key-space byte and the op's key.
  const extra = space === undefined ? 0 : 1;
  // Exactly the bytes written below: a retained payload (the memtable's
  // and the change history's views) pins no slack.
  let size = varintLength(ops.length);
  for (const op of ops) {
    const k = op.key.length + extra;
    const t = op.expiresAt;
    size += 4 + k + (t === 0 ? 0 : varintLength(t) - 1) +
      (k < 0x80 ? 0 : varintLength(k) - 1);
    if (op.kind !== KIND_DELETE) {
      const v = op.value.length;
      size += v + (v < 0x80 ? 1 : varintLength(v));
    }
  }
  // The buffer is exactly large enough, so the fields go in without the
  // per-field bounds checks a ByteWriter makes.
  const buf = arena ? arena.alloc(size) : new Uint8Array(size);
  let p = putVarint(buf, 0, ops.length);
  const entries: Entry[] = [];
  for (const op of ops) {
    buf[p++] = op.kind;
    buf[p++] = op.encoding;
    p = putVarint(buf, p, op.expiresAt);
    p = putVarint(buf, p, op.key.length + extra);
    const k = p;
    if (space !== undefined) buf[p++] = space;
    buf.set(op.key, p);
    p += op.key.length;
    let value: Uint8Array = EMPTY;
    if (op.kind !== KIND_DELETE) {
      p = putVarint(buf, p, op.value.length);
      const v = p;
      buf.set(op.value, p);
      p += op.value.length;
      value = buf.subarray(v, p);
    }
    entries.push({
      key: buf.subarray(k, k + extra + op.key.length),
      seq: op.seq,
      kind: op.kind,
      encoding: op.encoding,
      expiresAt: op.expiresAt,
      value,
    });
  }
  if (p !== size) {
    throw new Error(`encodeBatchOps: wrote ${p} of ${size} bytes`);
  }
  return { payload: buf, entries };
}

/**
 * Decodes what {@link encodeBatchOps} wrote (`payload`) back into entries
 * of seqno `seq` (views into `payload`). Throws DecodeError on bad bytes.
 */
export function decodeBatchOps(payload: Uint8Array, seq: number): Entry[] {
  return decodeOps(new ByteReader(payload), seq);
}

function decodeOps(r: ByteReader, seq: number): Entry[] {
  const count = r.varint("batch count");
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const kind = r.u8("op kind");
    if (
      kind !== KIND_PUT && kind !== KIND_DELETE && kind !== KIND_RANGE_DELETE
    ) {
      throw new DecodeError(`unknown op kind ${kind}`);
    }
    const encoding = r.u8("op encoding");
    const expiresAt = r.varint("op expiry");
    const key = r.lengthPrefixed("op key");
    if (kind === KIND_RANGE_DELETE && key.length === 0) {
      throw new DecodeError("range delete without a key space");
    }
    // A range delete's value is its end key (empty: to the space's end).
    const value = kind === KIND_DELETE ? EMPTY : r.lengthPrefixed("op value");
    out.push({ key, seq, kind, encoding, expiresAt, value });
  }
  if (r.remaining !== 0) throw new DecodeError("trailing bytes after batch");
  return out;
}
