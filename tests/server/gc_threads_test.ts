/** Lowering the priority of V8's garbage-collector helper threads. */
import { deepEqual, equal, ok } from "node:assert/strict";
import process from "node:process";
import {
  type GcThreadEnv,
  lowerGcThreads,
  procThreads,
  V8_HELPER_THREAD,
} from "../../server/gc_threads.ts";
import {
  type PriorityCalls,
  priorityCalls,
} from "../../engine/thread_priority.ts";

/** A process of `threads` whose C calls answer as told and record what they did. */
function fakeEnv(
  threads: [number, string][],
  refuse: number[] = [],
): { env: GcThreadEnv; nices: Map<number, number> } {
  const nices = new Map<number, number>(threads.map(([tid]) => [tid, 0]));
  const calls: PriorityCalls = {
    gettid: () => threads[0][0],
    setNice(tid, nice) {
      if (refuse.includes(tid)) return -1;
      nices.set(tid, nice);
      return 0;
    },
    getNice: (tid) => nices.get(tid)!,
  };
  return { env: { calls, threads: () => new Map(threads) }, nices };
}

const PROCESS: [number, string][] = [
  [100, "deno"],
  [101, V8_HELPER_THREAD],
  [102, V8_HELPER_THREAD],
  [103, "tokio-runtime-w"],
  [104, "worker-1"],
];

Deno.test("lowerGcThreads renices V8's helper threads and no other", () => {
  const { env, nices } = fakeEnv(PROCESS);
  deepEqual(lowerGcThreads(10, env), {
    requested: 10,
    threads: 2,
    reason: null,
  });
  deepEqual([...nices], [[100, 0], [101, 10], [102, 10], [103, 0], [104, 0]]);
});

Deno.test("lowerGcThreads with nice 0 leaves every thread alone", () => {
  const { env, nices } = fakeEnv(PROCESS);
  deepEqual(lowerGcThreads(0, env), {
    requested: 0,
    threads: 0,
    reason: "the nice value asked for is 0",
  });
  ok([...nices.values()].every((n) => n === 0));
});

Deno.test("lowerGcThreads refuses nice values outside 0-19", () => {
  for (const nice of [-1, 20, 2.5, NaN]) {
    const { env, nices } = fakeEnv(PROCESS);
    const r = lowerGcThreads(nice, env);
    equal(r.threads, 0);
    equal(r.reason, "nice must be an integer from 0 to 19");
    ok([...nices.values()].every((n) => n === 0));
  }
});

Deno.test("lowerGcThreads says which threads refused", () => {
  const { env, nices } = fakeEnv(PROCESS, [102]);
  deepEqual(lowerGcThreads(7, env), {
    requested: 7,
    threads: 1,
    reason: "1 of 2 threads refused",
  });
  equal(nices.get(101), 7);
  equal(nices.get(102), 0);
});

Deno.test("lowerGcThreads reports a process without helper threads, or without the C calls", () => {
  const { env } = fakeEnv([[100, "deno"], [103, "tokio-runtime-w"]]);
  deepEqual(lowerGcThreads(10, env), {
    requested: 10,
    threads: 0,
    reason: `no thread named "${V8_HELPER_THREAD}"`,
  });
  deepEqual(
    lowerGcThreads(10, {
      calls: "no FFI permission (--allow-ffi)",
      threads: () => new Map(PROCESS),
    }),
    { requested: 10, threads: 0, reason: "no FFI permission (--allow-ffi)" },
  );
  deepEqual(
    lowerGcThreads(10, {
      calls: fakeEnv(PROCESS).env.calls,
      threads: () => {
        throw new Error("gone");
      },
    }),
    { requested: 10, threads: 0, reason: "cannot list the threads: gone" },
  );
});

const calls = process.platform === "linux" ? priorityCalls() : "not Linux";
const linuxWithFfi = typeof calls !== "string";

Deno.test({
  name:
    "procThreads lists this process's threads by id and name, V8's helpers among them (Linux, FFI)",
  ignore: !linuxWithFfi,
  fn() {
    const threads = procThreads();
    equal(threads.get(process.pid), "deno");
    ok(
      [...threads.values()].includes(V8_HELPER_THREAD),
      [...threads.values()].join(),
    );
    for (const tid of threads.keys()) ok(Number.isInteger(tid) && tid > 0);
  },
});

Deno.test({
  name:
    "lowerGcThreads lowers this process's own helper threads, read back with getpriority (Linux, FFI)",
  ignore: !linuxWithFfi,
  fn() {
    const c = calls as PriorityCalls;
    const helpers = [...procThreads()].filter(([, n]) =>
      n === V8_HELPER_THREAD
    );
    ok(helpers.length > 0);
    // Raising a nice value needs no privilege; the test process's helpers
    // keep it, which only makes its collector yield to its tests.
    const mainBefore = c.getNice(c.gettid());
    const r = lowerGcThreads(3);
    deepEqual(r, { requested: 3, threads: helpers.length, reason: null });
    for (const [tid] of helpers) equal(c.getNice(tid), 3);
    equal(
      c.getNice(c.gettid()),
      mainBefore,
      "the main thread keeps its nice value",
    );
  },
});
