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
 * append, so a crash can only tear the *last* record(s) of the file being
 * written. Replay therefore treats a bad record that reaches the end of the
 * file (or is followed only by zero bytes) as a torn tail: never
 * acknowledged, truncated and reported. A bad record with valid-looking data
 * after it is corruption in the middle. A bad tail is corruption too when the
 * log cannot have been torn: it ends with a clean-close marker (see
 * {@link closeMarker}), or the caller says so (`mayBeTorn: false`, e.g. a WAL
 * segment older than the newest one).
 *
 * The WAL segment being written is preallocated: zeros are written ahead of
 * its records ({@link WAL_PREALLOCATE_BYTES} at a time), so a group's
 * fdatasync only writes data. Nothing but zeros ever follows the last
 * record of a live segment, and replay reports that zero fill apart from a
 * torn tail (`zeroFill`). A segment is cut back to its last record before
 * it stops being the newest (rotation) and before its clean-close marker.
 *
 * @module
 */
import {
  ByteReader,
  ByteWriter,
  DecodeError,
  readU32,
  readU64,
  writeU32,
  writeU64,
} from "./coding.ts";
import { crc32 } from "./crc.ts";
import type { Entry } from "./entry.ts";
import { decodeBatchOps, encodeBatchOps } from "./batch_ops.ts";
import { CorruptionError, FormatVersionError } from "./errors.ts";
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
const CLOSED_PAYLOAD_BYTES = 16;
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

/** The offset of the clean-close marker that ends `bytes`, or -1 when there is none. */
export function findCloseMarker(bytes: Uint8Array): number {
  const pos = bytes.length - CLOSE_MARKER_BYTES;
  if (pos < LOG_HEADER_SIZE) return -1;
  if (bytes[pos + 8] !== RECORD_CLOSED) return -1;
  if (readU32(bytes, pos + 4) !== CLOSED_PAYLOAD_BYTES) return -1;
  if (checkRecord(bytes, pos) !== undefined) return -1;
  return readU64(bytes, pos + RECORD_HEADER_SIZE) === pos ? pos : -1;
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

/** Records of a log that carry data: its write batches (or edits). */
export function dataRecordCount(log: LogReadResult): number {
  let n = 0;
  for (const r of log.records) {
    if (r.type !== RECORD_SYNC_POINT && r.offset !== log.closedAt) n++;
  }
  return n;
}

/** One record read back from a log. */
export interface LogRecord {
  type: number;
  payload: Uint8Array;
  offset: number;
}

/** What replaying a log found. */
export interface LogReadResult {
  records: LogRecord[];
  /** Offset just past the last good record. */
  validEnd: number;
  fileSize: number;
  /** Set when a torn tail was found (bytes from validEnd to fileSize). */
  tornTail?: { offset: number; bytes: number; reason: string };
  /**
   * Set when only zeros follow the last record of a log that may be torn:
   * space preallocated for records never written (from validEnd to
   * fileSize). Not a torn write; recovery cuts it off all the same.
   */
  zeroFill?: { offset: number; bytes: number };
  /** Corrupt records skipped because `salvage` was on. */
  skipped: { offset: number; reason: string }[];
  /** Offset of the clean-close marker ending the log, if it has one. */
  closedAt?: number;
}

/** Options of {@link parseLog}. */
export interface ParseLogOptions {
  /** Skip corrupt records (reporting them) instead of throwing. */
  salvage?: boolean;
  /**
   * Whether a bad tail may be a torn write (default true). False for a log
   * known to be complete, such as a WAL segment older than the newest one.
   * A log ending with a clean-close marker is always complete.
   */
  mayBeTorn?: boolean;
}

/** Whether `b[from..to)` holds only zero bytes. */
function allZero(b: Uint8Array, from: number, to = b.length): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Parses a whole log file. A bad record at the tail of a log that may be torn
 * is reported in `tornTail`; any other bad record (in the middle, or at the
 * tail of a complete log) throws CorruptionError naming the file and offset,
 * unless `salvage` is set, in which case it is skipped by scanning forward
 * for the next record whose checksum holds, and reported in `skipped`.
 */
export function parseLog(
  bytes: Uint8Array,
  file: string,
  magic: number,
  opts: ParseLogOptions = {},
): LogReadResult {
  const result: LogReadResult = {
    records: [],
    validEnd: LOG_HEADER_SIZE,
    fileSize: bytes.length,
    skipped: [],
  };
  if (bytes.length < LOG_HEADER_SIZE) {
    // A log torn before its header was synced holds nothing acknowledged.
    result.validEnd = 0;
    if (bytes.length > 0) {
      result.tornTail = {
        offset: 0,
        bytes: bytes.length,
        reason: "file shorter than its header",
      };
    }
    return result;
  }
  if (readU32(bytes, 0) !== magic) {
    throw new CorruptionError(file, 0, "log header has the wrong magic number");
  }
  if (bytes[4] === 1) {
    // The format before key spaces: a known format, not damage.
    throw new FormatVersionError(file, bytes[4], LOG_VERSION);
  }
  if (bytes[4] !== LOG_VERSION) {
    throw new CorruptionError(
      file,
      4,
      `log format version ${
        bytes[4]
      } is not supported (expected ${LOG_VERSION})`,
    );
  }
  const closedAt = findCloseMarker(bytes);
  if (closedAt !== -1) result.closedAt = closedAt;
  const complete = closedAt !== -1 || opts.mayBeTorn === false;
  let pos = LOG_HEADER_SIZE;
  while (pos < bytes.length) {
    const bad = checkRecord(bytes, pos);
    if (bad === undefined) {
      const len = readU32(bytes, pos + 4);
      result.records.push({
        type: bytes[pos + 8],
        payload: bytes.subarray(
          pos + RECORD_HEADER_SIZE,
          pos + RECORD_HEADER_SIZE + len,
        ),
        offset: pos,
      });
      pos += RECORD_HEADER_SIZE + len;
      result.validEnd = pos;
      continue;
    }
    const zeroTail = allZero(bytes, pos);
    if (zeroTail && !complete) {
      result.zeroFill = { offset: pos, bytes: bytes.length - pos };
      return result;
    }
    let next = nextRecordAfterBad(bytes, pos);
    const atTail = next === -1 || zeroTail;
    // Valid records after a hole are still a torn write when they belong
    // to the group being synced at the crash: no later sync point says the
    // hole had been made durable (see RECORD_SYNC_POINT).
    const tornGroup = !atTail && !complete &&
      isTornGroup(bytes, pos, next, result.records);
    if ((atTail || tornGroup) && !complete) {
      result.tornTail = {
        offset: pos,
        bytes: bytes.length - pos,
        reason: tornGroup
          ? `${bad}; the records after it are of the group whose fdatasync the crash cut short`
          : bad,
      };
      return result;
    }
    // A damaged length can make the last record swallow the marker after it.
    if (next === -1 && closedAt > pos) next = closedAt;
    const why = closedAt !== -1
      ? "the log was closed cleanly (it ends with a clean-close marker)"
      : !atTail
      ? "valid records follow"
      : "the log is complete (a newer WAL segment was started after it)";
    const reason = `${bad}; ${why}, so this cannot be a torn write`;
    if (!opts.salvage) {
      throw new CorruptionError(
        file,
        pos,
        `${reason} (open with salvage to skip it)`,
      );
    }
    result.skipped.push({ offset: pos, reason });
    if (next === -1) return result;
    pos = next;
  }
  return result;
}

/** The unit a device may leave unwritten when power fails mid-write. */
const SECTOR = 512;

/**
 * Whether the bad record at `pos`, followed by a valid one at `next`, is a
 * group torn by a power cut during its fdatasync rather than damage. Three
 * things must hold:
 * - the log has sync points (a WAL written since they exist; a manifest
 *   or an older WAL keeps the strict rule);
 * - no valid sync point after `pos` says the log was durable past `pos`
 *   (a later group was appended only after this one's fdatasync, so the
 *   bytes at `pos` were synced: damage);
 * - an unwritten sector shows: zeros from `pos` (or a sector start after
 *   it) to a sector boundary at or before `next`. A preallocated log held
 *   only zeros past its durable end, so a sector of the group that never
 *   reached the disk reads as zeros; a flipped bit does not.
 */
function isTornGroup(
  bytes: Uint8Array,
  pos: number,
  next: number,
  before: LogRecord[],
): boolean {
  let usesSyncPoints = false;
  for (let i = before.length - 1; i >= 0 && !usesSyncPoints; i--) {
    usesSyncPoints = before[i].type === RECORD_SYNC_POINT;
  }
  let p = next;
  while (p !== -1 && p < bytes.length) {
    if (checkRecord(bytes, p) !== undefined) {
      p = findNextRecord(bytes, p + 1);
      continue;
    }
    const len = readU32(bytes, p + 4);
    if (bytes[p + 8] === RECORD_SYNC_POINT && len === 8) {
      usesSyncPoints = true;
      if (readU64(bytes, p + RECORD_HEADER_SIZE) > pos) return false;
    }
    p += RECORD_HEADER_SIZE + len;
  }
  if (!usesSyncPoints) return false;
  for (
    let end = (Math.floor(pos / SECTOR) + 1) * SECTOR;
    end <= next;
    end += SECTOR
  ) {
    if (allZero(bytes, Math.max(pos, end - SECTOR), end)) return true;
  }
  return false;
}

/**
 * Where replay could resume after the bad record at `pos`, or -1.
 *
 * A record whose declared end lies past the end of the file is the torn
 * last write (headers are written before payloads), so nothing follows it.
 * Otherwise search from the record's declared end first (its payload may
 * itself hold bytes that look like a framed record, e.g. a stored WAL), and
 * only then from the next byte, in case the length field is what was hit.
 */
function nextRecordAfterBad(bytes: Uint8Array, pos: number): number {
  if (pos + RECORD_HEADER_SIZE > bytes.length) return -1;
  const len = readU32(bytes, pos + 4);
  const end = pos + RECORD_HEADER_SIZE + len;
  if (len <= MAX_RECORD_BYTES) {
    if (end > bytes.length) return -1;
    const after = findNextRecord(bytes, end);
    if (after !== -1) return after;
  }
  return findNextRecord(bytes, pos + 1);
}

/** Returns why the record at `pos` is bad, or undefined when it is good. */
function checkRecord(bytes: Uint8Array, pos: number): string | undefined {
  if (pos + RECORD_HEADER_SIZE > bytes.length) {
    return "record header runs past the end of the file";
  }
  const len = readU32(bytes, pos + 4);
  if (len > MAX_RECORD_BYTES) return `record length ${len} is implausible`;
  const end = pos + RECORD_HEADER_SIZE + len;
  if (end > bytes.length) return "record runs past the end of the file";
  const crc = crc32(bytes.subarray(pos + 4, end));
  if (crc !== readU32(bytes, pos)) return "record checksum mismatch";
  return undefined;
}

/** The offset of the next record at or after `from` whose checksum holds, or -1. */
function findNextRecord(bytes: Uint8Array, from: number): number {
  for (let p = from; p + RECORD_HEADER_SIZE <= bytes.length; p++) {
    const len = readU32(bytes, p + 4);
    if (len === 0 && bytes[p + 8] === 0) continue; // zero fill is not a record
    if (checkRecord(bytes, p) === undefined) return p;
  }
  return -1;
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

/**
 * Reads every batch of a WAL segment (used by recovery and by flushes). A
 * clean-close marker is accepted as the last record only.
 */
export function readWalEntries(
  fs: FileSystem,
  path: string,
  opts: ParseLogOptions = {},
): { entries: Entry[]; log: LogReadResult } {
  const bytes = fs.readFile(path);
  const log = parseLog(bytes, path, WAL_MAGIC, opts);
  const entries: Entry[] = [];
  for (const rec of log.records) {
    if (rec.type === RECORD_CLOSED && rec.offset === log.closedAt) continue;
    if (rec.type === RECORD_SYNC_POINT) continue;
    if (rec.type !== RECORD_BATCH) {
      throw new CorruptionError(
        path,
        rec.offset,
        `unknown WAL record type ${rec.type}`,
      );
    }
    for (const e of decodeBatch(rec.payload, path, rec.offset)) entries.push(e);
  }
  return { entries, log };
}
