/**
 * Log framing shared by WAL segments (`NNNNNN.log`) and the manifest
 * (`MANIFEST-NNNNNN`), plus the WAL's write-batch payload. Byte layouts are in
 * engine/FORMAT.md ("Log files").
 *
 * ```
 * file   := header record*
 * header := magic u32le | version u8 | 0 u8 0 u8 0 u8          (8 bytes)
 * record := crc u32le | length u32le | type u8 | payload[length]
 *           crc = CRC32(length bytes | type | payload)
 * ```
 *
 * Records are appended whole and the log is only ever fdatasync'd after an
 * append; engine/log_read.ts reads a log back and decides what a bad record
 * means.
 *
 * The WAL segment being written is preallocated: zeros are written ahead of
 * its records ({@link WAL_PREALLOCATE_BYTES} at a time, {@link reserveLogSpace}),
 * so a group's fdatasync only writes data. Nothing but zeros ever follows the
 * last record of a live segment. A segment is cut back to its last record
 * before it stops being the newest (rotation) and before its clean-close
 * marker ({@link appendCloseMarker}).
 *
 * @module
 */
import {
  ByteReader,
  ByteWriter,
  DecodeError,
  writeU32,
  writeU64,
} from "./coding.ts";
import { crc32 } from "./crc.ts";
import type { Entry } from "./entry.ts";
import { decodeBatchOps, encodeBatchOps } from "./batch_ops.ts";
import { CorruptionError } from "./errors.ts";
import type { FileSystem, WritableFile } from "./fs.ts";

/** Magic of a WAL segment: "SHWL" read as a little-endian u32. */
export const WAL_MAGIC = 0x4c574853;
/** Magic of a manifest: "SHMF" read as a little-endian u32. */
export const MANIFEST_MAGIC = 0x464d4853;
/**
 * Version byte of the log framing. 2: every key in a batch and in a version
 * edit starts with its key-space byte; version 1 files are refused with a
 * {@link FormatVersionError}.
 */
export const LOG_VERSION = 2;
/**
 * How far ahead of its records a live WAL segment is zero-filled: the space
 * is extended in steps of this size when an append reaches its end, so one
 * group's fdatasync per MiB also writes the zeros and the new file size.
 * Measured on ext4 (2026-12-01): fdatasync after a 6 KiB append 0.25 ms
 * when the file grows, 0.12 ms into written zeros; one client's PUT p50
 * 406 -> 314 µs, 64 clients 34k -> 37k PUT/s.
 */
export const WAL_PREALLOCATE_BYTES = 1 << 20;
/** Size of the file header. */
export const LOG_HEADER_SIZE = 8;
/** crc + length + type. */
export const RECORD_HEADER_SIZE = 9;

/**
 * Record type of a WAL sync point: the first record of every commit group.
 * Its payload (`durable u64le`) is the offset up to which the segment had
 * been fdatasync'd when the group was appended. Replay needs it because the
 * segment is preallocated: an fdatasync that writes into existing blocks
 * journals nothing, so a power cut in the middle of one can leave any of
 * the group's pages unwritten while later ones made it, and a hole followed
 * by valid records is then a torn group, not corruption, as long as no
 * later sync point says the hole had been synced.
 */
export const RECORD_SYNC_POINT = 4;
/** Size of a whole sync-point record (header and payload). */
export const SYNC_POINT_BYTES = RECORD_HEADER_SIZE + 8;

/** Writes a sync-point record claiming `durable` at `buf[at..at+SYNC_POINT_BYTES)`. */
export function writeSyncPoint(
  buf: Uint8Array,
  at: number,
  durable: number,
): void {
  writeU32(buf, at + 4, 8);
  buf[at + 8] = RECORD_SYNC_POINT;
  writeU64(buf, at + RECORD_HEADER_SIZE, durable);
  writeU32(buf, at, crc32(buf.subarray(at + 4, at + SYNC_POINT_BYTES)));
}

/** Record type of a WAL write batch. */
export const RECORD_BATCH = 1;
/** Record type of a manifest version edit. */
export const RECORD_EDIT = 2;
/**
 * Record type of the clean-close marker: the last record close() writes to
 * the live WAL segment, after every write in it is durable.
 */
export const RECORD_CLOSED = 3;
/** Payload of a clean-close marker: its own offset u64le | last seqno u64le. */
export const CLOSED_PAYLOAD_BYTES = 16;
/** Size of a whole clean-close marker record. */
export const CLOSE_MARKER_BYTES = RECORD_HEADER_SIZE + CLOSED_PAYLOAD_BYTES;
/** Largest record accepted on replay: a sanity bound against garbage lengths. */
export const MAX_RECORD_BYTES = 1 << 30;

/** The 8-byte header that starts every log file. */
export function logHeader(magic: number): Uint8Array {
  const h = new Uint8Array(LOG_HEADER_SIZE);
  writeU32(h, 0, magic);
  h[4] = LOG_VERSION;
  return h;
}

/** Appends one framed record (header + payload) to `w`. */
export function frameRecord(
  w: ByteWriter,
  type: number,
  payload: Uint8Array,
): void {
  const start = w.pos;
  w.u32(0); // crc, patched below
  w.u32(payload.length);
  w.u8(type);
  w.bytes(payload);
  const crc = crc32(w.buf.subarray(start + 4, w.pos));
  writeU32(w.buf, start, crc);
}

/**
 * The clean-close marker record to append at `offset` (the log's size).
 * Carrying its own offset ties it to its position: bytes that merely look
 * like a marker inside a stored value do not end the log at that offset.
 */
export function closeMarker(offset: number, lastSeq: number): Uint8Array {
  const payload = new Uint8Array(CLOSED_PAYLOAD_BYTES);
  writeU64(payload, 0, offset);
  writeU64(payload, 8, lastSeq);
  const w = new ByteWriter(CLOSE_MARKER_BYTES);
  frameRecord(w, RECORD_CLOSED, payload);
  return w.finish();
}

/**
 * Makes sure the log has zeros written up to `end` (the size it reaches
 * with the group about to be appended), extending it a whole
 * {@link WAL_PREALLOCATE_BYTES} step past it. Only an optimisation: when
 * writing the zeros fails (a full disk), they are cut off again and the
 * group is appended as it would be without them.
 */
export function reserveLogSpace(log: WritableFile, end: number): void {
  if (log.preallocate === undefined) return;
  const step = WAL_PREALLOCATE_BYTES;
  try {
    log.preallocate(Math.ceil(end / step) * step);
  } catch {
    try {
      log.truncate(log.size);
    } catch {
      // The append that follows meets the same trouble and reports it.
    }
  }
}

/**
 * Ends a log whose every record is durable with its clean-close marker:
 * cuts the zero fill off (the marker must end the file), appends the
 * marker and syncs. Best effort, never throws: without the marker the next
 * open just cannot tell a damaged tail from a torn one, and a partial
 * marker is cut off again (or left for the next open as a torn tail).
 */
export async function appendCloseMarker(
  log: WritableFile,
  lastSeq: number,
): Promise<void> {
  const size = log.size;
  try {
    log.truncate(size);
    log.append(closeMarker(size, lastSeq));
    await log.sync();
  } catch {
    try {
      log.truncate(size);
    } catch {
      // left for the next open to truncate as a torn tail
    }
  }
}

/**
 * Creates a new log file (exclusively: log names are never reused, and an
 * existing file or symlink there is refused) with its header, synced, ready
 * for appends.
 */
export async function createLog(
  fs: FileSystem,
  path: string,
  magic: number,
): Promise<WritableFile> {
  const f = fs.openWritable(path, { exclusive: true });
  f.append(logHeader(magic));
  await f.sync();
  return f;
}

/**
 * Encodes a write batch: every op of one write shares one seqno.
 *
 * ```
 * batch := seq u64le | ops   -- ops: engine/batch_ops.ts
 * ```
 */
export function encodeBatch(
  w: ByteWriter,
  seq: number,
  ops: readonly Entry[],
): void {
  w.u64(seq);
  w.bytes(encodeBatchOps(ops).payload);
}

/** Appends a framed batch record (seq + pre-encoded ops) to `w` without an extra copy. */
export function frameBatch(w: ByteWriter, seq: number, ops: Uint8Array): void {
  const start = w.pos;
  w.u32(0); // crc, patched below
  w.u32(8 + ops.length);
  w.u8(RECORD_BATCH);
  w.u64(seq);
  w.bytes(ops);
  writeU32(w.buf, start, crc32(w.buf.subarray(start + 4, w.pos)));
}

/**
 * Batches whose encoded ops are at least this large are not copied into
 * the WAL buffer: their record is written as {@link batchRecordHead} and
 * then the ops themselves (a 16 MiB value used to be copied three more
 * times on the event loop: into the buffer, while growing it, and out).
 */
export const LARGE_BATCH_BYTES = 256 * 1024;

/**
 * The first bytes of a framed batch record whose remaining bytes are `ops`
 * (header, then seq), checksum included: the record `frameBatch` writes,
 * in two pieces.
 */
export function batchRecordHead(seq: number, ops: Uint8Array): Uint8Array {
  const head = new Uint8Array(RECORD_HEADER_SIZE + 8);
  writeU32(head, 4, 8 + ops.length);
  head[8] = RECORD_BATCH;
  writeU64(head, RECORD_HEADER_SIZE, seq);
  writeU32(head, 0, crc32(ops, crc32(head.subarray(4))));
  return head;
}

/** Decodes a batch payload into entries (views into `payload`). */
export function decodeBatch(
  payload: Uint8Array,
  file: string,
  offset: number,
): Entry[] {
  try {
    const seq = new ByteReader(payload).u64("batch seqno");
    return decodeBatchOps(payload.subarray(8), seq);
  } catch (err) {
    if (err instanceof DecodeError) {
      throw new CorruptionError(file, offset, `bad WAL batch: ${err.message}`);
    }
    throw err;
  }
}
