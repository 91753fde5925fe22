/**
 * The HTTP benchmark's "GET latency while writes are heavy" phase: wrk
 * readers in 1 s windows, first alone (idle), then beside a wrk writer of
 * large PUTs. It runs against shale and against the bare Map handler in
 * the same run: on one pinned core the writer's own request work takes CPU
 * from the readers whatever the server does, so the bare handler's
 * busy/idle ratio is the floor shale's ratio is judged against.
 *
 * @module
 */
import { median, type Progress, threadCpuSeconds } from "./_measure.ts";
import type { Server } from "./_servers.ts";
import { parseWrk, type WrkResult } from "./_wrk.ts";

/** One 1 s window: t (s), p50 and p99 (ms). */
export type Window = [number, number, number];

/** Server CPU seconds in the busy windows by thread. */
export interface CpuSplit {
  /** The main thread (its thread id is the process id). */
  main: number;
  /** Each named worker thread (`worker-N`, in creation order). */
  workers: Map<string, number>;
  /** Everything else: the runtime's I/O, blocking-pool and GC threads. */
  other: number;
}

/** What one server's phase measured. */
export interface BusySeries {
  idle: Window[];
  busy: Window[];
  busyCpu: CpuSplit;
  writerRps: number;
  writerNon2xx: number;
  /** The engine's op counters before and after (shale only: its /stats). */
  before?: Record<string, number>;
  after?: Record<string, number>;
}

/** How the phase runs. */
export interface BusyOptions {
  /** wrk as a measurement (bench/_wrk.ts `wrkRunner`). */
  wrk(url: string, script: string, secs: number, conns: number): Promise<
    WrkResult
  >;
  /** wrk as a command to run alongside. */
  wrkCommand(
    url: string,
    script: string,
    secs: number,
    conns: number,
  ): Deno.Command;
  /** 1 s windows in each half (at least 3). */
  windows: number;
  readerConns: number;
  writerConns: number;
  progress: Progress;
  /** The writer's wrk script (default `writer`). */
  writerScript?: string;
  /** Reads the engine's op counters (shale's /stats); absent for bare. */
  engineStats?: (url: string) => Promise<Record<string, number>>;
}

/**
 * Splits the CPU each thread of `pid` used between two readings into the
 * main thread, the named workers and the rest.
 */
export function cpuSplit(
  pid: number,
  before: ReturnType<typeof threadCpuSeconds>,
  after: ReturnType<typeof threadCpuSeconds>,
): CpuSplit {
  const split = { main: 0, workers: new Map<string, number>(), other: 0 };
  for (const [tid, t] of after) {
    const used = t.seconds - (before.get(tid)?.seconds ?? 0);
    if (tid === pid) split.main += used;
    else if (/^worker-\d+$/.test(t.name)) {
      split.workers.set(t.name, (split.workers.get(t.name) ?? 0) + used);
    } else split.other += used;
  }
  return split;
}

/** GET-hit latency in 1 s windows: idle, then while a writer hammers PUTs. */
export async function busyRun(
  s: Server,
  label: string,
  o: BusyOptions,
): Promise<BusySeries> {
  const windows = Math.max(3, Math.floor(o.windows));
  /** `windows` 1 s wrk runs of GET hits. */
  const measure = async (half: string): Promise<Window[]> => {
    const out: Window[] = [];
    o.progress.begin(`${label} GET p99 ${half}`, windows);
    for (let i = 0; i < windows; i++) {
      const r = await o.wrk(s.url, "get_hit", 1, o.readerConns);
      out.push([i + 1, r.p50, r.p99]);
      o.progress.tick(i + 1);
    }
    o.progress.end();
    return out;
  };
  const idle = await measure("idle");
  const before = await o.engineStats?.(s.url);
  const writer = o.wrkCommand(
    s.url,
    o.writerScript ?? "writer",
    windows + 3,
    o.writerConns,
  )
    .output();
  await new Promise((r) => setTimeout(r, 1500));
  const pid = s.child.pid;
  const cpu0 = threadCpuSeconds(pid);
  const busy = await measure("busy");
  const busyCpu = cpuSplit(pid, cpu0, threadCpuSeconds(pid));
  const after = await o.engineStats?.(s.url);
  const w = await writer;
  const wr = parseWrk(new TextDecoder().decode(w.stdout));
  return {
    idle,
    busy,
    busyCpu,
    writerRps: wr.rps,
    writerNon2xx: wr.non2xx,
    before,
    after,
  };
}

/** Median p50 and p99 (ms) of a half's windows, and its worst p99. */
export function summary(
  w: Window[],
): { p50: number; p99: number; worst: number } {
  return {
    p50: median(w.map((x) => x[1])),
    p99: median(w.map((x) => x[2])),
    worst: Math.max(...w.map((x) => x[2])),
  };
}

/** Median p99 of the busy windows over that of the idle ones. */
export function busyRatio(s: BusySeries): number {
  return summary(s.busy).p99 / summary(s.idle).p99;
}
