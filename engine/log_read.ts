/**
 * Reading a log back (engine/wal.ts frames it): parsing a whole WAL segment
 * or manifest into its records, and the torn-write rule that decides what
 * a bad record means. Byte layouts and the rule are in engine/FORMAT.md
 * ("Log files").
 *
 * Records are appended whole and the log is only ever fdatasync'd after an
 * append, so a crash can only tear the *last* record(s) of the file being
 * written. Replay therefore treats a bad record that reaches the end of the
 * file (or is followed only by zero bytes) as a torn tail: never
 * acknowledged, truncated and reported. A bad record with valid-looking data
 * after it is corruption in the middle, unless it is a group a power cut
 * left with an unwritten sector ({@link RECORD_SYNC_POINT}). A bad tail is
 * corruption too when the log cannot have been torn: it ends with a
 * clean-close marker, or the caller says so (`mayBeTorn: false`, e.g. a
 * WAL segment older than the newest one).
 *
 * Zeros after the last record of a live (preallocated) segment are reported
 * apart from a torn tail (`zeroFill`).
 *
 * @module
 */
import { readU32, readU64 } from "./coding.ts";
import { crc32 } from "./crc.ts";
import type { Entry } from "./entry.ts";
import { CorruptionError, FormatVersionError } from "./errors.ts";
import type { FileSystem } from "./fs.ts";
import {
  CLOSE_MARKER_BYTES,
  CLOSED_PAYLOAD_BYTES,
  decodeBatch,
  LOG_HEADER_SIZE,
  LOG_VERSION,
  MAX_RECORD_BYTES,
  RECORD_BATCH,
  RECORD_CLOSED,
  RECORD_HEADER_SIZE,
  RECORD_SYNC_POINT,
  WAL_MAGIC,
} from "./wal.ts";

/** The offset of the clean-close marker that ends `bytes`, or -1 when there is none. */
export function findCloseMarker(bytes: Uint8Array): number {
  const pos = bytes.length - CLOSE_MARKER_BYTES;
  if (pos < LOG_HEADER_SIZE) return -1;
  if (bytes[pos + 8] !== RECORD_CLOSED) return -1;
  if (readU32(bytes, pos + 4) !== CLOSED_PAYLOAD_BYTES) return -1;
  if (checkRecord(bytes, pos) !== undefined) return -1;
  return readU64(bytes, pos + RECORD_HEADER_SIZE) === pos ? pos : -1;
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
