/** The background job runner: where its worker lives, what happens when it cannot load, and what it reports of its heap. */
import { deepEqual, match, rejects } from "node:assert/strict";
import { WorkerRunner, workerUrl } from "../../engine/background.ts";
import type { Job } from "../../engine/jobs.ts";
import { Memtable } from "../../engine/memtable.ts";
import { WorkerMemory } from "../../engine/worker_memory.ts";

const job: Job = {
  type: "flush",
  dir: "/nonexistent",
  blockSize: 4096,
  bloomBitsPerKey: 10,
  compression: "none",
  image: new Memtable().image(),
  fileNumber: 1,
};

Deno.test("a worker that cannot load fails every job instead of leaving it pending", async () => {
  // A worker module that throws while loading (as one missing from a
  // binary fails to resolve): its error event comes once, jobs keep coming.
  const runner = new WorkerRunner(
    "data:text/javascript,throw new Error('cannot load')",
  );
  try {
    // Once the load error has arrived, and before.
    await rejects(runner.run(job), /background worker failed/);
    await rejects(runner.run(job), /background worker failed/);
  } finally {
    runner.close();
  }
});

Deno.test("the worker is found next to this module, or at engine/worker.ts inside a bun --compile binary", () => {
  deepEqual(
    workerUrl("file:///src/shale/engine/background.ts"),
    "file:///src/shale/engine/worker.ts",
  );
  deepEqual(
    workerUrl("file:///$bunfs/root/shale"),
    "file:///$bunfs/root/engine/worker.ts",
  );
  match(
    workerUrl("file:///B:/~BUN/root/shale.exe"),
    /~BUN\/root\/engine\/worker\.ts$/,
  );
});

Deno.test("a worker's memory report keeps the last figures and the largest", () => {
  const m = new WorkerMemory();
  deepEqual(m.report(), {
    heapUsed: 0,
    heapTotal: 0,
    external: 0,
    jobs: 0,
    peakHeapTotal: 0,
    peakExternal: 0,
  });
  m.record({ heapUsed: 50, heapTotal: 80, external: 7 });
  m.record({ heapUsed: 10, heapTotal: 20, external: 9 });
  deepEqual(m.report(), {
    heapUsed: 10,
    heapTotal: 20,
    external: 9,
    jobs: 2,
    peakHeapTotal: 80,
    peakExternal: 9,
  });
});
