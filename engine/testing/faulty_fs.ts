/**
 * A fault-injecting file system for tests: not part of the product surface
 * (`mod.ts` does not export it); tests import it from here.
 *
 * @module
 */
import type {
  DirLock,
  FileSystem,
  OpenWritableOptions,
  ReadableFile,
  WritableFile,
} from "../fs.ts";
import { realFs } from "../fs.ts";

/** Kinds of operation a fault can be injected into. */
export type FaultOp =
  | "append"
  | "preallocate"
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
 *   fsync'd length (zeros preallocated and synced past it stay, as zeros,
 *   or as what was written over them where `keepsUnsyncedSector` says),
 *   files never synced lose all their bytes, every create,
 *   mkdir, rename and remove not followed by an fsync of its directory is
 *   undone, and every later operation throws, as if the process died with
 *   the machine.
 */
export class FaultyFileSystem implements FileSystem {
  #inner: FileSystem;
  #synced = new Map<string, number>();
  /**
   * How far each preallocated file holds durable zeros past its synced
   * length: the file's length at its last fsync. A power cut keeps them,
   * as a real one does.
   */
  #zeroedTo = new Map<string, number>();
  #dirChanges: DirChange[] = [];
  #dead = false;
  /** Return an Error to make that operation fail (it is thrown), or undefined. */
  failWhen: ((op: FaultOp, path: string) => Error | undefined) | undefined;
  /**
   * Which sectors (512 bytes, by file offset) written since the last fsync
   * into preallocated, synced zeros a power cut keeps: the device may have
   * written any subset of them (nothing journals their order). Unset, none
   * is kept: they all read as zeros again. Space past the zeros (a growing
   * file) always loses its unsynced bytes, as on ext4, which journals a new
   * size only after the data.
   */
  keepsUnsyncedSector: ((path: string, offset: number) => boolean) | undefined;

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
    const zeroedTo = this.#zeroedTo;
    zeroedTo.delete(path);
    /** The file's length, preallocated zeros included. */
    let end = inner.size;
    const file: WritableFile = {
      path,
      get size() {
        return inner.size;
      },
      append(data: Uint8Array) {
        check("append");
        inner.append(data);
        end = Math.max(end, inner.size);
      },
      async sync() {
        check("sync");
        const len = inner.size;
        const zeroed = end;
        await inner.sync();
        check("sync");
        synced.set(path, len);
        zeroedTo.set(path, zeroed);
      },
      truncate(len: number) {
        check("truncate");
        inner.truncate(len);
        end = len;
        if ((synced.get(path) ?? 0) > len) synced.set(path, len);
        if ((zeroedTo.get(path) ?? 0) > len) zeroedTo.set(path, len);
      },
      close() {
        inner.close();
      },
    };
    if (inner.preallocate !== undefined) {
      file.preallocate = (to: number) => {
        check("preallocate");
        inner.preallocate!(to);
        end = Math.max(end, to);
      };
    }
    return file;
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
    this.#zeroedTo.delete(path);
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
    this.#zeroedTo.delete(from); // only WAL segments are preallocated,
    this.#zeroedTo.delete(to); // and they are never renamed
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
    this.#zeroedTo.delete(path);
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
      const zeroedTo = this.#zeroedTo.get(path) ?? 0;
      if (size > len) {
        dropped += size - Math.max(len, zeroedTo);
        const written = zeroedTo > len && this.keepsUnsyncedSector
          ? this.#inner.readFile(path)
          : undefined;
        await this.#inner.truncate(path, len);
        // Synced zeros survive, and so does their length; what was
        // written over them since reads as zeros again, but for the
        // sectors the device happened to write.
        if (zeroedTo > len) {
          const end = Math.min(size, zeroedTo);
          await this.#inner.truncate(path, end);
          if (written) this.#keepSectors(path, written, len, end);
        }
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

  /**
   * Writes back the sectors of [from, end) that `keepsUnsyncedSector` picks
   * from `written` (the file before the cut); the rest of [from, end) stays
   * zero, as the cut left it.
   */
  #keepSectors(
    path: string,
    written: Uint8Array,
    from: number,
    end: number,
  ): void {
    const out = new Uint8Array(end);
    out.set(written.subarray(0, from));
    let kept = false;
    for (let s = from - (from % 512); s < end; s += 512) {
      if (!this.keepsUnsyncedSector!(path, s)) continue;
      const a = Math.max(s, from);
      out.set(written.subarray(a, Math.min(s + 512, end)), a);
      kept = true;
    }
    if (kept) this.#restore(path, out);
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
