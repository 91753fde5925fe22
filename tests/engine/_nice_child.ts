/**
 * Child of thread_priority_test.ts, run without FFI permission: prints what
 * lowering a thread's priority reports, and what an open store's stats say
 * about its workers, as one JSON line.
 */
import { open } from "../../mod.ts";
import { lowerThreadPriority } from "../../engine/thread_priority.ts";

const dir = Deno.args[0];
const direct = lowerThreadPriority(10);
const db = await open(dir);
try {
  // Two overlapping tables: compactRange merges them in the compaction
  // worker, which answers the priority request before any job.
  for (const v of [2, 3]) {
    await db.put(new Uint8Array([1]), new Uint8Array([v]));
    await db.flush();
  }
  await db.compactRange();
  const stats = db.stats() as { background: { compactionNice: unknown } };
  console.log(
    JSON.stringify({ direct, stats: stats.background.compactionNice }),
  );
} finally {
  await db.close();
}
