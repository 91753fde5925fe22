/**
 * What the two real file-system ports (`fs_deno.ts`, `fs_node.ts`) do the
 * same way: positional reads of a table through `node:fs`, the append loop
 * with its accounting of a partial write, and the directory lock's order.
 * Each port keeps only what differs: how it writes, syncs and locks.
 *
 * @module
 */
import * as nodeFs from "node:fs";
import { LockedError, wrapIoError } from "./errors.ts";
import type { DirLock, ReadableFile } from "./fs.ts";

/**
 * A table opened for positional reads (`node:fs` `readSync` at a position).
 * On Bun that is `pread`; Deno implements it as a seek plus a read on the
 * file's shared position, so a handle must never be shared with async reads
 * or with another thread (see engine/fs.ts for why reads are synchronous).
 */
export class FdReadable implements ReadableFile {
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

  /** Opens `path` for reading; the descriptor is closed if stat fails. */
  static open(path: string): FdReadable {
    const fd = nodeFs.openSync(path, "r");
    try {
      return new FdReadable(path, fd, nodeFs.fstatSync(fd).size);
    } catch (err) {
      nodeFs.closeSync(fd);
      throw err;
    }
  }
}

/**
 * Appends all of `data` to `file` through `writeSome(data, off)`, which
 * writes some bytes from `off` on and returns how many. `file.size` grows
 * by what was written, also when a write fails part way: the torn bytes are
 * on disk, the caller treats the store as failed, and replay truncates the
 * torn tail.
 */
export function appendAll(
  file: { readonly path: string; size: number },
  data: Uint8Array,
  writeSome: (data: Uint8Array, off: number) => number,
): void {
  let off = 0;
  try {
    while (off < data.length) off += writeSome(data, off);
  } catch (err) {
    file.size += off;
    throw wrapIoError(err, `append to ${file.path}`);
  }
  file.size += data.length;
}

let zeroBlock = new Uint8Array(0);

/** A buffer of `n` zero bytes, shared: never write into it. */
export function zeros(n: number): Uint8Array {
  if (zeroBlock.length < n) zeroBlock = new Uint8Array(n);
  return zeroBlock.subarray(0, n);
}

/** How a port opens and locks a handle (an `FsFile`, a descriptor). */
export interface LockOps<H> {
  /** Opens the data directory itself (read only). */
  openDir(dir: string): H;
  /** Opens the LOCK file, creating it. */
  openFile(path: string): H;
  /** Takes an exclusive lock without waiting; false when another holds it. */
  tryLock(h: H): boolean;
  /** Unlocks (best effort: closing releases it anyway) and closes. */
  release(h: H): void;
}

/**
 * Locks the LOCK file at `path` the way both ports do: the lock is held on
 * the directory itself, so deleting or replacing the LOCK file cannot let
 * a second process in, and on the LOCK file too, for older shale versions
 * that only look at it. Throws {@link LockedError} when another holds it.
 */
export function lockDirAndFile<H>(path: string, ops: LockOps<H>): DirLock {
  const dir = path.replace(/\/[^/]*$/, "") || ".";
  const held: H[] = [];
  const release = () => {
    for (const h of held.reverse()) ops.release(h);
  };
  try {
    for (const open of [() => ops.openDir(dir), () => ops.openFile(path)]) {
      const h = open();
      held.push(h);
      if (!ops.tryLock(h)) throw new LockedError(dir);
    }
  } catch (err) {
    release();
    throw err;
  }
  return { release };
}
