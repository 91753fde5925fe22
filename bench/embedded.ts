/**
 * Embedded benchmark: db_bench-style workloads through `mod.ts`, side by side
 * in one process and one run with the stores a user would pick instead:
 * Deno KV (`Deno.openKv`), SQLite (`node:sqlite`) and LevelDB
 * (`npm:classic-level`).
 *
 *     deno task bench                       # N = 1,000,000
 *     deno task bench --n 100000 --stores shale,leveldb --workloads fillrandom,readrandom
 *     deno task bench --shale-options '{"baseLevelBytes": 16777216}'
 *
 * Writes bench/RESULTS.md and bench/results.svg (unless --no-write), and
 * prints the same tables on stdout. Progress goes to stderr on a terminal.
 *
 * Method (see RESULTS.md for the numbers):
 * - 16-byte keys (zero-padded decimal of an even integer, so byte order is
 *   numeric order and the odd integers interleaved between them are the
 *   guaranteed misses of readmissing), 100-byte incompressible values.
 * - Stores run one after another, each through the whole sequence, so one
 *   store's background work never overlaps another's measurement.
 * - Sync off for the db_bench workloads; fills, overwrite and deleterandom
 *   write batches of BATCH ops (one transaction / WriteBatch / atomic op).
 * - Read latency is sampled on every 16th op (timing every op would add the
 *   clock's cost to every op); throughput is wall time over all ops.
 *
 * @module
 */
import { benchArgs } from "./_args.ts";
import { groupedBarSvg } from "./_chart.ts";
import { Progress } from "./_measure.ts";
import {
  commandLine,
  fmtInt,
  fmtRate,
  fmtUs,
  machineInfo,
  machineMarkdown,
  mdTable,
} from "./_report.ts";
import { ALL_STORES, shaleStore, STORES } from "./_stores.ts";
import type { DbOptions } from "../mod.ts";
import {
  ALL_WORKLOADS,
  BATCH,
  rawFsync,
  READ_WORKLOADS,
  type Result,
  runStore,
  WORKLOAD_TEXT,
} from "./_workloads.ts";

// ---------------------------------------------------------------- args

const args = benchArgs({
  results: "bench/RESULTS.md",
  strings: {
    n: "1000000",
    stores: ALL_STORES.join(","),
    workloads: ALL_WORKLOADS.join(","),
    "durable-seconds": "3",
    seed: "42",
    svg: "bench/results.svg",
  },
  optional: ["reads", "dir", "shale-options"],
});

function positiveInt(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive integer, got ${v}`);
    Deno.exit(2);
  }
  return n;
}

const N = positiveInt("n", args.n);
const READS = args.reads === undefined ? N : positiveInt("reads", args.reads);
const DURABLE_SECS = Number(args["durable-seconds"]);
const SEED = positiveInt("seed", args.seed);
const storeNames = args.stores.split(",").filter(Boolean);
const workloads = args.workloads.split(",").filter(Boolean);
for (const s of storeNames) {
  if (!STORES[s]) {
    console.error(`unknown store ${s} (known: ${ALL_STORES.join(", ")})`);
    Deno.exit(2);
  }
}
for (const w of workloads) {
  if (!ALL_WORKLOADS.includes(w)) {
    console.error(
      `unknown workload ${w} (known: ${ALL_WORKLOADS.join(", ")})`,
    );
    Deno.exit(2);
  }
}

if (args["shale-options"] !== undefined) {
  let options: DbOptions;
  try {
    options = JSON.parse(args["shale-options"]);
  } catch (err) {
    console.error(`--shale-options must be a JSON object: ${err}`);
    Deno.exit(2);
  }
  if (typeof options !== "object" || options === null) {
    console.error("--shale-options must be a JSON object");
    Deno.exit(2);
  }
  STORES.shale = shaleStore(options);
}

const progress = new Progress();
const cfg = {
  n: N,
  reads: READS,
  seed: SEED,
  durableSecs: DURABLE_SECS,
  workloads,
  progress,
};

const root = args.dir ?? await Deno.makeTempDir({ prefix: "shale-bench-" });
await Deno.mkdir(root, { recursive: true });
const machine = machineInfo(root);
const command = commandLine(
  "bench/embedded.ts",
  "--config bench/deno.json --allow-all --unstable-kv",
);
const results = new Map<string, Map<string, Result>>();
const unavailable = new Map<string, string>();
const extra: Record<string, unknown> = {};
const started = performance.now();
let baseline: Result | undefined;
let zeroedBaseline: Result | undefined;

console.error(
  `N=${fmtInt(N)} reads=${fmtInt(READS)} stores=${
    storeNames.join(",")
  } dir=${root}`,
);
try {
  if (workloads.some((w) => w.startsWith("durable"))) {
    const d = `${root}/fsync-probe`;
    await Deno.mkdir(d, { recursive: true });
    baseline = await rawFsync(d, DURABLE_SECS);
    console.error(
      `raw fdatasync per 116-byte append: ${fmtRate(baseline.rate)} /s`,
    );
    zeroedBaseline = await rawFsync(d, DURABLE_SECS, true);
    console.error(
      `raw fdatasync per 116-byte write into synced zeros: ${
        fmtRate(zeroedBaseline.rate)
      } /s`,
    );
  }
  for (const name of storeNames) {
    const def = STORES[name];
    const out = new Map<string, Result>();
    try {
      // Probe that the store opens at all (a missing addon, no --unstable-kv).
      const probeDir = `${root}/${name}-probe`;
      await Deno.mkdir(probeDir, { recursive: true });
      const p = await def.open(probeDir, false);
      await p.close();
      await Deno.remove(probeDir, { recursive: true });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      unavailable.set(name, msg.split("\n")[0]);
      console.error(`${name}: cannot run: ${msg}`);
      continue;
    }
    results.set(name, out);
    await runStore(def, root, out, extra, cfg);
  }
} finally {
  if (args.dir === undefined) {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}
const totalSecs = (performance.now() - started) / 1000;

// ---------------------------------------------------------------- report

const ran = [...results.keys()];
const peers = ran.filter((s) => s !== "shale");
const cell = (s: string, w: string) => {
  const r = results.get(s)?.get(w);
  if (!r) return "-";
  if (r.error) return "failed";
  return fmtInt(r.rate) + (r.note?.startsWith("WRONG") ? " (!)" : "");
};
const order = ALL_WORKLOADS.filter((w) => workloads.includes(w));

const throughput = mdTable(
  ["workload", ...ran.map((s) => `${s} ops/s`)],
  order.map((w) => [w, ...ran.map((s) => cell(s, w))]),
);
const ratios = results.has("shale") && peers.length > 0
  ? mdTable(
    ["workload", ...peers.map((p) => `shale / ${p}`)],
    order.map((w) => [
      w,
      ...peers.map((p) => {
        const a = results.get("shale")?.get(w)?.rate;
        const b = results.get(p)?.get(w)?.rate;
        return a && b && Number.isFinite(a) && Number.isFinite(b)
          ? `${(a / b).toFixed(2)}x`
          : "-";
      }),
    ]),
  )
  : "(needs shale and at least one peer)";
const latency = mdTable(
  ["workload", ...ran.flatMap((s) => [`${s} p50 us`, `${s} p99 us`])],
  order.filter((w) => READ_WORKLOADS.has(w)).map((w) => [
    w,
    ...ran.flatMap((s) => {
      const r = results.get(s)?.get(w);
      return r?.p50 === undefined ? ["-", "-"] : [fmtUs(r.p50), fmtUs(r.p99!)];
    }),
  ]),
);
const durableRows: string[][] = [];
if (baseline) {
  durableRows.push([
    "raw fdatasync per append, growing file (same disk)",
    "1",
    fmtInt(baseline.rate),
    "1.000",
    "1.00x",
  ]);
}
if (baseline && zeroedBaseline) {
  durableRows.push([
    "raw fdatasync per write into synced zeros (same disk)",
    "1",
    fmtInt(zeroedBaseline.rate),
    "1.000",
    `${(zeroedBaseline.rate / baseline.rate).toFixed(2)}x`,
  ]);
}
for (const s of ran) {
  for (const w of ["durable-1", "durable-64"]) {
    const r = results.get(s)?.get(w);
    if (!r) continue;
    durableRows.push([
      s,
      w === "durable-1" ? "1" : "64",
      r.error ? "failed" : fmtInt(r.rate),
      r.syncsPerWrite === undefined ? "n/a" : r.syncsPerWrite.toFixed(3),
      baseline && !r.error ? `${(r.rate / baseline.rate).toFixed(2)}x` : "-",
    ]);
  }
}
const durableTable = mdTable(
  ["store", "writers", "writes/s", "fsyncs per write", "vs raw fdatasync"],
  durableRows,
);
const notes: string[] = [];
for (const [s, m] of results) {
  for (const [w, r] of m) {
    if (r.error) notes.push(`- ${s} ${w} failed: ${r.error}`);
    else if (r.note?.startsWith("WRONG")) notes.push(`- ${s} ${w}: ${r.note}`);
  }
}
for (const [s, why] of unavailable) notes.push(`- ${s} could not run: ${why}`);
const kvPut = results.get("denokv")?.get("fillrandom-put")?.rate;
if (baseline && kvPut && kvPut < 3 * baseline.rate) {
  notes.push(
    `- denokv: its unbatched put rate (${
      fmtInt(kvPut)
    }/s) is close to the raw fdatasync rate (${
      fmtInt(baseline.rate)
    }/s): Deno KV appears to sync every commit, so it has no "sync off" mode and its fill rows are durable writes`,
  );
}
for (const [k, v] of Object.entries(extra)) notes.push(`- ${k}: ${v}`);

const loadEnd = (() => {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3)
      .join(" ");
  } catch {
    return "?";
  }
})();

const md = `# shale embedded benchmark results

Regenerated by \`deno task bench\` (bench/embedded.ts); do not edit by hand.

${machineMarkdown(machine, command)}
- Load average at end: ${loadEnd}; total run time ${totalSecs.toFixed(0)} s
- N = ${fmtInt(N)} keys (16-byte keys, 100-byte random values); ${
  fmtInt(READS)
} ops per read workload; write batches of ${BATCH} ops; durable phases run ${DURABLE_SECS} s each

The machine is shared (2 cores; other engineers' test suites were running at
the same time), so treat differences under ~20% as noise. Stores run one
after another in the same process, each through the whole sequence.

![ops/s per workload](results.svg)

## Throughput (ops/s, higher is better)

${throughput}

## shale's ratio to each peer (above 1 means shale is faster)

${ratios}

## Read latency per op (microseconds; every 16th op timed)

${latency}

## Durable writes (sync on every acknowledged write)

${durableTable}

Only shale exposes its fsync count (\`stats().ops.walSyncs\`); SQLite with
\`synchronous=FULL\` syncs once per commit, LevelDB syncs once per write group,
Deno KV's policy is internal. "vs raw fdatasync" compares with appends to a
growing file; shale's WAL writes into zeros preallocated ahead of its records
(engine/FORMAT.md, "Preallocation"), whose floor is the second raw row.

## Workloads

${order.map((w) => `- ${WORKLOAD_TEXT[w]}`).join("\n")}

## Store setup

${ran.map((s) => `- ${s}: ${STORES[s].setup}`).join("\n")}

## Notes

${notes.length ? notes.join("\n") : "- none"}
`;

console.log(md);

if (!args["no-write"]) {
  await Deno.writeTextFile(args.results, md);
  const chartWorkloads = order;
  const svg = groupedBarSvg({
    title: "shale vs peers: ops/s per workload (higher is better)",
    subtitle: `N=${
      fmtInt(N)
    }, 16 B keys, 100 B values, ${machine.cpu}, ${machine.cores} cores, Deno ${machine.deno}, ${
      machine.date.slice(0, 10)
    }`,
    groups: chartWorkloads,
    series: ran,
    values: chartWorkloads.map((w) =>
      ran.map((s) => results.get(s)?.get(w)?.rate ?? NaN)
    ),
    yLabel: "ops/s",
  });
  await Deno.writeTextFile(args.svg, svg);
  console.error(`wrote ${args.results} and ${args.svg}`);
}
