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
  EMPTY,
  lenFieldSize,
  Reader,
  uintFieldSize,
  WIRE_LEN,
  WIRE_VARINT,
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
    switch (field) {
      case 1:
        r.expect(wire, WIRE_LEN, "key");
        out.key = r.bytes();
        break;
      case 2:
        r.expect(wire, WIRE_LEN, "value");
        out.value = r.bytes();
        break;
      case 3:
        r.expect(wire, WIRE_VARINT, "encoding");
        out.encoding = r.varint32();
        break;
      case 4:
        r.expect(wire, WIRE_LEN, "versionstamp");
        out.versionstamp = r.bytes();
        break;
      default:
        r.skip(wire);
    }
  }
  return out;
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
      r.expect(wire, WIRE_LEN, "ranges");
      const rr = new Reader(r.bytes(), "ReadRangeOutput");
      const entries: KvEntry[] = [];
      while (!rr.done) {
        const [f, w] = rr.tag();
        if (f === 1) {
          rr.expect(w, WIRE_LEN, "values");
          entries.push(decodeKvEntry(rr.bytes()));
        } else rr.skip(w);
      }
      out.ranges.push(entries);
    } else if (field === 2 || field === 4 || field === 8) {
      r.expect(wire, WIRE_VARINT, `field ${field}`);
      const v = r.varint32();
      if (field === 2) out.readDisabled = v !== 0;
      else if (field === 4) out.stronglyConsistent = v !== 0;
      else out.status = v;
    } else r.skip(wire);
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
    if (field === 1) {
      r.expect(wire, WIRE_VARINT, "status");
      out.status = r.varint32();
    } else if (field === 2) {
      r.expect(wire, WIRE_LEN, "versionstamp");
      out.versionstamp = r.bytes();
    } else if (field === 4 && wire === WIRE_LEN) {
      const p = new Reader(r.bytes(), "failed_checks");
      while (!p.done) out.failedChecks.push(p.varint32() >>> 0);
    } else if (field === 4) {
      r.expect(wire, WIRE_VARINT, "failed_checks");
      out.failedChecks.push(r.varint32() >>> 0);
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

/** Decodes the message of one watch frame. */
export function decodeWatchOutput(buf: Uint8Array): WatchOutput {
  const r = new Reader(buf, "WatchOutput");
  const out: WatchOutput = { status: 0, keys: [] };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1) {
      r.expect(wire, WIRE_VARINT, "status");
      out.status = r.varint32();
    } else if (field === 2) {
      r.expect(wire, WIRE_LEN, "keys");
      const k = new Reader(r.bytes(), "WatchKeyOutput");
      const key: WatchKeyOutput = { changed: false };
      while (!k.done) {
        const [f, w] = k.tag();
        if (f === 1) {
          k.expect(w, WIRE_VARINT, "changed");
          key.changed = k.varint32() !== 0;
        } else if (f === 2) {
          k.expect(w, WIRE_LEN, "entry_if_changed");
          key.entry = decodeKvEntry(k.bytes());
        } else k.skip(w);
      }
      out.keys.push(key);
    } else r.skip(wire);
  }
  return out;
}
