/**
 * Jepsen-style linearizability check of the real server over HTTP: 8
 * clients run GET / PUT / PUT If-Match / PUT If-None-Match: * / DELETE on 4
 * keys, every request recorded with its invoke and return times, and each
 * key's history is checked by tests/_linearizability.ts. With kills, the
 * server is SIGKILLed mid-run and restarted on the same data directory:
 * requests in flight then have an unknown outcome, bounded by the restart.
 *
 * Short run here (part of `make test`); `make linearizability` runs it
 * long: SHALE_LIN_MS (duration), SHALE_LIN_KILLS (kill -9 count),
 * SHALE_SEED (seed).
 */
import assert from "node:assert/strict";
import { checkKey, type Operation } from "../_linearizability.ts";
import { Rng, testSeed, withSeed } from "../_helpers.ts";
import {
  envInt,
  keyPath,
  killServer,
  mustStart,
  type ReadyServer,
  removeDir,
  sleep,
} from "../fault/_harness.ts";

const CLIENTS = 8;
const KEYS = ["k0", "k1", "k2", "k3"];

/** What one run did, for the summary line. */
interface RunStats {
  ops: number;
  byOutcome: Record<string, number>;
  kills: number;
}

/** Statuses a correct server may answer; anything else fails the run. */
const EXPECTED = new Set([200, 204, 404, 412]);

async function runClients(
  rng: Rng,
  durationMs: number,
  kills: number,
): Promise<{ histories: Map<string, Operation[]>; stats: RunStats }> {
  const dir = await Deno.makeTempDir({ prefix: "shale-lin-" });
  const args = ["--sync", "always"];
  let server: ReadyServer = await mustStart(dir, { args });
  const histories = new Map<string, Operation[]>(KEYS.map((k) => [k, []]));
  const stats: RunStats = { ops: 0, byOutcome: {}, kills: 0 };
  const surprises: string[] = [];
  // While the server is down, clients wait here; requests that failed
  // meanwhile wait for the restart time as their bound.
  let down: PromiseWithResolvers<void> | undefined;
  let dropped: Operation[] = [];
  const deadline = performance.now() + durationMs;

  const client = async (id: number, r: Rng) => {
    const seen = new Map<string, number>(); // key -> last version seen
    let n = 0;
    while (performance.now() < deadline) {
      if (down) await down.promise;
      const key = r.pick(KEYS);
      const o = plan(id, r, key, seen, n++);
      const headers: Record<string, string> = {};
      if (o.ifMatch !== undefined) headers["if-match"] = `"${o.ifMatch}"`;
      if (o.ifNoneMatch) headers["if-none-match"] = "*";
      const method = o.kind.toUpperCase();
      o.invoke = performance.now();
      try {
        const res = await fetch(server.base + keyPath(key), {
          method,
          headers,
          body: o.kind === "put" ? o.value : undefined,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        o.ret = performance.now();
        record(o, res.status, res.headers.get("etag"), text);
        if (!EXPECTED.has(res.status)) {
          surprises.push(`${method} ${key}: ${res.status} ${text}`);
        }
        const version = o.version;
        if (version !== undefined) seen.set(key, version);
        else if (o.status === "ok" && o.kind !== "put") seen.delete(key);
      } catch (err) {
        // No answer: it may or may not have taken effect.
        o.status = "unknown";
        o.ret = Infinity;
        if (down) dropped.push(o);
        else if (!(err instanceof TypeError)) {
          surprises.push(`${method} ${key}: ${err}`);
        }
      }
      histories.get(key)!.push(o);
      stats.ops++;
      const outcome = `${o.kind} ${o.status}`;
      stats.byOutcome[outcome] = (stats.byOutcome[outcome] ?? 0) + 1;
    }
  };

  const killer = async () => {
    for (let i = 0; i < kills; i++) {
      await sleep(durationMs / (kills + 1) * (0.5 + rng.next()));
      if (performance.now() >= deadline - 200) break;
      down = Promise.withResolvers<void>();
      await killServer(server);
      stats.kills++;
      server = await mustStart(dir, { args });
      // Whatever was in flight at the kill took effect by now or never.
      const back = performance.now();
      for (const o of dropped) o.ret = back;
      dropped = [];
      const wake = down;
      down = undefined;
      wake.resolve();
    }
  };

  try {
    await Promise.all([
      killer(),
      ...Array.from(
        { length: CLIENTS },
        (_, i) => client(i, new Rng(rng.int(2 ** 31))),
      ),
    ]);
  } finally {
    await killServer(server);
    await removeDir(dir);
  }
  assert.deepEqual(surprises, [], "unexpected answers");
  return { histories, stats };
}

/** Picks the next request of a client; values are unique per write. */
function plan(
  client: number,
  r: Rng,
  key: string,
  seen: Map<string, number>,
  n: number,
): Operation {
  const o: Operation = {
    client,
    kind: "get",
    status: "ok",
    invoke: 0,
    ret: 0,
  };
  const p = r.next();
  const known = seen.get(key);
  if (p < 0.35) return o;
  if (p < 0.85) {
    o.kind = "put";
    o.value = `c${client}.${n}`;
    if (p < 0.55) return o;
    if (p < 0.72 && known !== undefined) o.ifMatch = known;
    else o.ifNoneMatch = true;
    return o;
  }
  o.kind = "delete";
  if (known !== undefined && r.chance(0.5)) o.ifMatch = known;
  return o;
}

/** Fills in an operation's outcome from the HTTP answer. */
function record(
  o: Operation,
  status: number,
  etag: string | null,
  body: string,
): void {
  const version = etag === null ? undefined : Number(etag.replaceAll('"', ""));
  if (status === 412) {
    o.status = "failed";
  } else if (status === 404 && o.kind === "get") {
    o.read = null;
  } else if (status === 200 && o.kind === "get") {
    o.read = body;
    o.version = version;
  } else if (status === 204) {
    if (o.kind === "put") o.version = version;
  } else {
    // An error answer (5xx): nothing says whether a write took effect.
    o.status = "unknown";
    o.ret = Infinity;
  }
}

async function checkRun(durationMs: number, kills: number, seed: number) {
  await withSeed(seed, async (rng) => {
    const { histories, stats } = await runClients(rng, durationMs, kills);
    const reports: string[] = [];
    const started = performance.now();
    for (const [key, h] of histories) {
      const v = checkKey(h);
      if (!v.ok) reports.push(`key ${key}: ${v.report}`);
    }
    const checkMs = Math.round(performance.now() - started);
    console.log(
      `linearizability: ${stats.ops} requests in ${durationMs} ms by ${CLIENTS} clients on ${KEYS.length} keys, ${stats.kills} kill -9, checked in ${checkMs} ms; ${
        JSON.stringify(stats.byOutcome)
      }`,
    );
    assert.ok(stats.byOutcome["put ok"] > 0, "no write succeeded");
    assert.ok(stats.byOutcome["put failed"] > 0, "no condition failed");
    assert.equal(reports.length, 0, reports.join("\n\n"));
  });
}

Deno.test("concurrent HTTP clients see a linearizable store, across a kill -9", async () => {
  await checkRun(
    envInt("SHALE_LIN_MS", 4000),
    envInt("SHALE_LIN_KILLS", 1),
    testSeed(20261130),
  );
});
