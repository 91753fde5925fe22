/**
 * Two builds of shale's server side by side (two checkouts, say a worktree
 * of `main` and one of a branch): both run at once, pinned to the same core
 * (wrk to the other), and short wrk windows alternate between them (A B B A
 * ...), so both see the same load from whatever else runs on the machine.
 * For each window it takes the server's CPU time per request (user +
 * system, all threads, from /proc); it prints every window, the medians and
 * the median of the per-round ratios B / A. On the shared machine this
 * separates changes of a few percent that whole `bench/http.ts` runs, taken
 * a minute apart, do not. Both run with the V8 flags of deno.json's start
 * task unless `--a-deno-args` / `--b-deno-args` give a server its `deno run`
 * flags (compare V8 flags with `--a . --b .`). `--runtime bun` runs both
 * on Bun (`--bun PATH`, default the one `make setup` installs) instead:
 * the listener of the single binary. Prints only; writes no results file.
 *
 *     deno run -A bench/http_ab.ts --a ../wt-main --b . --rounds 8
 *     deno run -A bench/http_ab.ts --a ../wt-main --b . --workloads get_hit
 *     deno run -A bench/http_ab.ts --a . --b . \
 *       --a-deno-args=--v8-flags=--max-semi-space-size=16
 *     deno run -A bench/http_ab.ts --a ../wt-main --b . --runtime bun
 *     deno run -A bench/http_ab.ts --a ../wt-main --b . \
 *       --auth-token bench-token-0123456789 --workloads get_hit
 *
 * `--auth-token T` starts both servers with `--auth-token T`, and every
 * request (preload, wrk) sends `Authorization: Bearer T`. `--a-shale-args`
 * / `--b-shale-args` add `shale serve` flags to one server (compare a
 * flag's cost with `--a . --b . --b-shale-args=--access-log`).
 *
 * `--a` or `--b` may also name a reference handler instead of a checkout:
 * `bare:map`, `bare:leveldb` or `bare:shale` runs bench/_bare_server.ts
 * with that store (it loads the same keys itself), so that the Map handler,
 * shale's engine behind it and the shale server are measured in the same
 * alternating windows (Deno only):
 *
 *     deno run -A bench/http_ab.ts --a bare:map --b bare:shale
 *     deno run -A bench/http_ab.ts --a bare:shale --b .
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import { type Server, startServer, startTaskV8Flags } from "./_servers.ts";
import { have, pinner, wrkRunner, wrkScripts } from "./_wrk.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    a: { type: "string" },
    b: { type: "string" },
    rounds: { type: "string", default: "8" },
    seconds: { type: "string", default: "3" },
    keys: { type: "string", default: "20000" },
    connections: { type: "string", default: "64" },
    workloads: { type: "string", default: "get_hit,get_miss,put" },
    "server-cpu": { type: "string", default: "0" },
    "wrk-cpu": { type: "string", default: "1" },
    "a-deno-args": { type: "string" },
    "b-deno-args": { type: "string" },
    runtime: { type: "string", default: "deno" },
    bun: { type: "string", default: ".tools/node_modules/.bin/bun" },
    "auth-token": { type: "string" },
    "a-shale-args": { type: "string" },
    "b-shale-args": { type: "string" },
  },
});
if (args.runtime !== "deno" && args.runtime !== "bun") {
  console.error(`--runtime is deno or bun, not ${args.runtime}`);
  Deno.exit(2);
}
if (args.a === undefined || args.b === undefined) {
  console.error("usage: bench/http_ab.ts --a DIR --b DIR [--rounds N]");
  Deno.exit(2);
}
if (!have("wrk")) {
  console.error("wrk not found: install it (apt-get install -y wrk)");
  Deno.exit(1);
}
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const KEYS = Number(args.keys);
const CONNS = Number(args.connections);
const pinned = pinner();
const tmp = await Deno.makeTempDir({ prefix: "shale-http-ab-" });
const TOKEN = args["auth-token"];
const authHeaders: Record<string, string> = TOKEN === undefined
  ? {}
  : { authorization: `Bearer ${TOKEN}` };
for (const [name, text] of Object.entries(wrkScripts(100))) {
  const auth = TOKEN === undefined
    ? ""
    : `wrk.headers["Authorization"] = "Bearer ${TOKEN}"\n`;
  await Deno.writeTextFile(`${tmp}/${name}.lua`, auth + text);
}
const { wrk } = wrkRunner({
  cpu: args["wrk-cpu"],
  scriptDir: tmp,
  keys: KEYS,
  pinned,
});

/** `deno run -A` with `denoArgs`, or with the start task's V8 flags. */
function denoRun(denoArgs: string | undefined): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    ...(denoArgs === undefined
      ? startTaskV8Flags()
      : denoArgs.split(/\s+/).filter((a) => a !== "")),
  ];
}

/** Starts bench/_bare_server.ts on `store`; it loads the keys itself. */
function startBare(
  store: string,
  name: string,
  denoArgs: string | undefined,
): Promise<Server> {
  if (args.runtime !== "deno") {
    throw new Error("the bare handler runs on Deno only (--runtime deno)");
  }
  return startServer(
    pinned(args["server-cpu"], [
      ...denoRun(denoArgs),
      new URL("./_bare_server.ts", import.meta.url).pathname,
      "--keys",
      String(KEYS),
      "--store",
      store,
      ...(store === "map" ? [] : ["--dir", `${tmp}/${name}`]),
    ]),
    `bare ${store} ${name}`,
  );
}

/**
 * Starts `shale serve` from checkout `dir` and loads the benchmark's keys,
 * or the bare handler for `bare:STORE`.
 */
async function start(
  dir: string,
  name: string,
  denoArgs: string | undefined,
  shaleArgs: string | undefined,
): Promise<Server> {
  if (dir.startsWith("bare:")) return startBare(dir.slice(5), name, denoArgs);
  const runtime = args.runtime === "bun" ? [args.bun] : denoRun(denoArgs);
  const s = await startServer(
    pinned(args["server-cpu"], [
      ...runtime,
      `${dir}/server/main.ts`,
      "serve",
      "--port",
      "0",
      "--data-dir",
      `${tmp}/${name}`,
      "--sync",
      "always",
      ...(TOKEN === undefined ? [] : ["--auth-token", TOKEN]),
      ...(shaleArgs ?? "").split(/\s+/).filter((a) => a !== ""),
    ]),
    `server ${name}`,
  );
  const value = Buffer.from(new Uint8Array(100).fill(120)).toString("base64");
  for (let i = 0; i < KEYS; i += 1000) {
    const ops = [];
    for (let j = i; j < Math.min(KEYS, i + 1000); j++) {
      const k = `k${String(j).padStart(15, "0")}`;
      ops.push({ op: "put", key: Buffer.from(k).toString("base64"), value });
    }
    const r = await fetch(`${s.url}/kv/batch`, {
      method: "POST",
      headers: { "content-type": "application/json", ...authHeaders },
      body: JSON.stringify({ ops }),
    });
    await r.body?.cancel();
    if (!r.ok) throw new Error(`preload of ${name} failed: ${r.status}`);
  }
  return s;
}

interface Window {
  rps: number;
  cpuUs: number;
  p99: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const servers: Record<"A" | "B", Server | undefined> = {
  A: undefined,
  B: undefined,
};
try {
  servers.A = await start(
    args.a,
    "A",
    args["a-deno-args"],
    args["a-shale-args"],
  );
  servers.B = await start(
    args.b,
    "B",
    args["b-deno-args"],
    args["b-shale-args"],
  );
  // Let the preloads' flushes finish before the first window.
  await new Promise((r) => setTimeout(r, 3000));
  for (const workload of args.workloads.split(",")) {
    const got: Record<"A" | "B", Window[]> = { A: [], B: [] };
    for (const name of ["A", "B"] as const) {
      await wrk(servers[name]!.url, workload, 1, CONNS); // warm-up
    }
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ["A", "B"] as const : ["B", "A"] as const;
      for (const name of order) {
        const s = servers[name]!;
        const cpu0 = s.cpuSeconds();
        const w = await wrk(s.url, workload, SECONDS, CONNS);
        got[name].push({
          rps: w.rps,
          cpuUs: ((s.cpuSeconds() - cpu0) * 1e6) / w.requests,
          p99: w.p99,
        });
      }
    }
    const fmt = (ws: Window[]) =>
      ws.map((w) => `${w.cpuUs.toFixed(1)}`).join(" ");
    const cpuRatio = median(got.B.map((w, i) => w.cpuUs / got.A[i].cpuUs));
    const rpsRatio = median(got.B.map((w, i) => w.rps / got.A[i].rps));
    console.log(`${workload}: CPU us/request per window`);
    console.log(`  A ${fmt(got.A)}`);
    console.log(`  B ${fmt(got.B)}`);
    console.log(
      `  median CPU us/request A ${
        median(got.A.map((w) => w.cpuUs)).toFixed(1)
      } B ${median(got.B.map((w) => w.cpuUs)).toFixed(1)}, B/A ${
        cpuRatio.toFixed(3)
      }; median req/s A ${median(got.A.map((w) => w.rps)).toFixed(0)} B ${
        median(got.B.map((w) => w.rps)).toFixed(0)
      }, B/A ${rpsRatio.toFixed(3)}; median p99 ms A ${
        median(got.A.map((w) => w.p99)).toFixed(2)
      } B ${median(got.B.map((w) => w.p99)).toFixed(2)}`,
    );
  }
  console.log(
    `(${ROUNDS} rounds of ${SECONDS} s windows, ${CONNS} connections, load average ${
      Deno.loadavg().map((x) => x.toFixed(1)).join(" ")
    } at the end)`,
  );
} finally {
  await servers.A?.stop();
  await servers.B?.stop();
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
