/**
 * Open-time recovery: from what is in a data directory to the state a store
 * starts from, with a report of what was found and done (RecoveryInfo).
 *
 * {@link recover} reads CURRENT and the manifest it names (refusing a
 * format version it does not know, see manifest.ts), checks that every file
 * the manifest needs exists, and replays every WAL segment the manifest does
 * not cover, oldest first, into one memtable. Only the newest segment may end
 * in a torn write, which is cut off: a segment is complete and durable before
 * the next one gets a record, and one closed cleanly ends with a marker
 * (wal.ts). The caller then starts a new WAL segment and manifest and calls
 * {@link removeUnreferenced} to delete crash leftovers.
 *
 * @module
 */
import { CorruptionError } from "./errors.ts";
import {
  FileType,
  logFileName,
  logPath,
  numberInName,
  parseFileName,
  tableFileName,
} from "./filename.ts";
import type { Entry } from "./entry.ts";
import type { FileSystem } from "./fs.ts";
import type { ManifestRead, ManifestState } from "./manifest.ts";
import { emptyState, readManifest } from "./manifest.ts";
import { Memtable } from "./memtable.ts";
import type { RecoveryInfo } from "./types.ts";
import { dataRecordCount, readWalEntries } from "./log_read.ts";

/** What {@link recover} found: the state a store starts from. */
export interface Recovered {
  /** The manifest's state (empty for a new store). */
  state: ManifestState;
  /** The manifest file CURRENT named, if any. */
  manifestFile?: string;
  /** The next file number: above every number any file already has. */
  nextFile: number;
  /** The highest seqno in the manifest or in any replayed record. */
  lastSeq: number;
  /** Every replayed record; empty when nothing needed replay. */
  replayed: Memtable;
  /**
   * The replayed entries in log order (ascending seqno, a batch's entries
   * adjacent), views of the logs read; they seed the change history.
   */
  entries: Entry[];
  /** Numbers of the WAL segments replayed, oldest first. */
  replayedLogs: number[];
  /** What recovery found and did (`ms` and `warnings` are the caller's). */
  info: RecoveryInfo;
}

/** Options of {@link recover}. */
export interface RecoverOptions {
  /** Skip corrupt WAL records in the middle of a log instead of failing. */
  salvage: boolean;
}

/**
 * Recovers the state stored in `dir` (the caller holds its lock). Throws
 * CorruptionError when the directory cannot be trusted (and `salvage` does
 * not apply), FormatVersionError for an unknown format version.
 */
export async function recover(
  fs: FileSystem,
  dir: string,
  options: RecoverOptions,
): Promise<Recovered> {
  const info: RecoveryInfo = {
    ms: 0,
    walFiles: 0,
    walRecords: 0,
    tornTails: [],
    skipped: [],
    removedFiles: [],
    warnings: [],
  };
  const found = readManifest(fs, dir);
  const state = found?.state ?? emptyState();
  const names = fs.readDir(dir);
  const oldManifest = found?.manifestFile;
  if (found) checkManifestFiles(dir, found, new Set(names), options, info);
  let maxNumber = 0;
  const logs: number[] = [];
  for (const name of names) {
    // Every numbered name counts, leftovers included: new files are
    // created exclusively, so a number must never be handed out twice.
    maxNumber = Math.max(maxNumber, numberInName(name) ?? 0);
    const f = parseFileName(name);
    if (f?.type === FileType.Log && f.number! >= state.logNumber) {
      logs.push(f.number!);
    }
  }
  const mf = oldManifest ? parseFileName(oldManifest)!.number! : 0;
  const nextFile = Math.max(
    state.nextFileNumber,
    maxNumber + 1,
    mf + 1,
  );
  let lastSeq = state.lastSeq;
  logs.sort((a, b) => a - b);

  // Replay every WAL segment the manifest does not cover, oldest first,
  // into one memtable that will be flushed in the background.
  const replayed = new Memtable();
  const replayedLogs: number[] = [];
  const replayedEntries: Entry[] = [];
  for (const n of logs) {
    const path = logPath(dir, n);
    // Only the newest segment can end in a torn write: a segment is
    // complete and durable before the next one gets its first record
    // (Db's rotation), and one closed cleanly ends with a marker (close()).
    const { entries, log } = readWalEntries(fs, path, {
      salvage: options.salvage,
      mayBeTorn: n === logs[logs.length - 1],
    });
    info.walFiles++;
    info.walRecords += dataRecordCount(log);
    for (const s of log.skipped) {
      info.skipped.push({ file: path, ...s });
    }
    if (log.tornTail) {
      // Never acknowledged: a write is acknowledged only after its
      // record (and everything before it) was fdatasync'd.
      info.tornTails.push({ file: path, ...log.tornTail });
    }
    if (log.tornTail || log.zeroFill) {
      // Cut off before a newer segment starts: an older segment must end
      // at its last record (a bad or zero tail there is corruption).
      await fs.truncate(path, log.validEnd);
    }
    for (const e of entries) {
      replayed.add(e);
      replayedEntries.push(e);
      if (e.seq > lastSeq) lastSeq = e.seq;
    }
    replayedLogs.push(n);
  }
  return {
    state,
    manifestFile: oldManifest,
    nextFile,
    lastSeq,
    replayed,
    entries: replayedEntries,
    replayedLogs,
    info,
  };
}

/**
 * The manifest must describe files that exist: every live table, and the
 * WAL segment replay starts at. An acknowledged edit cannot be lost to a
 * crash (it counts only once fsync'd), so a missing file means damage,
 * e.g. a manifest whose last edit was cut off: refuse to open rather than
 * serve a store with silently missing data (salvage opens anyway without
 * the missing WAL, and says so).
 */
function checkManifestFiles(
  dir: string,
  found: ManifestRead,
  names: Set<string>,
  options: RecoverOptions,
  info: RecoveryInfo,
): void {
  const path = `${dir}/${found.manifestFile}`;
  const torn = found.tornTail;
  const why = torn
    ? `; the manifest's last edit is torn at offset ${torn.offset}, so it describes an older state than the files on disk`
    : "";
  if (torn) info.tornTails.push({ file: path, ...torn });
  for (const level of found.state.levels) {
    for (const n of level.keys()) {
      if (!names.has(tableFileName(n))) {
        throw new CorruptionError(
          path,
          torn?.offset ?? 0,
          `the manifest lists table ${
            tableFileName(n)
          }, which is missing${why}`,
        );
      }
    }
  }
  const wal = logFileName(found.state.logNumber);
  if (!names.has(wal)) {
    const what =
      `the manifest needs WAL ${wal} for replay, but it is missing${why}`;
    if (!options.salvage) {
      throw new CorruptionError(path, torn?.offset ?? 0, what);
    }
    info.skipped.push({ file: path, offset: 0, reason: what });
  }
}

/** The files a freshly opened store keeps besides the manifest's tables. */
export interface LiveFiles {
  /** Replayed WAL segments not yet flushed. */
  logs: Set<number>;
  /** The WAL segment now taking writes. */
  walNumber: number;
  /** The manifest file now in use. */
  manifest: string;
}

/**
 * Deletes files `state` and `live` do not reference (crash leftovers: old
 * manifests and WAL segments, unreferenced tables, temp files) and returns
 * their names. Names shale does not own are left alone.
 */
export function removeUnreferenced(
  fs: FileSystem,
  dir: string,
  state: ManifestState,
  live: LiveFiles,
): string[] {
  const tables = new Set<number>();
  for (const level of state.levels) {
    for (const n of level.keys()) tables.add(n);
  }
  const removed: string[] = [];
  for (const name of fs.readDir(dir)) {
    let remove = false;
    const f = parseFileName(name);
    if (f?.type === FileType.Table) {
      remove = !tables.has(f.number!);
    } else if (f?.type === FileType.Log) {
      remove = f.number !== live.walNumber && !live.logs.has(f.number!);
    } else if (f?.type === FileType.Manifest) {
      remove = name !== live.manifest;
    } else if (f?.type === FileType.Temp) {
      remove = true;
    }
    if (remove) {
      fs.remove(`${dir}/${name}`);
      removed.push(name);
    }
  }
  return removed;
}

/**
 * Creates the data directory and missing parents, and fsyncs the parent of
 * each one created: until then a power cut can drop the new directory's
 * entry, and every acknowledged write in it with it.
 */
export async function makeDataDir(fs: FileSystem, dir: string): Promise<void> {
  const created: string[] = [];
  for (let d = dir.replace(/\/+$/, ""); d && !fs.exists(d);) {
    created.unshift(d);
    const i = d.lastIndexOf("/");
    if (i <= 0) break;
    d = d.slice(0, i);
  }
  if (created.length === 0) return;
  fs.mkdirp(dir);
  for (const d of created) {
    const i = d.lastIndexOf("/");
    await fs.syncDir(i > 0 ? d.slice(0, i) : i === 0 ? "/" : ".");
  }
}

/**
 * A warning when an existing data directory can be read or entered by
 * users other than its owner (a new one is created owner-only).
 */
export function accessWarning(fs: FileSystem, dir: string): string | undefined {
  if (!fs.exists(dir)) return undefined;
  const mode = fs.dirMode(dir);
  if (mode === null || (mode & 0o077) === 0) return undefined;
  return `data directory ${dir} is accessible to other users (mode ${
    mode.toString(8).padStart(4, "0")
  }); run chmod 700 on it`;
}
