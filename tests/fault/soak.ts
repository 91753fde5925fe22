/**
 * Soak: the real server under mixed traffic from 64 connections for
 * SHALE_SOAK_SECONDS (default 600), run by `make soak` (not part of
 * `make test`). Traffic: 55% GET, 25% PUT (values 16 B..4 KiB), 5% DELETE,
 * 7% batch (2..16 ops), 8% range (limit 50). Every answer must be the
 * expected one (2xx, or 404 for a key not written yet), the server RSS must
 * stay under the memory budget plus a fixed margin, and the p50/p99 latency
 * of each minute is printed. Ends with `N passed, N failed`.
 *
 * Budget: memtables (8 MiB x 3: one live, two frozen) + block cache
 * (--block-cache-size, 64 MiB) + SHALE_SOAK_MARGIN_MIB for the runtime, the
 * worker isolates and table metadata. The margin is a measured bound, not a
 * goal: it was 256 MiB until RSS was really sampled, and 10-minute soaks then
 * peaked at 369.9 MiB here (800 ops/s) and 542 MB (517 MiB) in the
 * independent run of issue 10, so it is 512 MiB (limit 600 MiB) until the
 * memory-budget work brings RSS down. See README, Reliability.
 *
 * Usage: deno run -A tests/fault/soak.ts
 *
 * @module
 */
import { Rng, testSeed } from "../_helpers.ts";
import {
  envInt,
  keyPath,
  killServer,
  maxOf,
  mustStart,
  percentile,
  type ReadyServer,
  removeDir,
  request,
  round,
  RssSampler,
  sleep,
  stopServer,
  Tally,
} from "./_harness.ts";

const SECONDS = envInt("SHALE_SOAK_SECONDS", 600);
const CONNECTIONS = envInt("SHALE_SOAK_CONNECTIONS", 64);
const KEYS = envInt("SHALE_SOAK_KEYS", 50_000);
const MARGIN_MIB = envInt("SHALE_SOAK_MARGIN_MIB", 512);
const MEMTABLE_MIB = 8;
const CACHE_MIB = 64;
const BUDGET_MIB = MEMTABLE_MIB * 3 + CACHE_MIB;
const SEED = testSeed(0x50a4);
const enc = new TextEncoder();

interface Window {
  latencies: number[];
  ops: number;
  errors: number;
  rssMiB: number;
}

async function main(): Promise<number> {
  const tally = new Tally("soak");
  const rng = new Rng(SEED);
  const dir = await Deno.makeTempDir({ prefix: "shale-soak-" });
  let server: ReadyServer | undefined;
  const windows: Window[] = [];
  const newWindow = (): Window => ({
    latencies: [],
    ops: 0,
    errors: 0,
    rssMiB: 0,
  });
  let current = newWindow();
  const errorSamples: string[] = [];
  try {
    server = await mustStart(dir, {
      args: [
        "--memtable-size",
        `${MEMTABLE_MIB}M`,
        "--block-cache-size",
        `${CACHE_MIB}M`,
      ],
    });
    const s = server;
    const sampler = new RssSampler(s);
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: CONNECTIONS });
    const start = performance.now();
    const end = start + SECONDS * 1000;
    console.log(
      `soak: ${SECONDS} s, ${CONNECTIONS} connections, ${KEYS} keys, budget ${BUDGET_MIB} MiB + margin ${MARGIN_MIB} MiB, pid ${s.pid}`,
    );

    const value = (r: Rng) => {
      const n = 16 << r.int(9); // 16 B .. 4 KiB
      return "v".repeat(Math.min(n, 4096));
    };
    const worker = async (w: number) => {
      const r = new Rng(rng.int(2 ** 31) + w);
      while (performance.now() < end) {
        const roll = r.int(100);
        const k = r.int(KEYS);
        const key = `soak/${String(k).padStart(6, "0")}`;
        const t = performance.now();
        let ok = false;
        let what = "";
        try {
          if (roll < 55) {
            const res = await request(s.base, "GET", keyPath(key), { client });
            // 404: not written yet, or removed by a DELETE or batch.
            ok = res.status === 200 || res.status === 404;
            what = `GET ${res.status}`;
          } else if (roll < 80) {
            const res = await request(s.base, "PUT", keyPath(key), {
              body: value(r),
              client,
            });
            ok = res.status === 204;
            what = `PUT ${res.status} ${res.status === 204 ? "" : res.text()}`;
          } else if (roll < 85) {
            const res = await request(s.base, "DELETE", keyPath(key), {
              client,
            });
            ok = res.status === 204;
            what = `DELETE ${res.status}`;
          } else if (roll < 92) {
            const ops = Array.from({ length: r.range(2, 16) }, () => {
              const bk = `soak/${String(r.int(KEYS)).padStart(6, "0")}`;
              return r.chance(0.9)
                ? {
                  op: "put",
                  key: enc.encode(bk).toBase64(),
                  value: enc.encode(value(r)).toBase64(),
                }
                : { op: "delete", key: enc.encode(bk).toBase64() };
            });
            const res = await request(s.base, "POST", "/kv/batch", {
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ ops }),
              client,
            });
            ok = res.status === 200;
            what = `batch ${res.status}`;
          } else {
            const startKey = encodeURIComponent(
              `soak/${String(r.int(KEYS)).padStart(6, "0")}`,
            );
            const res = await request(
              s.base,
              "GET",
              `/kv/range?start=${startKey}&limit=50`,
              { client },
            );
            ok = res.status === 200 && Array.isArray(
              (res.json() as { items: unknown }).items,
            );
            what = `range ${res.status}`;
          }
        } catch (err) {
          what = String(err);
        }
        const win = current;
        win.latencies.push(performance.now() - t);
        win.ops++;
        if (!ok) {
          win.errors++;
          if (errorSamples.length < 20) errorSamples.push(what.slice(0, 200));
        }
      }
    };

    const reporter = (async () => {
      const windowMs = Math.min(60_000, SECONDS * 1000);
      let minute = 1;
      let nextAt = start + windowMs;
      while (performance.now() < end) {
        await sleep(Math.max(0, Math.min(1000, nextAt - performance.now())));
        const kib = sampler.sample();
        if (kib !== undefined) {
          current.rssMiB = Math.max(current.rssMiB, kib / 1024);
        }
        if (performance.now() >= nextAt || performance.now() >= end) {
          const w = current;
          current = newWindow();
          windows.push(w);
          console.log(
            `minute ${minute}: ${w.ops} ops (${
              round(w.ops / (windowMs / 1000))
            }/s), p50 ${round(percentile(w.latencies, 50), 2)} ms, p99 ${
              round(percentile(w.latencies, 99), 2)
            } ms, errors ${w.errors}, RSS ${round(w.rssMiB)} MiB`,
          );
          minute++;
          nextAt += windowMs;
        }
      }
    })();

    await Promise.all(
      Array.from({ length: CONNECTIONS }, (_, w) => worker(w)),
    );
    await reporter;
    if (current.ops > 0) windows.push(current);
    client.close();

    const totalOps = windows.reduce((n, w) => n + w.ops, 0);
    const totalErrors = windows.reduce((n, w) => n + w.errors, 0);
    tally.check(totalOps > 0, "no operations completed");
    tally.check(
      totalErrors === 0,
      `${totalErrors} error responses; e.g. ${errorSamples.join(" | ")}`,
    );
    sampler.check(tally);
    const peakRss = sampler.peakKiB / 1024;
    tally.check(
      peakRss <= BUDGET_MIB + MARGIN_MIB,
      `RSS peaked at ${
        round(peakRss)
      } MiB > budget ${BUDGET_MIB} + margin ${MARGIN_MIB}`,
    );
    const h = await request(s.base, "GET", "/health");
    tally.check(h.status === 200, `/health at the end: ${h.status}`);
    const st = await stopServer(s);
    server = undefined;
    tally.check(st.code === 0, `clean stop exited ${st.code}`);
    const all = windows.flatMap((w) => w.latencies);
    // Figures first: only finish() may end the run with 1, and it prints
    // every failed check before it throws.
    const figures = {
      seed: SEED,
      seconds: SECONDS,
      connections: CONNECTIONS,
      operations: totalOps,
      "ops/s": round(totalOps / SECONDS),
      errors: totalErrors,
      "p99 per minute (ms)": windows.map((w) =>
        round(percentile(w.latencies, 99), 2)
      ),
      "overall p50 / p99 / max (ms)": `${round(percentile(all, 50), 2)} / ${
        round(percentile(all, 99), 2)
      } / ${round(maxOf(all), 1)}`,
      "peak RSS MiB": round(peakRss),
      "RSS limit MiB": BUDGET_MIB + MARGIN_MIB,
    };
    try {
      tally.finish(figures);
    } catch {
      return 1;
    }
    return 0;
  } finally {
    if (server) await killServer(server);
    await removeDir(dir);
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main();
  } catch (err) {
    // Anything but a failed check: say what broke, then fail.
    console.error("soak: aborted:", err);
    code = 1;
  }
  Deno.exit(code);
}
