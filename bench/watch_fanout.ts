/**
 * What open change feeds cost the writes: server CPU per PUT and PUT/s with
 * 0, 20 and 50 `GET /kv/watch?values=true` streams open (all the same spec,
 * as dashboards watching everything are), each run against a fresh server.
 * The server is pinned to one core (`server/main.ts serve --sync none`,
 * the start task's V8 flags), wrk (PUTs of 100 bytes over 100,000 keys, 16
 * connections) and the watchers' reader to the other.
 *
 *     deno run -A bench/watch_fanout.ts
 *     deno run -A bench/watch_fanout.ts --watchers 0,10,100 --seconds 5
 *     deno run -A bench/watch_fanout.ts --root ../other-checkout
 *
 * Prints one line per watcher count; no results file (compare runs taken
 * alternately, as for bench/http_ab.ts).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { startServer, startTaskV8Flags } from "./_servers.ts";
import { pinner, wrkRunner, wrkScripts } from "./_wrk.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    watchers: { type: "string", default: "0,20,50" },
    seconds: { type: "string", default: "5" },
    root: { type: "string", default: "." },
    "server-cpu": { type: "string", default: "0" },
    "wrk-cpu": { type: "string", default: "1" },
  },
});

const SECONDS = Number(args.seconds);
const pinned = pinner();
const tmp = await Deno.makeTempDir({ prefix: "shale-watch-fanout-" });
await Deno.writeTextFile(`${tmp}/put.lua`, wrkScripts(100).put);
const { wrk } = wrkRunner({
  cpu: args["wrk-cpu"],
  scriptDir: tmp,
  keys: 100_000,
  pinned,
});

/** Opens `n` watch streams on `url` and counts the chunks they receive. */
function openWatchers(url: string, n: number) {
  const stop = new AbortController();
  const counted = { chunks: 0 };
  const done: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    done.push(
      fetch(`${url}/kv/watch?values=true`, { signal: stop.signal })
        .then(async (r) => {
          const reader = r.body!.getReader();
          for (;;) {
            const { done } = await reader.read();
            if (done) return;
            counted.chunks++;
          }
        })
        .catch(() => {}), // aborted at the end
    );
  }
  return {
    counted,
    async close() {
      stop.abort();
      await Promise.all(done);
    },
  };
}

try {
  console.log(
    `server CPU per PUT with open change feeds (${SECONDS} s of wrk -c16 PUTs, 100-byte values, --sync none)`,
  );
  for (const n of args.watchers.split(",").map(Number)) {
    const s = await startServer(
      pinned(args["server-cpu"], [
        Deno.execPath(),
        "run",
        "-A",
        ...startTaskV8Flags(),
        `${args.root}/server/main.ts`,
        "serve",
        "--port",
        "0",
        "--data-dir",
        `${tmp}/data-${n}`,
        "--sync",
        "none",
      ]),
      "shale server",
    );
    const watchers = openWatchers(s.url, n);
    try {
      await new Promise((r) => setTimeout(r, 500)); // streams open
      await wrk(s.url, "put", 2, 16); // warm-up, unmeasured
      const cpu0 = s.cpuSeconds();
      const w = await wrk(s.url, "put", SECONDS, 16);
      const cpuUs = ((s.cpuSeconds() - cpu0) * 1e6) / w.requests;
      console.log(
        `  ${n} watchers: ${w.rps.toFixed(0)} PUT/s, server CPU ${
          cpuUs.toFixed(1)
        } µs per PUT, p99 ${
          w.p99.toFixed(2)
        } ms; ${watchers.counted.chunks} chunks read by the watchers`,
      );
    } finally {
      await watchers.close();
      await s.stop();
    }
  }
} finally {
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
