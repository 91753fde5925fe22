/**
 * A file system for tests that need a write to stay in flight: accepted by
 * the engine, not yet durable, so not yet visible to readers.
 *
 * @module
 */
import { FaultyFileSystem } from "../engine/testing/faulty_fs.ts";
import type {
  FileSystem,
  OpenWritableOptions,
  WritableFile,
} from "../engine/fs.ts";
import { realFs } from "../engine/fs.ts";

/**
 * The real file system, except that WAL fsyncs wait while `hold()` is in
 * effect: a write accepted then stays in flight (accepted, not visible)
 * until `release()`.
 */
export class HeldSyncFs extends FaultyFileSystem {
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;
  /** Resolves when a WAL fsync is waiting on the hold. */
  reached: Promise<void> = Promise.resolve();
  #reached: (() => void) | undefined;

  constructor(inner: FileSystem = realFs) {
    super(inner);
  }

  /** From now on, WAL fsyncs wait until {@link release}. */
  hold(): void {
    this.#held = new Promise((r) => this.#release = r);
    this.reached = new Promise((r) => this.#reached = r);
  }

  /** Lets held and later fsyncs through. */
  release(): void {
    this.#release?.();
    this.#held = undefined;
  }

  override openWritable(
    path: string,
    opts?: OpenWritableOptions,
  ): WritableFile {
    const inner = super.openWritable(path, opts);
    if (!path.endsWith(".log")) return inner;
    return {
      path,
      get size() {
        return inner.size;
      },
      append: (d) => inner.append(d),
      truncate: (n) => inner.truncate(n),
      close: () => inner.close(),
      sync: async () => {
        const held = this.#held;
        if (held) {
          this.#reached?.();
          await held;
        }
        await inner.sync();
      },
    };
  }
}
