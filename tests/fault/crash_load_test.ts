/**
 * Crash under load: the real server (`server/main.ts serve`, sync=always, a
 * 64 KiB memtable so flushes and L0 compactions happen every few hundred
 * ms) takes writes from concurrent clients and is SIGKILLed at a seeded
 * random moment, then restarted on the same directory, again and again.
 *
 * Clients: each owns a set of keys and has at most one request in flight,
 * so for an owned key the only acceptable values after a crash are its last
 * acknowledged value and the one write that was in flight at the kill.
 * Owned-key ops: put, delete, batch (2..5 own keys, atomic), conditional put
 * (If-Match with the right or a stale version, If-None-Match: *), whose
 * outcome is known exactly because nobody else writes the key. Shared
 * counters are incremented by compare-and-swap (GET, then PUT If-Match) by
 * every client: each increment may be acknowledged at most once, and after a
 * crash a counter holds its highest acknowledged value or an in-flight one.
 *
 * After every restart: every key is read back and checked, each in-flight
 * batch is all-or-nothing, a paginated forward scan and a reverse scan are
 * sorted, duplicate-free and agree with the point reads. The last cycle ends
 * with a clean stop and an offline `shale verify`.
 *
 * Cycles: SHALE_CRASH_CYCLES (default 5; `make crash-test` runs 100).
 * Replay: SHALE_SEED. Prints recovery time (spawn to healthy) median/max.
 *
 * @module
 */
import { Rng, testSeed } from "../_helpers.ts";
import {
  envInt,
  keyPath,
  killServer,
  median,
  mustStart,
  orderProblems,
  pool,
  type ReadyServer,
  removeDir,
  request,
  round,
  runShale,
  scanAll,
  SHALE_RUNTIMES,
  type ShaleRuntime,
  stopServer,
  Tally,
  unavailable,
  waitHealthy,
} from "./_harness.ts";

const CYCLES = envInt("SHALE_CRASH_CYCLES", 5);
const SEED = testSeed(0x5a1e);
const CLIENTS = 8;
const KEYS_PER_CLIENT = 24;
const COUNTERS = 3;
const SERVER_ARGS = [
  "--sync",
  "always",
  "--memtable-size",
  "16K",
  "--block-cache-size",
  "4M",
];
/** Kill after this much load, ms (uniform, seeded). */
const KILL_MIN_MS = 150;
const KILL_MAX_MS = 1400;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** null: the key is absent (deleted or never written). */
type Val = string | null;

interface OwnedKey {
  key: string;
  acked: Val;
  /** Version of `acked` when it is a value. */
  version: number | undefined;
  /** The write in flight at the kill (at most one: the owner's). */
  pending: { value: Val; batch?: number } | undefined;
}

interface Counter {
  key: string;
  /** Highest acknowledged increment, its value and version. */
  n: number;
  value: Val;
  version: number | undefined;
  /** Every increment ever acknowledged (each at most once). */
  acked: Set<number>;
  /** Values of CAS writes whose answer never arrived. */
  pending: Set<string>;
}

interface Figures {
  recoverySpawnMs: number[];
  recoveryEngineMs: number[];
  ackedWrites: number;
  rejected412: number;
  inflightAtKill: number;
  inflightApplied: number;
  killsDuringFlush: number;
  killsWithL0Backlog: number;
  flushes: number;
  compactions: number;
}

// Bun and the binary run a shorter series: the same checks, fewer kills.
for (const rt of SHALE_RUNTIMES) {
  const why = unavailable(rt);
  const cycles = rt === "deno" ? CYCLES : Math.max(2, Math.round(CYCLES / 5));
  Deno.test({
    name: `[${rt}] acknowledged writes survive SIGKILL under concurrent load${
      why ? ` (ignored: ${why})` : ""
    }`,
    ignore: why !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => crashUnderLoad(rt, cycles),
  });
}

async function crashUnderLoad(rt: ShaleRuntime, cycles: number) {
  const tally = new Tally(`crash under load [${rt}]`);
  const rng = new Rng(SEED);
  const dir = await Deno.makeTempDir({ prefix: "shale-crash-" });
  const owned: OwnedKey[][] = Array.from(
    { length: CLIENTS },
    (_, c) =>
      Array.from({ length: KEYS_PER_CLIENT }, (_, j) => ({
        key: `k/${c}/${String(j).padStart(2, "0")}`,
        acked: null,
        version: undefined,
        pending: undefined,
      })),
  );
  const counters: Counter[] = Array.from({ length: COUNTERS }, (_, j) => ({
    key: `ctr/${j}`,
    n: 0,
    value: null,
    version: undefined,
    acked: new Set(),
    pending: new Set(),
  }));
  const batches = new Map<number, { key: OwnedKey; value: Val }[]>();
  const fig: Figures = {
    recoverySpawnMs: [],
    recoveryEngineMs: [],
    ackedWrites: 0,
    rejected412: 0,
    inflightAtKill: 0,
    inflightApplied: 0,
    killsDuringFlush: 0,
    killsWithL0Backlog: 0,
    flushes: 0,
    compactions: 0,
  };
  let server: ReadyServer | undefined;
  try {
    for (let cycle = 0; cycle <= cycles; cycle++) {
      server = await mustStart(dir, { args: SERVER_ARGS, runtime: rt });
      const healthyAt = await waitHealthy(server.base);
      if (cycle > 0) {
        fig.recoverySpawnMs.push(healthyAt - server.spawnedAt);
        fig.recoveryEngineMs.push(server.recoveryMs);
      }
      await verifyState(
        server.base,
        cycle,
        tally,
        owned,
        counters,
        batches,
        fig,
      );
      if (cycle === cycles) break; // the final restart only checks
      const killAfter = rng.range(KILL_MIN_MS, KILL_MAX_MS);
      await loadAndKill(
        server,
        cycle,
        rng,
        killAfter,
        tally,
        owned,
        counters,
        batches,
        fig,
      );
      server = undefined;
    }
    // A clean stop, then the offline checker must find nothing wrong.
    const status = await stopServer(server!);
    server = undefined;
    tally.check(
      status.code === 0,
      `clean stop after the last cycle exited ${status.code}`,
    );
    const v = await runShale(["verify", "--data-dir", dir], 60_000, rt);
    tally.check(
      v.code === 0,
      () =>
        `shale verify after ${cycles} crashes exited ${v.code}: ${v.output}`,
    );
  } finally {
    if (server) await killServer(server);
    await removeDir(dir);
  }
  const spawn = fig.recoverySpawnMs;
  const engine = fig.recoveryEngineMs.filter((n) => Number.isFinite(n));
  tally.finish({
    seed: `${SEED} (replay with SHALE_SEED=${SEED})`,
    cycles: cycles,
    "recovery ms, spawn to /health ok": `median ${round(median(spawn))}, max ${
      round(Math.max(...spawn))
    }`,
    "recovery ms, engine open (start-up line)": `median ${
      round(median(engine))
    }, max ${round(Math.max(...engine))}`,
    "acknowledged writes": fig.ackedWrites,
    "conditional writes refused (412, as expected)": fig.rejected412,
    "writes in flight at a kill": fig.inflightAtKill,
    "of those, found applied after restart": fig.inflightApplied,
    "kills with a flush in progress": fig.killsDuringFlush,
    "kills with an L0 compaction due (>= 4 L0 tables)": fig.killsWithL0Backlog,
    "flushes / compactions seen": `${fig.flushes} / ${fig.compactions}`,
  });
}

/** Reads everything back after a restart, checks it, and folds it into the model. */
async function verifyState(
  base: string,
  cycle: number,
  tally: Tally,
  owned: OwnedKey[][],
  counters: Counter[],
  batches: Map<number, { key: OwnedKey; value: Val }[]>,
  fig: Figures,
): Promise<void> {
  const seen = new Map<string, string>();
  const read = async (key: string) => {
    const r = await request(base, "GET", keyPath(key));
    if (r.status === 404) return { value: null, version: undefined };
    if (r.status !== 200) {
      tally.fail(`cycle ${cycle}: GET ${key} answered ${r.status} ${r.text()}`);
      return undefined;
    }
    const etag = r.headers.get("etag") ?? "";
    const version = /^"(\d+)"$/.test(etag) ? Number(etag.slice(1, -1)) : NaN;
    tally.check(
      Number.isSafeInteger(version),
      `cycle ${cycle}: GET ${key} has ETag ${etag}`,
    );
    const value = dec.decode(r.body);
    seen.set(key, value);
    return { value, version };
  };

  const flat = owned.flat();
  const actual = await pool(flat, 16, (k) => read(k.key));
  for (let i = 0; i < flat.length; i++) {
    const k = flat[i];
    const a = actual[i];
    if (a === undefined) continue;
    const allowed: Val[] = [k.acked];
    if (k.pending) allowed.push(k.pending.value);
    tally.check(
      allowed.includes(a.value),
      () =>
        `cycle ${cycle}: ${k.key} holds ${show(a.value)}; acknowledged ${
          show(k.acked)
        }, in flight ${k.pending ? show(k.pending.value) : "nothing"}`,
    );
    if (a.value !== null && a.value === k.acked && k.version !== undefined) {
      tally.check(
        a.version === k.version,
        `cycle ${cycle}: ${k.key} kept its value but its version went from ${k.version} to ${a.version}`,
      );
    }
    if (k.pending) {
      fig.inflightAtKill++;
      if (a.value === k.pending.value && a.value !== k.acked) {
        fig.inflightApplied++;
      }
    }
  }
  // An in-flight batch is all or nothing (keys whose old and new value are
  // both "absent" cannot tell, and are skipped).
  for (const [id, ops] of batches) {
    let applied = 0;
    let notApplied = 0;
    for (const { key: k, value } of ops) {
      if (value === k.acked) continue;
      const got = actual[flat.indexOf(k)]?.value;
      if (got === value) applied++;
      else if (got === k.acked) notApplied++;
    }
    tally.check(
      applied === 0 || notApplied === 0,
      `cycle ${cycle}: batch ${id} was torn: ${applied} ops applied, ${notApplied} not`,
    );
  }
  batches.clear();
  for (let i = 0; i < flat.length; i++) {
    const a = actual[i];
    if (a === undefined) continue;
    flat[i].acked = a.value;
    flat[i].version = a.version;
    flat[i].pending = undefined;
  }

  for (const c of counters) {
    const a = await read(c.key);
    if (a === undefined) continue;
    const n = a.value === null ? 0 : Number(a.value.split("|")[0]);
    tally.check(
      n >= c.n,
      `cycle ${cycle}: counter ${c.key} went back from ${c.n} to ${n}`,
    );
    const ok = a.value === c.value ||
      (a.value !== null && c.pending.has(a.value) && n > c.n);
    tally.check(
      ok,
      () =>
        `cycle ${cycle}: counter ${c.key} holds ${
          show(a.value)
        }; acknowledged ${show(c.value)}, in flight ${
          [...c.pending].join(", ") || "nothing"
        }`,
    );
    if (a.value !== null && a.value === c.value && c.version !== undefined) {
      tally.check(
        a.version === c.version,
        `cycle ${cycle}: counter ${c.key} version changed ${c.version} -> ${a.version}`,
      );
    }
    if (n > c.n) c.acked.add(n);
    c.n = n;
    c.value = a.value;
    c.version = a.version;
    c.pending.clear();
  }

  // Scans: sorted, duplicate-free, and the same as the point reads.
  const want = [...seen.entries()].sort((x, y) =>
    x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0
  );
  const fwd = await scanAll(base, "", 50);
  if ("error" in fwd) {
    tally.fail(`cycle ${cycle}: scan answered ${fwd.error.status}`);
  } else {
    const order = orderProblems(fwd.items);
    tally.check(order.length === 0, () => `cycle ${cycle}: ${order[0]}`);
    const got = fwd.items.map((
      it,
    ) => [dec.decode(it.key), dec.decode(it.value)]);
    tally.check(
      JSON.stringify(got) === JSON.stringify(want),
      () =>
        `cycle ${cycle}: paginated scan (${got.length} items in ${fwd.pages} pages) differs from point reads (${want.length} keys)`,
    );
  }
  const rev = await request(base, "GET", "/kv/range?reverse=true&limit=10000");
  if (rev.status !== 200) {
    tally.fail(`cycle ${cycle}: reverse scan answered ${rev.status}`);
  } else {
    const items = (rev.json() as { items: { key: string; value: string }[] })
      .items.map((it) => ({
        key: Uint8Array.fromBase64(it.key),
        value: Uint8Array.fromBase64(it.value),
      }));
    const order = orderProblems(items, true);
    tally.check(
      order.length === 0,
      () => `cycle ${cycle}: reverse ${order[0]}`,
    );
    const got = items.map((it) => [dec.decode(it.key), dec.decode(it.value)])
      .reverse();
    tally.check(
      JSON.stringify(got) === JSON.stringify(want),
      `cycle ${cycle}: reverse scan differs from point reads`,
    );
  }
}

/** Runs the clients until the kill, then waits for the process to be gone. */
async function loadAndKill(
  server: ReadyServer,
  cycle: number,
  rng: Rng,
  killAfter: number,
  tally: Tally,
  owned: OwnedKey[][],
  counters: Counter[],
  batches: Map<number, { key: OwnedKey; value: Val }[]>,
  fig: Figures,
): Promise<void> {
  const base = server.base;
  const client = Deno.createHttpClient({});
  let killed = false;
  let nextBatch = batches.size + cycle * 1_000_000;
  let lastStats: { immutable: number; l0: number } = { immutable: 0, l0: 0 };
  let statsTotals = { flushes: 0, compactions: 0 };

  const seeds = Array.from({ length: CLIENTS }, () => rng.int(2 ** 31));
  const runClient = async (c: number) => {
    const r = new Rng(seeds[c]);
    const mine = owned[c];
    for (let n = 0; !killed; n++) {
      const value = (tag: string) =>
        `c${cycle}.w${c}.n${n}.${tag}.` + "x".repeat(r.int(1500));
      const roll = r.int(100);
      const send = (
        method: string,
        path: string,
        body?: string,
        headers?: Record<string, string>,
      ) =>
        request(base, method, path, {
          body: body === undefined ? undefined : enc.encode(body),
          headers,
          client,
          timeoutMs: 20_000,
        });
      try {
        if (roll < 40) {
          const k = r.pick(mine);
          const v = value("put");
          k.pending = { value: v };
          const res = await send("PUT", keyPath(k.key), v);
          if (expect(res.status, 204, `PUT ${k.key}`)) {
            ack(k, v, etagOf(res.headers));
          }
        } else if (roll < 50) {
          const k = r.pick(mine);
          k.pending = { value: null };
          const res = await send("DELETE", keyPath(k.key));
          if (expect(res.status, 204, `DELETE ${k.key}`)) {
            ack(k, null, undefined);
          }
        } else if (roll < 70) {
          const count = r.range(2, 5);
          const picked = new Set<OwnedKey>();
          while (picked.size < count) picked.add(r.pick(mine));
          const id = nextBatch++;
          const ops = [...picked].map((k) => ({
            key: k,
            value: r.chance(0.2) ? null : value("batch"),
          }));
          for (const op of ops) op.key.pending = { value: op.value, batch: id };
          batches.set(id, ops);
          const body = JSON.stringify({
            ops: ops.map((op) =>
              op.value === null
                ? { op: "delete", key: enc.encode(op.key.key).toBase64() }
                : {
                  op: "put",
                  key: enc.encode(op.key.key).toBase64(),
                  value: enc.encode(op.value).toBase64(),
                }
            ),
          });
          const res = await send("POST", "/kv/batch", body, {
            "content-type": "application/json",
          });
          if (expect(res.status, 200, `batch ${id}`)) {
            const version = Number((res.json() as { version: string }).version);
            for (const op of ops) {
              ack(op.key, op.value, op.value === null ? undefined : version);
            }
          }
          batches.delete(id);
        } else if (roll < 88) {
          // Conditional put on an own key: the outcome is known exactly.
          const k = r.pick(mine);
          const v = value("cond");
          let headers: Record<string, string>;
          let wantStatus: number;
          if (k.acked !== null && k.version !== undefined) {
            const stale = r.chance(0.25);
            headers = { "if-match": `"${stale ? k.version - 1 : k.version}"` };
            wantStatus = stale ? 412 : 204;
          } else {
            headers = { "if-none-match": "*" };
            wantStatus = 204;
          }
          if (wantStatus === 204) k.pending = { value: v };
          const res = await send("PUT", keyPath(k.key), v, headers);
          if (expect(res.status, wantStatus, `conditional PUT ${k.key}`)) {
            if (wantStatus === 204) ack(k, v, etagOf(res.headers));
            else fig.rejected412++;
          }
        } else {
          // Compare-and-swap increment of a shared counter.
          const ctr = r.pick(counters);
          const cur = await send("GET", keyPath(ctr.key));
          let cn = 0;
          let headers: Record<string, string>;
          if (cur.status === 200) {
            cn = Number(cur.text().split("|")[0]);
            headers = { "if-match": cur.headers.get("etag") ?? "" };
          } else if (expect(cur.status, 404, `GET ${ctr.key}`)) {
            headers = { "if-none-match": "*" };
          } else {
            continue;
          }
          const v = `${cn + 1}|c${cycle}.w${c}.n${n}`;
          ctr.pending.add(v);
          const res = await send("PUT", keyPath(ctr.key), v, headers);
          if (res.status === 412) {
            fig.rejected412++;
            ctr.pending.delete(v);
          } else if (expect(res.status, 204, `CAS ${ctr.key}`)) {
            ctr.pending.delete(v);
            tally.check(
              !ctr.acked.has(cn + 1),
              `cycle ${cycle}: increment ${
                cn + 1
              } of ${ctr.key} acknowledged twice`,
            );
            ctr.acked.add(cn + 1);
            if (cn + 1 > ctr.n) {
              ctr.n = cn + 1;
              ctr.value = v;
              ctr.version = etagOf(res.headers);
            }
            fig.ackedWrites++;
          }
        }
      } catch (err) {
        // After the kill a failed request is an in-flight write: its key
        // keeps `pending` for the check after restart.
        if (!killed) {
          tally.fail(`cycle ${cycle}: client ${c} request failed: ${err}`);
        }
        return;
      }
    }
  };

  function expect(got: number, want: number, what: string): boolean {
    return tally.check(
      got === want,
      `cycle ${cycle}: ${what} answered ${got}, expected ${want}`,
    );
  }
  function ack(k: OwnedKey, value: Val, version: number | undefined): void {
    k.acked = value;
    k.version = version;
    k.pending = undefined;
    fig.ackedWrites++;
  }

  const statsPoll = (async () => {
    while (!killed) {
      try {
        const s = await request(base, "GET", "/stats", {
          client,
          timeoutMs: 5000,
        });
        if (s.status === 200 && !killed) {
          const e = (s.json() as {
            engine: {
              memtable: { immutable: number };
              levels: { tables: number }[];
              ops: { flushes: number; compactions: number };
            };
          }).engine;
          lastStats = {
            immutable: e.memtable.immutable,
            l0: e.levels[0].tables,
          };
          statsTotals = {
            flushes: e.ops.flushes,
            compactions: e.ops.compactions,
          };
        }
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const clients = Array.from({ length: CLIENTS }, (_, c) => runClient(c));
  await new Promise((r) => setTimeout(r, killAfter));
  killed = true;
  server.kill("SIGKILL");
  await server.exited;
  await Promise.all(clients);
  await statsPoll;
  client.close();
  if (lastStats.immutable > 0) fig.killsDuringFlush++;
  if (lastStats.l0 >= 4) fig.killsWithL0Backlog++;
  fig.flushes += statsTotals.flushes;
  fig.compactions += statsTotals.compactions;
}

function etagOf(h: Headers): number | undefined {
  const m = /^"(\d+)"$/.exec(h.get("etag") ?? "");
  return m ? Number(m[1]) : undefined;
}

function show(v: Val): string {
  if (v === null) return "(absent)";
  return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v);
}
