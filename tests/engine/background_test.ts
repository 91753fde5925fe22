/** The background job runner: where its worker lives and what happens when it cannot load. */
import { deepEqual, match, rejects } from "node:assert/strict";
import { WorkerRunner, workerUrl } from "../../engine/background.ts";
import type { Job } from "../../engine/jobs.ts";

const job: Job = {
  type: "flush",
  dir: "/nonexistent",
  blockSize: 4096,
  bloomBitsPerKey: 10,
  compression: "none",
  walPaths: [],
  salvage: false,
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
