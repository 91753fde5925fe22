/**
 * Offline integrity check of a data directory: the manifest and CURRENT,
 * every block of every live table (checksums and key order), and every WAL
 * record. Used by `shale verify`; reports problems instead of stopping at
 * the first one.
 *
 * @module
 */
import { BlockCache } from "./cache.ts";
import { compareEntries } from "./entry.ts";
import { CorruptionError, InvalidArgumentError } from "./errors.ts";
import type { FileSystem } from "./fs.ts";
import { realFs } from "./fs.ts";
import { readManifest } from "./manifest.ts";
import { TableReader } from "./sstable/reader.ts";
import {
  currentPath,
  FileType,
  lockPath,
  logFileName,
  parseFileName,
  tablePath,
} from "./filename.ts";
import { dataRecordCount, readWalEntries } from "./log_read.ts";

/** One problem found by verify. */
export interface VerifyError {
  /** The file the problem is in. */
  file: string;
  /** Where in the file. */
  offset: number;
  /** What is wrong. */
  message: string;
}

/** What verify checked and found. */
export interface VerifyReport {
  /** Files read (tables, WAL segments, the manifest). */
  files: number;
  /** Table files checked. */
  tables: number;
  /** Entries read from the tables. */
  entries: number;
  /** Records read from the WAL. */
  walRecords: number;
  /** Incomplete records at a WAL's end (a crash mid-append): not errors. */
  tornTails: VerifyError[];
  /** Real problems: checksum mismatches, bad structure, missing files. */
  errors: VerifyError[];
}

/** Options of {@link verify}. */
export interface VerifyOptions {
  /** Called after each file, with how many of how many are done. */
  onProgress?: (done: number, total: number, file: string) => void;
  /** The file system to read through. Default: the real one. */
  fs?: FileSystem;
}

function toVerifyError(err: unknown, file: string): VerifyError {
  if (err instanceof CorruptionError) {
    return { file: err.file, offset: err.offset, message: err.message };
  }
  return {
    file,
    offset: 0,
    message: err instanceof Error ? err.message : String(err),
  };
}

/** The names in `dir` that a store writes (CURRENT, manifests, WALs, tables). */
function storeFiles(fs: FileSystem, dir: string): string[] {
  if (!fs.exists(dir)) return [];
  return fs.readDir(dir).filter((name) => {
    const type = parseFileName(name)?.type;
    return type !== undefined && type !== FileType.Lock &&
      type !== FileType.Temp;
  });
}

/**
 * Checks every checksum in `dir`. Takes the directory lock, so it refuses to
 * run beside a live server (whose files are changing under it).
 *
 * @throws {InvalidArgumentError} `dir` holds no store (none of CURRENT, a
 * manifest, a WAL segment or a table): a mistyped path is an error, not a
 * clean report, and nothing is written into it.
 */
export function verify(dir: string, opts: VerifyOptions = {}): VerifyReport {
  const fs = opts.fs ?? realFs;
  const names = storeFiles(fs, dir);
  if (names.length === 0) {
    throw new InvalidArgumentError(
      `${dir} is not a shale data directory: it holds no CURRENT, manifest, WAL or table file`,
    );
  }
  const report: VerifyReport = {
    files: 0,
    tables: 0,
    entries: 0,
    walRecords: 0,
    tornTails: [],
    errors: [],
  };
  const lock = fs.lock(lockPath(dir));
  try {
    let manifest: ReturnType<typeof readManifest>;
    try {
      manifest = readManifest(fs, dir);
    } catch (err) {
      report.errors.push(toVerifyError(err, currentPath(dir)));
    }
    const orphanTables = names.filter((n) =>
      parseFileName(n)?.type === FileType.Table
    ).length;
    if (!manifest && !fs.exists(currentPath(dir)) && orphanTables > 0) {
      // A store writes CURRENT before its first table: tables without it
      // are data no manifest can find.
      report.errors.push({
        file: currentPath(dir),
        offset: 0,
        message:
          `no CURRENT names a manifest, but the directory holds ${orphanTables} table files`,
      });
    }
    const tables = manifest
      ? manifest.state.levels.flatMap((l) => [...l.values()])
      : [];
    if (manifest?.tornTail) {
      // An edit torn by a power cut never counted; it is damage only if the
      // state left behind misses files (checked below and per table).
      report.tornTails.push({
        file: `${dir}/${manifest.manifestFile}`,
        offset: manifest.tornTail.offset,
        message: `manifest's last edit is torn (${manifest.tornTail.reason})`,
      });
    }
    if (manifest) {
      const wal = logFileName(manifest.state.logNumber);
      if (!fs.exists(`${dir}/${wal}`)) {
        report.errors.push({
          file: `${dir}/${manifest.manifestFile}`,
          offset: 0,
          message:
            `the manifest needs WAL ${wal} for replay, but it is missing`,
        });
      }
    }
    const logs: string[] = [];
    const logNumber = new Map<string, number>();
    for (const name of fs.readDir(dir)) {
      const f = parseFileName(name);
      if (f?.type !== FileType.Log) continue;
      if (manifest && f.number! < manifest.state.logNumber) continue;
      logs.push(name);
      logNumber.set(name, f.number!);
    }
    logs.sort((a, b) => logNumber.get(a)! - logNumber.get(b)!);
    const total = tables.length + logs.length;
    let done = 0;
    const cache = new BlockCache(0);
    for (const t of tables) {
      const path = tablePath(dir, t.fileNumber);
      opts.onProgress?.(done, total, path);
      report.files++;
      report.tables++;
      let reader: TableReader | undefined;
      try {
        reader = TableReader.open(fs, path, t.fileNumber, cache);
        const it = reader.iterator();
        let prevKey: Uint8Array | undefined;
        let prevSeq = 0;
        for (it.seekToFirst(); it.valid(); it.next()) {
          const e = it.entry();
          if (
            prevKey && compareEntries(prevKey, prevSeq, e.key, e.seq) >= 0
          ) {
            throw new CorruptionError(path, 0, "entries out of order");
          }
          prevKey = e.key.slice();
          prevSeq = e.seq;
          report.entries++;
        }
      } catch (err) {
        report.errors.push(toVerifyError(err, path));
      } finally {
        reader?.close();
      }
      done++;
    }
    for (const name of logs) {
      const path = `${dir}/${name}`;
      opts.onProgress?.(done, total, path);
      report.files++;
      try {
        // Salvage mode reports every bad record instead of stopping at the
        // first; the rule for what may be torn is the one open applies.
        const { log } = readWalEntries(fs, path, {
          salvage: true,
          mayBeTorn: name === logs[logs.length - 1],
        });
        report.walRecords += dataRecordCount(log);
        for (const s of log.skipped) {
          report.errors.push({
            file: path,
            offset: s.offset,
            message: s.reason,
          });
        }
        if (log.tornTail) {
          report.tornTails.push({
            file: path,
            offset: log.tornTail.offset,
            message:
              `bad tail of ${log.tornTail.bytes} bytes (${log.tornTail.reason}) in the newest WAL segment of a store that was not closed cleanly: it can be a torn write (never acknowledged), and open truncates it`,
          });
        }
      } catch (err) {
        report.errors.push(toVerifyError(err, path));
      }
      done++;
    }
    opts.onProgress?.(done, total, "");
  } finally {
    lock.release();
  }
  return report;
}
