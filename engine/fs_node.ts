/**
 * The real {@link FileSystem} through `node:fs`: the port used on Bun, where
 * `node:fs` is native (positional reads and writes are `pread`/`pwrite`,
 * `fdatasync` runs on a thread pool). It also runs on Deno, which is how its
 * tests run; Deno keeps its own port (`fs_deno.ts`) because Deno's `node:fs`
 * positional calls are a seek plus a read or write on the shared position.
 *
 * Appends are positional writes at the tracked size (the file is not opened
 * with O_APPEND), so cutting a failed partial append back needs no seek.
 *
 * `node:fs` has no `flock`: the LOCK file is locked with the C library's
 * `flock` through Bun's FFI (on the directory and on LOCK, as `fs_deno.ts`
 * does with `FsFile.tryLock`, the same lock), so a Deno and a Bun process
 * exclude each other too. The lock goes away with
 * the process however it dies. Where neither exists (Windows on Bun), an
 * exclusively created `LOCK.pid` naming the holder's pid stands in.
 *
 * @module
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";
import process from "node:process";
import { LockedError, wrapIoError } from "./errors.ts";
import type {
  DirLock,
  FileSystem,
  OpenWritableOptions,
  ReadableFile,
  WritableFile,
} from "./fs.ts";
import { DIR_MODE, FILE_MODE } from "./fs_modes.ts";
import { appendAll, FdReadable, lockDirAndFile, zeros } from "./fs_shared.ts";

class NodeWritable implements WritableFile {
  #fd: number;
  size: number;
  /** The file's length, zeros preallocated past `size` included. */
  #end: number;
  constructor(readonly path: string, fd: number, size: number) {
    this.#fd = fd;
    this.size = size;
    this.#end = size;
  }
  append(data: Uint8Array): void {
    try {
      appendAll(
        this,
        data,
        (d, off) =>
          fs.writeSync(this.#fd, d, off, d.length - off, this.size + off),
      );
    } finally {
      if (this.size > this.#end) this.#end = this.size;
    }
  }
  preallocate(end: number): void {
    // Appends here are positional writes at `size`, so zeros written past
    // it are overwritten in place, whatever the open flags.
    if (end <= this.#end) return;
    const start = this.#end;
    appendAll(
      { path: this.path, size: start },
      zeros(end - start),
      (d, off) => fs.writeSync(this.#fd, d, off, d.length - off, start + off),
    );
    this.#end = end;
  }
  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.fdatasync(this.#fd, (err) => {
        if (err) reject(wrapIoError(err, `fdatasync ${this.path}`));
        else resolve();
      });
    });
  }
  truncate(len: number): void {
    try {
      fs.ftruncateSync(this.#fd, len);
    } catch (err) {
      throw wrapIoError(err, `truncate ${this.path}`);
    }
    this.size = len;
    this.#end = len;
  }
  close(): void {
    try {
      fs.closeSync(this.#fd);
    } catch {
      // already closed
    }
  }
}

/** The real file system through `node:fs` (Bun's port). */
export class NodeFileSystem implements FileSystem {
  openWritable(path: string, opts?: OpenWritableOptions): WritableFile {
    const c = fs.constants;
    // O_EXCL: fail if anything, a symlink included, is at `path`.
    const flags = c.O_WRONLY | c.O_CREAT |
      (opts?.exclusive ? c.O_EXCL : 0) | (opts?.truncate ? c.O_TRUNC : 0);
    try {
      const fd = fs.openSync(path, flags, FILE_MODE);
      try {
        return new NodeWritable(path, fd, fs.fstatSync(fd).size);
      } catch (err) {
        fs.closeSync(fd);
        throw err;
      }
    } catch (err) {
      throw wrapIoError(err, `open ${path} for writing`);
    }
  }
  openReadable(path: string): ReadableFile {
    return FdReadable.open(path);
  }
  readFile(path: string): Uint8Array {
    // A plain Uint8Array, not a Buffer: Buffer.slice shares memory, where
    // the engine's callers expect Uint8Array.slice to copy.
    const b = fs.readFileSync(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  exists(path: string): boolean {
    return fs.statSync(path, { throwIfNoEntry: false }) !== undefined;
  }
  size(path: string): number {
    return fs.statSync(path).size;
  }
  async truncate(path: string, len: number): Promise<void> {
    const f = await fs.promises.open(path, "r+");
    try {
      await f.truncate(len);
      await f.datasync();
    } finally {
      await f.close();
    }
  }
  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  }
  remove(path: string): void {
    try {
      fs.unlinkSync(path);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "ENOENT") return;
      // An empty directory (as Deno.removeSync removes it too).
      if (code === "EISDIR" || code === "EPERM") fs.rmdirSync(path);
      else throw err;
    }
  }
  async removeAsync(path: string): Promise<void> {
    try {
      await fs.promises.unlink(path);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "ENOENT") return;
      // An empty directory (as Deno.remove removes it too).
      if (code === "EISDIR" || code === "EPERM") await fs.promises.rmdir(path);
      else throw err;
    }
  }
  readDir(dir: string): string[] {
    return fs.readdirSync(dir);
  }
  mkdirp(dir: string): void {
    fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  }
  dirMode(dir: string): number | null {
    if (process.platform === "win32") return null;
    return fs.statSync(dir).mode & 0o777;
  }
  async syncDir(dir: string): Promise<void> {
    // Windows cannot open a directory as a file; NTFS journals renames.
    if (process.platform === "win32") return;
    const f = await fs.promises.open(dir, "r");
    try {
      await f.sync();
    } finally {
      await f.close();
    }
  }
  lock(path: string): DirLock {
    const flock = libcFlock();
    if (flock === undefined) return pidFileLock(path);
    return lockDirAndFile<number>(path, {
      openDir: (dir) => fs.openSync(dir, fs.constants.O_RDONLY),
      openFile: (p) =>
        fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_CREAT, FILE_MODE),
      tryLock: (fd) => flock(fd, LOCK_EX | LOCK_NB) === 0,
      release: (fd) => {
        flock(fd, LOCK_UN);
        fs.closeSync(fd);
      },
    });
  }
}

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

type Flock = (fd: number, op: number) => number;
let flockFn: Flock | null | undefined;

/** The C library's `flock` through Bun's FFI, or undefined where there is none. */
function libcFlock(): Flock | undefined {
  if (flockFn !== undefined) return flockFn ?? undefined;
  flockFn = null;
  if (!("Bun" in globalThis) || process.platform === "win32") return undefined;
  // Loaded at run time by name: `bun:ffi` exists only on Bun, and Deno's
  // type checker must not try to resolve it.
  const ffi = createRequire(import.meta.url)("bun:ffi") as {
    dlopen(
      path: string,
      symbols: Record<string, { args: string[]; returns: string }>,
    ): { symbols: { flock: Flock } };
  };
  const libs = process.platform === "darwin"
    ? ["libc.dylib", "/usr/lib/libSystem.B.dylib"]
    : ["libc.so.6", "libc.so"];
  for (const lib of libs) {
    try {
      const h = ffi.dlopen(lib, {
        flock: { args: ["i32", "i32"], returns: "i32" },
      });
      flockFn = h.symbols.flock;
      return flockFn;
    } catch {
      // try the next name
    }
  }
  throw new Error(`cannot load flock from the C library (${libs.join(", ")})`);
}

/**
 * A lock for platforms without `flock`: `LOCK.pid` created exclusively with
 * this process's pid. A file left by a process that no longer runs (a
 * crash) is taken over.
 */
function pidFileLock(path: string): DirLock {
  const pidPath = `${path}.pid`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(pidPath, String(process.pid), {
        flag: "wx",
        mode: FILE_MODE,
      });
      return { release: () => fs.rmSync(pidPath, { force: true }) };
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
    }
    const holder = Number(fs.readFileSync(pidPath, "utf8"));
    if (Number.isSafeInteger(holder) && holder > 0 && alive(holder)) break;
    fs.rmSync(pidPath, { force: true });
  }
  throw new LockedError(path.replace(/[\\/]LOCK$/, ""));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}
