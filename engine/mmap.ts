/**
 * Read-only memory maps of whole files, through the C library's `mmap` and
 * `munmap` called over FFI (Deno's `Deno.dlopen`, Bun's `bun:ffi`): neither
 * runtime has a mapping API of its own that can be unmapped on demand.
 *
 * A mapped table block costs a memory access (the page cache serves it)
 * instead of a positional read system call: about 0.25 µs against about
 * 5 µs per random 4 KiB block on the development machine.
 *
 * The hazard of every mapping: touching a page after `munmap`, or a page
 * past the end of a file that shrank after it was mapped, kills the
 * process (SIGSEGV / SIGBUS) instead of throwing. Callers therefore
 * (1) map only files that never change once written (shale's tables; only
 * shale writes its data directory), (2) map exactly the size the file had
 * when it was opened and validated, and (3) never let a view into the
 * mapping escape: what leaves the reader is copied (engine/sstable/reader.ts).
 *
 * @module
 */
import { createRequire } from "node:module";
import process from "node:process";
import { isBun } from "./runtime.ts";

/** A file's bytes mapped read-only. */
export interface FileMap {
  /** View over the mapping; invalid (a crash to touch) after {@link unmap}. */
  readonly bytes: Uint8Array;
  /** Releases the mapping. Idempotent. */
  unmap(): void;
}

const PROT_READ = 1;
const MAP_SHARED = 1;
const O_RDONLY = 0;

interface Libc {
  /** Maps `len` bytes of `path` from offset 0, or throws. */
  map(path: string, len: number): FileMap;
}

let libc: Libc | null | undefined;

function cPath(path: string): Uint8Array {
  const b = new TextEncoder().encode(path);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

function libNames(): string[] | undefined {
  if (process.platform === "linux") return ["libc.so.6", "libc.so"];
  if (process.platform === "darwin") {
    return ["libc.dylib", "/usr/lib/libSystem.B.dylib"];
  }
  return undefined;
}

/** O_CLOEXEC differs by platform; the descriptor is closed at once anyway. */
function oCloexec(): number {
  return process.platform === "darwin" ? 0x1000000 : 0x80000;
}

function denoLibc(names: string[]): Libc {
  let lib;
  for (const name of names) {
    try {
      lib = Deno.dlopen(name, {
        open: { parameters: ["buffer", "i32"], result: "i32" },
        close: { parameters: ["i32"], result: "i32" },
        mmap: {
          parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"],
          result: "pointer",
        },
        munmap: { parameters: ["pointer", "usize"], result: "i32" },
      });
      break;
    } catch {
      // try the next name
    }
  }
  if (!lib) throw new Error(`cannot load the C library (${names.join(", ")})`);
  const s = lib.symbols;
  return {
    map(path: string, len: number): FileMap {
      const fd = s.open(cPath(path), O_RDONLY | oCloexec());
      if (fd < 0) throw new Error(`mmap: cannot open ${path}`);
      let p;
      try {
        p = s.mmap(null, BigInt(len), PROT_READ, MAP_SHARED, fd, 0n);
      } finally {
        s.close(fd);
      }
      const addr = p === null ? 0n : BigInt(Deno.UnsafePointer.value(p));
      if (p === null || addr === 0xffffffffffffffffn) {
        throw new Error(`mmap of ${len} bytes of ${path} failed`);
      }
      const bytes = new Uint8Array(
        Deno.UnsafePointerView.getArrayBuffer(p, len),
      );
      let mapped = true;
      return {
        bytes,
        unmap() {
          if (!mapped) return;
          mapped = false;
          s.munmap(p, BigInt(len));
        },
      };
    },
  };
}

interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): {
    symbols: {
      open(path: Uint8Array, flags: number): number;
      close(fd: number): number;
      mmap(
        addr: null,
        len: number,
        prot: number,
        flags: number,
        fd: number,
        off: number,
      ): number | bigint;
      munmap(addr: number, len: number): number;
    };
  };
  toArrayBuffer(ptr: number, offset: number, len: number): ArrayBuffer;
}

function bunLibc(names: string[]): Libc {
  // Loaded at run time by name: `bun:ffi` exists only on Bun.
  const ffi = createRequire(import.meta.url)("bun:ffi") as BunFfi;
  let lib;
  for (const name of names) {
    try {
      lib = ffi.dlopen(name, {
        open: { args: ["ptr", "i32"], returns: "i32" },
        close: { args: ["i32"], returns: "i32" },
        // An integer result, so MAP_FAILED reads as -1.
        mmap: {
          args: ["ptr", "u64", "i32", "i32", "i32", "i64"],
          returns: "i64",
        },
        munmap: { args: ["ptr", "u64"], returns: "i32" },
      });
      break;
    } catch {
      // try the next name
    }
  }
  if (!lib) throw new Error(`cannot load the C library (${names.join(", ")})`);
  const s = lib.symbols;
  return {
    map(path: string, len: number): FileMap {
      const fd = s.open(cPath(path), O_RDONLY | oCloexec());
      if (fd < 0) throw new Error(`mmap: cannot open ${path}`);
      let r;
      try {
        r = Number(s.mmap(null, len, PROT_READ, MAP_SHARED, fd, 0));
      } finally {
        s.close(fd);
      }
      if (r === -1 || r === 0) {
        throw new Error(`mmap of ${len} bytes of ${path} failed`);
      }
      const bytes = new Uint8Array(ffi.toArrayBuffer(r, 0, len));
      let mapped = true;
      return {
        bytes,
        unmap() {
          if (!mapped) return;
          mapped = false;
          s.munmap(r, len);
        },
      };
    },
  };
}

/**
 * True when this process may map files: a supported platform, and on Deno
 * the FFI permission (`--allow-ffi`). Does not prompt.
 */
export function mmapAvailable(): boolean {
  if (libNames() === undefined) return false;
  if (isBun) return true;
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Maps the first `len` bytes (len > 0) of the file at `path` read-only.
 * Throws when mapping is unavailable or fails. The caller guarantees the
 * file never shrinks below `len` while mapped (see the module comment).
 */
export function mapFile(path: string, len: number): FileMap {
  if (!(len > 0)) throw new Error(`mmap: cannot map ${len} bytes of ${path}`);
  if (libc === undefined) {
    const names = libNames();
    libc = names === undefined || !mmapAvailable()
      ? null
      : isBun
      ? bunLibc(names)
      : denoLibc(names);
  }
  if (libc === null) {
    throw new Error("memory maps are unavailable (on Deno: --allow-ffi)");
  }
  return libc.map(path, len);
}
