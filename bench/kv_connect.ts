/**
 * Deno's KV client against shale (KV Connect over HTTP on localhost) versus
 * the same client on a local SQLite file (`Deno.openKv(path)`).
 *
 *   deno run -A --unstable-kv bench/kv_connect.ts [--n 2000] [--sync always]
 *
 * The shale server runs in a child process (this script with `--serve`), so
 * client and server do not share an event loop. Measured per backend, on
 * ~100-byte object values:
 * - awaited sets/s: one `kv.set` at a time;
 * - 64 concurrent sets/s: 64 callers each awaiting their own sets;
 * - gets/s: one awaited `kv.get` at a time, random existing keys;
 * - list entries/s: `kv.list({ prefix })` over every key, default batches.
 *
 * @module
 */
import { open } from "../mod.ts";
import { createHandler } from "../server/app.ts";

const TOKEN = "bench-token";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

async function serve(dir: string, sync: "always" | "interval" | "none") {
  const db = await open(dir, { sync });
  const app = createHandler(db, { authToken: TOKEN });
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`PORT ${port}`),
  }, app);
}

interface Row {
  backend: string;
  awaitedSets: number;
  concurrentSets: number;
  gets: number;
  listEntries: number;
}

function value(i: number) {
  return { id: i, name: `user-${i}`, tags: ["a", "b"], pad: "x".repeat(48) };
}

async function measure(
  backend: string,
  kv: Deno.Kv,
  n: number,
): Promise<Row> {
  const rate = (count: number, ms: number) => Math.round(count / (ms / 1000));
  // Warm up connections and metadata.
  for (let i = 0; i < 20; i++) await kv.set(["warm", i], value(i));

  let t = performance.now();
  const awaited = Math.max(100, Math.floor(n / 4));
  for (let i = 0; i < awaited; i++) await kv.set(["seq", i], value(i));
  const awaitedSets = rate(awaited, performance.now() - t);

  t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) {
        const i = next++;
        await kv.set(["conc", i], value(i));
      }
    }),
  );
  const concurrentSets = rate(n, performance.now() - t);

  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  t = performance.now();
  for (let i = 0; i < n; i++) {
    const e = await kv.get(["conc", rnd()]);
    if (e.value === null) throw new Error("missing key in get benchmark");
  }
  const gets = rate(n, performance.now() - t);

  const rounds = 5;
  t = performance.now();
  let listed = 0;
  for (let r = 0; r < rounds; r++) {
    for await (const _ of kv.list({ prefix: ["conc"] })) listed++;
  }
  if (listed !== rounds * n) throw new Error(`listed ${listed}`);
  const listEntries = rate(listed, performance.now() - t);
  return { backend, awaitedSets, concurrentSets, gets, listEntries };
}

async function machine(): Promise<string> {
  let cpu = "unknown CPU";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = /model name\s*:\s*(.*)/.exec(info)?.[1] ?? cpu;
  } catch {
    // not Linux
  }
  return `${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, ${cpu}, ` +
    `Deno ${Deno.version.deno}`;
}

async function main() {
  if (Deno.args[0] === "--serve") {
    await serve(Deno.args[1], Deno.args[2] as "always");
    return;
  }
  const n = Number(flag("n", "2000"));
  const sync = flag("sync", "always");
  const root = await Deno.makeTempDir({ prefix: "shale-kvbench-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-kv",
      new URL(import.meta.url).pathname,
      "--serve",
      `${root}/shale`,
      sync,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/PORT (\d+)/.test(out)) {
    const { value, done } = await lines.read();
    if (done) throw new Error("server exited before listening");
    out += value;
  }
  const port = /PORT (\d+)/.exec(out)![1];
  Deno.env.set("DENO_KV_ACCESS_TOKEN", TOKEN);
  const rows: Row[] = [];
  try {
    const remote = await Deno.openKv(
      `http://127.0.0.1:${port}/deno-kv/bench`,
    );
    rows.push(await measure(`shale (KV Connect, sync=${sync})`, remote, n));
    remote.close();
    const local = await Deno.openKv(`${root}/sqlite.db`);
    rows.push(await measure("local Deno.openKv(path) (SQLite)", local, n));
    local.close();
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await lines.cancel();
    await Deno.remove(root, { recursive: true });
  }
  const fmt = (x: number) => x.toLocaleString("en-US");
  console.log(
    `\n${new Date().toISOString().slice(0, 10)} — ${await machine()}`,
  );
  console.log(`n = ${n} keys, ~100-byte object values\n`);
  console.log(
    "| backend | awaited sets/s | 64 concurrent sets/s | gets/s | list entries/s |",
  );
  console.log("|---|---:|---:|---:|---:|");
  for (const r of rows) {
    console.log(
      `| ${r.backend} | ${fmt(r.awaitedSets)} | ${fmt(r.concurrentSets)} | ${
        fmt(r.gets)
      } | ${fmt(r.listEntries)} |`,
    );
  }
}

await main();
