/**
 * The one module through which shale touches files. Everything else takes a
 * {@link FileSystem}, so tests can swap in {@link FaultyFileSystem} to fail
 * writes or fsyncs at chosen points, or to simulate a power cut that drops
 * every byte not yet fsync'd.
 *
 * Reads are synchronous positional reads (`node:fs` readSync with a
 * position): a page-cache hit costs a few microseconds, an order of
 * magnitude less than any async read. Deno implements them as seek + read on
 * the shared file position, so a read handle must never be shared with async
 * reads or with another thread.
 *
 * @module
 */
import * as nodeFs from "node:fs";
import { LockedError, wrapIoError } from "./errors.ts";

/** A file opened for appending (WAL, manifest, table being written). */
export interface WritableFile {
  readonly path: string;
  /** Bytes written so far (the append position). */
  readonly size: number;
  /** Appends all of `data` (synchronously: it goes to the page cache). */
  append(data: Uint8Array): void;
  /** fdatasync: durable once this resolves. Runs off the event loop. */
  sync(): Promise<void>;
  /** Cuts the file back to `len` bytes (drops a failed partial append). */
  truncate(len: number): void;
  close(): void;
}

/** A file opened for synchronous positional reads. */
export interface ReadableFile {
  readonly path: string;
  readonly size: number;
  /** Reads exactly `len` bytes at `pos` into a new buffer, or fewer at end of file. */
  readAt(pos: number, len: number): Uint8Array;
  close(): void;
}

/** A held lock on a data directory. */
export interface DirLock {
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

/** Mode of every file the engine creates: owner read and write only. */
export const FILE_MODE = 0o600;
/** Mode of a data directory the engine creates: owner only. */
export const DIR_MODE = 0o700;

/** File operations used by the engine. Paths are absolute or relative to cwd. */
export interface FileSystem {
  /** Creates (truncating, or exclusively) or opens a file for appending; new files get {@link FILE_MODE}. */
  openWritable(path: string, opts?: OpenWritableOptions): WritableFile;
  openReadable(path: string): ReadableFile;
  readFile(path: string): Uint8Array;
  exists(path: string): boolean;
  size(path: string): number;
  /** Truncates a file to `len` bytes and syncs it. */
  truncate(path: string, len: number): Promise<void>;
  rename(from: string, to: string): void;
  remove(path: string): void;
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

/** The real file system. */
export class RealFileSystem implements FileSystem {
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

/** The shared real file system. */
export const realFs: FileSystem = new RealFileSystem();

/** Kinds of operation a fault can be injected into. */
export type FaultOp =
  | "append"
  | "sync"
  | "truncate"
  | "rename"
  | "remove"
  | "open"
  | "syncDir";

/**
 * A change to a directory's entries not yet made durable by an fsync of
 * that directory; a power cut undoes it.
 */
type DirChange =
  | { kind: "create"; dir: string; path: string }
  | { kind: "mkdir"; dir: string; path: string }
  | {
    kind: "rename";
    dir: string;
    from: string;
    to: string;
    /** Durable bytes of the file the rename replaced at `to`, if any. */
    replaced: Uint8Array | undefined;
  }
  | { kind: "remove"; dir: string; path: string; bytes: Uint8Array };

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : i === 0 ? "/" : ".";
}

/**
 * A file system for tests: delegates to the real one, remembers how many
 * bytes of each file are known durable and which directory entries are,
 * and can
 * - throw on chosen operations (`failWhen`), e.g. the 3rd fsync of a WAL;
 * - simulate a power cut (`powerCut()`): every file is cut back to its last
 *   fsync'd length, files never synced lose all their bytes, every create,
 *   mkdir, rename and remove not followed by an fsync of its directory is
 *   undone, and every later operation throws, as if the process died with
 *   the machine.
 */
export class FaultyFileSystem implements FileSystem {
  #inner: FileSystem;
  #synced = new Map<string, number>();
  #dirChanges: DirChange[] = [];
  #dead = false;
  /** Return an Error to make that operation fail (it is thrown), or undefined. */
  failWhen: ((op: FaultOp, path: string) => Error | undefined) | undefined;

  constructor(inner: FileSystem = realFs) {
    this.#inner = inner;
  }

  #check(op: FaultOp, path: string): void {
    if (this.#dead) throw new Error("power is off");
    const err = this.failWhen?.(op, path);
    if (err) throw err;
  }

  openWritable(path: string, opts?: OpenWritableOptions): WritableFile {
    this.#check("open", path);
    const existed = this.#inner.exists(path);
    const inner = this.#inner.openWritable(path, opts);
    if (!existed) {
      this.#dirChanges.push({ kind: "create", dir: parentOf(path), path });
    }
    const fresh = opts?.truncate || opts?.exclusive;
    if (fresh || !this.#synced.has(path)) {
      // A file we have not seen synced is durable only up to what existed
      // before this process touched it.
      this.#synced.set(path, fresh ? 0 : inner.size);
    }
    const check = (op: FaultOp) => this.#check(op, path);
    const synced = this.#synced;
    return {
      path,
      get size() {
        return inner.size;
      },
      append(data: Uint8Array) {
        check("append");
        inner.append(data);
      },
      async sync() {
        check("sync");
        const len = inner.size;
        await inner.sync();
        check("sync");
        synced.set(path, len);
      },
      truncate(len: number) {
        check("truncate");
        inner.truncate(len);
        if ((synced.get(path) ?? 0) > len) synced.set(path, len);
      },
      close() {
        inner.close();
      },
    };
  }
  openReadable(path: string): ReadableFile {
    if (this.#dead) throw new Error("power is off");
    return this.#inner.openReadable(path);
  }
  readFile(path: string): Uint8Array {
    if (this.#dead) throw new Error("power is off");
    return this.#inner.readFile(path);
  }
  exists(path: string): boolean {
    return this.#inner.exists(path);
  }
  size(path: string): number {
    return this.#inner.size(path);
  }
  async truncate(path: string, len: number): Promise<void> {
    this.#check("sync", path);
    await this.#inner.truncate(path, len);
    this.#synced.set(path, len);
  }
  rename(from: string, to: string): void {
    this.#check("rename", from);
    const replaced = this.#inner.exists(to)
      ? this.#durableBytes(to)
      : undefined;
    this.#inner.rename(from, to);
    this.#dirChanges.push({
      kind: "rename",
      dir: parentOf(to),
      from,
      to,
      replaced,
    });
    const s = this.#synced.get(from);
    this.#synced.delete(from);
    if (s !== undefined) this.#synced.set(to, s);
    else this.#synced.delete(to);
  }
  remove(path: string): void {
    this.#check("remove", path);
    if (!this.#inner.exists(path)) return;
    const bytes = this.#durableBytes(path);
    this.#inner.remove(path);
    this.#dirChanges.push({ kind: "remove", dir: parentOf(path), path, bytes });
    this.#synced.delete(path);
  }
  readDir(dir: string): string[] {
    return this.#inner.readDir(dir);
  }
  mkdirp(dir: string): void {
    const created: string[] = [];
    for (let d = dir; !this.#inner.exists(d); d = parentOf(d)) {
      created.unshift(d);
      if (parentOf(d) === d) break;
    }
    this.#inner.mkdirp(dir);
    for (const path of created) {
      this.#dirChanges.push({ kind: "mkdir", dir: parentOf(path), path });
    }
  }
  dirMode(dir: string): number | null {
    return this.#inner.dirMode(dir);
  }
  async syncDir(dir: string): Promise<void> {
    this.#check("syncDir", dir);
    const pending = this.#dirChanges.length;
    await this.#inner.syncDir(dir);
    this.#check("syncDir", dir);
    // Changes made before the fsync started are durable now.
    this.#dirChanges = this.#dirChanges.filter((c, i) =>
      i >= pending || c.dir !== dir
    );
  }

  /** The bytes of `path` that would survive a power cut now. */
  #durableBytes(path: string): Uint8Array {
    const bytes = this.#inner.readFile(path);
    const len = this.#synced.get(path);
    return len === undefined ? bytes : bytes.subarray(0, len);
  }
  lock(path: string): DirLock {
    return this.#inner.lock(path);
  }

  /** True after {@link powerCut}. */
  get dead(): boolean {
    return this.#dead;
  }

  /**
   * Simulates losing power now: cuts every tracked file back to its durable
   * length, undoes every directory change not made durable by an fsync of
   * its directory (newest first), and fails every later operation. Returns
   * the number of bytes dropped.
   */
  async powerCut(): Promise<number> {
    this.#dead = true;
    let dropped = 0;
    for (const [path, len] of this.#synced) {
      if (!this.#inner.exists(path)) continue;
      const size = this.#inner.size(path);
      if (size > len) {
        dropped += size - len;
        await this.#inner.truncate(path, len);
      }
    }
    const changes = this.#dirChanges.reverse();
    this.#dirChanges = [];
    for (const c of changes) {
      switch (c.kind) {
        case "create":
          if (this.#inner.exists(c.path)) {
            dropped += this.#inner.size(c.path);
            this.#inner.remove(c.path);
          }
          break;
        case "mkdir":
          // Data directories are flat: their files, then the directory.
          if (!this.#inner.exists(c.path)) break;
          for (const name of this.#inner.readDir(c.path)) {
            this.#inner.remove(`${c.path}/${name}`);
          }
          this.#inner.remove(c.path);
          break;
        case "rename":
          if (this.#inner.exists(c.to)) this.#inner.rename(c.to, c.from);
          if (c.replaced) this.#restore(c.to, c.replaced);
          break;
        case "remove":
          this.#restore(c.path, c.bytes);
          break;
      }
    }
    return dropped;
  }

  #restore(path: string, bytes: Uint8Array): void {
    const f = this.#inner.openWritable(path, { truncate: true });
    try {
      f.append(bytes);
    } finally {
      f.close();
    }
  }
}
