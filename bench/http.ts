/**
 * HTTP benchmark (`make bench-http`): drives shale's server (sync=always), a
 * bare `Deno.serve` Map handler (the ceiling) and the same bare handler
 * backed by LevelDB with synced PUTs (the peer: bench/_bare_server.ts) with
 * wrk over loopback, each server pinned to one core and wrk to another.
 * Writes bench/RESULTS_HTTP.md and bench/results_http.svg (GET latency over
 * time, idle vs while a heavy write load keeps compaction busy, for each
 * server, and for the Map handler once more with its writer paced to the
 * write rate shale sustained: bench/_busy.ts).
 *
 *     deno run -A bench/http.ts                        # 10 s per workload
 *     deno run -A bench/http.ts --duration 5 --keys 100000
 *
 * Every wrk run is bounded by --duration; servers are stopped with SIGTERM
 * (then SIGKILL after 10 s) whatever happens.
 *
 * @module
 */
import { benchArgs } from "./_args.ts";
import { Buffer } from "node:buffer";
import { lineChartSvg } from "./_chart.ts";
import { Progress } from "./_measure.ts";
import {
  type BusyOptions,
  busyRatio,
  busyRun,
  type BusySeries,
  summary,
} from "./_busy.ts";
import { type Server, startServer, startTaskV8Flags } from "./_servers.ts";
import { LEVELDB_SETUP } from "./_leveldb.ts";
import {
  have,
  pinner,
  writerScript,
  type WrkResult,
  wrkRunner,
  wrkScripts,
} from "./_wrk.ts";
import {
  commandLine,
  fmtInt,
  machineInfo,
  machineMarkdown,
  mdTable,
} from "./_report.ts";

const args = benchArgs({
  results: "bench/RESULTS_HTTP.md",
  strings: {
    keys: "200000",
    duration: "10",
    // Seconds of the same workload, unmeasured, before each measured run
    // (JIT warm-up, and the collections a preload leaves due).
    warmup: "2",
    connections: "64",
    "server-cpu": "0",
    "wrk-cpu": "1",
    "busy-seconds": "20",
    "busy-value-bytes": "16384",
    "busy-connections": "8",
    "reader-connections": "8",
    // Extra `shale serve` flags, e.g. "--shale-args=--compaction-rate 4MiB".
    "shale-args": "",
    // Extra `deno run` flags for the shale server, e.g. "--cpu-prof".
    "server-deno-args": "",
    workloads: "",
    svg: "bench/results_http.svg",
  },
  // --busy-only: only the GET-latency-under-writes phase (preload, settle,
  // idle and busy windows against shale, then against the bare handler,
  // its writer paced to shale's rate, then LevelDB, then the bare handler
  // unpaced): no throughput workloads. --no-leveldb: no LevelDB runs.
  // --no-engine: no run of shale's engine behind the bare handler.
  flags: ["no-busy", "busy-only", "no-leveldb", "no-engine"],
});
const KEYS = Number(args.keys);
const DURATION = Number(args.duration);
const WARMUP = Number(args.warmup);
const CONNS = Number(args.connections);
const BUSY_SECS = Number(args["busy-seconds"]);
const BUSY_VALUE = Number(args["busy-value-bytes"]);
const BUSY_CONNS = Number(args["busy-connections"]);
const READER_CONNS = Number(args["reader-connections"]);
const SERVER_CPU = args["server-cpu"];
// Both servers run with the V8 flags `make run` gives shale's.
const V8_FLAGS = startTaskV8Flags();
const WRK_CPU = args["wrk-cpu"];

if (!have("wrk")) {
  console.error(
    "wrk not found: install it (apt-get install -y wrk) or run `make bench-http`",
  );
  Deno.exit(1);
}

const tmp = await Deno.makeTempDir({ prefix: "shale-http-" });
const pin = have("taskset");
const pinned = pinner();
const { wrk, wrkCommand } = wrkRunner({
  cpu: WRK_CPU,
  scriptDir: tmp,
  keys: KEYS,
  pinned,
});
const machine = machineInfo(tmp);
const command = commandLine("bench/http.ts", "-A");
const progress = new Progress();

for (const [name, text] of Object.entries(wrkScripts(BUSY_VALUE))) {
  await Deno.writeTextFile(`${tmp}/${name}.lua`, text);
}

// ---------------------------------------------------------------- servers

const deno = Deno.execPath();
const ALL_WORKLOADS: { name: string; script: string; text: string }[] = [
  { name: "GET hit", script: "get_hit", text: "GET of a random existing key" },
  { name: "GET miss", script: "get_miss", text: "GET of an absent key (404)" },
  {
    name: "PUT 100 B",
    script: "put",
    text: "PUT of a 100-byte value to a random existing key",
  },
  { name: "mixed 90/10", script: "mixed", text: "90% GET hit, 10% PUT 100 B" },
  {
    name: "range 100",
    script: "range",
    text: "GET /kv/range?start=K&limit=100 (100 keys with values, JSON)",
  },
];
// --workloads get_hit,put runs a subset (by script name), for quick
// before/after comparisons of one path.
const only = args.workloads === "" ? undefined : args.workloads.split(",");
const WORKLOADS = only === undefined
  ? ALL_WORKLOADS
  : ALL_WORKLOADS.filter((w) => only.includes(w.script));
if (WORKLOADS.length === 0) {
  console.error(`--workloads: none of ${args.workloads} is a workload`);
  Deno.exit(2);
}

/** A wrk result plus the server's CPU time per request during the run. */
interface Measured extends WrkResult {
  /** Server CPU (all threads) per request in µs; NaN without /proc. */
  cpuUs: number;
}

async function runAll(
  s: Server,
  label: string,
): Promise<Map<string, Measured>> {
  const res = new Map<string, Measured>();
  for (const w of WORKLOADS) {
    progress.begin(`${label} ${w.name} (${DURATION}s)`, 0);
    if (WARMUP > 0) await wrk(s.url, w.script, WARMUP, CONNS);
    const cpu0 = s.cpuSeconds();
    const wr = await wrk(s.url, w.script, DURATION, CONNS);
    const cpuUs = ((s.cpuSeconds() - cpu0) * 1e6) / wr.requests;
    progress.end();
    const r = { ...wr, cpuUs };
    res.set(w.name, r);
    console.error(
      `${label.padEnd(7)} ${w.name.padEnd(12)} ${
        fmtInt(r.rps).padStart(8)
      } req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  cpu ${
        r.cpuUs.toFixed(0)
      } µs/req${r.non2xx ? `  non-2xx ${r.non2xx}` : ""}${
        r.socketErrors ? `  socket errors: ${r.socketErrors}` : ""
      }`,
    );
  }
  return res;
}

async function preload(url: string): Promise<number> {
  const t0 = performance.now();
  const value = Buffer.from(new Uint8Array(100).fill(120)).toString("base64");
  const batches: Promise<void>[] = [];
  let inflight = 0;
  for (let i = 0; i < KEYS; i += 1000) {
    const ops = [];
    for (let j = i; j < Math.min(KEYS, i + 1000); j++) {
      const k = Buffer.from(`k${String(j).padStart(15, "0")}`).toString(
        "base64",
      );
      ops.push({ op: "put", key: k, value });
    }
    const p = fetch(`${url}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ops }),
    }).then(async (r) => {
      await r.body?.cancel();
      if (!r.ok) throw new Error(`preload batch failed: ${r.status}`);
    });
    batches.push(p);
    if (++inflight >= 8) {
      await Promise.all(batches.splice(0));
      inflight = 0;
    }
  }
  await Promise.all(batches);
  return (performance.now() - t0) / 1000;
}

/**
 * Waits until the preload's flushes and compactions are done (no frozen
 * memtable, every level within target, no new compaction for a second), so
 * the idle workloads measure serving, not catching up. Gives up after 180 s.
 */
async function settle(url: string): Promise<number> {
  const t0 = performance.now();
  let last = -1;
  let quiet = 0;
  while (performance.now() - t0 < 180_000) {
    const r = await fetch(`${url}/stats`);
    const s = (await r.json()).engine;
    const busy = s.memtable.immutable > 0 ||
      s.levels.some((l: { score: number }) => l.score >= 1);
    const done = s.ops.compactions + s.ops.flushes;
    quiet = !busy && done === last ? quiet + 1 : 0;
    last = done;
    if (quiet >= 2) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  return (performance.now() - t0) / 1000;
}

async function engineStats(url: string): Promise<Record<string, number>> {
  const r = await fetch(`${url}/stats`);
  const j = await r.json();
  return j.engine.ops as Record<string, number>;
}

/** The busy phase's options for one server (shale reads its /stats). */
function busyOptions(withEngine: boolean, writerScript?: string): BusyOptions {
  return {
    wrk,
    wrkCommand,
    windows: BUSY_SECS,
    readerConns: READER_CONNS,
    writerConns: BUSY_CONNS,
    progress,
    engineStats: withEngine ? engineStats : undefined,
    writerScript,
  };
}

/**
 * Writes the `writer_paced` script: the writer held to about `rps`
 * requests a second (each connection waits its share of a second after
 * each answer, so the rate reached is a little lower; the report gives it).
 */
async function writePacedWriter(rps: number): Promise<string> {
  const name = "writer_paced";
  await Deno.writeTextFile(
    `${tmp}/${name}.lua`,
    writerScript(BUSY_VALUE, (BUSY_CONNS * 1000) / rps),
  );
  return name;
}

// ---------------------------------------------------------------- run

let bare: Map<string, Measured> | undefined;
let shale: Map<string, Measured> | undefined;
let leveldb: Map<string, Measured> | undefined;
/** shale's engine (mod.ts) behind the bare handler. */
let engine: Map<string, Measured> | undefined;
let series: BusySeries | undefined;
let bareSeries: BusySeries | undefined;
let levelSeries: BusySeries | undefined;
/** The bare handler again, its writer paced to shale's writer's rate. */
let pacedSeries: BusySeries | undefined;
let preloadSecs = 0;
const failures: string[] = [];
console.error(
  `keys=${
    fmtInt(KEYS)
  } duration=${DURATION}s connections=${CONNS} server cpu ${SERVER_CPU}, wrk cpu ${WRK_CPU}${
    pin ? "" : " (taskset missing: not pinned)"
  }`,
);
const BUSY_ONLY = args["busy-only"];
if (BUSY_ONLY && args["no-busy"]) {
  console.error("--busy-only and --no-busy exclude each other");
  Deno.exit(2);
}
const LEVELDB = !args["no-leveldb"];
const ENGINE = !args["no-engine"];
let storeDirs = 0;
/**
 * Starts the bare handler (on a Map, or on LevelDB or shale's engine in a
 * fresh directory), runs `phase` against it, stops it.
 */
async function withBare(
  phase: (b: Server) => Promise<void>,
  store: "map" | "leveldb" | "shale" = "map",
): Promise<void> {
  const name = store === "map" ? "bare server" : `${store} behind bare server`;
  try {
    const b = await startServer(
      pinned(SERVER_CPU, [
        deno,
        "run",
        "-A",
        ...V8_FLAGS,
        "bench/_bare_server.ts",
        "--keys",
        String(KEYS),
        "--store",
        store,
        ...(store === "map" ? [] : ["--dir", `${tmp}/${store}${storeDirs++}`]),
      ]),
      name,
    );
    try {
      await phase(b);
    } finally {
      await b.stop();
    }
  } catch (err) {
    failures.push(`${name}: ${err instanceof Error ? err.message : err}`);
    console.error(failures[failures.length - 1]);
  }
}

try {
  if (!BUSY_ONLY) {
    await withBare(async (b) => {
      bare = await runAll(b, "bare");
    });
  }
  try {
    const dataDir = `${tmp}/data`;
    const s = await startServer(
      pinned(SERVER_CPU, [
        deno,
        "run",
        "-A",
        ...V8_FLAGS,
        ...args["server-deno-args"].split(/\s+/).filter((a) => a !== ""),
        "server/main.ts",
        "serve",
        "--port",
        "0",
        "--data-dir",
        dataDir,
        "--sync",
        "always",
        ...args["shale-args"].split(/\s+/).filter((a) => a !== ""),
      ]),
      "shale server",
    );
    try {
      progress.begin(`preload ${KEYS} keys`, 0);
      preloadSecs = await preload(s.url);
      progress.end();
      console.error(
        `preloaded ${fmtInt(KEYS)} keys in ${preloadSecs.toFixed(1)} s`,
      );
      const settleSecs = await settle(s.url);
      console.error(`background work settled in ${settleSecs.toFixed(1)} s`);
      if (!BUSY_ONLY) shale = await runAll(s, "shale");
      if (!args["no-busy"]) {
        series = await busyRun(s, "shale", busyOptions(true));
      }
    } finally {
      await s.stop();
    }
  } catch (err) {
    failures.push(`shale server: ${err instanceof Error ? err.message : err}`);
    console.error(failures[failures.length - 1]);
  }
  if (LEVELDB && !BUSY_ONLY) {
    await withBare(async (b) => {
      leveldb = await runAll(b, "leveldb");
    }, "leveldb");
  }
  if (ENGINE && !BUSY_ONLY) {
    await withBare(async (b) => {
      engine = await runAll(b, "engine");
    }, "shale");
  }
  // shale throttles its writer (write stalls while compaction catches
  // up), the bare handler takes every write it is sent. A run of the bare
  // handler with its writer paced to shale's rate shows what write traffic
  // of that rate does to GET latency on one core without any engine, the
  // floor for what shale's background work adds.
  const shaleRps = series?.writerRps ?? NaN;
  if (!args["no-busy"] && shaleRps > 0) {
    const script = await writePacedWriter(shaleRps);
    await withBare(async (b) => {
      pacedSeries = await busyRun(
        b,
        "bare (paced writer)",
        busyOptions(false, script),
      );
    });
  }
  if (!args["no-busy"] && LEVELDB) {
    await withBare(async (b) => {
      levelSeries = await busyRun(b, "leveldb", busyOptions(false));
    }, "leveldb");
  }
  // The bare handler's unpaced busy phase runs last: its writer leaves GiBs
  // of values in the handler's Map, and a GET run right after that process
  // exited had a p99 of 16-20 ms (1.2-1.3 ms without it, 2026-12-01).
  if (!args["no-busy"]) {
    await withBare(async (b) => {
      bareSeries = await busyRun(b, "bare", busyOptions(false));
    });
  }
} finally {
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}

// ---------------------------------------------------------------- report

const ms = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(2);
const cpu = (v: number) => Number.isFinite(v) ? v.toFixed(0) : "-";
/** A server's req/s, p50 and p99 cells for one workload. */
const runCells = (m: Measured | undefined) => [
  m ? fmtInt(m.rps) : "-",
  ms(m?.p50),
  ms(m?.p99),
];
/** `x` as a percentage of `of`; "-" when either is missing. */
const pct = (x: number | undefined, of: number | undefined) =>
  x !== undefined && of !== undefined && Number.isFinite(x / of)
    ? `${((100 * x) / of).toFixed(0)}%`
    : "-";
const rows = WORKLOADS.map((w) => {
  const b = bare?.get(w.name), s = shale?.get(w.name);
  return [
    w.name,
    ...runCells(b),
    ...runCells(s),
    pct(s?.rps, b?.rps),
    b ? cpu(b.cpuUs) : "-",
    s ? cpu(s.cpuUs) : "-",
    pct(b?.cpuUs, s?.cpuUs),
    s ? String(s.non2xx) : "-",
  ];
});
// The LevelDB-backed handler: how an established LSM engine fares behind
// the same bare handler, next to shale.
const levelRows = WORKLOADS.map((w) => {
  const b = bare?.get(w.name), l = leveldb?.get(w.name);
  const s = shale?.get(w.name);
  return [
    w.name,
    ...runCells(l),
    l ? cpu(l.cpuUs) : "-",
    pct(l?.rps, b?.rps),
    pct(b?.cpuUs, l?.cpuUs),
    s && l ? `${(s.rps / l.rps).toFixed(2)}x` : "-",
    l ? String(l.non2xx) : "-",
  ];
});
// shale's engine behind the same bare handler: splits the gap between the
// Map and the shale server into the engine's part and the server's.
const engineRows = WORKLOADS.map((w) => {
  const b = bare?.get(w.name), e = engine?.get(w.name);
  const s = shale?.get(w.name);
  return [
    w.name,
    ...runCells(e),
    e ? cpu(e.cpuUs) : "-",
    pct(e?.rps, b?.rps),
    pct(b?.cpuUs, e?.cpuUs),
    pct(s?.rps, e?.rps),
    pct(e?.cpuUs, s?.cpuUs),
    e ? String(e.non2xx) : "-",
  ];
});
const cpuText = (c: BusySeries["busyCpu"]) =>
  [
    `main thread ${c.main.toFixed(2)} s`,
    ...[...c.workers].map(([n, v]) => `${n} ${v.toFixed(2)} s`),
    `other threads ${c.other.toFixed(2)} s`,
  ].join(", ");
const writerText = (w: BusySeries) =>
  `${fmtInt(w.writerRps)} req/s (${
    ((w.writerRps * BUSY_VALUE) / 1048576).toFixed(1)
  } MiB/s)${w.writerNon2xx ? `, ${w.writerNon2xx} non-2xx` : ""}`;
/**
 * The engine's longest event-loop stall (a maximum since start) before the
 * writer started and after the busy window: a larger value after means the
 * longest stall fell within the busy window.
 */
const stallText = (w: BusySeries) => {
  const before = w.before?.maxEventLoopStallMs;
  const after = w.after?.maxEventLoopStallMs;
  if (before === undefined || after === undefined) return "";
  return `longest event-loop stall ${before} ms from start to the busy window (preload included)${
    after > before
      ? `, ${after} ms within the busy window`
      : ", none as long within it"
  }`;
};
const ratioText = (w: BusySeries | undefined) =>
  w ? `${busyRatio(w).toFixed(2)}x` : "-";
const windowRows = (name: string, w: BusySeries | undefined) =>
  [["idle", w?.idle], ["heavy writes", w?.busy]].map(([half, ws]) => {
    const m = ws ? summary(ws as BusySeries["idle"]) : undefined;
    return [`${name}, ${half}`, ms(m?.p50), ms(m?.p99), ms(m?.worst)];
  });
let compaction = "(not run)";
if (series || bareSeries || pacedSeries || levelSeries) {
  const d = (k: string) =>
    (series?.after?.[k] ?? 0) - (series?.before?.[k] ?? 0);
  const lines = [
    mdTable(
      [
        "server, window",
        "GET p50 ms (median of 1 s windows)",
        "GET p99 ms (median)",
        "GET p99 ms (worst window)",
      ],
      [
        ...windowRows("shale", series),
        ...windowRows("bare", bareSeries),
        ...windowRows("bare, writer paced to shale's rate", pacedSeries),
        ...windowRows("leveldb", levelSeries),
      ],
    ),
    "",
    `- busy p99 / idle p99: shale **${
      ratioText(series)
    }** (target < 2x); bare Map handler under the same writer ${
      ratioText(bareSeries)
    }; bare with the writer paced to shale's write rate ${
      ratioText(pacedSeries)
    }; LevelDB behind the bare handler, under the same writer ${
      ratioText(levelSeries)
    }`,
  ];
  if (series) {
    lines.push(
      `- writer: ${BUSY_CONNS} connections of PUT ${BUSY_VALUE}-byte values to fresh keys: shale ${
        writerText(series)
      }${bareSeries ? `; bare ${writerText(bareSeries)}` : ""}${
        pacedSeries ? `; bare, paced, ${writerText(pacedSeries)}` : ""
      }${levelSeries ? `; leveldb ${writerText(levelSeries)}` : ""}`,
      `- during the busy window the engine ran ${d("flushes")} flushes and ${
        d("compactions")
      } compactions (${
        (d("compactBytesWritten") / 1048576).toFixed(0)
      } MiB written by compaction), ${d("stalls")} write stalls (${
        Math.round(d("stallMs"))
      } ms), ${d("slowdowns")} slowdowns; ${stallText(series)}`,
      `- shale's CPU in the busy window: ${
        cpuText(series.busyCpu)
      } (worker-1 is the flush worker, worker-2 the compaction worker)`,
    );
  }
  if (bareSeries) {
    lines.push(
      `- bare's CPU in the busy window: ${cpuText(bareSeries.busyCpu)}`,
    );
  }
  if (pacedSeries) {
    lines.push(
      `- bare's CPU in the busy window, paced writer: ${
        cpuText(pacedSeries.busyCpu)
      }`,
    );
  }
  if (levelSeries) {
    lines.push(
      `- leveldb's CPU in the busy window: ${cpuText(levelSeries.busyCpu)}`,
    );
  }
  lines.push(
    `- reader: wrk with ${READER_CONNS} connections of GET hit, in 1 s windows`,
  );
  compaction = lines.join("\n");
  // One line to grep when comparing builds run after run.
  console.error(
    `busy summary: shale ${ratioText(series)} (idle p99 ${
      ms(series && summary(series.idle).p99)
    } ms, busy p99 ${ms(series && summary(series.busy).p99)} ms), bare ${
      ratioText(bareSeries)
    }, bare paced ${ratioText(pacedSeries)} (busy p99 ${
      ms(pacedSeries && summary(pacedSeries.busy).p99)
    } ms, writer ${fmtInt(pacedSeries?.writerRps ?? NaN)} req/s), leveldb ${
      ratioText(levelSeries)
    } (busy p99 ${ms(levelSeries && summary(levelSeries.busy).p99)} ms); ${
      d("stalls")
    } stalls (${Math.round(d("stallMs"))} ms), ${d("flushes")} flushes, ${
      d("compactions")
    } compactions, writer ${fmtInt(series?.writerRps ?? NaN)} req/s; cpu ${
      series ? cpuText(series.busyCpu) : "-"
    }; load ${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")}`,
  );
}
/** `runs`' req/s (shale's by default) as a percentage of the bare handler's. */
function percentOfBare(
  workload: string,
  runs: Map<string, Measured> | undefined = shale,
): string {
  return pct(runs?.get(workload)?.rps, bare?.get(workload)?.rps);
}
/**
 * "; LevelDB behind the same handler N%; shale's engine behind it M%" for
 * the peers that ran.
 */
const levelText = (workload: string) =>
  (leveldb === undefined
    ? ""
    : `; LevelDB behind the same handler ${percentOfBare(workload, leveldb)}`) +
  (engine === undefined
    ? ""
    : `; shale's engine behind it ${percentOfBare(workload, engine)}`);

const md = `# shale HTTP benchmark results

Regenerated by \`make bench-http\` (bench/http.ts); do not edit by hand.

${machineMarkdown(machine, command)}
- Servers pinned to CPU ${SERVER_CPU}${
  pin ? "" : " (not pinned: no taskset)"
} (shale's compaction worker shares that core), wrk pinned to CPU ${WRK_CPU}: \`wrk -t1 -c${CONNS} -d${DURATION}s --latency\`, each run after ${WARMUP} s of the same workload unmeasured; loopback only
- shale: \`server/main.ts serve --sync always\` (defaults otherwise), preloaded with ${
  fmtInt(KEYS)
} keys (16 B, 100 B values) through /kv/batch in ${preloadSecs.toFixed(1)} s
- bare: \`Deno.serve\` answering the same routes from a Map (bench/_bare_server.ts), no durability
- leveldb: the same bare handler backed by LevelDB (${LEVELDB_SETUP}; \`getSync()\` reads, \`put(k, v, {sync: true})\` writes, iterator ranges), the same keys loaded in batches of 1000 before it listens; its compaction thread shares the pinned core
- engine: the same bare handler backed by shale's engine through mod.ts (\`open(dir)\` with its defaults, as \`shale serve\` opens it: \`sync: "always"\`, memory-mapped tables; \`get()\` reads, awaited \`put()\` writes, \`scan()\` ranges), the same keys loaded in batches of 1000 before it listens; its workers share the pinned core
- all run with deno.json's start-task V8 flags: \`${
  V8_FLAGS.join(" ") || "(none)"
}\`

The machine is shared (2 cores, other engineers' tests running): numbers are noisy.

## Throughput and latency (${CONNS} connections)

${
  mdTable(
    [
      "workload",
      "bare req/s",
      "bare p50 ms",
      "bare p99 ms",
      "shale req/s",
      "shale p50 ms",
      "shale p99 ms",
      "shale / bare",
      "bare CPU µs/req",
      "shale CPU µs/req",
      "bare / shale CPU",
      "shale non-2xx",
    ],
    rows,
  )
}

- GET hit: shale at ${percentOfBare("GET hit")} of the bare ceiling (target
  >= 90%, issue #12${levelText("GET hit")}); PUT 100 B at ${
  percentOfBare("PUT 100 B")
} (target >= 80%, with an fdatasync the bare handler does not do${
  levelText("PUT 100 B")
})
- GET miss answers 404 by design (counted as non-2xx)
- CPU µs/req: the server process's CPU time (user + system, all threads,
  from /proc) over the run divided by the requests answered; "bare / shale
  CPU" is the req/s ratio one core would give if nothing else ran on it

## LevelDB behind the same bare handler (${CONNS} connections)

${
  leveldb === undefined ? "(not run)" : `${
    mdTable(
      [
        "workload",
        "leveldb req/s",
        "leveldb p50 ms",
        "leveldb p99 ms",
        "leveldb CPU µs/req",
        "leveldb / bare",
        "bare / leveldb CPU",
        "shale / leveldb",
        "leveldb non-2xx",
      ],
      levelRows,
    )
  }

- LevelDB shows what an established LSM engine gives behind the bare
  handler, on the same core and with the same durability as shale
  (concurrent synced writes share one fdatasync per write group in both);
  its "/ bare" columns measure what shale's do in the table above`
}

## shale's engine behind the same bare handler (${CONNS} connections)

${
  engine === undefined ? "(not run)" : `${
    mdTable(
      [
        "workload",
        "engine req/s",
        "engine p50 ms",
        "engine p99 ms",
        "engine CPU µs/req",
        "engine / bare",
        "bare / engine CPU",
        "shale / engine",
        "engine / shale CPU",
        "engine non-2xx",
      ],
      engineRows,
    )
  }

- The bare handler with shale's engine and nothing of the server (no
  routing, validation, conditions, metrics or headers beyond the bare
  handler's): "engine / bare" is the most any server on this engine can
  reach on this runtime, and "shale / engine" is what the server itself
  costs`
}

## GET latency while compaction is busy

${compaction}

![GET latency over time](results_http.svg)

## Workloads

${WORKLOADS.map((w) => `- ${w.name}: ${w.text}`).join("\n")}
${
  failures.length
    ? `\n## Failures\n\n${failures.map((f) => `- ${f}`).join("\n")}\n`
    : ""
}`;
console.log(md);
// --busy-only leaves the results files alone: they would lose the
// throughput table.
if (!args["no-write"] && !BUSY_ONLY) {
  await Deno.writeTextFile(args.results, md);
  if (series) {
    await Deno.writeTextFile(
      args.svg,
      lineChartSvg({
        title: "shale GET latency per 1 s window: idle vs heavy writes",
        subtitle:
          `${READER_CONNS} GET connections; writer ${BUSY_CONNS} x PUT ${BUSY_VALUE} B; ${
            machine.date.slice(0, 10)
          }`,
        xLabel: "window (s)",
        yLabel: "ms",
        series: [
          { name: "p99 idle", points: series.idle.map((x) => [x[0], x[2]]) },
          {
            name: "p99 heavy writes",
            points: series.busy.map((x) => [x[0], x[2]]),
          },
          { name: "p50 idle", points: series.idle.map((x) => [x[0], x[1]]) },
          {
            name: "p50 heavy writes",
            points: series.busy.map((x) => [x[0], x[1]]),
          },
          ...(bareSeries
            ? [
              {
                name: "bare p99 idle",
                points: bareSeries.idle.map((x): [number, number] => [
                  x[0],
                  x[2],
                ]),
              },
              {
                name: "bare p99 heavy writes",
                points: bareSeries.busy.map((x): [number, number] => [
                  x[0],
                  x[2],
                ]),
              },
            ]
            : []),
          ...(pacedSeries
            ? [{
              name: "bare p99, writer paced to shale's rate",
              points: pacedSeries.busy.map((x): [number, number] => [
                x[0],
                x[2],
              ]),
            }]
            : []),
          ...(levelSeries
            ? [{
              name: "leveldb p99 heavy writes",
              points: levelSeries.busy.map((x): [number, number] => [
                x[0],
                x[2],
              ]),
            }]
            : []),
        ],
      }),
    );
  }
  console.error(`wrote ${args.results}${series ? ` and ${args.svg}` : ""}`);
}
if (failures.length) Deno.exit(1);
