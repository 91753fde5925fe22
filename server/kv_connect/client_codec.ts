/**
 * The client side of the KV Connect data path: encodes the requests shale
 * sends to a backend (`SnapshotRead`, `AtomicWrite`) and decodes the
 * answers (`SnapshotReadOutput`, `AtomicWriteOutput`). The message types are
 * those of `protobuf.ts` (the server side); the wire reader and writer are
 * `wire.ts`, shared by both.
 *
 * Field numbers (denoland/denokv `proto/schema/datapath.proto`):
 *
 * ```
 * SnapshotReadOutput  1 ranges (ReadRangeOutput: 1 values KvEntry)
 *                     2 read_disabled  4 read_is_strongly_consistent
 *                     8 status
 * AtomicWriteOutput   1 status  2 versionstamp  4 failed_checks (packed)
 * Watch               1 keys (WatchKey: 1 key)
 * WatchOutput         1 status  2 keys (WatchKeyOutput: 1 changed,
 *                     2 entry_if_changed KvEntry)
 * ```
 *
 * @module
 */
import type {
  AtomicWrite,
  KvEntry,
  ReadRange,
  WatchKeyOutput,
} from "./protobuf.ts";
import {
  bytesFieldSize,
  decodeRepeated,
  EMPTY,
  lenFieldSize,
  Reader,
  uintFieldSize,
  WIRE_LEN,
  Writer,
} from "./wire.ts";

/** A decoded `SnapshotReadOutput`: one entry list per range asked. */
export interface SnapshotReadOutput {
  ranges: KvEntry[][];
  readDisabled: boolean;
  stronglyConsistent: boolean;
  status: number;
}

/** A decoded `AtomicWriteOutput`. */
export interface AtomicWriteOutput {
  status: number;
  versionstamp: Uint8Array;
  failedChecks: number[];
}

function readRangeSize(r: ReadRange): number {
  return bytesFieldSize(r.start) + bytesFieldSize(r.end) +
    uintFieldSize(r.limit) + (r.reverse ? 2 : 0);
}

/** Encodes a `SnapshotRead` of `ranges`, in order. */
export function encodeSnapshotRead(
  ranges: readonly ReadRange[],
): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const r of ranges) size += lenFieldSize(readRangeSize(r));
  const w = new Writer(size);
  for (const r of ranges) {
    w.begin(1, readRangeSize(r));
    w.bytes(1, r.start);
    w.bytes(2, r.end);
    w.uint(3, r.limit);
    if (r.reverse) w.uint(4, 1);
  }
  return w.buf;
}

function checkSize(key: Uint8Array, vs: Uint8Array): number {
  return bytesFieldSize(key) + bytesFieldSize(vs);
}

function valueSize(data: Uint8Array, encoding: number): number {
  return bytesFieldSize(data) + uintFieldSize(encoding);
}

function mutationSize(m: AtomicWrite["mutations"][number]): number {
  const expire = Number(m.expireAtMs);
  return bytesFieldSize(m.key) +
    (m.value === undefined
      ? 0
      : lenFieldSize(valueSize(m.value.data, m.value.encoding))) +
    uintFieldSize(m.type) + uintFieldSize(expire);
}

/**
 * Encodes an `AtomicWrite` of checks and mutations (set and delete, with
 * `expireAtMs`; the sum fields are never sent). Enqueues are not supported.
 */
export function encodeAtomicWrite(
  aw: Omit<AtomicWrite, "enqueues">,
): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const c of aw.checks) {
    size += lenFieldSize(checkSize(c.key, c.versionstamp));
  }
  for (const m of aw.mutations) size += lenFieldSize(mutationSize(m));
  const w = new Writer(size);
  for (const c of aw.checks) {
    w.begin(1, checkSize(c.key, c.versionstamp));
    w.bytes(1, c.key);
    w.bytes(2, c.versionstamp);
  }
  for (const m of aw.mutations) {
    w.begin(2, mutationSize(m));
    w.bytes(1, m.key);
    if (m.value !== undefined) {
      w.begin(2, valueSize(m.value.data, m.value.encoding));
      w.bytes(1, m.value.data);
      w.uint(2, m.value.encoding);
    }
    w.uint(3, m.type);
    w.uint(4, Number(m.expireAtMs));
  }
  return w.buf;
}

// Each decoder reads its fields in one loop, one line per field; unknown
// fields are skipped.

function decodeKvEntry(buf: Uint8Array): KvEntry {
  const r = new Reader(buf, "KvEntry");
  const out: KvEntry = {
    key: EMPTY,
    value: EMPTY,
    encoding: 0,
    versionstamp: EMPTY,
  };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) out.key = r.lenField(wire, "key");
    else if (field === 2) out.value = r.lenField(wire, "value");
    else if (field === 3) out.encoding = r.int32Field(wire, "encoding");
    else if (field === 4) out.versionstamp = r.lenField(wire, "versionstamp");
    else r.skip(wire);
  }
  return out;
}

function decodeReadRangeOutput(buf: Uint8Array): KvEntry[] {
  return decodeRepeated(buf, "ReadRangeOutput", 1, "values", decodeKvEntry);
}

/** Decodes a `SnapshotReadOutput`. */
export function decodeSnapshotReadOutput(
  buf: Uint8Array,
): SnapshotReadOutput {
  const r = new Reader(buf, "SnapshotReadOutput");
  const out: SnapshotReadOutput = {
    ranges: [],
    readDisabled: false,
    stronglyConsistent: false,
    status: 0,
  };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) {
      out.ranges.push(decodeReadRangeOutput(r.lenField(wire, "ranges")));
    } else if (field === 2) out.readDisabled = r.boolField(wire, "field 2");
    else if (field === 4) out.stronglyConsistent = r.boolField(wire, "field 4");
    else if (field === 8) out.status = r.int32Field(wire, "field 8");
    else r.skip(wire);
  }
  return out;
}

/** Decodes an `AtomicWriteOutput` (failed checks packed or not). */
export function decodeAtomicWriteOutput(buf: Uint8Array): AtomicWriteOutput {
  const r = new Reader(buf, "AtomicWriteOutput");
  const out: AtomicWriteOutput = {
    status: 0,
    versionstamp: EMPTY,
    failedChecks: [],
  };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) out.status = r.int32Field(wire, "status");
    else if (field === 2) out.versionstamp = r.lenField(wire, "versionstamp");
    else if (field === 4 && wire === WIRE_LEN) {
      const p = new Reader(r.bytes(), "failed_checks");
      while (!p.done) out.failedChecks.push(p.varint32() >>> 0);
    } else if (field === 4) {
      out.failedChecks.push(r.int32Field(wire, "failed_checks") >>> 0);
    } else r.skip(wire);
  }
  return out;
}

/** Encodes a `Watch` of `keys`, in order. */
export function encodeWatch(
  keys: readonly Uint8Array[],
): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const k of keys) size += lenFieldSize(bytesFieldSize(k));
  const w = new Writer(size);
  for (const k of keys) {
    w.begin(1, bytesFieldSize(k));
    w.bytes(1, k);
  }
  return w.buf;
}

/** A decoded `WatchOutput` (one frame's message). */
export interface WatchOutput {
  status: number;
  keys: WatchKeyOutput[];
}

function decodeWatchKeyOutput(buf: Uint8Array): WatchKeyOutput {
  const r = new Reader(buf, "WatchKeyOutput");
  const key: WatchKeyOutput = { changed: false };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) key.changed = r.boolField(wire, "changed");
    else if (field === 2) {
      key.entry = decodeKvEntry(r.lenField(wire, "entry_if_changed"));
    } else r.skip(wire);
  }
  return key;
}

/** Decodes the message of one watch frame. */
export function decodeWatchOutput(buf: Uint8Array): WatchOutput {
  const r = new Reader(buf, "WatchOutput");
  const out: WatchOutput = { status: 0, keys: [] };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) out.status = r.int32Field(wire, "status");
    else if (field === 2) {
      out.keys.push(decodeWatchKeyOutput(r.lenField(wire, "keys")));
    } else r.skip(wire);
  }
  return out;
}
