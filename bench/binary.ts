/**
 * The single binary against running from source (`make bench-binary`):
 * binary size, cold start (spawn to the first `/health` 200, on a fresh data
 * directory), and HTTP GET / PUT req/s with wrk, for `deno run
 * server/main.ts`, `bun server/main.ts` and `dist/shale` side by side.
 * Writes bench/RESULTS_BINARY.md.
 *
 *     deno run -A bench/binary.ts --duration 5 --starts 5
 *
 * Each server is pinned to core 0 and wrk to core 1 (taskset, when present);
 * every wrk run is bounded by --duration (after --warmup seconds unmeasured).
 *
 * @module
 */
import { benchArgs } from "./_args.ts";
import { median } from "./_measure.ts";
import { startTaskV8Flags } from "./_servers.ts";
import { pinner, wrkRunner, wrkScripts } from "./_wrk.ts";
import {
  commandLine,
  machineInfo,
  machineMarkdown,
  mdTable,
} from "./_report.ts";

const args = benchArgs({
  results: "bench/RESULTS_BINARY.md",
  strings: {
    duration: "5",
    // Seconds of the same workload, unmeasured, before each measured run:
    // both runtimes' JITs reach their top tier on the hot paths first
    // (Bun's lags: GET 45k req/s cold vs 66k after 2 s, 2026-12-01).
    warmup: "2",
    starts: "5",
    keys: "10000",
    connections: "32",
    bun: ".tools/node_modules/.bin/bun",
    binary: "dist/shale",
  },
});
const DURATION = Number(args.duration);
const WARMUP = Number(args.warmup);
const STARTS = Number(args.starts);
const KEYS = Number(args.keys);
const CONNS = Number(args.connections);
const PERMS = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-ffi",
];

const pinned = pinner();

const VARIANTS: { name: string; cmd: string[] }[] = [
  {
    name: "deno run",
    cmd: [
      Deno.execPath(),
      "run",
      ...startTaskV8Flags(),
      ...PERMS,
      "server/main.ts",
    ],
  },
  { name: "bun (source)", cmd: [args.bun, "server/main.ts"] },
  { name: "binary (bun --compile)", cmd: [args.binary] },
];

interface Running {
  base: string;
  child: Deno.ChildProcess;
}

/** Spawns `serve`; resolves at the first /health 200 with the time it took. */
async function start(
  cmd: string[],
  dir: string,
): Promise<{ s: Running; ms: number }> {
  const t0 = performance.now();
  const full = pinned("0", [
    ...cmd,
    "serve",
    "--port",
    "0",
    "--data-dir",
    dir,
    "--sync",
    "always",
  ]);
  const child = new Deno.Command(full[0], {
    args: full.slice(1),
    stdout: "piped",
    stderr: "inherit",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let m: RegExpMatchArray | null = null;
  while (m === null) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited: ${text}`);
    text += value;
    m = text.match(/listening on (http:\/\/[^\s"]+)/);
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  const base = m[1];
  for (let i = 0; i < 10_000; i++) {
    try {
      const r = await fetch(`${base}/health`);
      await r.body?.cancel();
      if (r.status === 200) break;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  return { s: { base, child }, ms: performance.now() - t0 };
}

async function stop(s: Running): Promise<void> {
  s.child.kill("SIGTERM");
  await s.child.status;
}

// The HTTP benchmark's scripts (bench/_wrk.ts): `get_hit` and `put` send
// 100-byte values over KEYS keys.
const scriptDir = await Deno.makeTempDir({ prefix: "shale-bench-bin-wrk-" });
for (const [name, text] of Object.entries(wrkScripts(100))) {
  await Deno.writeTextFile(`${scriptDir}/${name}.lua`, text);
}
const runner = wrkRunner({ cpu: "1", scriptDir, keys: KEYS, pinned });

/** req/s of `script` against `base`; any error answer fails the run. */
async function wrk(
  base: string,
  script: "get_hit" | "put",
  seconds = DURATION,
): Promise<number> {
  const r = await runner.wrk(base, script, seconds, CONNS);
  if (r.non2xx > 0) {
    throw new Error(`${r.non2xx} error answers during ${script}`);
  }
  if (!(r.rps > 0)) throw new Error(`wrk reported no rate for ${script}`);
  return r.rps;
}

/** Writes every key once (batches of 1000) so GETs all hit. */
async function preload(base: string): Promise<void> {
  const value = new Uint8Array(100).fill(120).toBase64();
  for (let i = 0; i < KEYS; i += 1000) {
    const ops = [];
    for (let j = i; j < Math.min(KEYS, i + 1000); j++) {
      const key = new TextEncoder().encode(`k${String(j).padStart(15, "0")}`);
      ops.push({ op: "put", key: key.toBase64(), value });
    }
    const r = await fetch(`${base}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ops }),
    });
    await r.body?.cancel();
    if (!r.ok) throw new Error(`preload failed: ${r.status}`);
  }
}

const rows: string[][] = [];
for (const v of VARIANTS) {
  const tmp = await Deno.makeTempDir({ prefix: "shale-bench-bin-" });
  try {
    const starts: number[] = [];
    for (let i = 0; i < STARTS; i++) {
      const { s, ms } = await start(v.cmd, `${tmp}/cold${i}`);
      starts.push(ms);
      await stop(s);
    }
    const { s } = await start(v.cmd, `${tmp}/data`);
    await preload(s.base);
    if (WARMUP > 0) await wrk(s.base, "put", WARMUP);
    const put = await wrk(s.base, "put");
    if (WARMUP > 0) await wrk(s.base, "get_hit", WARMUP);
    const get = await wrk(s.base, "get_hit");
    await stop(s);
    const size = v.cmd.length === 1
      ? `${((await Deno.stat(v.cmd[0])).size / 2 ** 20).toFixed(1)} MiB`
      : "- (needs the runtime and sources)";
    rows.push([
      v.name,
      size,
      `${Math.round(median(starts))} (${
        starts.map((x) => Math.round(x)).join(", ")
      })`,
      Math.round(get).toLocaleString("en-US"),
      Math.round(put).toLocaleString("en-US"),
    ]);
    console.error(rows[rows.length - 1].join(" | "));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
await Deno.remove(scriptDir, { recursive: true });

const bunVersion = new TextDecoder().decode(
  (await new Deno.Command(args.bun, { args: ["--version"], stdout: "piped" })
    .output()).stdout,
).trim();
const md = `# The single binary vs running from source

${
  machineMarkdown(
    machineInfo("."),
    `make bench-binary (${commandLine("bench/binary.ts")})`,
  )
}
- Bun ${bunVersion}
- Cold start: spawn to the first \`GET /health\` 200 on a fresh data directory,
  median of ${STARTS} (each run listed). Servers on core 0, wrk on core 1.
- HTTP: wrk, ${CONNS} connections, ${DURATION} s each after ${WARMUP} s of the same
  workload unmeasured, 100-byte values over
  ${KEYS.toLocaleString("en-US")} keys written first (so every GET hits),
  \`--sync always\`; PUT, then GET.

${
  mdTable(
    ["runs as", "size", "cold start ms", "GET req/s", "PUT req/s"],
    rows,
  )
}
`;
console.log(md);
if (!args["no-write"]) await Deno.writeTextFile(args.results, md);
