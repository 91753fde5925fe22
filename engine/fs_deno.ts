/**
 * The real {@link FileSystem} on Deno: `Deno.FsFile` for appends, fdatasync
 * and the `flock` locks, and `node:fs` positional reads for tables (see
 * engine/fs.ts for why reads are synchronous). Deno implements a `node:fs`
 * positional read as seek + read on the file's shared position, so a read
 * handle must never be shared with async reads or with another thread.
 *
 * @module
 */
import * as nodeFs from "node:fs";
import { LockedError, wrapIoError } from "./errors.ts";
import type {
  DirLock,
  FileSystem,
  OpenWritableOptions,
  ReadableFile,
  WritableFile,
} from "./fs.ts";
import { DIR_MODE, FILE_MODE } from "./fs_modes.ts";

class RealWritable implements WritableFile {
  #file: Deno.FsFile;
  size: number;
  constructor(readonly path: string, file: Deno.FsFile, size: number) {
    this.#file = file;
    this.size = size;
  }
  append(data: Uint8Array): void {
    let off = 0;
    try {
      while (off < data.length) {
        off += this.#file.writeSync(data.subarray(off));
      }
    } catch (err) {
      // A partial append leaves torn bytes; the caller treats the store as
      // failed, and replay truncates the torn tail.
      this.size += off;
      throw wrapIoError(err, `append to ${this.path}`);
    }
    this.size += data.length;
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
  }
  close(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}

class RealReadable implements ReadableFile {
  #fd: number;
  constructor(readonly path: string, fd: number, readonly size: number) {
    this.#fd = fd;
  }
  readAt(pos: number, len: number): Uint8Array {
    const buf = new Uint8Array(len);
    let got = 0;
    while (got < len) {
      const n = nodeFs.readSync(this.#fd, buf, got, len - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    return got === len ? buf : buf.subarray(0, got);
  }
  close(): void {
    try {
      nodeFs.closeSync(this.#fd);
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
      return new RealWritable(path, file, size);
    } catch (err) {
      throw wrapIoError(err, `open ${path} for writing`);
    }
  }
  openReadable(path: string): ReadableFile {
    const fd = nodeFs.openSync(path, "r");
    const size = nodeFs.fstatSync(fd).size;
    return new RealReadable(path, fd, size);
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
    // The lock is held on the directory itself: deleting or replacing the
    // LOCK file cannot let a second process in. The LOCK file is locked too,
    // for older shale versions that only look at it.
    const dir = path.replace(/\/[^/]*$/, "") || ".";
    const files: Deno.FsFile[] = [];
    const release = () => {
      for (const f of files.reverse()) {
        try {
          f.unlockSync();
        } catch {
          // closing releases it anyway
        }
        f.close();
      }
    };
    try {
      for (
        const f of [
          () => Deno.openSync(dir, { read: true }),
          () =>
            Deno.openSync(path, {
              read: true,
              write: true,
              create: true,
              mode: FILE_MODE,
            }),
        ]
      ) {
        const file = f();
        files.push(file);
        if (!file.tryLockSync(true)) throw new LockedError(dir);
      }
    } catch (err) {
      release();
      throw err;
    }
    return { release };
  }
}
