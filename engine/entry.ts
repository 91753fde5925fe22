/**
 * The unit every layer of the engine stores: one version of one key.
 * Internal order is user key ascending, then seqno descending, so a key's
 * newest version comes first. A leaf module.
 *
 * @module
 */
import { compareBytes } from "./coding.ts";

/** Entry kinds as stored on disk. */
export const KIND_DELETE = 0;
/** A put: the entry carries a value. */
export const KIND_PUT = 1;
/**
 * A range delete (engine/range_tombstones.ts): only in WAL batches and on
 * the write path, never in a memtable's skip list or a table. The key is
 * the range's start, the value its end.
 */
export const KIND_RANGE_DELETE = 2;

/** Value-encoding tags (the entry's encoding byte). 0: raw bytes. */
export const ENCODING_RAW = 0;
/** Deno KV: V8-serialised value. */
export const ENCODING_V8 = 1;
/** Deno KV: little-endian u64 (Deno.KvU64). */
export const ENCODING_U64LE = 2;

/** Largest seqno usable as "see everything" (seqnos stay below 2^53). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** One version of one key. `expiresAt` is ms since the epoch, 0 for never. */
export interface Entry {
  key: Uint8Array;
  seq: number;
  kind: number;
  encoding: number;
  expiresAt: number;
  value: Uint8Array;
}

/** Internal order: key ascending, then seq descending. */
export function compareEntries(
  aKey: Uint8Array,
  aSeq: number,
  bKey: Uint8Array,
  bSeq: number,
): number {
  const c = compareBytes(aKey, bKey);
  if (c !== 0) return c;
  return bSeq - aSeq;
}

/** True when the entry is a put that has not expired at `now`. */
export function isLive(e: Entry, now: number): boolean {
  return e.kind === KIND_PUT && (e.expiresAt === 0 || e.expiresAt > now);
}

/**
 * A bidirectional cursor over entries in internal order. Every source
 * (memtable, table, merge) implements it; all calls are synchronous.
 */
export interface EntryIterator {
  /** Positions at the first entry >= (key, seq) in internal order. */
  seek(key: Uint8Array, seq?: number): void;
  seekToFirst(): void;
  seekToLast(): void;
  /**
   * Positions at the last entry < (key, MAX_SEQ) in internal order, i.e. the
   * oldest version of the greatest key below `key`.
   */
  seekBefore(key: Uint8Array): void;
  valid(): boolean;
  next(): void;
  prev(): void;
  /**
   * The current entry; only while valid(). The object may be reused on
   * move. Its key and value bytes stay valid after a move (scans keep the
   * previous key), except on a forward-only table iterator
   * (engine/sstable/iterator.ts TableForwardIterator, the compaction
   * merge's), which rewrites them: there they hold until the next move.
   */
  entry(): Entry;
}
