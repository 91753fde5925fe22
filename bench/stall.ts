/**
 * How much does background compaction disturb the main thread?
 *
 * Loads a dataset with small tables so that a large compaction backlog
 * exists, then runs `compactRange()` (every table rewritten, in the worker)
 * while the main thread does nothing but point reads and a 1 ms timer. It
 * records the longest event-loop stall (how late the timer fired) and get
 * latency, and compares them with the same read loop while idle.
 *
 * Each round runs once per compaction rate limit (`--rates`, MiB/s, 0 for
 * unlimited: the option compactionBytesPerSecond) and compaction worker
 * nice value (`--nices`, the option compactionNice; 0 leaves the worker at
 * the main thread's priority), alternating, so the settings are compared
 * under the same machine load; the report gives medians over the rounds.
 *
 *     deno run -A bench/stall.ts                 # 1M keys, unlimited, 1 round
 *     deno run -A bench/stall.ts --n 300000 --rounds 3 --rates 0,4
 *     taskset -c 0 deno run -A bench/stall.ts --rounds 3 --nices 0,10
 *     taskset -c 0 deno run -A bench/stall.ts ...   # worker shares the core
 *     deno run -A bench/stall.ts --n 3000000 --no-write
 *
 * Writes bench/RESULTS_STALL.md unless --no-write.
 *
 * @module
 */
import { benchArgs } from "./_args.ts";
import { open } from "../mod.ts";
import { median, Samples, threadCpuSeconds } from "./_measure.ts";
import {
  commandLine,
  fmtInt,
  fmtUs,
  loadAverage,
  machineInfo,
  machineMarkdown,
  mdTable,
} from "./_report.ts";
import { keyFor, permutation, ValuePool } from "./_workload.ts";

const args = benchArgs({
  results: "bench/RESULTS_STALL.md",
  strings: { n: "1000000", rounds: "1", rates: "0", nices: "10" },
});
const N = Number(args.n);
if (!(N > 0)) throw new RangeError("--n must be a positive number");
const ROUNDS = Number(args.rounds);
if (!(ROUNDS > 0)) throw new RangeError("--rounds must be a positive number");
/** Compaction rate limits in MiB/s; 0 is unlimited. */
const RATES = args.rates.split(",").map(Number);
if (RATES.some((r) => !(r >= 0))) {
  throw new RangeError("--rates must be MiB/s values >= 0, 0 for unlimited");
}
/** Nice values of the compaction worker (compactionNice). */
const NICES = args.nices.split(",").map(Number);
if (NICES.some((n) => !Number.isInteger(n) || n < 0 || n > 19)) {
  throw new RangeError("--nices must be integers from 0 to 19");
}
/** One setting under test: a rate limit and a nice value. */
interface Setting {
  rateMiB: number;
  nice: number;
}
const SETTINGS: Setting[] = RATES.flatMap((rateMiB) =>
  NICES.map((nice) => ({ rateMiB, nice }))
);

interface Phase {
  name: string;
  seconds: number;
  gets: number;
  p50us: number;
  p99us: number;
  maxGetUs: number;
  timerTicks: number;
  maxStallMs: number;
  stallsOver5ms: number;
}

/**
 * Reads random keys in slices of 200 gets, yielding to the event loop
 * between slices, while a 1 ms interval timer measures lateness. Runs until
 * `done()` says stop.
 */
async function readLoop(
  name: string,
  get: (i: number) => void,
  done: () => boolean,
): Promise<Phase> {
  const lat = new Samples();
  let maxGet = 0;
  let ticks = 0;
  let maxStall = 0;
  let over5 = 0;
  let expected = performance.now() + 1;
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - expected;
    if (late > maxStall) maxStall = late;
    if (late > 5) over5++;
    ticks++;
    expected = now + 1;
  }, 1);
  const started = performance.now();
  let x = 12345;
  while (!done()) {
    for (let j = 0; j < 200; j++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const t = performance.now();
      get(x % N);
      const d = performance.now() - t;
      lat.add(d);
      if (d > maxGet) maxGet = d;
    }
    await new Promise((r) => setTimeout(r, 0));
  }
  clearInterval(timer);
  const [p50, p99] = lat.p50p99us();
  return {
    name,
    seconds: (performance.now() - started) / 1000,
    gets: lat.n,
    p50us: p50,
    p99us: p99,
    maxGetUs: maxGet * 1000,
    timerTicks: ticks,
    maxStallMs: maxStall,
    stallsOver5ms: over5,
  };
}

interface Run {
  idle: Phase;
  busy: Phase;
  /** Seconds compactRange() took. */
  compactSeconds: number;
  rewrittenBytes: number;
  compactions: number;
  /**
   * The main thread's share of the CPU that it and the worker threads used
   * during compactRange(): how much the compaction worker took from it when
   * both share a core.
   */
  mainShare: number;
}

/** Loads a fresh store, then measures gets idle and during compactRange(). */
async function runOnce({ rateMiB, nice }: Setting): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "shale-stall-" });
  try {
    const db = await open(dir, {
      sync: "none",
      memtableBytes: 2 << 20,
      tableTargetBytes: 2 << 20,
      baseLevelBytes: 8 << 20,
      compactionBytesPerSecond: Math.round(rateMiB * 1048576),
      compactionNice: nice,
    });
    const values = new ValuePool(7);
    const order = permutation(N, 42);
    for (let i = 0; i < N; i += 1000) {
      const ops = [];
      for (let j = i; j < Math.min(N, i + 1000); j++) {
        ops.push({
          type: "put" as const,
          key: keyFor(order[j]),
          value: values.next(),
        });
      }
      await db.batch(ops);
    }
    await db.flush();
    await db.compactUntilIdle();
    const applied = (db.stats().background as {
      compactionNice: { applied: boolean; reason: string | null };
    }).compactionNice;
    if (nice > 0 && !applied.applied) {
      console.error(`compaction worker not at nice ${nice}: ${applied.reason}`);
    }
    const keys = Array.from({ length: N }, (_, i) => keyFor(i));
    const get = (i: number) => {
      if (!db.get(keys[i])) throw new Error(`key ${i} missing`);
    };
    for (let i = 0; i < 50000; i++) get(i % N); // warm up JIT and cache

    const idleEnd = performance.now() + 3000;
    const idle = await readLoop("idle", get, () => performance.now() > idleEnd);

    const before = db.stats().ops as Record<string, number>;
    let compacting = true;
    const t = performance.now();
    const cpu0 = threadCpuSeconds(Deno.pid);
    const run = db.compactRange().finally(() => compacting = false);
    const busy = await readLoop(
      "during compactRange (all tables rewritten in the worker)",
      get,
      () => !compacting,
    );
    await run;
    const cpu1 = threadCpuSeconds(Deno.pid);
    let main = 0, workers = 0;
    for (const [tid, t] of cpu1) {
      const used = t.seconds - (cpu0.get(tid)?.seconds ?? 0);
      if (tid === Deno.pid) main += used;
      else if (/^worker-\d+$/.test(t.name)) workers += used;
    }
    const compactSeconds = (performance.now() - t) / 1000;
    const after = db.stats().ops as Record<string, number>;
    await db.close();
    return {
      idle,
      busy,
      compactSeconds,
      rewrittenBytes: after.compactBytesWritten - before.compactBytesWritten,
      compactions: after.compactions - before.compactions,
      mainShare: main / (main + workers),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The CPUs this process may run on (taskset), for the report. */
function cpusAllowed(): string {
  try {
    const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(
      Deno.readTextFileSync("/proc/self/status"),
    );
    return m ? m[1].trim() : "unknown";
  } catch {
    return "unknown";
  }
}

const rateName = (r: number) => r === 0 ? "unlimited" : `${r} MiB/s`;
const settingName = (s: Setting) =>
  NICES.length === 1 && s.nice === 10
    ? rateName(s.rateMiB)
    : `${rateName(s.rateMiB)}, nice ${s.nice}`;
const info = machineInfo(Deno.cwd());
const runs = new Map<Setting, Run[]>(SETTINGS.map((s) => [s, []]));
for (let round = 0; round < ROUNDS; round++) {
  // Alternate the order so that no setting always runs first.
  const order = round % 2 === 0 ? SETTINGS : [...SETTINGS].reverse();
  for (const setting of order) {
    const r = await runOnce(setting);
    runs.get(setting)!.push(r);
    console.error(
      `round ${round + 1} ${settingName(setting)}: p99 idle ${
        fmtUs(r.idle.p99us)
      } µs, busy ${fmtUs(r.busy.p99us)} µs, longest stall idle ${
        r.idle.maxStallMs.toFixed(1)
      } ms, busy ${
        r.busy.maxStallMs.toFixed(1)
      } ms, ticks > 5 ms late ${r.busy.stallsOver5ms}, gets/s busy ${
        fmtInt(r.busy.gets / r.busy.seconds)
      }, main thread CPU share ${
        (100 * r.mainShare).toFixed(0)
      }%, compactRange ${r.compactSeconds.toFixed(1)} s`,
    );
  }
}
const loadEnd = loadAverage();

const rows: string[][] = [];
for (const setting of SETTINGS) {
  const rs = runs.get(setting)!;
  const med = (f: (r: Run) => number) => median(rs.map(f));
  for (const which of ["idle", "busy"] as const) {
    rows.push([
      settingName(setting),
      rs[0][which].name,
      med((r) => r[which].seconds).toFixed(1),
      fmtInt(med((r) => r[which].gets)),
      fmtInt(med((r) => r[which].gets / r[which].seconds)),
      fmtUs(med((r) => r[which].p50us)),
      fmtUs(med((r) => r[which].p99us)),
      fmtUs(med((r) => r[which].maxGetUs)),
      med((r) => r[which].maxStallMs).toFixed(1),
      fmtInt(med((r) => r[which].stallsOver5ms)),
    ]);
  }
}
const table = mdTable(
  [
    NICES.length === 1 && NICES[0] === 10
      ? "compaction rate limit"
      : "compaction rate limit, worker nice",
    "phase",
    "seconds",
    "gets",
    "gets/s",
    "get p50 (µs)",
    "get p99 (µs)",
    "get max (µs)",
    "longest event-loop stall (ms)",
    "timer ticks > 5 ms late",
  ],
  rows,
);
const ratios = SETTINGS.map((setting) => {
  const rs = runs.get(setting)!;
  const ratio = median(rs.map((r) => r.busy.p99us / r.idle.p99us));
  const secs = median(rs.map((r) => r.compactSeconds));
  const mib = median(rs.map((r) => r.rewrittenBytes)) / 1048576;
  const share = median(rs.map((r) => r.mainShare));
  return `- ${settingName(setting)}: get p99 during compaction ${
    ratio.toFixed(2)
  }x idle (median of the per-round ratios); \`compactRange()\` rewrote ${
    mib.toFixed(1)
  } MiB in ${secs.toFixed(1)} s; the main thread had ${
    (100 * share).toFixed(0)
  }% of the CPU it and the workers used meanwhile`;
}).join("\n");
const report = `# shale: event-loop stalls during compaction

Regenerated by \`bench/stall.ts\`; do not edit by hand.

${machineMarkdown(info, commandLine("bench/stall.ts"))}
- Load average at the end: ${loadEnd}
- CPUs this process (main thread and compaction worker) may use: ${cpusAllowed()}
- Dataset: ${fmtInt(N)} keys x (16 B key, 100 B value), 2 MiB tables, 8 MiB
  base level; then \`compactRange()\` rewrites every table in the background
  worker (at nice ${NICES.join(" / ")}). ${ROUNDS} round(s), each running
  every setting once (order alternating); medians over the rounds.
- The main thread only serves point reads (slices of 200, yielding between
  slices) and a 1 ms interval timer whose lateness is the event-loop stall.

${table}

${ratios}
`;
console.log(report);
if (!args["no-write"]) {
  Deno.writeTextFileSync(args.results, report);
}
