/**
 * The one module through which shale touches files. Everything else takes a
 * {@link FileSystem}, so tests can swap in `FaultyFileSystem`
 * (`testing/faulty_fs.ts`) to fail writes or fsyncs at chosen points, or to
 * simulate a power cut that drops every byte not yet fsync'd.
 *
 * Reads are synchronous positional reads (`node:fs` readSync with a
 * position): a page-cache hit costs a few microseconds, an order of
 * magnitude less than any async read.
 *
 * The real implementations are runtime ports: `fs_deno.ts` (Deno's file API)
 * and `fs_node.ts` (`node:fs`, used on Bun); {@link realFs} is the one for
 * the runtime this process runs on.
 *
 * @module
 */
import { DenoFileSystem } from "./fs_deno.ts";
import { NodeFileSystem } from "./fs_node.ts";
import { isBun } from "./runtime.ts";

/** A file opened for appending (WAL, manifest, table being written). */
export interface WritableFile {
  /** The path it was opened at. */
  readonly path: string;
  /** Bytes written so far (the append position). */
  readonly size: number;
  /** Appends all of `data` (synchronously: it goes to the page cache). */
  append(data: Uint8Array): void;
  /** fdatasync: durable once this resolves. Runs off the event loop. */
  sync(): Promise<void>;
  /**
   * Cuts the file back to `len` bytes (drops a failed partial append, and
   * any space {@link preallocate} reserved past `len`).
   */
  truncate(len: number): void;
  /**
   * Writes zeros from the file's end up to `end` without moving the append
   * position, so later appends overwrite blocks that exist already: once
   * the zeros are synced, an fdatasync after an append has no block
   * allocation or file size to record, only data (about half the time on
   * ext4). No-op when the file is `end` bytes long already. Optional, and
   * only on a file opened fresh (`truncate` or `exclusive`): appends to
   * any other file go to its end (O_APPEND), past the zeros.
   */
  preallocate?(end: number): void;
  /** Closes the file; unsynced bytes may still be lost to a power cut. */
  close(): void;
}

/** A file opened for synchronous positional reads. */
export interface ReadableFile {
  /** The path it was opened at. */
  readonly path: string;
  /** Its length in bytes when opened. */
  readonly size: number;
  /** Reads exactly `len` bytes at `pos` into a new buffer, or fewer at end of file. */
  readAt(pos: number, len: number): Uint8Array;
  /** Closes the file. */
  close(): void;
}

/** A held lock on a data directory. */
export interface DirLock {
  /** Lets go of the lock (another process may take it from then on). */
  release(): void;
}

/** Options of {@link FileSystem.openWritable}. */
export interface OpenWritableOptions {
  /** Start empty (truncate an existing file). */
  truncate?: boolean;
  /**
   * Create the file exclusively (O_CREAT|O_EXCL): fail if anything exists at
   * `path`, a symlink included, so a planted link can never make the engine
   * write through it to another file.
   */
  exclusive?: boolean;
}

export { DIR_MODE, FILE_MODE } from "./fs_modes.ts";

/** File operations used by the engine. Paths are absolute or relative to cwd. */
export interface FileSystem {
  /** Creates (truncating, or exclusively) or opens a file for appending; new files get {@link FILE_MODE}. */
  openWritable(path: string, opts?: OpenWritableOptions): WritableFile;
  /** Opens an existing file for positional reads. */
  openReadable(path: string): ReadableFile;
  /** The whole content of a file. */
  readFile(path: string): Uint8Array;
  /** Whether anything exists at `path`. */
  exists(path: string): boolean;
  /** A file's length in bytes. */
  size(path: string): number;
  /** Truncates a file to `len` bytes and syncs it. */
  truncate(path: string, len: number): Promise<void>;
  /** Renames atomically, replacing `to` (durable after {@link syncDir}). */
  rename(from: string, to: string): void;
  /** Removes a file or an empty directory. */
  remove(path: string): void;
  /**
   * {@link remove} off the calling thread (the runtime's I/O threads), for
   * deleting obsolete files without stalling the event loop: unlinking a
   * table of several MiB takes milliseconds of kernel time. Optional: a file
   * system without it (the fault-injecting one) is deleted from with
   * {@link remove}.
   */
  removeAsync?(path: string): Promise<void>;
  /** The names (not paths) of the entries of `dir`. */
  readDir(dir: string): string[];
  /** Creates `dir` and missing parents with {@link DIR_MODE}. */
  mkdirp(dir: string): void;
  /** Permission bits of an existing directory, or null where there are none (Windows). */
  dirMode(dir: string): number | null;
  /** fsyncs a directory so renames and creations in it are durable. */
  syncDir(dir: string): Promise<void>;
  /**
   * Takes an exclusive, non-blocking lock on the data directory that holds
   * the lock file `path`; throws LockedError when held elsewhere.
   */
  lock(path: string): DirLock;
}

/** The real file system of the runtime this process runs on. */
export const realFs: FileSystem = isBun
  ? new NodeFileSystem()
  : new DenoFileSystem();
