/**
 * Batch validation: what a write's ops must look like before they are
 * encoded and enqueued (keys and values within the limits, well-formed
 * options, one op per key), and the keys of versioned puts, written in
 * once their seqno is known. Pure functions; every error is an
 * InvalidArgumentError naming the op.
 *
 * @module
 */
import { binaryString } from "./coding.ts";
import type { Entry } from "./entry.ts";
import { KIND_DELETE, KIND_PUT } from "./entry.ts";
import { InvalidArgumentError } from "./errors.ts";
import { deleteRangeEntry, dropCoveredOps } from "./range_tombstones.ts";
import { KeySlots } from "./key_slots.ts";
import type { BatchOp, PutOptions, VersionedKey } from "./types.ts";

/** The size limits a batch is checked against (from the options). */
export interface BatchLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
}

/** A versioned put found by validation: which op, and its encoded entry. */
export interface KeyStamp {
  op: number;
  entry: Entry;
  build: VersionedKey;
}

/** The empty byte string (the value of a tombstone). */
export const EMPTY = new Uint8Array(0);

/** The stored form of `key` in `space` (a new array: for bounds that live on). */
export function spaceKey(space: number, key: Uint8Array = EMPTY): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out[0] = space;
  out.set(key, 1);
  return out;
}

/** A put op from put()'s arguments. */
export function putOp(
  key: Uint8Array,
  value: Uint8Array,
  opts?: PutOptions,
): BatchOp {
  return {
    type: "put",
    key,
    value,
    expiresAt: opts?.expiresAt,
    encoding: opts?.encoding,
    ifVersion: opts?.ifVersion,
    versionedKey: opts?.versionedKey,
  };
}

/** A delete op from delete()'s arguments. */
export function deleteOp(
  key: Uint8Array,
  opts?: { ifVersion?: number | null },
): BatchOp {
  return { type: "delete", key, ifVersion: opts?.ifVersion };
}

/** A range delete op from deleteRange()'s arguments. */
export function deleteRangeOp(start: Uint8Array, end?: Uint8Array): BatchOp {
  return { type: "deleteRange", start, end };
}

/**
 * Checks every op and returns the entries to write (seq still 0), views
 * of the caller's buffers. Ops of a batch share one seqno, so two versions
 * of one key could not be ordered: the last op for a key wins, as it would
 * in a sequence of writes.
 */
export function validateBatch(
  ops: readonly BatchOp[],
  limits: BatchLimits,
): { entries: Entry[]; versioned?: Map<Entry, number> } {
  if (!Array.isArray(ops) || ops.length === 0) {
    throw new InvalidArgumentError("a batch needs at least one op");
  }
  const entries: (Entry | undefined)[] = [];
  let slots: KeySlots | undefined;
  let dropped = 0;
  /** Entries of versioned puts -> their op index. */
  let versioned: Map<Entry, number> | undefined;
  let ranges = false;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op?.type === "deleteRange") {
      if ((op as { ifVersion?: unknown }).ifVersion !== undefined) {
        throw new InvalidArgumentError(
          `op ${i}: a range delete takes no condition`,
        );
      }
      entries.push(deleteRangeEntry(op, i, limits.maxKeyBytes));
      ranges = true;
      continue;
    }
    checkKey(limits, op.key);
    const build = op.type === "put" ? op.versionedKey : undefined;
    if (build !== undefined) {
      if (typeof build !== "function") {
        throw new InvalidArgumentError(
          `op ${i}: versionedKey must be a function`,
        );
      }
      if (op.ifVersion !== undefined) {
        throw new InvalidArgumentError(
          `op ${i}: a put with a versioned key cannot take ifVersion`,
        );
      }
    }
    if (ops.length > 1 && op.type !== "check") {
      slots ??= new KeySlots(ops.length);
      const earlier = slots.claim(op.key, build !== undefined, entries.length);
      if (earlier >= 0) {
        entries[earlier] = undefined;
        dropped++;
      }
    }
    if (op.type === "put") {
      if (!(op.value instanceof Uint8Array)) {
        throw new InvalidArgumentError(`op ${i}: value must be bytes`);
      }
      if (op.value.length > limits.maxValueBytes) {
        throw new InvalidArgumentError(
          `op ${i}: value of ${op.value.length} bytes exceeds the limit of ${limits.maxValueBytes}`,
          "value_too_large",
        );
      }
      const expiresAt = op.expiresAt ?? 0;
      if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
        throw new InvalidArgumentError(
          `op ${i}: expiresAt must be a non-negative integer`,
        );
      }
      const encoding = op.encoding ?? 0;
      if (!Number.isInteger(encoding) || encoding < 0 || encoding > 255) {
        throw new InvalidArgumentError(`op ${i}: encoding must be 0..255`);
      }
      const entry: Entry = {
        key: op.key,
        seq: 0,
        kind: KIND_PUT,
        encoding,
        expiresAt,
        value: op.value,
      };
      entries.push(entry);
      if (build !== undefined) (versioned ??= new Map()).set(entry, i);
    } else if (op.type === "delete") {
      entries.push({
        key: op.key,
        seq: 0,
        kind: KIND_DELETE,
        encoding: 0,
        expiresAt: 0,
        value: EMPTY,
      });
    } else if (op.type !== "check") {
      throw new InvalidArgumentError(
        `op ${i}: type must be put, delete, check or deleteRange`,
      );
    }
    const v = op.ifVersion;
    if (
      v !== undefined && v !== null && !(Number.isSafeInteger(v) && v >= 0)
    ) {
      throw new InvalidArgumentError(
        `op ${i}: ifVersion must be a version number or null`,
      );
    }
    if (op.type === "check" && v === undefined) {
      throw new InvalidArgumentError(`op ${i}: a check needs ifVersion`);
    }
  }
  let kept = dropped === 0
    ? entries as Entry[]
    : entries.filter((e): e is Entry => e !== undefined);
  if (ranges) {
    if (versioned !== undefined) {
      throw new InvalidArgumentError(
        "a batch with a range delete cannot hold a versioned-key put",
      );
    }
    kept = dropCoveredOps(kept);
  }
  return { entries: kept, versioned };
}

/** Throws InvalidArgumentError unless `key` is 1..maxKeyBytes bytes. */
export function checkKey(limits: BatchLimits, key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length === 0) {
    throw new InvalidArgumentError("key must be 1 or more bytes");
  }
  if (key.length > limits.maxKeyBytes) {
    throw new InvalidArgumentError(
      `key of ${key.length} bytes exceeds the limit of ${limits.maxKeyBytes}`,
      "key_too_long",
    );
  }
}

/**
 * The versioned puts of a validated batch, with their encoded entries (the
 * keys {@link stampKeys} writes into).
 */
export function keyStamps(
  ops: readonly BatchOp[],
  entries: readonly Entry[],
  encoded: readonly Entry[],
  versioned: Map<Entry, number>,
): KeyStamp[] {
  const stamps: KeyStamp[] = [];
  for (let i = 0; i < entries.length; i++) {
    const op = versioned.get(entries[i]);
    if (op === undefined) continue;
    const build = (ops[op] as { versionedKey: VersionedKey }).versionedKey;
    stamps.push({ op, entry: encoded[i], build });
  }
  return stamps;
}

/**
 * Writes the keys of versioned puts, now that their version `seq` is
 * known, into the encoded batch (entry keys are views into it, so the WAL
 * record framed next and the memtable both get the final key).
 */
export function stampKeys(
  entries: Entry[],
  stamps: KeyStamp[],
  seq: number,
): void {
  for (const s of stamps) {
    const stored = s.entry.key; // space byte + placeholder
    const key = s.build(seq);
    if (!(key instanceof Uint8Array) || key.length !== stored.length - 1) {
      throw new InvalidArgumentError(
        `op ${s.op}: versionedKey must return ${
          stored.length - 1
        } bytes (the placeholder's length), got ${
          key instanceof Uint8Array ? key.length : typeof key
        }`,
      );
    }
    stored.set(key, 1);
  }
  // Two versions of one key under one seqno could not be ordered.
  if (entries.length === 1) return;
  const seen = new Set<string>();
  for (const e of entries) seen.add(binaryString(e.key));
  if (seen.size === entries.length) return;
  for (const s of stamps) {
    const id = binaryString(s.entry.key);
    let n = 0;
    for (const e of entries) if (binaryString(e.key) === id) n++;
    if (n > 1) {
      throw new InvalidArgumentError(
        `op ${s.op}: its versioned key equals another key of the batch`,
      );
    }
  }
}
