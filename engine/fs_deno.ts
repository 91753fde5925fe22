/**
 * The real {@link FileSystem} on Deno: `Deno.FsFile` for appends, fdatasync
 * and the `flock` locks, and `node:fs` positional reads for tables
 * (`FdReadable` in fs_shared.ts, shared with the node:fs port).
 *
 * @module
 */
import { wrapIoError } from "./errors.ts";
import type {
  DirLock,
  FileSystem,
  OpenWritableOptions,
  ReadableFile,
  WritableFile,
} from "./fs.ts";
import { DIR_MODE, FILE_MODE } from "./fs_modes.ts";
import { appendAll, FdReadable, lockDirAndFile, zeros } from "./fs_shared.ts";

class RealWritable implements WritableFile {
  #file: Deno.FsFile;
  size: number;
  /** The file's length, zeros preallocated past `size` included. */
  #end: number;
  /** Opened without O_APPEND: writes go to the position, kept at `size`. */
  #positional: boolean;
  constructor(
    readonly path: string,
    file: Deno.FsFile,
    size: number,
    positional: boolean,
  ) {
    this.#file = file;
    this.size = size;
    this.#end = size;
    this.#positional = positional;
  }
  append(data: Uint8Array): void {
    try {
      appendAll(this, data, (d, off) => this.#file.writeSync(d.subarray(off)));
    } finally {
      if (this.size > this.#end) this.#end = this.size;
    }
  }
  preallocate(end: number): void {
    if (!this.#positional || end <= this.#end) return;
    // Deno has no positional write: move to the end, write, move back.
    // All synchronous, so no append can come in between.
    try {
      this.#file.seekSync(this.#end, Deno.SeekMode.Start);
      appendAll(
        { path: this.path, size: this.#end },
        zeros(end - this.#end),
        (d, off) => this.#file.writeSync(d.subarray(off)),
      );
      this.#end = end;
    } finally {
      this.#file.seekSync(this.size, Deno.SeekMode.Start);
    }
  }
  async sync(): Promise<void> {
    try {
      await this.#file.syncData();
    } catch (err) {
      throw wrapIoError(err, `fdatasync ${this.path}`);
    }
  }
  truncate(len: number): void {
    try {
      this.#file.truncateSync(len);
      // A file opened without O_APPEND keeps its write position: move it
      // back too, or the next append would leave a hole of zeros.
      this.#file.seekSync(len, Deno.SeekMode.Start);
    } catch (err) {
      throw wrapIoError(err, `truncate ${this.path}`);
    }
    this.size = len;
    this.#end = len;
  }
  close(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}

/** The real file system through Deno's own file API. */
export class DenoFileSystem implements FileSystem {
  openWritable(path: string, opts?: OpenWritableOptions): WritableFile {
    try {
      const fresh = (opts?.truncate ?? false) || (opts?.exclusive ?? false);
      const file = Deno.openSync(path, {
        write: true,
        create: !opts?.exclusive,
        createNew: opts?.exclusive ?? false,
        truncate: opts?.truncate ?? false,
        append: !fresh,
        mode: FILE_MODE,
      });
      const size = file.statSync().size;
      return new RealWritable(path, file, size, fresh);
    } catch (err) {
      throw wrapIoError(err, `open ${path} for writing`);
    }
  }
  openReadable(path: string): ReadableFile {
    return FdReadable.open(path);
  }
  readFile(path: string): Uint8Array {
    return Deno.readFileSync(path);
  }
  exists(path: string): boolean {
    try {
      Deno.statSync(path);
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }
  size(path: string): number {
    return Deno.statSync(path).size;
  }
  async truncate(path: string, len: number): Promise<void> {
    const f = await Deno.open(path, { write: true });
    try {
      await f.truncate(len);
      await f.syncData();
    } finally {
      f.close();
    }
  }
  rename(from: string, to: string): void {
    Deno.renameSync(from, to);
  }
  remove(path: string): void {
    try {
      Deno.removeSync(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  async removeAsync(path: string): Promise<void> {
    try {
      await Deno.remove(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  readDir(dir: string): string[] {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  }
  mkdirp(dir: string): void {
    Deno.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  }
  dirMode(dir: string): number | null {
    const mode = Deno.statSync(dir).mode;
    return mode === null ? null : mode & 0o777;
  }
  async syncDir(dir: string): Promise<void> {
    const f = await Deno.open(dir, { read: true });
    try {
      await f.sync();
    } finally {
      f.close();
    }
  }
  lock(path: string): DirLock {
    return lockDirAndFile<Deno.FsFile>(path, {
      openDir: (dir) => Deno.openSync(dir, { read: true }),
      openFile: (p) =>
        Deno.openSync(p, {
          read: true,
          write: true,
          create: true,
          mode: FILE_MODE,
        }),
      tryLock: (f) => f.tryLockSync(true),
      release: (f) => {
        try {
          f.unlockSync();
        } catch {
          // closing releases it anyway
        }
        f.close();
      },
    });
  }
}
