/** Lowering a background worker's CPU priority, and the fallback when that cannot be done. */
import { deepEqual, equal, ok } from "node:assert/strict";
import process from "node:process";
import { WorkerRunner } from "../../engine/background.ts";
import type { Job } from "../../engine/jobs.ts";
import { Memtable } from "../../engine/memtable.ts";
import {
  lowerThreadPriority,
  type PriorityCalls,
  priorityCalls,
} from "../../engine/thread_priority.ts";
import { open } from "../../mod.ts";
import { withTempDir } from "../_helpers.ts";

/** C calls that record what they were asked and answer as told. */
function fakeCalls(setResult: number, niceAfter: number) {
  const log: string[] = [];
  const calls: PriorityCalls = {
    gettid: () => 4242,
    setNice: (tid, nice) => {
      log.push(`set ${tid} ${nice}`);
      return setResult;
    },
    getNice: (tid) => {
      log.push(`get ${tid}`);
      return niceAfter;
    },
  };
  return { calls, log };
}

Deno.test("lowerThreadPriority sets the calling thread's nice value and reads it back", () => {
  const { calls, log } = fakeCalls(0, 12);
  deepEqual(lowerThreadPriority(12, calls), {
    requested: 12,
    applied: true,
    reason: null,
  });
  deepEqual(log, ["set 4242 12", "get 4242"]);
});

Deno.test("lowerThreadPriority reports a failed or ineffective call instead of throwing", () => {
  deepEqual(lowerThreadPriority(10, fakeCalls(-1, 0).calls), {
    requested: 10,
    applied: false,
    reason: "setpriority failed",
  });
  deepEqual(lowerThreadPriority(10, fakeCalls(0, 0).calls), {
    requested: 10,
    applied: false,
    reason: "the thread's nice value is 0, not 10",
  });
  const throwing: PriorityCalls = {
    gettid: () => {
      throw new Error("no such symbol");
    },
    setNice: () => 0,
    getNice: () => 0,
  };
  deepEqual(lowerThreadPriority(10, throwing), {
    requested: 10,
    applied: false,
    reason: "no such symbol",
  });
});

Deno.test("lowerThreadPriority without the C calls says why and changes nothing", () => {
  deepEqual(lowerThreadPriority(10, "no FFI permission (--allow-ffi)"), {
    requested: 10,
    applied: false,
    reason: "no FFI permission (--allow-ffi)",
  });
  // Out of range: the calls are never made.
  for (const nice of [0, 20, 1.5]) {
    const { calls, log } = fakeCalls(0, nice);
    equal(lowerThreadPriority(nice, calls).applied, false);
    deepEqual(log, []);
  }
});

/** The nice value in a /proc/.../stat line (field 19). */
function niceOf(statPath: string): number {
  const stat = Deno.readTextFileSync(statPath);
  // Fields after the command name start with the state (field 3).
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}

/** The nice values of this process's threads (Linux /proc). */
function threadNices(): number[] {
  const out: number[] = [];
  for (const t of Deno.readDirSync("/proc/self/task")) {
    try {
      out.push(niceOf(`/proc/self/task/${t.name}/stat`));
    } catch (err) {
      // The runtime's idle I/O threads come and go between the listing
      // and the read.
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return out;
}

const calls = process.platform === "linux" ? priorityCalls() : "not Linux";
const linuxWithFfi = typeof calls !== "string";
/** Deno lets a test read /proc/self only with every permission (-A). */
const procReadable = (() => {
  try {
    Deno.readDirSync("/proc/self/task");
    return true;
  } catch {
    return false;
  }
})();

/** The main thread's nice value (its thread id is the process id), through FFI. */
function mainNice(): number {
  return (calls as PriorityCalls).getNice(Deno.pid);
}

/** A job that writes nothing (an empty memtable): a round trip through the worker. */
const emptyFlush: Job = {
  type: "flush",
  dir: "/nonexistent",
  blockSize: 4096,
  bloomBitsPerKey: 10,
  compression: "none",
  image: new Memtable().image(),
  fileNumber: 1,
};

Deno.test({
  name:
    "a WorkerRunner asked for nice 13 reports it applied, and the main thread keeps its priority (Linux)",
  ignore: !linuxWithFfi,
  async fn() {
    const mainBefore = mainNice();
    const runner = new WorkerRunner(undefined, 13);
    try {
      // A job round trip: the priority answer comes before its result.
      await runner.run(emptyFlush);
      deepEqual(runner.priority, {
        requested: 13,
        applied: true,
        reason: null,
      });
      equal(mainNice(), mainBefore);
    } finally {
      runner.close();
    }
  },
});

Deno.test({
  name:
    "/proc shows the WorkerRunner's thread at nice 14 (Linux, needs --allow-all to read /proc/self)",
  ignore: !linuxWithFfi || !procReadable,
  async fn() {
    const before = threadNices().filter((n) => n === 14).length;
    const runner = new WorkerRunner(undefined, 14);
    try {
      await runner.run(emptyFlush);
      // The worker's thread; a thread it started would inherit the value.
      // (14: a value no other test here uses, whose workers may not have
      // exited yet.)
      const after = threadNices().filter((n) => n === 14).length;
      ok(after >= before + 1, `${before} then ${after} threads at nice 14`);
    } finally {
      runner.close();
    }
  },
});

Deno.test({
  name:
    "an open store's stats say its compaction worker runs at the nice value asked for (Linux)",
  ignore: !linuxWithFfi,
  async fn() {
    await withTempDir(async (dir) => {
      const mainBefore = mainNice();
      const db = await open(dir, { compactionNice: 15 });
      try {
        // Two overlapping tables: compactRange merges them in the
        // compaction worker, which answers the priority request first.
        for (const v of [2, 3]) {
          await db.put(new Uint8Array([1]), new Uint8Array([v]));
          await db.flush();
        }
        await db.compactRange();
        const s = db.stats() as { background: { compactionNice: unknown } };
        deepEqual(s.background.compactionNice, {
          requested: 15,
          applied: true,
          reason: null,
        });
        equal(mainNice(), mainBefore);
      } finally {
        await db.close();
      }
    });
  },
});

Deno.test("compactionNice 0 leaves the workers alone and says so", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { compactionNice: 0 });
    try {
      await db.put(new Uint8Array([1]), new Uint8Array([2]));
      await db.flush();
      const s = db.stats() as { background: { compactionNice: unknown } };
      deepEqual(s.background.compactionNice, {
        requested: 0,
        applied: false,
        reason: "compactionNice is 0",
      });
    } finally {
      await db.close();
    }
  });
});

Deno.test("without FFI permission the store opens and works, its stats saying why the workers were not lowered", async () => {
  await withTempDir(async (dir) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-lock",
        `--allow-read`,
        `--allow-write=${dir}`,
        "--allow-env",
        new URL("./_nice_child.ts", import.meta.url).pathname,
        dir,
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    equal(out.code, 0, stderr);
    const reason = process.platform === "linux"
      ? "no FFI permission (--allow-ffi)"
      : `per-thread priority is not supported on ${process.platform}`;
    const expected = { requested: 10, applied: false, reason };
    deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), {
      direct: expected,
      stats: expected,
    });
  });
});
