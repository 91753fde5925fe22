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
 * unlimited: the option compactionBytesPerSecond), alternating, so the
 * limits are compared under the same machine load; the report gives medians
 * over the rounds.
 *
 *     deno run -A bench/stall.ts                 # 1M keys, unlimited, 1 round
 *     deno run -A bench/stall.ts --n 300000 --rounds 3 --rates 0,4
 *     taskset -c 0 deno run -A bench/stall.ts ...   # worker shares the core
 *     deno run -A bench/stall.ts --n 3000000 --no-write
 *
 * Writes bench/RESULTS_STALL.md unless --no-write.
 *
 * @module
 */
import { benchArgs } from "./_args.ts";
import { open } from "../mod.ts";
import { median, Samples } from "./_measure.ts";
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
  strings: { n: "1000000", rounds: "1", rates: "0" },
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
}

/** Loads a fresh store, then measures gets idle and during compactRange(). */
async function runOnce(rateMiB: number): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "shale-stall-" });
  try {
    const db = await open(dir, {
      sync: "none",
      memtableBytes: 2 << 20,
      tableTargetBytes: 2 << 20,
      baseLevelBytes: 8 << 20,
      compactionBytesPerSecond: Math.round(rateMiB * 1048576),
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
    const run = db.compactRange().finally(() => compacting = false);
    const busy = await readLoop(
      "during compactRange (all tables rewritten in the worker)",
      get,
      () => !compacting,
    );
    await run;
    const compactSeconds = (performance.now() - t) / 1000;
    const after = db.stats().ops as Record<string, number>;
    await db.close();
    return {
      idle,
      busy,
      compactSeconds,
      rewrittenBytes: after.compactBytesWritten - before.compactBytesWritten,
      compactions: after.compactions - before.compactions,
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
const info = machineInfo(Deno.cwd());
const runs = new Map<number, Run[]>(RATES.map((r) => [r, []]));
for (let round = 0; round < ROUNDS; round++) {
  // Alternate the order so that no limit always runs first.
  const order = round % 2 === 0 ? RATES : [...RATES].reverse();
  for (const rate of order) {
    const r = await runOnce(rate);
    runs.get(rate)!.push(r);
    console.error(
      `round ${round + 1} ${rateName(rate)}: p99 idle ${
        fmtUs(r.idle.p99us)
      } µs, busy ${fmtUs(r.busy.p99us)} µs, compactRange ${
        r.compactSeconds.toFixed(1)
      } s`,
    );
  }
}
const loadEnd = loadAverage();

const rows: string[][] = [];
for (const rate of RATES) {
  const rs = runs.get(rate)!;
  const med = (f: (r: Run) => number) => median(rs.map(f));
  for (const which of ["idle", "busy"] as const) {
    rows.push([
      rateName(rate),
      rs[0][which].name,
      med((r) => r[which].seconds).toFixed(1),
      fmtInt(med((r) => r[which].gets)),
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
    "compaction rate limit",
    "phase",
    "seconds",
    "gets",
    "get p50 (µs)",
    "get p99 (µs)",
    "get max (µs)",
    "longest event-loop stall (ms)",
    "timer ticks > 5 ms late",
  ],
  rows,
);
const ratios = RATES.map((rate) => {
  const rs = runs.get(rate)!;
  const ratio = median(rs.map((r) => r.busy.p99us / r.idle.p99us));
  const secs = median(rs.map((r) => r.compactSeconds));
  const mib = median(rs.map((r) => r.rewrittenBytes)) / 1048576;
  return `- ${rateName(rate)}: get p99 during compaction ${
    ratio.toFixed(2)
  }x idle (median of the per-round ratios); \`compactRange()\` rewrote ${
    mib.toFixed(1)
  } MiB in ${secs.toFixed(1)} s`;
}).join("\n");
const report = `# shale: event-loop stalls during compaction

Regenerated by \`bench/stall.ts\`; do not edit by hand.

${machineMarkdown(info, commandLine("bench/stall.ts"))}
- Load average at the end: ${loadEnd}
- CPUs this process (main thread and compaction worker) may use: ${cpusAllowed()}
- Dataset: ${fmtInt(N)} keys x (16 B key, 100 B value), 2 MiB tables, 8 MiB
  base level; then \`compactRange()\` rewrites every table in the background
  worker. ${ROUNDS} round(s), each running every rate limit once (order
  alternating); medians over the rounds.
- The main thread only serves point reads (slices of 200, yielding between
  slices) and a 1 ms interval timer whose lateness is the event-loop stall.

${table}

${ratios}
`;
console.log(report);
if (!args["no-write"]) {
  Deno.writeTextFileSync(args.results, report);
}
