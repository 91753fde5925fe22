/**
 * The change feed against `shale serve` as a real process, on Deno and on
 * Bun: the server is killed with SIGKILL mid-stream and restarted, and the
 * consumer resumes with no gap and no duplicate for acknowledged writes; a
 * consumer that never reads is dropped and does not grow the server's
 * memory.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { b64 } from "./_helpers.ts";
import { type ChangePayload, SseReader } from "./_sse.ts";
import {
  eachRuntime,
  shaleCommand,
  type ShaleRuntime,
  spawnPiped,
  unavailable,
} from "../_shale.ts";
import { withTempDir } from "../_helpers.ts";

/** Deno and Bun; the binary is Bun's runtime, tested by process_test.ts. */
const RUNTIMES: ShaleRuntime[] = ["deno", "bun"];

interface Server {
  child: Deno.ChildProcess;
  base: string;
  output(): string;
  /** Ends the process (SIGTERM unless given) and waits for its pipes. */
  stop(signal?: Deno.Signal): Promise<void>;
}

async function serve(
  rt: ShaleRuntime,
  dir: string,
  extra: string[] = [],
): Promise<Server> {
  const c = await shaleCommand(rt);
  const proc = spawnPiped([
    c.command,
    ...c.args,
    "serve",
    "--port",
    "0",
    "--data-dir",
    dir,
    ...extra,
  ]);
  let m: RegExpMatchArray;
  try {
    m = await proc.waitFor(/listening on (http:\/\/[^\s"]+)/, 20_000);
  } catch {
    proc.child.kill("SIGKILL");
    throw new Error(`server did not start:\n${proc.output()}`);
  }
  return {
    child: proc.child,
    base: m[1],
    output: proc.output,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        proc.child.kill(signal);
      } catch {
        // already gone
      }
      await proc.finished;
    },
  };
}

async function openWatch(base: string, lastId?: string): Promise<SseReader> {
  const r = await fetch(`${base}/kv/watch?prefix=k`, {
    headers: lastId === undefined ? {} : { "last-event-id": lastId },
  });
  equal(r.status, 200, r.status === 200 ? "" : await r.text());
  return new SseReader(r);
}

eachRuntime(
  "change feed: the server is killed with SIGKILL mid-stream and restarted; the consumer resumes with no gap and no duplicate for acknowledged writes",
  async (rt) => {
    await withTempDir(async (dir) => {
      let server = await serve(rt, dir, ["--watch-heartbeat-ms", "200"]);
      let base = server.base;
      const acked = new Set<string>();
      const seen = new Map<string, number>();
      let versions: number[] = [];
      let s = await openWatch(base);
      equal((await s.next())?.event, "ready");

      /** Reads events until `stop()` says so or the stream ends. */
      const consume = async (stop: () => boolean): Promise<boolean> => {
        while (!stop()) {
          let ev;
          try {
            ev = await s.next(20_000);
          } catch {
            return false; // the connection broke
          }
          if (ev === undefined) return false;
          if (ev.event !== "change") continue;
          const p = JSON.parse(ev.data) as ChangePayload;
          versions.push(p.version);
          for (const c of p.changes) {
            const k = atob(c.key);
            seen.set(k, (seen.get(k) ?? 0) + 1);
          }
        }
        return true;
      };
      const write = async (i: number) => {
        const key = `k${String(i).padStart(4, "0")}`;
        const r = i % 4 === 0
          ? await fetch(`${base}/kv/batch`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              ops: [
                { op: "put", key: b64(key), value: b64(`v${i}`) },
                { op: "put", key: b64(`${key}b`), value: b64(`v${i}`) },
              ],
            }),
          })
          : await fetch(`${base}/kv/${key}`, { method: "PUT", body: `v${i}` });
        await r.body?.cancel();
        if (r.ok) {
          acked.add(key);
          if (i % 4 === 0) acked.add(`${key}b`);
        }
      };

      // Phase 1: writes while the consumer follows; the server is killed
      // with writes in flight, after the consumer saw some of them.
      const phase1 = consume(() => false);
      const inflight: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        const w = write(i).catch(() => {}); // refused by the dying server
        inflight.push(w);
        if (i % 8 === 7) await Promise.all(inflight.splice(0));
        if (i === 150) await server.stop("SIGKILL");
      }
      await Promise.all(inflight);
      equal(await phase1, false, "the stream broke with the server");
      ok(acked.size > 100, `only ${acked.size} writes acknowledged`);
      const lastId = s.lastId!;
      ok(Number(lastId) > 0);

      // Phase 2: restart on the same directory, resume, write more.
      server = await serve(rt, dir, ["--watch-heartbeat-ms", "200"]);
      base = server.base;
      s = await openWatch(base, lastId);
      equal(
        (await s.next())?.id,
        lastId,
        "the ready event confirms the position",
      );
      const ackedBefore = acked.size;
      for (let i = 200; i < 260; i++) await write(i);
      // 60 writes, 15 of them batches of two keys: a refused write would
      // just not count, and the test would check less than it says.
      equal(acked.size - ackedBefore, 75, "every phase 2 write was accepted");
      const done = await consume(() => [...acked].every((k) => seen.has(k)));
      ok(done, "the resumed stream delivered every acknowledged write");
      for (const [k, n] of seen) equal(n, 1, `${k} seen ${n} times`);
      for (let i = 1; i < versions.length; i++) {
        ok(versions[i] > versions[i - 1], "versions only grow across restarts");
      }
      versions = [];
      // A consumer that leaves is noticed (the runtime cancels the body).
      const other = await openWatch(base);
      equal((await other.next())?.event, "ready");
      await other.cancel();
      const deadline = Date.now() + 10_000;
      for (;;) {
        const m = await (await fetch(`${base}/metrics`)).text();
        if (/^shale_watch_streams_open 1$/m.test(m)) break;
        ok(Date.now() < deadline, `the cancelled stream stayed open:\n${m}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // SIGTERM ends the open stream, and the server exits cleanly.
      const t0 = Date.now();
      server.child.kill("SIGTERM");
      equal(await s.next(10_000), undefined, "the stream ends on shutdown");
      equal((await server.child.status).code, 0);
      ok(Date.now() - t0 < 5_000, "shutdown did not wait for the stream");
      await server.stop();
    });
  },
  RUNTIMES,
);

/**
 * Resident memory of a process in bytes, from /proc/<pid>/status (read
 * through `cat`: the test task's permissions do not cover /proc).
 */
async function rssBytes(pid: number): Promise<number> {
  const out = await new Deno.Command("cat", {
    args: [`/proc/${pid}/status`],
    stdout: "piped",
  }).output();
  const m = new TextDecoder().decode(out.stdout).match(
    /^VmRSS:\s+(\d+) kB$/m,
  );
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/**
 * Starts a server, optionally opens a watch that reads its first event and
 * then nothing more, writes 16 MiB (warm-up) then `MIB` MiB of values, and
 * reports how much the server's RSS grew over the second part.
 */
async function stalledRun(
  rt: ShaleRuntime,
  withConsumer: boolean,
  check: (base: string, s: SseReader | undefined) => Promise<void>,
): Promise<number> {
  return await withTempDir(async (dir) => {
    const server = await serve(rt, dir, [
      "--sync",
      "none",
      "--watch-max-lag",
      "1MiB",
      "--watch-history-size",
      "8MiB",
    ]);
    const base = server.base;
    try {
      let s: SseReader | undefined;
      if (withConsumer) {
        s = await openWatch(base);
        equal((await s.next())?.event, "ready");
      }
      const value = b64(new Uint8Array(64 * 1024).fill(7));
      const writeMiB = async (from: number, mib: number) => {
        for (let i = from; i < from + mib; i++) {
          const ops = Array.from({ length: 16 }, (_, j) => ({
            op: "put",
            key: b64(`k${i}-${j}`),
            value,
          }));
          const r = await fetch(`${base}/kv/batch`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ ops }),
          });
          equal(r.status, 200, await r.text());
        }
      };
      await writeMiB(0, 16);
      const before = await rssBytes(server.child.pid);
      await writeMiB(16, MIB);
      const grew = await rssBytes(server.child.pid) - before;
      await check(base, s);
      return grew;
    } finally {
      await server.stop();
    }
  });
}

/** MiB of values written past the stalled consumer. */
const MIB = 128;

eachRuntime(
  "change feed: a consumer that never reads does not grow the server's memory and is dropped with consumer_too_slow",
  async (rt) => {
    const without = await stalledRun(rt, false, async () => {});
    const withStalled = await stalledRun(rt, true, async (base, s) => {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      ok(/^shale_watch_drops_total 1$/m.test(metrics), metrics);
      ok(/^shale_watch_streams_open 0$/m.test(metrics));
      // The consumer finally reads: what was queued, then the error event
      // naming where to resume, then the end of the stream.
      let last: { event: string; data: string } | undefined;
      for (;;) {
        const ev = await s!.next(20_000);
        if (ev === undefined) break;
        last = ev;
      }
      equal(last?.event, "error");
      const body = JSON.parse(last!.data);
      equal(body.error.code, "consumer_too_slow");
      deepEqual(String(body.resume_from), s!.lastId);
    });
    const mib = (n: number) => Math.round(n / 2 ** 20);
    console.log(
      `[${rt}] RSS growth over ${MIB} MiB of writes: ${
        mib(without)
      } MiB without a watch, ${mib(withStalled)} MiB with a stalled one`,
    );
    // Buffered for the consumer, 128 MiB of values would be over 170 MiB
    // of base64. What the feed may add: the queue, one event, runtime slack;
    // the rest is noise between two runs (measured up to 47 MiB on Bun).
    ok(
      withStalled - without < 112 * 2 ** 20,
      `RSS grew by ${mib(withStalled)} MiB with a stalled watch, ${
        mib(without)
      } MiB without`,
    );
  },
  RUNTIMES,
);

/** Extra `serve` flags for the idle-stream test (empty: the defaults). */
const IDLE_FLAGS: string[] = JSON.parse(
  Deno.env.get("SHALE_TEST_IDLE_FLAGS") ?? "[]",
);

Deno.test({
  name:
    `[bun] change feed: with the default heartbeat an idle stream outlives Bun's 10 s idle timeout${
      unavailable("bun") ? ` (ignored: ${unavailable("bun")})` : ""
    }`,
  ignore: unavailable("bun") !== undefined,
  fn: async () => {
    await withTempDir(async (dir) => {
      const server = await serve("bun", dir, IDLE_FLAGS);
      try {
        const s = await openWatch(server.base);
        equal((await s.next())?.event, "ready");
        // Nothing happens for 11 s; only heartbeats keep the stream open.
        const idle = s.next(11_000).then(() => "event or end", () => "idle");
        equal(await idle, "idle", "the stream ended while idle");
        ok(s.comments >= 2, `${s.comments} heartbeats`);
        const r = await fetch(`${server.base}/kv/k1`, {
          method: "PUT",
          body: "v",
        });
        equal(r.status, 204);
        const ev = await s.next(5_000);
        equal(ev?.event, "change");
        await s.cancel();
      } finally {
        await server.stop();
      }
    });
  },
});
