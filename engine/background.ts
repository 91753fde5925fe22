/**
 * Where background jobs run. `WorkerRunner` posts each job to a Web Worker
 * (engine/worker.ts) so table building never blocks the event loop;
 * `InlineRunner` runs the same code on the calling thread through the
 * caller's file system, which lets tests inject faults into flushes.
 *
 * @module
 */
import type { ErrorCode } from "./errors.ts";
import { CorruptionError, ShaleError } from "./errors.ts";
import type { FileSystem } from "./fs.ts";
import type { Job, JobResult } from "./jobs.ts";
import { runJob } from "./jobs.ts";
import type { IsolateMemory, WorkerMemoryReport } from "./worker_memory.ts";
import { WorkerMemory } from "./worker_memory.ts";
import type { ThreadPriority } from "./thread_priority.ts";

/** Runs jobs one at a time, in order. */
export interface JobRunner {
  /**
   * Runs `job`. Buffers in `transfer` move to the worker (the caller must
   * not use them again); the rest of the job is copied.
   */
  run(job: Job, transfer?: Transferable[]): Promise<JobResult>;
  close(): void;
  /** The worker's heap as it last reported it; undefined when jobs run inline. */
  memory(): WorkerMemoryReport | undefined;
}

/** Runs jobs on the calling thread. */
export class InlineRunner implements JobRunner {
  constructor(readonly fs: FileSystem) {}
  run(job: Job): Promise<JobResult> {
    return runJob(this.fs, job);
  }
  close(): void {}
  /** Inline jobs use the caller's heap: nothing separate to report. */
  memory(): undefined {
    return undefined;
  }
}

/** An error as it crosses the worker boundary. */
export interface WireError {
  code?: ErrorCode;
  message: string;
  file?: string;
  offset?: number;
}

/** Rebuilds a typed error from the worker's description. */
export function errorFromWire(e: WireError): Error {
  if (e.code === "corruption" && e.file !== undefined) {
    const err = new CorruptionError(e.file, e.offset ?? 0, "");
    err.message = e.message;
    return err;
  }
  if (e.code) return new ShaleError(e.code, e.message);
  return new Error(e.message);
}

/**
 * Where engine/worker.ts is. In a binary built by `bun build --compile`,
 * this module is bundled into the program at the root of Bun's embedded file
 * system (`/$bunfs/root/`, `B:/~BUN/root/` on Windows) and the worker is a
 * second entry point kept at its source path under the same root (the build
 * passes `--root .` so that path is `engine/worker.ts`).
 */
export function workerUrl(base: string = import.meta.url): string {
  const embedded = base.includes("/$bunfs/") || base.includes("/~BUN/");
  return new URL(embedded ? "./engine/worker.ts" : "./worker.ts", base).href;
}

/**
 * Runs jobs in a dedicated Web Worker, one at a time. With `nice` > 0 the
 * worker first lowers its thread's CPU priority to that nice value, so the
 * main thread wins when both want the same core; {@link priority} says
 * whether it did.
 */
export class WorkerRunner implements JobRunner {
  #worker: Worker;
  #nextId = 1;
  #failed: Error | undefined;
  #memory = new WorkerMemory();
  #priority: ThreadPriority | undefined;
  #waiting = new Map<
    number,
    { resolve: (r: JobResult) => void; reject: (e: Error) => void }
  >();

  /** `url`: the worker module (tests point it elsewhere). */
  constructor(url: string = workerUrl(), nice = 0) {
    this.#worker = new Worker(url, { type: "module" });
    this.#worker.onmessage = (ev: MessageEvent) => {
      const msg = ev.data as {
        id: number;
        result?: JobResult;
        error?: WireError;
        memory?: IsolateMemory;
        priority?: ThreadPriority;
      };
      if (msg.priority) {
        this.#priority = msg.priority;
        return;
      }
      if (msg.memory) this.#memory.record(msg.memory);
      const w = this.#waiting.get(msg.id);
      if (!w) return;
      this.#waiting.delete(msg.id);
      if (msg.error) w.reject(errorFromWire(msg.error));
      else w.resolve(msg.result!);
    };
    this.#worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      const err = new Error(`background worker failed: ${ev.message}`);
      // A worker that failed (one that could not even load, say) answers
      // nothing more: later jobs must fail too, not wait forever.
      this.#failed = err;
      for (const w of this.#waiting.values()) w.reject(err);
      this.#waiting.clear();
    };
    // Before any job: messages are handled in order.
    if (nice > 0) this.#worker.postMessage({ nice });
  }

  /**
   * What lowering the worker's priority did; undefined until the worker has
   * answered (it does before its first job's result), or when not asked.
   */
  get priority(): ThreadPriority | undefined {
    return this.#priority;
  }

  run(job: Job, transfer: Transferable[] = []): Promise<JobResult> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#worker.postMessage({ id, job }, transfer);
    });
  }

  memory(): WorkerMemoryReport {
    return this.#memory.report();
  }

  close(): void {
    this.#worker.terminate();
    const err = new Error("background worker closed");
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
  }
}
