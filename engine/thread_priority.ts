/**
 * Lowers the CPU priority (raises the nice value) of the calling thread, so
 * that the OS scheduler prefers the main thread when both want the same
 * core: a background worker that builds tables must not take CPU from the
 * thread that answers reads (measured: in the HTTP benchmark with the
 * server pinned to one core, the workers took about as much CPU as the
 * event loop while compaction was busy).
 *
 * On Linux a nice value belongs to a thread, not to the process:
 * `setpriority(PRIO_PROCESS, gettid(), n)` changes only the calling thread.
 * Neither Deno nor Bun exposes that call, so it goes through their FFI
 * (`Deno.dlopen`, `bun:ffi`), as engine/mmap.ts does. Elsewhere (macOS
 * applies it to the whole process) and without FFI (Deno without
 * `--allow-ffi`) nothing changes and the result says why: the caller
 * reports it, it never fails because of it.
 *
 * @module
 */
import { createRequire } from "node:module";
import process from "node:process";
import { isBun } from "./runtime.ts";

/** What {@link lowerThreadPriority} did. */
export interface ThreadPriority {
  /** The nice value asked for. */
  requested: number;
  /** Whether the thread now runs at that nice value. */
  applied: boolean;
  /** Why it did not apply; null when it did. */
  reason: string | null;
}

/** The three C calls, as one runtime's FFI exposes them. */
export interface PriorityCalls {
  gettid(): number;
  /** `setpriority(PRIO_PROCESS, tid, nice)`: 0 on success, -1 on failure. */
  setNice(tid: number, nice: number): number;
  /** `getpriority(PRIO_PROCESS, tid)`: the thread's nice value. */
  getNice(tid: number): number;
}

/** Highest nice value (lowest priority) Linux knows. */
export const MAX_NICE = 19;

const PRIO_PROCESS = 0;
const LIBC = ["libc.so.6", "libc.so"];

function denoCalls(): PriorityCalls {
  let lib: ReturnType<typeof open> | undefined;
  const open = (name: string) =>
    Deno.dlopen(name, {
      gettid: { parameters: [], result: "i32" },
      setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
      getpriority: { parameters: ["i32", "u32"], result: "i32" },
    });
  for (const name of LIBC) {
    try {
      lib = open(name);
      break;
    } catch {
      // try the next name
    }
  }
  if (lib === undefined) throw new Error("cannot load the C library");
  const s = lib.symbols;
  return {
    gettid: () => s.gettid(),
    setNice: (tid, nice) => s.setpriority(PRIO_PROCESS, tid, nice),
    getNice: (tid) => s.getpriority(PRIO_PROCESS, tid),
  };
}

interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): {
    symbols: {
      gettid(): number;
      setpriority(which: number, who: number, prio: number): number;
      getpriority(which: number, who: number): number;
    };
  };
}

function bunCalls(): PriorityCalls {
  // Loaded at run time by name: `bun:ffi` exists only on Bun.
  const ffi = createRequire(import.meta.url)("bun:ffi") as BunFfi;
  let err: unknown;
  for (const name of LIBC) {
    try {
      const s = ffi.dlopen(name, {
        gettid: { args: [], returns: "i32" },
        setpriority: { args: ["i32", "u32", "i32"], returns: "i32" },
        getpriority: { args: ["i32", "u32"], returns: "i32" },
      }).symbols;
      return {
        gettid: () => s.gettid(),
        setNice: (tid, nice) => s.setpriority(PRIO_PROCESS, tid, nice),
        getNice: (tid) => s.getpriority(PRIO_PROCESS, tid),
      };
    } catch (e) {
      err = e;
    }
  }
  throw err;
}

/**
 * The C calls of this runtime, or why there are none: not Linux, or (on
 * Deno) no FFI permission. Never prompts.
 */
export function priorityCalls(): PriorityCalls | string {
  if (process.platform !== "linux") {
    return `per-thread priority is not supported on ${process.platform}`;
  }
  if (!isBun) {
    let state: string;
    try {
      state = Deno.permissions.querySync({ name: "ffi" }).state;
    } catch {
      state = "denied";
    }
    if (state !== "granted") return "no FFI permission (--allow-ffi)";
  }
  try {
    return isBun ? bunCalls() : denoCalls();
  } catch (err) {
    return `cannot load the C library: ${
      err instanceof Error ? err.message : String(err)
    }`;
  }
}

/**
 * Sets the calling thread's nice value to `nice` (1 to {@link MAX_NICE};
 * a thread may always lower its own priority). Never throws: the result
 * says whether it took effect. `calls` is for tests.
 */
export function lowerThreadPriority(
  nice: number,
  calls: PriorityCalls | string = priorityCalls(),
): ThreadPriority {
  const result = (applied: boolean, reason: string | null) => ({
    requested: nice,
    applied,
    reason,
  });
  if (!Number.isInteger(nice) || nice < 1 || nice > MAX_NICE) {
    return result(false, `nice must be an integer from 1 to ${MAX_NICE}`);
  }
  if (typeof calls === "string") return result(false, calls);
  try {
    const why = setThreadNice(calls, calls.gettid(), nice);
    return result(why === null, why);
  } catch (err) {
    return result(false, errorMessage(err));
  }
}

/**
 * Sets thread `tid`'s nice value through `calls` and reads it back (the
 * call's success is not proof enough across FFIs). Returns null when it
 * took effect, else why not; never throws.
 */
export function setThreadNice(
  calls: PriorityCalls,
  tid: number,
  nice: number,
): string | null {
  try {
    if (calls.setNice(tid, nice) !== 0) return "setpriority failed";
    const now = calls.getNice(tid);
    return now === nice
      ? null
      : `the thread's nice value is ${now}, not ${nice}`;
  } catch (err) {
    return errorMessage(err);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
