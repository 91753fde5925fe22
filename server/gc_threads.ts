/**
 * Lowers the CPU priority of the garbage collector's helper threads, so
 * that the OS scheduler prefers the thread that answers requests when they
 * share a core.
 *
 * V8 runs its concurrent marking, sweeping and compilation jobs on a pool
 * of platform threads (named "V8 DefaultWorker", which Linux truncates to
 * the 15 bytes "V8 DefaultWorke"). At the process's nice value they compete
 * with the event loop as equals: under a heavy write load on one core, each
 * of their time slices delays every request that arrives meanwhile. At a
 * higher nice value the marking still gets done (the main thread does more
 * of it in its own short steps, and the helpers run when the core is free)
 * but preempts requests less. Not too high, though: a full collection's
 * final pause waits for the helpers' last marking, and a starved helper
 * finishes it late while the event loop waits. Measured with `bench/http.ts
 * --busy-only --no-leveldb` (GET p99 while 8 connections PUT 16 KiB values,
 * the server pinned to one core; bench/README.md has the runs): nice 10 cut
 * the busy p99 most, but its final pauses grew and the longest event-loop
 * stall doubled; nice 5, the default, cut the p99 by about a sixth (0.83x)
 * with the longest stall unchanged.
 *
 * The pool is the process's, shared by every isolate, so only the server
 * does this: an embedding application keeps its threads as they are. Linux
 * only (a nice value belongs to a thread there), through the FFI calls of
 * engine/thread_priority.ts; on Bun, whose JavaScriptCore names its threads
 * otherwise, nothing changes and the result says so.
 *
 * @module
 */
import {
  MAX_NICE,
  type PriorityCalls,
  priorityCalls,
  setThreadNice,
} from "../engine/thread_priority.ts";
import { isBun } from "../engine/runtime.ts";
import { errorText } from "./error_text.ts";

/** The name (as /proc shows it) of V8's platform worker threads. */
export const V8_HELPER_THREAD = "V8 DefaultWorke";

/** What {@link lowerGcThreads} did. */
export interface GcThreadPriority {
  /** The nice value asked for (0: leave the threads alone). */
  requested: number;
  /** How many helper threads now run at that nice value. */
  threads: number;
  /** Why nothing or not everything was applied; null when all was. */
  reason: string | null;
}

/** Where to find this process's threads and how to renice one; for tests. */
export interface GcThreadEnv {
  calls: PriorityCalls | string;
  /** Thread id -> its name, for every thread of the process. */
  threads(): Map<number, string>;
}

/**
 * The threads of this process (thread id -> name), from /proc/self/task.
 * Deno lets a program read /proc/self only with --allow-all, so the
 * directory and the names are read through the C library over FFI (which
 * --allow-ffi already grants in full): `getdents64` gives the kernel's
 * fixed record layout (inode u64, offset i64, record length u16, type u8,
 * then the NUL-terminated name).
 */
export function procThreads(taskDir = "/proc/self/task"): Map<number, string> {
  const lib = Deno.dlopen(LIBC, {
    open: { parameters: ["buffer", "i32"], result: "i32" },
    read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
    getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  });
  const c = lib.symbols;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const cPath = (s: string) => encoder.encode(`${s}\0`);
  const buf = new Uint8Array(64 * 1024);
  const out = new Map<number, string>();
  try {
    // (No O_DIRECTORY: its value differs between architectures, and
    // getdents64 fails on anything else anyway.)
    const dir = c.open(cPath(taskDir), O_RDONLY | O_CLOEXEC);
    if (dir < 0) throw new Error(`cannot open ${taskDir}`);
    const tids: number[] = [];
    try {
      for (;;) {
        const n = Number(c.getdents64(dir, buf, BigInt(buf.length)));
        if (n < 0) throw new Error(`cannot list ${taskDir}`);
        if (n === 0) break;
        const view = new DataView(buf.buffer, 0, n);
        for (let p = 0; p < n; p += view.getUint16(p + 16, true)) {
          const end = buf.indexOf(0, p + 19);
          const tid = Number(decoder.decode(buf.subarray(p + 19, end)));
          if (Number.isInteger(tid) && tid > 0) tids.push(tid);
        }
      }
    } finally {
      c.close(dir);
    }
    for (const tid of tids) {
      const fd = c.open(cPath(`${taskDir}/${tid}/comm`), O_RDONLY | O_CLOEXEC);
      // A thread that ended between the listing and the open is skipped.
      if (fd < 0) continue;
      try {
        const n = Number(c.read(fd, buf, BigInt(buf.length)));
        if (n <= 0) continue;
        const name = decoder.decode(buf.subarray(0, n));
        out.set(tid, name.replace(/\n$/, ""));
      } finally {
        c.close(fd);
      }
    }
  } finally {
    lib.close();
  }
  return out;
}

const LIBC = "libc.so.6";
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;

/**
 * Sets the nice value of V8's helper threads to `nice` (0 to
 * {@link MAX_NICE}; 0 leaves them alone). Never throws: the result says
 * what took effect. `env` is for tests.
 */
export function lowerGcThreads(
  nice: number,
  env?: GcThreadEnv,
): GcThreadPriority {
  const result = (threads: number, reason: string | null) => ({
    requested: nice,
    threads,
    reason,
  });
  if (!Number.isInteger(nice) || nice < 0 || nice > MAX_NICE) {
    return result(0, `nice must be an integer from 0 to ${MAX_NICE}`);
  }
  if (nice === 0) return result(0, "the nice value asked for is 0");
  if (env === undefined) {
    if (isBun) {
      return result(0, "Bun's JavaScriptCore has no V8 helper threads");
    }
    // priorityCalls() checks the platform and the FFI permission first.
    env = { calls: priorityCalls(), threads: () => procThreads() };
  }
  const calls = env.calls;
  if (typeof calls === "string") return result(0, calls);
  let threads: Map<number, string>;
  try {
    threads = env.threads();
  } catch (err) {
    return result(0, `cannot list the threads: ${errorText(err)}`);
  }
  let done = 0;
  let failed = 0;
  for (const [tid, name] of threads) {
    if (name !== V8_HELPER_THREAD) continue;
    if (setThreadNice(calls, tid, nice) === null) done++;
    else failed++;
  }
  if (done + failed === 0) {
    return result(0, `no thread named "${V8_HELPER_THREAD}"`);
  }
  return result(
    done,
    failed === 0 ? null : `${failed} of ${done + failed} threads refused`,
  );
}
