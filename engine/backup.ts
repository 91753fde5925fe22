/**
 * Online backup: a consistent copy of a live store as a tar archive, taken
 * while it keeps serving reads and writes. The archive is a complete data
 * directory (plus a `BACKUP` summary): extracting it with `tar` gives a
 * directory that opens; {@link restoreBackup} in restore.ts also checks it.
 *
 * How one version is captured, at one instant (no await in between):
 * - the current Version is pinned, so its table files are not deleted while
 *   they are streamed (tables are immutable: they are copied byte for byte);
 * - the backup's version is the newest visible seqno S;
 * - data not yet in a table lives in the memtables. Every memtable entry with
 *   a seqno above the newest seqno of any pinned table and at most S is
 *   copied into a new WAL segment (the "log tail"). Memtables are flushed
 *   oldest first, so everything not yet in a table has a higher seqno than
 *   everything that is; and a memtable whose flush was just installed is
 *   skipped by the same rule. Writes after S are left out.
 * - range tombstones of the memtables go into the log tail by the same
 *   rule, and the persisted ones (taken at the same instant) into the
 *   manifest;
 * - a fresh manifest lists the pinned tables, names the log tail as the WAL
 *   to replay, and records S as the last seqno.
 *
 * Memory: the log tail is built in memory (its size is bounded by the
 * memtables', which the memory budget bounds); tables are streamed in 64 KiB
 * reads as the consumer pulls, never held whole.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { ByteWriter } from "./coding.ts";
import type { Db } from "./db.ts";
import type { Entry, EntryIterator } from "./entry.ts";
import { CorruptionError } from "./errors.ts";
import {
  CURRENT_FILE,
  currentContents,
  logFileName,
  manifestFileName,
  tableFileName,
} from "./filename.ts";
import type { FileSystem, ReadableFile } from "./fs.ts";
import {
  emptyState,
  encodeEdit,
  snapshotEdit,
  type TableMeta,
} from "./manifest.ts";
import type { Memtable } from "./memtable.ts";
import { tarHeader, tarPadding } from "./tar.ts";
import type { Version } from "./version.ts";
import type { RangeTombstone } from "./range_tombstones.ts";
import { entryFromTombstone, tombstoneId } from "./range_tombstones.ts";
import {
  closeMarker,
  frameBatch,
  frameRecord,
  logHeader,
  MANIFEST_MAGIC,
  RECORD_EDIT,
  WAL_MAGIC,
} from "./wal.ts";
import { encodeBatchOps } from "./batch_ops.ts";

/** Name of the archive member that summarises the backup. */
export const BACKUP_SUMMARY = "BACKUP";
/** Name of the member holding the SHA-256 (hex) of `BACKUP`. */
export const BACKUP_SUMMARY_SHA = "BACKUP.sha256";
/** Value of `format` in the summary. */
export const BACKUP_FORMAT = "shale-backup";
/** Version of the archive layout (not of the files inside). */
export const BACKUP_FORMAT_VERSION = 1;

const READ_CHUNK = 64 * 1024;
const encoder = new TextEncoder();

/** One data file of a backup, as the summary lists it. */
export interface BackupFile {
  name: string;
  size: number;
  /** SHA-256 of the file's bytes, lower-case hex. */
  sha256: string;
}

/** The `BACKUP` member: what the archive holds and as of which version. */
export interface BackupSummary {
  format: typeof BACKUP_FORMAT;
  formatVersion: number;
  /** The store's version (seqno) the backup holds exactly. */
  version: number;
  /** When the backup was taken, ISO 8601. */
  createdAt: string;
  /** Every other member but BACKUP.sha256, in archive order. */
  files: BackupFile[];
}

/** A member to stream: a table read from disk, or bytes built in memory. */
type Member =
  | { name: string; size: number; path: string }
  | { name: string; size: number; bytes: Uint8Array };

/**
 * A backup in progress: the pinned files and the version they hold. Stream
 * it once with {@link Backup.stream}; the pin is released when the stream
 * ends, fails or is cancelled (or by {@link Backup.release}).
 */
export interface Backup {
  /** The seqno the backup holds: every write up to it, none after. */
  readonly version: number;
  /** Names and sizes of the data members, in archive order. */
  readonly members: readonly { name: string; size: number }[];
  /** The tar archive, produced as the consumer pulls. */
  stream(): ReadableStream<Uint8Array>;
  /** Unpins the tables; idempotent. */
  release(): void;
}

/**
 * What {@link Db.pinForBackup} hands a backup, taken at one instant: the
 * pinned Version (its tables are not deleted until release()), the visible
 * seqno, the memtables newest first (they keep changing and are freed
 * once flushed: copy what is needed before the next await), the persisted
 * range tombstones and the file system to read tables through.
 */
export interface BackupPin {
  version: Version;
  seq: number;
  memtables: Memtable[];
  rangeTombstones: RangeTombstone[];
  fs: FileSystem;
  /** Unpins the Version; idempotent. */
  release(): void;
}

/**
 * Captures a backup of `db` as of its newest visible write. Synchronous: the
 * version, the memtable contents and the table list are taken at one instant.
 */
export function startBackup(db: Db, now: () => number = Date.now): Backup {
  const pin = db.pinForBackup();
  try {
    const tables: TableMeta[] = [...pin.version.allTables()];
    tables.sort((a, b) => a.fileNumber - b.fileNumber);
    let maxTableSeq = 0;
    let maxFile = 0;
    for (const t of tables) {
      maxTableSeq = Math.max(maxTableSeq, t.maxSeq);
      maxFile = Math.max(maxFile, t.fileNumber);
    }
    const logNumber = maxFile + 1;
    const manifestNumber = maxFile + 2;
    const members: Member[] = tables.map((t) => ({
      name: tableFileName(t.fileNumber),
      size: t.size,
      path: `${db.dir}/${tableFileName(t.fileNumber)}`,
    }));
    const log = logTail(pin.memtables, maxTableSeq, pin.seq);
    members.push({
      name: logFileName(logNumber),
      size: log.length,
      bytes: log,
    });
    const state = emptyState();
    for (const t of tables) state.levels[t.level].set(t.fileNumber, t);
    for (const t of pin.rangeTombstones) {
      state.rangeTombstones.set(tombstoneId(t), t);
    }
    state.logNumber = logNumber;
    state.nextFileNumber = manifestNumber + 1;
    state.lastSeq = pin.seq;
    const mw = new ByteWriter(1024);
    mw.bytes(logHeader(MANIFEST_MAGIC));
    frameRecord(mw, RECORD_EDIT, encodeEdit(snapshotEdit(state)));
    const manifest = mw.finish();
    const mname = manifestFileName(manifestNumber);
    members.push({ name: mname, size: manifest.length, bytes: manifest });
    const current = encoder.encode(currentContents(mname));
    members.push({ name: CURRENT_FILE, size: current.length, bytes: current });
    return new LiveBackup(pin, members, now());
  } catch (err) {
    pin.release();
    throw err;
  }
}

/**
 * A WAL segment holding every memtable entry with maxTableSeq < seq <= upTo,
 * one batch record per entry (replay only needs each entry's own seqno),
 * ended by a clean-close marker: the segment is complete.
 */
function logTail(
  memtables: readonly {
    iterator(): EntryIterator;
    rangeDels: readonly RangeTombstone[];
  }[],
  maxTableSeq: number,
  upTo: number,
): Uint8Array {
  const w = new ByteWriter(64 * 1024);
  w.bytes(logHeader(WAL_MAGIC));
  for (const mem of memtables) {
    const it = mem.iterator();
    for (it.seekToFirst(); it.valid(); it.next()) {
      const e: Entry = it.entry();
      if (e.seq <= maxTableSeq || e.seq > upTo) continue;
      // encodeBatchOps copies the key and value out of the memtable's arena.
      const { payload } = encodeBatchOps([e]);
      frameBatch(w, e.seq, payload);
    }
    for (const t of mem.rangeDels) {
      if (t.seq <= maxTableSeq || t.seq > upTo) continue;
      frameBatch(w, t.seq, encodeBatchOps([entryFromTombstone(t)]).payload);
    }
  }
  w.bytes(closeMarker(w.pos, upTo));
  return w.finish();
}

/** SHA-256 of `bytes` in lower-case hex (the archive's `.sha256` members). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

class LiveBackup implements Backup {
  readonly version: number;
  readonly members: readonly { name: string; size: number }[];
  #pin: BackupPin;
  #files: Member[];
  #createdAt: number;
  #streamed = false;

  constructor(
    pin: BackupPin,
    files: Member[],
    createdAt: number,
  ) {
    this.#pin = pin;
    this.#files = files;
    this.#createdAt = createdAt;
    this.version = pin.seq;
    this.members = files.map((f) => ({ name: f.name, size: f.size }));
  }

  release(): void {
    this.#pin.release();
  }

  stream(): ReadableStream<Uint8Array> {
    if (this.#streamed) throw new Error("a backup can be streamed only once");
    this.#streamed = true;
    const chunks = this.#chunks();
    return new ReadableStream<Uint8Array>({
      pull: (controller) => {
        try {
          const r = chunks.next();
          if (r.done) {
            this.release();
            controller.close();
          } else controller.enqueue(r.value);
        } catch (err) {
          this.release();
          controller.error(err);
        }
      },
      cancel: () => {
        chunks.return(undefined); // runs the generator's finally: closes the file
        this.release();
      },
    }, { highWaterMark: 1 });
  }

  /** The archive as chunks: header, data in 64 KiB pieces, padding, ... */
  *#chunks(): Generator<Uint8Array, void, undefined> {
    const fs = this.#pin.fs;
    const listed: BackupFile[] = [];
    const mtime = this.#createdAt;
    for (const m of this.#files) {
      yield tarHeader(m.name, m.size, mtime);
      const hash = createHash("sha256");
      if ("bytes" in m) {
        hash.update(m.bytes);
        yield m.bytes;
      } else {
        let file: ReadableFile | undefined;
        try {
          file = fs.openReadable(m.path);
          for (let pos = 0; pos < m.size; pos += READ_CHUNK) {
            const want = Math.min(READ_CHUNK, m.size - pos);
            const chunk = file.readAt(pos, want);
            if (chunk.length !== want) {
              throw new CorruptionError(
                m.path,
                pos + chunk.length,
                `table is shorter than the ${m.size} bytes the manifest records`,
              );
            }
            hash.update(chunk);
            yield chunk;
          }
        } finally {
          file?.close();
        }
      }
      const pad = tarPadding(m.size);
      if (pad > 0) yield new Uint8Array(pad);
      listed.push({ name: m.name, size: m.size, sha256: hash.digest("hex") });
    }
    const summary: BackupSummary = {
      format: BACKUP_FORMAT,
      formatVersion: BACKUP_FORMAT_VERSION,
      version: this.version,
      createdAt: new Date(this.#createdAt).toISOString(),
      files: listed,
    };
    const body = encoder.encode(JSON.stringify(summary, null, 1) + "\n");
    const sha = encoder.encode(sha256Hex(body) + "\n");
    for (
      const [name, bytes] of [[BACKUP_SUMMARY, body], [
        BACKUP_SUMMARY_SHA,
        sha,
      ]] as const
    ) {
      yield tarHeader(name, bytes.length, mtime);
      yield bytes;
      const pad = tarPadding(bytes.length);
      if (pad > 0) yield new Uint8Array(pad);
    }
    yield new Uint8Array(1024); // end of archive: two zero blocks
  }
}
