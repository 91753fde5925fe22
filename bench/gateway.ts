/**
 * The latency cost of gateway mode: one client's PUT and GET round trips
 * (100-byte values) against `shale serve` on a data directory, and against
 * `shale serve --backend` in front of a second shale serving KV Connect, all
 * on loopback, measured in the same run. A real remote backend adds its
 * network round trip (one per read, two per conditional write) on top.
 *
 * Usage: `make bench-gateway` (ARGS: `--ops N`, default 2000).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Samples } from "./_measure.ts";
import { startServer } from "./_servers.ts";

const MAIN = new URL("../server/main.ts", import.meta.url).pathname;
const TOKEN = "bench-gateway-backend-token";
const args = parseArgs({
  args: Deno.args,
  options: { ops: { type: "string", default: "2000" } },
});
const ops = Number(args.values.ops);

function shale(flags: string[]): string[] {
  return [Deno.execPath(), "run", "-A", MAIN, "serve", "--port", "0", ...flags];
}

/** p50/p99 (µs) of `ops` PUTs, conditional PUTs and GETs against `base`. */
async function measure(base: string) {
  const value = new Uint8Array(100).fill(7);
  const put = new Samples();
  const cond = new Samples();
  const get = new Samples();
  for (let i = 0; i < ops; i++) {
    const url = `${base}/kv/bench-${i % 500}`;
    let t = performance.now();
    const p = await fetch(url, { method: "PUT", body: value });
    await p.body?.cancel();
    put.add(performance.now() - t);
    t = performance.now();
    const c = await fetch(url, {
      method: "PUT",
      body: value,
      headers: { "if-match": p.headers.get("etag")! },
    });
    await c.body?.cancel();
    cond.add(performance.now() - t);
    t = performance.now();
    await (await fetch(url)).arrayBuffer();
    get.add(performance.now() - t);
  }
  return { put: put.p50p99us(), cond: cond.p50p99us(), get: get.p50p99us() };
}

const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
Deno.env.set("SHALE_AUTH_TOKEN", TOKEN);
const backend = await startServer(
  shale(["--data-dir", dirs[0], "--sync", "none"]),
  "backend",
);
Deno.env.delete("SHALE_AUTH_TOKEN");
const local = await startServer(
  shale(["--data-dir", dirs[1], "--sync", "none"]),
  "local",
);
Deno.env.set("SHALE_BACKEND_TOKEN", TOKEN);
const gateway = await startServer(
  shale(["--backend", `${backend.url}/deno-kv/bench`]),
  "gateway",
);
try {
  await measure(local.url); // warm-up of both, not reported
  await measure(gateway.url);
  const l = await measure(local.url);
  const g = await measure(gateway.url);
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ")[0];
  console.log(`${ops} ops each, one client, loopback; load average ${load}`);
  console.log(
    "op               local p50/p99 µs   gateway p50/p99 µs   p50 ratio",
  );
  for (const k of ["put", "cond", "get"] as const) {
    const name = { put: "PUT", cond: "PUT If-Match", get: "GET" }[k];
    console.log(
      `${name.padEnd(16)} ${
        l[k].map((x) => x.toFixed(0)).join(" / ").padEnd(18)
      } ${g[k].map((x) => x.toFixed(0)).join(" / ").padEnd(20)} ${
        (g[k][0] / l[k][0]).toFixed(1)
      }x`,
    );
  }
} finally {
  await gateway.stop();
  await local.stop();
  await backend.stop();
  for (const d of dirs) await Deno.remove(d, { recursive: true });
}
