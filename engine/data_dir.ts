/**
 * The data directory as the parts that create and delete files see it: its
 * file system and path, the counter that hands out file numbers (WAL
 * segments, tables and manifests share one sequence, as in LevelDB), and
 * removing files that became obsolete (on the runtime's I/O threads). The memtable rotation, the
 * scheduler and the manifest log all take a {@link DirFiles}; one
 * {@link DataDir} per Db serves them, so the numbering lives in one place.
 *
 * @module
 */
import type { FileSystem } from "./fs.ts";
import { tablePath } from "./filename.ts";
import { FileDeleter } from "./file_deleter.ts";

/** What a part that creates or deletes files needs of the directory. */
export interface DirFiles {
  fs: FileSystem;
  dir: string;
  /** Hands out the next file number. */
  newFileNumber(): number;
  /** The next file number to be handed out (for manifest edits). */
  nextFileNumber(): number;
  /** Deletes an obsolete file; a failure leaves it for the next open. */
  removeQuietly(path: string): void;
}

/** One Db's data directory: file numbers and obsolete-file removal. */
export class DataDir {
  /** The next file number to hand out (set from recovery at open). */
  next = 1;
  /**
   * Set once the Db let go of the directory (its lock may be someone
   * else's now): from then on no file is removed.
   */
  released = false;

  /** Deletes obsolete files off the main thread (engine/file_deleter.ts). */
  #deleter: FileDeleter;

  constructor(readonly fs: FileSystem, readonly dir: string) {
    this.#deleter = new FileDeleter(fs);
  }

  /** The directory as a {@link DirFiles}, to spread into a part's env. */
  files(): DirFiles {
    return {
      fs: this.fs,
      dir: this.dir,
      newFileNumber: () => this.next++,
      nextFileNumber: () => this.next,
      removeQuietly: (path) => this.removeQuietly(path),
    };
  }

  /** Deletes an obsolete file; a failure leaves it for the next open to remove. */
  removeQuietly(path: string): void {
    this.#deleter.remove(path);
  }

  /** Resolves once every deletion started so far has finished. */
  idle(): Promise<void> {
    return this.#deleter.idle();
  }

  /**
   * Deletes table `n`, which no Version references any more, unless the
   * directory was let go: a compaction that close() waits for still makes
   * its inputs obsolete, and they go before the lock is released, but a
   * Version unpinned later must not touch the directory.
   */
  removeTable(n: number): void {
    if (this.released) return;
    this.removeQuietly(tablePath(this.dir, n));
  }
}
