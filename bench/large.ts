/**
 * Larger-than-memory benchmark (`make bench-large`): loads a dataset at least
 * 4x shale's memory budget, then measures random reads and a full scan while
 * sampling the process's RSS, and writes bench/RESULTS_LARGE.md plus
 * bench/results_large.svg (RSS over time).
 *
 *     deno run -A bench/large.ts                 # 1 GiB of data, 256 MiB budget
 *     deno run -A bench/large.ts --gb 2 --budget-mb 256
 *
 * The budget is passed as `memoryBudgetBytes`; the engine splits it between
 * memtables, block cache and open tables' index/filter data. The OS page cache is not limited (the machine has far more RAM than
 * the dataset), so cold-disk reads are not what this measures; flat RSS is.
 *
 * @module
 */
import v8 from "node:v8";
import { benchArgs } from "./_args.ts";
import { open } from "../mod.ts";
import { lineChartSvg } from "./_chart.ts";
import { dirBytes, Progress, Samples } from "./_measure.ts";
import { type AnonBreakdown, anonBreakdown } from "./_smaps.ts";
import {
  commandLine,
  fmtInt,
  fmtRate,
  fmtUs,
  machineInfo,
  machineMarkdown,
  mdTable,
} from "./_report.ts";
import {
  KEY_BYTES,
  keyFor,
  prng,
  shuffledOrder,
  VALUE_BYTES,
  ValuePool,
} from "./_workload.ts";

const args = benchArgs({
  results: "bench/RESULTS_LARGE.md",
  strings: {
    gb: "1",
    "budget-mb": "256",
    "read-seconds": "20",
    batch: "1000",
    svg: "bench/results_large.svg",
  },
  optional: ["dir"],
  flags: ["keep"],
});

const GB = Number(args.gb);
const BUDGET = Number(args["budget-mb"]) * 1048576;
const READ_SECS = Number(args["read-seconds"]);
const BATCH = Number(args.batch);
if (!(GB > 0 && BUDGET > 0 && READ_SECS > 0 && BATCH > 0)) {
  console.error("--gb, --budget-mb, --read-seconds and --batch must be > 0");
  Deno.exit(2);
}
const ENTRY = KEY_BYTES + VALUE_BYTES;
const N = Math.ceil((GB * 1073741824) / ENTRY);

const root = args.dir ?? await Deno.makeTempDir({ prefix: "shale-large-" });
await Deno.mkdir(root, { recursive: true });
const machine = machineInfo(root);
/**
 * V8 flags the process runs with (`make bench-large` sets the young
 * generation's size), read from /proc/self/cmdline: Deno does not show them
 * to the program otherwise. Empty off Linux.
 */
function v8Flags(): string[] {
  try {
    return Deno.readTextFileSync("/proc/self/cmdline").split("\0").filter((
      a,
    ) => a.startsWith("--v8-flags="));
  } catch {
    return [];
  }
}
const command = commandLine(
  "bench/large.ts",
  ["-A", ...v8Flags()].join(" "),
);
const progress = new Progress();

// RSS sampling: a timer for async phases, and an explicit call from the
// synchronous read/scan loops (which keep timers from firing). RSS is split
// the way /proc/self/status does: RssAnon (heaps, ArrayBuffers, everything
// that is really the process's) and RssFile (mapped table pages, which are
// page cache the kernel can take back). V8's heap and external (ArrayBuffer)
// bytes are the main thread's only; the flush and compaction workers' heaps
// come from the engine's stats (memory.workers: what each reported with its
// last job).
const t0 = performance.now();
interface MemSample {
  t: number;
  phase: string;
  rss: number;
  anon: number;
  file: number;
  heap: number;
  /** Main thread's committed heap. */
  heapTotal: number;
  /** Of it, the young generation (V8's new space). */
  newSpace: number;
  external: number;
  /** Committed heaps of the flush and compaction workers (last reports). */
  workers: number;
  /** External (ArrayBuffer) bytes of the two workers (last reports). */
  workersExternal: number;
  /** Engine's own accounting (db.stats().memory), main thread. */
  engine: number;
  /** RssAnon by kind of mapping (bench/_smaps.ts), at most ~1 s old. */
  kinds: AnonBreakdown;
}
const rssSamples: MemSample[] = [];
let phase = "open";
let lastSample = 0;
const peak: Record<string, number> = {};
const peakAnon: Record<string, number> = {};
const procStatus = (() => {
  try {
    Deno.readTextFileSync("/proc/self/status");
    return true;
  } catch {
    return false;
  }
})();
/** RssAnon and RssFile+RssShmem in bytes, or NaN off Linux. */
function rssParts(): { anon: number; file: number } {
  if (!procStatus) return { anon: NaN, file: NaN };
  const s = Deno.readTextFileSync("/proc/self/status");
  const kb = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN) *
    1024;
  return { anon: kb("RssAnon"), file: kb("RssFile") + kb("RssShmem") };
}
// Reading smaps costs about a millisecond: at most once a second, and
// whenever RssAnon reaches a new high, so the peak's split is exact.
let kinds: AnonBreakdown = anonBreakdown();
let kindsAt = 0;
let anonHigh = 0;
let engineMemory: () => number = () => 0;
let workerMemory: () => { heap: number; external: number } = () => ({
  heap: 0,
  external: 0,
});
function sample(force = false): void {
  const now = performance.now();
  if (!force && now - lastSample < 250) return;
  lastSample = now;
  const m = Deno.memoryUsage();
  const { anon, file } = rssParts();
  const w = workerMemory();
  if (anon > anonHigh || now - kindsAt >= 1000) {
    kinds = anonBreakdown();
    kindsAt = now;
    anonHigh = Math.max(anonHigh, anon);
  }
  rssSamples.push({
    t: (now - t0) / 1000,
    phase,
    rss: m.rss,
    anon,
    file,
    heap: m.heapUsed,
    heapTotal: m.heapTotal,
    newSpace: v8.getHeapSpaceStatistics().find((sp) =>
      sp.space_name === "new_space"
    )?.space_size ?? 0,
    external: m.external,
    workers: w.heap,
    workersExternal: w.external,
    engine: engineMemory(),
    kinds,
  });
  peak[phase] = Math.max(peak[phase] ?? 0, m.rss);
  peakAnon[phase] = Math.max(peakAnon[phase] ?? 0, anon);
}
const timer = setInterval(sample, 250);

// The engine splits the budget itself (memoryBudgetBytes in engine/options.ts).
const db = await open(root, { sync: "none", memoryBudgetBytes: BUDGET });
const MEMTABLE = db.options.memtableBytes;
const CACHE = db.options.blockCacheBytes;
const MAX_OPEN = db.options.maxOpenTables;
engineMemory = () => {
  const m = (db.stats() as { memory: Record<string, number> }).memory;
  return m.memtables + m.blockCache + m.tableMeta + m.changeHistory;
};
workerMemory = () => {
  const { workers } = (db.stats() as {
    memory: {
      workers: Record<string, { heapTotal: number; external: number } | null>;
    };
  }).memory;
  let heap = 0, external = 0;
  for (const w of Object.values(workers)) {
    heap += w?.heapTotal ?? 0;
    external += w?.external ?? 0;
  }
  return { heap, external };
};
sample(true);
const values = new ValuePool(7);
let engineStats: {
  writeAmplification: number;
  levels: { level: number; tables: number; bytes: number }[];
  blockCache: Record<string, number>;
  memory: {
    workers: Record<
      string,
      { peakHeapTotal: number; peakExternal: number; jobs: number } | null
    >;
  };
  tables: Record<string, number>;
  ops: Record<string, number>;
} | undefined;
const rows: string[][] = [];
const mib = (b: number) => (b / 1048576).toFixed(0);

console.error(
  `dataset ${GB} GiB = ${fmtInt(N)} entries; budget ${
    mib(BUDGET)
  } MiB (memtable ${mib(MEMTABLE)} MiB, cache ${
    mib(CACHE)
  } MiB, ${MAX_OPEN} open tables); dir ${root}`,
);

try {
  // ---- load: random order, batched, sync off.
  phase = "load";
  // Computed per key, not a table: a permutation array (4 bytes a key,
  // 35 MiB at 1 GiB) would count against the RssAnon this measures.
  const order = shuffledOrder(N, 11);
  progress.begin("load", N);
  let t = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    const end = Math.min(N, i + BATCH);
    const ops = new Array(end - i);
    for (let j = i; j < end; j++) {
      ops[j - i] = {
        type: "put" as const,
        key: keyFor(order.at(j)),
        value: values.next(),
      };
    }
    await db.batch(ops);
    progress.tick(end);
    sample();
  }
  let secs = (performance.now() - t) / 1000;
  progress.end();
  rows.push([
    "load (random order, batches of " + BATCH + ")",
    fmtInt(N),
    secs.toFixed(1),
    fmtInt(N / secs),
    `${((N * ENTRY) / 1048576 / secs).toFixed(1)} MiB/s`,
    mib(peak.load ?? 0),
    mib(peakAnon.load ?? 0),
  ]);
  console.error(`load: ${fmtRate(N / secs)} keys/s`);

  phase = "compact";
  t = performance.now();
  await db.flush();
  await db.compactUntilIdle();
  secs = (performance.now() - t) / 1000;
  sample(true);
  const onDisk = dirBytes(root);
  rows.push([
    "flush + compact until idle",
    "-",
    secs.toFixed(1),
    "-",
    `${mib(onDisk)} MiB on disk`,
    mib(peak.compact ?? 0),
    mib(peakAnon.compact ?? 0),
  ]);
  console.error(`compaction settled in ${secs.toFixed(1)} s`);

  // ---- random reads, time-bounded.
  phase = "readrandom";
  const rnd = prng(13);
  const key = new Uint8Array(KEY_BYTES);
  const lat = new Samples();
  let reads = 0, found = 0;
  progress.begin("readrandom", 0);
  t = performance.now();
  const deadline = t + READ_SECS * 1000;
  while (performance.now() < deadline) {
    for (let k = 0; k < 1024; k++) {
      keyFor(Math.floor(rnd() * N), key);
      if ((k & 15) === 0) {
        const a = performance.now();
        if (db.get(key)) found++;
        lat.add(performance.now() - a);
      } else if (db.get(key)) found++;
    }
    reads += 1024;
    sample();
    progress.tick(reads);
    // Let the engine's timers and worker messages run between chunks.
    if ((reads & 65535) === 0) await new Promise((r) => setTimeout(r, 0));
  }
  secs = (performance.now() - t) / 1000;
  progress.end();
  const [p50, p99] = lat.p50p99us();
  rows.push([
    `readrandom (hits${found === reads ? "" : `, WRONG: ${found} found`})`,
    fmtInt(reads),
    secs.toFixed(1),
    fmtInt(reads / secs),
    `p50 ${fmtUs(p50)} us, p99 ${fmtUs(p99)} us`,
    mib(peak.readrandom ?? 0),
    mib(peakAnon.readrandom ?? 0),
  ]);
  console.error(`readrandom: ${fmtRate(reads / secs)} ops/s`);

  // ---- full scan.
  phase = "scan";
  progress.begin("scan", N);
  t = performance.now();
  let n = 0;
  for (const _ of db.scan()) {
    if ((++n & 65535) === 0) {
      sample();
      progress.tick(n);
    }
  }
  secs = (performance.now() - t) / 1000;
  progress.end();
  rows.push([
    `scan (full${n === N ? "" : `, WRONG: ${n} entries`})`,
    fmtInt(n),
    secs.toFixed(1),
    fmtInt(n / secs),
    `${((n * ENTRY) / 1048576 / secs).toFixed(1)} MiB/s`,
    mib(peak.scan ?? 0),
    mib(peakAnon.scan ?? 0),
  ]);
  console.error(`scan: ${fmtRate(n / secs)} entries/s`);
  engineStats = db.stats() as typeof engineStats;
} finally {
  phase = "close";
  await db.close();
  clearInterval(timer);
  sample(true);
  if (!args.keep && args.dir === undefined) {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

const peakOf = (f: (s: MemSample) => number) => Math.max(...rssSamples.map(f));
const peakAll = peakOf((s) => s.rss);
/** The kinds of the sample with the highest RssAnon. */
function peakAnonSample(): AnonBreakdown {
  let best = rssSamples[0];
  for (const s of rssSamples) if (s.anon > best.anon) best = s;
  return best.kinds;
}
function anonSplit(k: AnonBreakdown): string {
  return `main thread's malloc ${
    mib(k.mainMalloc)
  } MiB, other threads' malloc arenas ${
    mib(k.threadMalloc)
  } MiB, V8 heaps of all isolates ${mib(k.v8Heaps)} MiB, other ${
    mib(k.other)
  } MiB`;
}
const dataBytes = N * ENTRY;
const md = `# shale larger-than-memory benchmark

Regenerated by \`make bench-large\` (bench/large.ts); do not edit by hand.

${machineMarkdown(machine, command)}
- Dataset: ${
  fmtInt(N)
} entries x ${ENTRY} B (16 B keys, 100 B random values) = ${
  mib(dataBytes)
} MiB of user data, ${(dataBytes / BUDGET).toFixed(1)}x the memory budget
- Memory budget: \`memoryBudgetBytes\` ${mib(BUDGET)} MiB, which the engine
  resolved to \`memtableBytes\` ${
  mib(MEMTABLE)
} MiB (plus up to ${db.options.maxImmutableMemtables} frozen while flushing), \`blockCacheBytes\` ${
  mib(CACHE)
} MiB, \`maxOpenTables\` ${MAX_OPEN}
- Peak RSS of the whole process (engine, workers, V8 heaps, the benchmark
  itself; keys come in a shuffled order computed per key, not held): **${
  mib(peakAll)
} MiB** (${(peakAll / BUDGET).toFixed(2)}x the budget), of which at most ${
  mib(peakOf((s) => s.anon))
} MiB RssAnon (${
  (peakOf((s) => s.anon) / BUDGET).toFixed(2)
}x the budget: heaps, buffers, everything that is the process's own) and
  ${
  mib(peakOf((s) => s.file))
} MiB RssFile (mapped table pages and the binary: page cache the kernel
  can take back). RssAnon is what the budget target is judged on: the table
  pages in RssFile are the kernel's page cache, shared with every process
  reading the files and dropped under memory pressure without writing
  anything back. Peaks of the measured parts: V8 heap used ${
  mib(peakOf((s) => s.heap))
} MiB (committed ${
  mib(peakOf((s) => s.heapTotal))
} MiB, young generation at most ${
  mib(peakOf((s) => s.newSpace))
} MiB), the flush and compaction workers' committed heaps ${
  mib(peakOf((s) => s.workers))
} MiB together (as each reported at the end of its last job), external (ArrayBuffers) ${
  mib(peakOf((s) => s.external))
} MiB, the engine's own accounting (memtables + block cache + table index
  and filter + change history) ${
  mib(peakOf((s) => s.engine))
} MiB. Heap and external are the
  main thread's; the workers' external bytes peaked at ${
  mib(peakOf((s) => s.workersExternal))
} MiB (that counts the mapped input tables of a compaction: file pages,
  not RssAnon).
- RssAnon by kind of mapping (bench/_smaps.ts) at its peak sample: ${
  anonSplit(peakAnonSample())
}; each kind's own peak: ${
  anonSplit({
    mainMalloc: peakOf((s) => s.kinds.mainMalloc),
    threadMalloc: peakOf((s) => s.kinds.threadMalloc),
    v8Heaps: peakOf((s) => s.kinds.v8Heaps),
    other: peakOf((s) => s.kinds.other),
  })
}.

The OS page cache is not limited here (the machine has more RAM than the
data), so reads past the block cache are page-cache hits, not disk reads.
The machine is shared with other engineers' test runs: numbers are noisy.

| phase | ops | seconds | ops/s | rate / latency | peak RSS MiB | peak RssAnon MiB |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
${rows.map((r) => `| ${r.join(" | ")} |`).join("\n")}

![RSS over time](results_large.svg)

## Engine state after the scan

${
  engineStats === undefined ? "(the run did not finish)" : [
    `- Levels: ${
      engineStats.levels.filter((l) => l.tables > 0).map((l) =>
        `L${l.level} ${l.tables} tables ${mib(l.bytes)} MiB`
      ).join("; ")
    }`,
    `- Write amplification: ${engineStats.writeAmplification}`,
    `- Compactions: ${engineStats.ops.compactions} merges and ${engineStats.ops.trivialMoves} trivial moves; stalls ${engineStats.ops.stalls} (${
      Math.round(engineStats.ops.stallMs)
    } ms), slowdowns ${engineStats.ops.slowdowns}`,
    `- Block cache: ${JSON.stringify(engineStats.blockCache)}`,
    `- Tables: ${JSON.stringify(engineStats.tables)}`,
    `- Background workers' largest committed heap / external bytes reported: ${
      Object.entries(engineStats.memory.workers).map(([name, w]) =>
        w === null
          ? `${name} inline`
          : `${name} ${mib(w.peakHeapTotal)} / ${
            mib(w.peakExternal)
          } MiB (${w.jobs} jobs)`
      ).join("; ")
    }`,
  ].join("\n")
}

## RSS over time (MiB, one sample every ~5% of the run)

${
  mdTable(
    [
      "t (s)",
      "phase",
      "RSS MiB",
      "RssAnon",
      "RssFile",
      "JS heap",
      "heap committed",
      "workers' heaps",
      "external",
      "engine",
      "main malloc",
      "threads' malloc",
      "V8 heaps",
    ],
    rssSamples.filter((_, i) =>
      i % Math.max(1, Math.floor(rssSamples.length / 20)) === 0 ||
      i === rssSamples.length - 1
    ).map((s) => [
      s.t.toFixed(1),
      s.phase,
      mib(s.rss),
      mib(s.anon),
      mib(s.file),
      mib(s.heap),
      mib(s.heapTotal),
      mib(s.workers),
      mib(s.external),
      mib(s.engine),
      mib(s.kinds.mainMalloc),
      mib(s.kinds.threadMalloc),
      mib(s.kinds.v8Heaps),
    ]),
  )
}
`;
console.log(md);
if (!args["no-write"]) {
  await Deno.writeTextFile(args.results, md);
  await Deno.writeTextFile(
    args.svg,
    lineChartSvg({
      title: "shale: RSS while loading, compacting, reading, scanning",
      subtitle: `${mib(dataBytes)} MiB of data, ${
        mib(BUDGET)
      } MiB budget; ${machine.cpu}, ${machine.date.slice(0, 10)}`,
      xLabel: "seconds",
      yLabel: "MiB",
      series: [
        {
          name: "RSS",
          points: rssSamples.map((s) => [s.t, s.rss / 1048576]),
        },
        {
          name: "RssAnon",
          points: rssSamples.map((s) => [s.t, s.anon / 1048576]),
        },
        {
          name: "JS heap used",
          points: rssSamples.map((s) => [s.t, s.heap / 1048576]),
        },
        {
          name: "budget",
          points: [[0, BUDGET / 1048576], [
            rssSamples[rssSamples.length - 1]?.t ?? 1,
            BUDGET / 1048576,
          ]],
        },
      ],
    }),
  );
  console.error(`wrote ${args.results} and ${args.svg}`);
}
