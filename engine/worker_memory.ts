/**
 * Memory of a background worker's JavaScript isolate, as the worker reports
 * it with every job it answers. A worker's heap is invisible to the main
 * thread's `Deno.memoryUsage()` (each isolate has its own), so without these
 * reports the flush and compaction workers show up only in the process RSS.
 *
 * @module
 */
import process from "node:process";

/** One isolate's heap figures, in bytes (`process.memoryUsage()`'s fields). */
export interface IsolateMemory {
  /** Bytes of live and not yet collected objects. */
  heapUsed: number;
  /** Bytes the isolate's heap has committed (what it costs in RSS). */
  heapTotal: number;
  /** Bytes of ArrayBuffers and other memory held outside the heap. */
  external: number;
}

/** The calling isolate's heap figures. */
export function isolateMemory(): IsolateMemory {
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
}

/** What {@link WorkerMemory.report} returns (engine stats, `memory.workers`). */
export interface WorkerMemoryReport extends IsolateMemory {
  /** Jobs answered so far; the figures are those of the last answer. */
  jobs: number;
  /** Largest `heapTotal` any answer carried. */
  peakHeapTotal: number;
  /** Largest `external` any answer carried. */
  peakExternal: number;
}

/**
 * The figures a worker reported at the end of its jobs: the last ones and
 * the largest. A job's garbage is mostly still in the heap when it answers,
 * so the figures at the end of a job are close to its peak.
 */
export class WorkerMemory {
  #last: IsolateMemory = { heapUsed: 0, heapTotal: 0, external: 0 };
  #jobs = 0;
  #peakHeapTotal = 0;
  #peakExternal = 0;

  /** Records what one answer carried. */
  record(m: IsolateMemory): void {
    this.#last = { ...m };
    this.#jobs++;
    if (m.heapTotal > this.#peakHeapTotal) this.#peakHeapTotal = m.heapTotal;
    if (m.external > this.#peakExternal) this.#peakExternal = m.external;
  }

  /** The last and largest figures (all zero before the first answer). */
  report(): WorkerMemoryReport {
    return {
      ...this.#last,
      jobs: this.#jobs,
      peakHeapTotal: this.#peakHeapTotal,
      peakExternal: this.#peakExternal,
    };
  }
}
