/**
 * The parts of `Db.stats()` the dashboard shows live: whether a flush or
 * compaction runs now, and what a write arriving now would meet.
 */
import { deepEqual, ok } from "node:assert/strict";
import { setImmediate } from "node:timers";
import { type Db, open } from "../../mod.ts";
import { enc, withTempDir } from "../_helpers.ts";

interface Live {
  background: { flushing: boolean; compacting: boolean };
  writeState: { state: string; reason: string | null };
}

const live = (db: Db) => db.stats() as unknown as Live;

/** Whether a flush or a compaction runs now (`background` says more). */
const running = (db: Db) => {
  const { flushing, compacting } = live(db).background;
  return { flushing, compacting };
};

/**
 * Samples `background` on every event-loop turn until `work` settles. An
 * immediate, not `setTimeout(0)`: Deno's timer waits a millisecond or two,
 * long enough for a whole inline flush of one key to start and end
 * between two samples (it did, about 1 run in 20 under load).
 */
async function sampleWhile(db: Db, work: Promise<void>): Promise<Set<string>> {
  const seen = new Set<string>();
  let done = false;
  const finished = work.finally(() => done = true);
  while (!done) {
    seen.add(JSON.stringify(running(db)));
    await new Promise((r) => setImmediate(r));
  }
  await finished;
  return seen;
}

Deno.test("stats: writeState names the slowdown and its cause; background work shows", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, {
      sync: "none",
      background: "inline",
      l0CompactionTrigger: 40,
      l0SlowdownTrigger: 2,
      l0StopTrigger: 50,
    });
    try {
      deepEqual(live(db).writeState, { state: "ok", reason: null });
      const flushing = JSON.stringify({ flushing: true, compacting: false });
      for (let i = 0; i < 2; i++) {
        await db.put(enc(`k${i}`), enc("v"));
        ok((await sampleWhile(db, db.flush())).has(flushing));
      }
      deepEqual(live(db).writeState, {
        state: "slowdown",
        reason: "L0 has 2 tables (writes slow down at 2)",
      });
      deepEqual(running(db), { flushing: false, compacting: false });
      const compacting = JSON.stringify({ flushing: false, compacting: true });
      ok((await sampleWhile(db, db.compactRange())).has(compacting));
      deepEqual(live(db).writeState, { state: "ok", reason: null });
      deepEqual(running(db), { flushing: false, compacting: false });
    } finally {
      await db.close();
    }
  });
});

interface WorkerHeap {
  heapUsed: number;
  heapTotal: number;
  external: number;
  jobs: number;
  peakHeapTotal: number;
  peakExternal: number;
}
const workers = (db: Db) =>
  (db.stats() as unknown as {
    memory: {
      workers: {
        flush: WorkerHeap | null;
        compaction: WorkerHeap | null;
      };
    };
  }).memory.workers;

Deno.test("stats: memory.workers reports each worker's heap after its jobs, null when jobs run inline", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "worker" });
    try {
      const before = workers(db);
      deepEqual(before.flush?.jobs, 0);
      deepEqual(before.flush?.heapTotal, 0);
      await db.put(enc("k"), enc("v"));
      await db.flush();
      const f = workers(db).flush!;
      deepEqual(f.jobs, 1);
      ok(f.heapUsed > 0 && f.heapUsed <= f.heapTotal, JSON.stringify(f));
      deepEqual(f.peakHeapTotal, f.heapTotal);
      ok(f.external >= 0 && f.peakExternal === f.external);
      // The compaction worker has answered nothing yet.
      deepEqual(workers(db).compaction?.jobs, 0);
    } finally {
      await db.close();
    }
  });
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "inline" });
    try {
      deepEqual(workers(db), { flush: null, compaction: null });
    } finally {
      await db.close();
    }
  });
});
