/**
 * Web Worker entry for background jobs (flushes, compactions). It receives
 * `{id, job}` messages, runs each job with the real file system, and answers
 * `{id, result}` or `{id, error}`, each with this isolate's heap figures
 * (`memory`: the main thread cannot see a worker's heap). Jobs run one at a time, in arrival order.
 * A `{nice}` message (sent first, if at all) lowers this thread's CPU
 * priority and is answered with `{priority}` (engine/thread_priority.ts).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { WireError } from "./background.ts";
import { CorruptionError, ShaleError } from "./errors.ts";
import { realFs } from "./fs.ts";
import type { Job } from "./jobs.ts";
import { runJob } from "./jobs.ts";
import { isolateMemory } from "./worker_memory.ts";
import { lowerThreadPriority } from "./thread_priority.ts";

function toWire(err: unknown): WireError {
  if (err instanceof CorruptionError) {
    return {
      code: err.code,
      message: err.message,
      file: err.file,
      offset: err.offset,
    };
  }
  if (err instanceof ShaleError) {
    return { code: err.code, message: err.message };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}

let chain = Promise.resolve();
self.onmessage = (ev: MessageEvent) => {
  if (typeof ev.data.nice === "number") {
    self.postMessage({ priority: lowerThreadPriority(ev.data.nice) });
    return;
  }
  const { id, job } = ev.data as { id: number; job: Job };
  chain = chain.then(async () => {
    try {
      const result = await runJob(realFs, job);
      self.postMessage({ id, result, memory: isolateMemory() });
    } catch (err) {
      self.postMessage({ id, error: toWire(err), memory: isolateMemory() });
    }
  });
};
