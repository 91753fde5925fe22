/**
 * The manifest: which tables are live at which level, as an append-only log
 * of checksummed version edits (framed like the WAL, see engine/wal.ts), and
 * `CURRENT`, a one-line file naming the live manifest. Layouts are in
 * engine/FORMAT.md ("Manifest").
 *
 * Crash rules: an edit counts only once its record is fdatasync'd. A new
 * manifest begins with a full snapshot of the state; `CURRENT` is switched by
 * write-temp, fsync, rename, fsync directory, so a crash leaves either the old
 * or the new manifest named, both complete.
 *
 * @module
 */
import { ByteReader, ByteWriter, DecodeError } from "./coding.ts";
import { CorruptionError } from "./errors.ts";
import {
  CURRENT_FILE,
  currentContents,
  currentPath as currentPathOf,
  manifestFileName,
  parseCurrentContents,
  tempFileName,
} from "./filename.ts";
import type { FileSystem, WritableFile } from "./fs.ts";
import type { RangeTombstone } from "./range_tombstones.ts";
import { tombstoneId } from "./range_tombstones.ts";
import { createLog, frameRecord, MANIFEST_MAGIC, RECORD_EDIT } from "./wal.ts";
import { parseLog } from "./log_read.ts";

/** Number of levels, L0..L6. */
export const NUM_LEVELS = 7;

/** What the manifest knows about one table file. */
export interface TableMeta {
  fileNumber: number;
  level: number;
  size: number;
  entries: number;
  minSeq: number;
  maxSeq: number;
  smallest: Uint8Array;
  largest: Uint8Array;
  /**
   * Written by a compaction that applied every range tombstone with a
   * seqno up to this one: it holds no entry they hide. 0 or absent: none.
   */
  cleanSeq?: number;
}

/** One change to the LSM state. Absent fields are unchanged. */
export interface VersionEdit {
  /** WAL segments numbered below this are fully flushed. */
  logNumber?: number;
  nextFileNumber?: number;
  lastSeq?: number;
  added?: TableMeta[];
  deleted?: { level: number; fileNumber: number }[];
  /** Where the next compaction of a level starts (round robin over keys). */
  compactPointers?: { level: number; key: Uint8Array }[];
  /** Range tombstones whose memtable was flushed (range_tombstones.ts). */
  rangeTombstonesAdded?: RangeTombstone[];
  /** Range tombstones nothing needs any more. */
  rangeTombstonesDeleted?: RangeTombstone[];
}

const TAG_LOG_NUMBER = 1;
const TAG_NEXT_FILE = 2;
const TAG_LAST_SEQ = 3;
const TAG_ADD = 4;
const TAG_DELETE = 5;
const TAG_POINTER = 6;
const TAG_RANGE_ADD = 7;
const TAG_RANGE_DELETE = 8;
const TAG_CLEAN_SEQ = 9;

/** Serialises an edit as tagged fields. */
export function encodeEdit(e: VersionEdit): Uint8Array {
  const w = new ByteWriter(128);
  if (e.logNumber !== undefined) {
    w.u8(TAG_LOG_NUMBER);
    w.varint(e.logNumber);
  }
  if (e.nextFileNumber !== undefined) {
    w.u8(TAG_NEXT_FILE);
    w.varint(e.nextFileNumber);
  }
  if (e.lastSeq !== undefined) {
    w.u8(TAG_LAST_SEQ);
    w.varint(e.lastSeq);
  }
  for (const d of e.deleted ?? []) {
    w.u8(TAG_DELETE);
    w.u8(d.level);
    w.varint(d.fileNumber);
  }
  for (const t of e.added ?? []) {
    w.u8(TAG_ADD);
    w.u8(t.level);
    w.varint(t.fileNumber);
    w.varint(t.size);
    w.varint(t.entries);
    w.varint(t.minSeq);
    w.varint(t.maxSeq);
    w.lengthPrefixed(t.smallest);
    w.lengthPrefixed(t.largest);
    if (t.cleanSeq) {
      w.u8(TAG_CLEAN_SEQ);
      w.varint(t.fileNumber);
      w.varint(t.cleanSeq);
    }
  }
  for (
    const [tag, list] of [
      [TAG_RANGE_ADD, e.rangeTombstonesAdded],
      [TAG_RANGE_DELETE, e.rangeTombstonesDeleted],
    ] as const
  ) {
    for (const t of list ?? []) {
      w.u8(tag);
      w.varint(t.seq);
      w.lengthPrefixed(t.start);
      w.lengthPrefixed(t.end);
    }
  }
  for (const p of e.compactPointers ?? []) {
    w.u8(TAG_POINTER);
    w.u8(p.level);
    w.lengthPrefixed(p.key);
  }
  return w.finish();
}

/** Parses an edit; throws CorruptionError naming file and offset. */
export function decodeEdit(
  payload: Uint8Array,
  file: string,
  offset: number,
): VersionEdit {
  const r = new ByteReader(payload);
  const e: VersionEdit = {};
  try {
    while (r.remaining > 0) {
      const tag = r.u8("edit tag");
      switch (tag) {
        case TAG_LOG_NUMBER:
          e.logNumber = r.varint("log number");
          break;
        case TAG_NEXT_FILE:
          e.nextFileNumber = r.varint("next file number");
          break;
        case TAG_LAST_SEQ:
          e.lastSeq = r.varint("last seqno");
          break;
        case TAG_DELETE: {
          const level = readLevel(r);
          (e.deleted ??= []).push({
            level,
            fileNumber: r.varint("file number"),
          });
          break;
        }
        case TAG_ADD: {
          const level = readLevel(r);
          (e.added ??= []).push({
            level,
            fileNumber: r.varint("file number"),
            size: r.varint("table size"),
            entries: r.varint("entry count"),
            minSeq: r.varint("min seqno"),
            maxSeq: r.varint("max seqno"),
            smallest: r.lengthPrefixed("smallest key").slice(),
            largest: r.lengthPrefixed("largest key").slice(),
          });
          break;
        }
        case TAG_POINTER: {
          const level = readLevel(r);
          (e.compactPointers ??= []).push({
            level,
            key: r.lengthPrefixed("compact pointer").slice(),
          });
          break;
        }
        case TAG_CLEAN_SEQ: {
          const n = r.varint("file number");
          const cleanSeq = r.varint("clean seqno");
          const t = e.added?.find((a) => a.fileNumber === n);
          if (!t) throw new DecodeError(`clean seqno for table ${n} not added`);
          t.cleanSeq = cleanSeq;
          break;
        }
        case TAG_RANGE_ADD:
        case TAG_RANGE_DELETE: {
          const t: RangeTombstone = {
            seq: r.varint("range tombstone seqno"),
            start: r.lengthPrefixed("range tombstone start").slice(),
            end: r.lengthPrefixed("range tombstone end").slice(),
          };
          if (t.start.length === 0) {
            throw new DecodeError("range tombstone without a key space");
          }
          if (tag === TAG_RANGE_ADD) (e.rangeTombstonesAdded ??= []).push(t);
          else (e.rangeTombstonesDeleted ??= []).push(t);
          break;
        }
        default:
          throw new DecodeError(`unknown edit tag ${tag}`);
      }
    }
  } catch (err) {
    if (err instanceof DecodeError) {
      throw new CorruptionError(
        file,
        offset,
        `bad version edit: ${err.message}`,
      );
    }
    throw err;
  }
  return e;
}

function readLevel(r: ByteReader): number {
  const level = r.u8("level");
  if (level >= NUM_LEVELS) throw new DecodeError(`level ${level} out of range`);
  return level;
}

/** The state a manifest describes, folded from its edits. */
export interface ManifestState {
  logNumber: number;
  nextFileNumber: number;
  lastSeq: number;
  /** Live tables per level, keyed by file number. */
  levels: Map<number, TableMeta>[];
  compactPointers: (Uint8Array | undefined)[];
  /** Persisted range tombstones, by {@link tombstoneId}. */
  rangeTombstones: Map<string, RangeTombstone>;
  /** Bumped whenever `rangeTombstones` changes (readers cache an index). */
  rangeGeneration: number;
}

/** An empty state. */
export function emptyState(): ManifestState {
  return {
    logNumber: 0,
    nextFileNumber: 1,
    lastSeq: 0,
    levels: Array.from({ length: NUM_LEVELS }, () => new Map()),
    compactPointers: new Array(NUM_LEVELS).fill(undefined),
    rangeTombstones: new Map(),
    rangeGeneration: 0,
  };
}

/** Folds one edit into a state (mutating it). */
export function applyEdit(s: ManifestState, e: VersionEdit): void {
  if (e.logNumber !== undefined) s.logNumber = e.logNumber;
  if (e.nextFileNumber !== undefined) s.nextFileNumber = e.nextFileNumber;
  if (e.lastSeq !== undefined) s.lastSeq = Math.max(s.lastSeq, e.lastSeq);
  for (const d of e.deleted ?? []) s.levels[d.level].delete(d.fileNumber);
  for (const t of e.added ?? []) s.levels[t.level].set(t.fileNumber, t);
  for (const p of e.compactPointers ?? []) s.compactPointers[p.level] = p.key;
  for (const t of e.rangeTombstonesAdded ?? []) {
    s.rangeTombstones.set(tombstoneId(t), t);
    s.rangeGeneration++;
  }
  for (const t of e.rangeTombstonesDeleted ?? []) {
    s.rangeTombstones.delete(tombstoneId(t));
    s.rangeGeneration++;
  }
}

/** An edit that recreates `s` from nothing: the first record of a new manifest. */
export function snapshotEdit(s: ManifestState): VersionEdit {
  const added: TableMeta[] = [];
  for (const level of s.levels) for (const t of level.values()) added.push(t);
  const compactPointers: { level: number; key: Uint8Array }[] = [];
  s.compactPointers.forEach((key, level) => {
    if (key) compactPointers.push({ level, key });
  });
  return {
    logNumber: s.logNumber,
    nextFileNumber: s.nextFileNumber,
    lastSeq: s.lastSeq,
    added,
    compactPointers,
    rangeTombstonesAdded: [...s.rangeTombstones.values()],
  };
}

/** What readManifest found. */
export interface ManifestRead {
  state: ManifestState;
  manifestFile: string;
  /**
   * A torn last record: an edit whose fsync never completed, so it never
   * counted. A crash cannot tear an edit that was acknowledged, so if the
   * state it leaves is inconsistent (files missing), open reports corruption.
   */
  tornTail?: { offset: number; bytes: number; reason: string };
}

/** Reads CURRENT and the manifest it names. Returns undefined for a new store. */
export function readManifest(
  fs: FileSystem,
  dir: string,
): ManifestRead | undefined {
  const currentPath = currentPathOf(dir);
  if (!fs.exists(currentPath)) return undefined;
  const text = new TextDecoder().decode(fs.readFile(currentPath));
  const manifestFile = parseCurrentContents(text);
  if (manifestFile === undefined) {
    throw new CorruptionError(
      currentPath,
      0,
      "CURRENT does not name a manifest (expected MANIFEST-NNNNNN and a newline)",
    );
  }
  const path = `${dir}/${manifestFile}`;
  if (!fs.exists(path)) {
    throw new CorruptionError(
      currentPath,
      0,
      `CURRENT names ${manifestFile}, which does not exist`,
    );
  }
  const log = parseLog(fs.readFile(path), path, MANIFEST_MAGIC);
  if (log.records.length === 0) {
    throw new CorruptionError(path, 8, "manifest holds no complete edit");
  }
  const state = emptyState();
  for (const rec of log.records) {
    if (rec.type !== RECORD_EDIT) {
      throw new CorruptionError(
        path,
        rec.offset,
        `unknown manifest record type ${rec.type}`,
      );
    }
    applyEdit(state, decodeEdit(rec.payload, path, rec.offset));
  }
  return { state, manifestFile, tornTail: log.tornTail };
}

/** Appends edits to a live manifest; one fsync per edit. */
export class ManifestWriter {
  #file: WritableFile;
  readonly name: string;
  /** Size of the file once its first record (the full snapshot) was written. */
  snapshotBytes = 0;
  private constructor(file: WritableFile, name: string) {
    this.#file = file;
    this.name = name;
  }

  /**
   * Starts a new manifest holding `state`, then points CURRENT at it.
   * The old manifest stays valid until CURRENT is renamed.
   */
  static async create(
    fs: FileSystem,
    dir: string,
    number: number,
    state: ManifestState,
  ): Promise<ManifestWriter> {
    const writer = await ManifestWriter.start(fs, dir, number, state);
    await setCurrent(fs, dir, writer.name);
    return writer;
  }

  /**
   * Writes a new manifest whose first record is the full `state`, durably
   * (file and directory entry), without pointing CURRENT at it: until the
   * caller does, a crash leaves the old manifest in charge and this file an
   * unreferenced leftover that the next open deletes.
   */
  static async start(
    fs: FileSystem,
    dir: string,
    number: number,
    state: ManifestState,
  ): Promise<ManifestWriter> {
    const name = manifestFileName(number);
    const file = await createLog(fs, `${dir}/${name}`, MANIFEST_MAGIC);
    const writer = new ManifestWriter(file, name);
    try {
      await writer.append(snapshotEdit(state));
      writer.snapshotBytes = file.size;
      await fs.syncDir(dir);
    } catch (err) {
      writer.close();
      throw err;
    }
    return writer;
  }

  /** Bytes in the manifest so far. */
  get size(): number {
    return this.#file.size;
  }

  /** Appends one edit and fdatasyncs it; the edit counts once this resolves. */
  async append(edit: VersionEdit): Promise<void> {
    const w = new ByteWriter(256);
    frameRecord(w, RECORD_EDIT, encodeEdit(edit));
    this.#file.append(w.finish());
    await this.#file.sync();
  }

  close(): void {
    this.#file.close();
  }
}

/** Atomically points CURRENT at `manifest` (write temp, sync, rename, sync dir). */
export async function setCurrent(
  fs: FileSystem,
  dir: string,
  manifest: string,
): Promise<void> {
  const tmp = `${dir}/${tempFileName(CURRENT_FILE)}`;
  // A leftover (or a planted symlink) is unlinked, never written through.
  fs.remove(tmp);
  const f = fs.openWritable(tmp, { exclusive: true });
  try {
    f.append(new TextEncoder().encode(currentContents(manifest)));
    await f.sync();
  } finally {
    f.close();
  }
  fs.rename(tmp, currentPathOf(dir));
  await fs.syncDir(dir);
}
