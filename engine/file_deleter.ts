/**
 * Deletes obsolete files (tables replaced by a compaction, flushed WAL
 * segments, rolled-over manifests) without stalling the event loop.
 *
 * Unlinking a table of several MiB costs the kernel milliseconds (it frees
 * the file's blocks); done synchronously on the main thread, the deletions
 * after each compaction were among the longest event-loop stalls measured
 * in the HTTP benchmark while compaction was busy (up to 39 ms in one
 * task). Here each deletion runs on the runtime's I/O threads
 * ({@link FileSystem.removeAsync}); the store waits for them before it
 * releases its directory lock, and where a caller expects obsolete files
 * gone (after compactRange and compactUntilIdle).
 *
 * A failed deletion is not an error: open removes every file the manifest
 * does not reference.
 *
 * @module
 */
import type { FileSystem } from "./fs.ts";

/** Deletes files in the background and knows which deletions are pending. */
export class FileDeleter {
  #fs: FileSystem;
  #pending = new Set<Promise<void>>();

  constructor(fs: FileSystem) {
    this.#fs = fs;
  }

  /** Deletions started and not finished. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Starts deleting `path`: off the main thread when the file system can,
   * else at once. Never throws.
   */
  remove(path: string): void {
    const fs = this.#fs;
    if (fs.removeAsync === undefined) {
      try {
        fs.remove(path);
      } catch {
        // Left for the next open to remove.
      }
      return;
    }
    const p: Promise<void> = fs.removeAsync(path).catch(() => {
      // Left for the next open to remove.
    }).finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  /** Resolves once every deletion started so far (and since) has finished. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }
}
