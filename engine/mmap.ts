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
 * mapping escape: what leaves the reader is copied (engine/sstable/reader.ts),
 * except for a borrowed read, whose caller copies inside a synchronous
 * callback (engine/value_view.ts).
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

/**
 * The four C calls as one runtime's FFI exposes them. `A` is how that FFI
 * carries an address (a pointer object on Deno, a number on Bun).
 */
interface Libc<A> {
  open(path: Uint8Array, flags: number): number;
  close(fd: number): void;
  /** `mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0)`; undefined on failure. */
  mmap(len: number, fd: number): A | undefined;
  munmap(addr: A, len: number): void;
  /** The mapped bytes at `addr` as a buffer (no copy). */
  view(addr: A, len: number): ArrayBuffer;
}

/** Something that maps files: a {@link Libc} with its address type hidden. */
interface Mapper {
  map(path: string, len: number): FileMap;
}

let mapper: Mapper | null | undefined;

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

/** The first of `names` that `load` opens. */
function loadFirst<L>(names: string[], load: (name: string) => L): L {
  for (const name of names) {
    try {
      return load(name);
    } catch {
      // try the next name
    }
  }
  throw new Error(`cannot load the C library (${names.join(", ")})`);
}

/**
 * Maps `len` bytes of `path` read-only through `c`: open, mmap, close the
 * descriptor (the mapping outlives it), and an unmap that runs once.
 */
function mapWith<A>(c: Libc<A>, path: string, len: number): FileMap {
  const fd = c.open(cPath(path), O_RDONLY | oCloexec());
  if (fd < 0) throw new Error(`mmap: cannot open ${path}`);
  let addr: A | undefined;
  try {
    addr = c.mmap(len, fd);
  } finally {
    c.close(fd);
  }
  if (addr === undefined) {
    throw new Error(`mmap of ${len} bytes of ${path} failed`);
  }
  const bytes = new Uint8Array(c.view(addr, len));
  let mapped = true;
  return {
    bytes,
    unmap() {
      if (!mapped) return;
      mapped = false;
      c.munmap(addr, len);
    },
  };
}

function denoLibc(names: string[]): Libc<Deno.PointerObject> {
  const s = loadFirst(names, (name) =>
    Deno.dlopen(name, {
      open: { parameters: ["buffer", "i32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
      mmap: {
        parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"],
        result: "pointer",
      },
      munmap: { parameters: ["pointer", "usize"], result: "i32" },
    })).symbols;
  return {
    open: (path, flags) => s.open(path, flags),
    close: (fd) => void s.close(fd),
    mmap(len, fd) {
      const p = s.mmap(null, BigInt(len), PROT_READ, MAP_SHARED, fd, 0n);
      // MAP_FAILED is (void *) -1.
      if (p === null) return undefined;
      const addr = BigInt(Deno.UnsafePointer.value(p));
      return addr === 0xffffffffffffffffn ? undefined : p;
    },
    munmap: (p, len) => void s.munmap(p, BigInt(len)),
    view: (p, len) => Deno.UnsafePointerView.getArrayBuffer(p, len),
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

function bunLibc(names: string[]): Libc<number> {
  // Loaded at run time by name: `bun:ffi` exists only on Bun.
  const ffi = createRequire(import.meta.url)("bun:ffi") as BunFfi;
  const s = loadFirst(names, (name) =>
    ffi.dlopen(name, {
      open: { args: ["ptr", "i32"], returns: "i32" },
      close: { args: ["i32"], returns: "i32" },
      // An integer result, so MAP_FAILED reads as -1.
      mmap: {
        args: ["ptr", "u64", "i32", "i32", "i32", "i64"],
        returns: "i64",
      },
      munmap: { args: ["ptr", "u64"], returns: "i32" },
    })).symbols;
  return {
    open: (path, flags) => s.open(path, flags),
    close: (fd) => void s.close(fd),
    mmap(len, fd) {
      const r = Number(s.mmap(null, len, PROT_READ, MAP_SHARED, fd, 0));
      return r === -1 || r === 0 ? undefined : r;
    },
    munmap: (addr, len) => void s.munmap(addr, len),
    view: (addr, len) => ffi.toArrayBuffer(addr, 0, len),
  };
}

/** A {@link Mapper} over `c`. */
function mapperOf<A>(c: Libc<A>): Mapper {
  return { map: (path, len) => mapWith(c, path, len) };
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
  if (mapper === undefined) {
    const names = libNames();
    mapper = names === undefined || !mmapAvailable()
      ? null
      : isBun
      ? mapperOf(bunLibc(names))
      : mapperOf(denoLibc(names));
  }
  if (mapper === null) {
    throw new Error("memory maps are unavailable (on Deno: --allow-ffi)");
  }
  return mapper.map(path, len);
}
