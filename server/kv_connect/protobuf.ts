/**
 * A small Protocol Buffers codec for the `com.deno.kv.datapath` messages of
 * the KV Connect protocol (schema: denoland/denokv `proto/schema/datapath.proto`).
 * Hand-written rather than generated: the data path uses a dozen flat
 * messages built from four wire types, and a ~300-line codec that throws one
 * error class on bad input is easier to audit, and has no dependency to pin
 * or update, than a generated runtime.
 *
 * Wire format, as far as used here:
 *
 * ```
 * field   = tag value
 * tag     = varint( field_number << 3 | wire_type )
 * varint  = 7 bits per byte, least significant group first, high bit = "more"
 * wire 0  = varint            (int32, int64, uint32, bool, enum)
 * wire 1  = 8 bytes LE        (skipped)
 * wire 2  = varint length, then that many bytes (bytes, string, message,
 *           packed repeated scalars)
 * wire 5  = 4 bytes LE        (skipped)
 * ```
 *
 * Decoders reject truncated input, over-long varints, wire types that do not
 * match a known field, and groups (wire types 3 and 4) with a
 * {@link ProtobufError} naming the message and field; unknown fields are
 * skipped, as proto3 requires. Encoders write canonical proto3: default
 * values (0, false, empty bytes) are omitted and repeated scalars are packed.
 *
 * @module
 */

import {
  bytesFieldSize,
  decodeRepeated,
  EMPTY,
  lenFieldSize,
  Reader,
  uintFieldSize,
  varintSize,
  Writer,
} from "./wire.ts";

export { ProtobufError } from "./wire.ts";

// ---------------------------------------------------------------- enums

/** `SnapshotReadStatus`. */
export const SR_UNSPECIFIED = 0;
/** The read succeeded. */
export const SR_SUCCESS = 1;
/** The region cannot serve reads right now. */
export const SR_READ_DISABLED = 2;

/** `MutationType`: set the value. */
export const M_SET = 1;
/** Delete the key. */
export const M_DELETE = 2;
/** Add to a little-endian u64 value (wrapping). */
export const M_SUM = 3;
/** Keep the larger of two little-endian u64 values. */
export const M_MAX = 4;
/** Keep the smaller of two little-endian u64 values. */
export const M_MIN = 5;
/** Set under the key with the commit's versionstamp appended. */
export const M_SET_SUFFIX_VERSIONSTAMPED_KEY = 9;

/** `ValueEncoding`: V8 ValueSerializer bytes. */
export const VE_V8 = 1;
/** A little-endian u64 (`Deno.KvU64`). */
export const VE_LE64 = 2;
/** A literal byte array (`Uint8Array`). */
export const VE_BYTES = 3;

/** `AtomicWriteStatus`: unknown failure, not to be retried. */
export const AW_UNSPECIFIED = 0;
/** The write was committed. */
export const AW_SUCCESS = 1;
/** A check failed; nothing was written. */
export const AW_CHECK_FAILURE = 2;
/** The region cannot take writes right now. */
export const AW_WRITE_DISABLED = 5;

// ---------------------------------------------------------------- messages

/** `ReadRange`: `[start, end)`, at most `limit` entries. */
export interface ReadRange {
  start: Uint8Array;
  end: Uint8Array;
  limit: number;
  reverse: boolean;
}

/** `Check`: an empty versionstamp means "the key must not exist". */
export interface Check {
  key: Uint8Array;
  versionstamp: Uint8Array;
}

/** `KvValue`. */
export interface KvValue {
  data: Uint8Array;
  encoding: number;
}

/** `Mutation`. `expireAtMs` is 0 for "never". */
export interface Mutation {
  key: Uint8Array;
  value: KvValue | undefined;
  type: number;
  expireAtMs: bigint;
  sumMin: Uint8Array;
  sumMax: Uint8Array;
  sumClamp: boolean;
}

/** `AtomicWrite`. Enqueues are only counted: KV Connect has no queues. */
export interface AtomicWrite {
  checks: Check[];
  mutations: Mutation[];
  enqueues: number;
}

/** `KvEntry`. */
export interface KvEntry {
  key: Uint8Array;
  value: Uint8Array;
  encoding: number;
  versionstamp: Uint8Array;
}

/** `WatchKeyOutput`: `entry` is omitted when the key is absent. */
export interface WatchKeyOutput {
  changed: boolean;
  entry?: KvEntry;
}

// Each decoder reads its fields in one loop, one line per field; unknown
// fields are skipped.

function decodeReadRange(buf: Uint8Array): ReadRange {
  const r = new Reader(buf, "ReadRange");
  const out: ReadRange = { start: EMPTY, end: EMPTY, limit: 0, reverse: false };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) out.start = r.lenField(wire, "start");
    else if (field === 2) out.end = r.lenField(wire, "end");
    else if (field === 3) out.limit = r.int32Field(wire, "limit");
    else if (field === 4) out.reverse = r.boolField(wire, "reverse");
    else r.skip(wire);
  }
  return out;
}

/** Decodes a `SnapshotRead` into its ranges. */
export function decodeSnapshotRead(buf: Uint8Array): ReadRange[] {
  return decodeRepeated(buf, "SnapshotRead", 1, "ranges", decodeReadRange);
}

function decodeCheck(buf: Uint8Array): Check {
  const r = new Reader(buf, "Check");
  const out: Check = { key: EMPTY, versionstamp: EMPTY };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) out.key = r.lenField(wire, "key");
    else if (field === 2) out.versionstamp = r.lenField(wire, "versionstamp");
    else r.skip(wire);
  }
  return out;
}

function decodeKvValue(buf: Uint8Array): KvValue {
  const r = new Reader(buf, "KvValue");
  const out: KvValue = { data: EMPTY, encoding: 0 };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) out.data = r.lenField(wire, "data");
    else if (field === 2) out.encoding = r.int32Field(wire, "encoding");
    else r.skip(wire);
  }
  return out;
}

function decodeMutation(buf: Uint8Array): Mutation {
  const r = new Reader(buf, "Mutation");
  const out: Mutation = {
    key: EMPTY,
    value: undefined,
    type: 0,
    expireAtMs: 0n,
    sumMin: EMPTY,
    sumMax: EMPTY,
    sumClamp: false,
  };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) out.key = r.lenField(wire, "key");
    else if (field === 2) out.value = decodeKvValue(r.lenField(wire, "value"));
    else if (field === 3) out.type = r.int32Field(wire, "mutation_type");
    else if (field === 4) out.expireAtMs = r.int64Field(wire, "expire_at_ms");
    else if (field === 5) out.sumMin = r.lenField(wire, "sum_min");
    else if (field === 6) out.sumMax = r.lenField(wire, "sum_max");
    else if (field === 7) out.sumClamp = r.boolField(wire, "sum_clamp");
    else r.skip(wire);
  }
  return out;
}

/** Decodes an `AtomicWrite`. */
export function decodeAtomicWrite(buf: Uint8Array): AtomicWrite {
  const r = new Reader(buf, "AtomicWrite");
  const out: AtomicWrite = { checks: [], mutations: [], enqueues: 0 };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) out.checks.push(decodeCheck(r.lenField(wire, "checks")));
    else if (field === 2) {
      out.mutations.push(decodeMutation(r.lenField(wire, "mutations")));
    } else if (field === 3) {
      r.lenField(wire, "enqueues");
      out.enqueues++;
    } else r.skip(wire);
  }
  return out;
}

function decodeWatchKey(buf: Uint8Array): Uint8Array {
  const r = new Reader(buf, "WatchKey");
  let key: Uint8Array = EMPTY;
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) key = r.lenField(wire, "key");
    else r.skip(wire);
  }
  return key;
}

/** Decodes a `Watch` into its keys. */
export function decodeWatch(buf: Uint8Array): Uint8Array[] {
  return decodeRepeated(buf, "Watch", 1, "keys", decodeWatchKey);
}

// ---------------------------------------------------------------- writing
function kvEntrySize(e: KvEntry): number {
  return bytesFieldSize(e.key) + bytesFieldSize(e.value) +
    uintFieldSize(e.encoding) + bytesFieldSize(e.versionstamp);
}

function writeKvEntry(w: Writer, e: KvEntry): void {
  w.bytes(1, e.key);
  w.bytes(2, e.value);
  w.uint(3, e.encoding);
  w.bytes(4, e.versionstamp);
}

/**
 * Encodes a successful, strongly consistent `SnapshotReadOutput` holding one
 * `ReadRangeOutput` per element of `ranges`, in order.
 */
export function encodeSnapshotReadOutput(
  ranges: KvEntry[][],
): Uint8Array<ArrayBuffer> {
  const rangeSizes: number[] = [];
  let size = 0;
  for (const entries of ranges) {
    let rs = 0;
    for (const e of entries) rs += lenFieldSize(kvEntrySize(e));
    rangeSizes.push(rs);
    size += lenFieldSize(rs);
  }
  size += 2 + 2; // read_is_strongly_consistent = true (field 4), status (field 8)
  const w = new Writer(size);
  for (let i = 0; i < ranges.length; i++) {
    w.begin(1, rangeSizes[i]);
    for (const e of ranges[i]) {
      w.begin(1, kvEntrySize(e));
      writeKvEntry(w, e);
    }
  }
  w.uint(4, 1);
  w.uint(8, SR_SUCCESS);
  return w.buf;
}

/** Encodes an `AtomicWriteOutput`; `failedChecks` is written packed. */
export function encodeAtomicWriteOutput(
  status: number,
  versionstamp: Uint8Array,
  failedChecks: readonly number[] = [],
): Uint8Array<ArrayBuffer> {
  let packed = 0;
  for (const i of failedChecks) packed += varintSize(i);
  const size = uintFieldSize(status) + bytesFieldSize(versionstamp) +
    (failedChecks.length === 0 ? 0 : lenFieldSize(packed));
  const w = new Writer(size);
  w.uint(1, status);
  w.bytes(2, versionstamp);
  if (failedChecks.length > 0) {
    w.begin(4, packed);
    for (const i of failedChecks) w.varint(i);
  }
  return w.buf;
}

/**
 * Encodes one watch frame: a 4-byte little-endian length, then a successful
 * `WatchOutput` with one `WatchKeyOutput` per watched key, in order.
 */
export function encodeWatchFrame(
  keys: readonly WatchKeyOutput[],
): Uint8Array<ArrayBuffer> {
  const keySizes: number[] = [];
  let size = uintFieldSize(SR_SUCCESS);
  for (const k of keys) {
    let ks = k.changed ? 2 : 0;
    if (k.entry !== undefined) ks += lenFieldSize(kvEntrySize(k.entry));
    keySizes.push(ks);
    size += lenFieldSize(ks);
  }
  const body = new Writer(size);
  body.uint(1, SR_SUCCESS);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    body.begin(2, keySizes[i]);
    if (k.changed) body.uint(1, 1);
    if (k.entry !== undefined) {
      body.begin(2, kvEntrySize(k.entry));
      writeKvEntry(body, k.entry);
    }
  }
  const frame = new Uint8Array(4 + size);
  new DataView(frame.buffer).setUint32(0, size, true);
  frame.set(body.buf, 4);
  return frame;
}

/** The keep-alive frame: a zero length and no message. */
export const KEEPALIVE_FRAME: Uint8Array = new Uint8Array(4);
