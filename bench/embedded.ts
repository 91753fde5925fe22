/**
 * Embedded benchmark: db_bench-style workloads through `mod.ts`, side by side
 * in one process and one run with the stores a user would pick instead:
 * Deno KV (`Deno.openKv`), SQLite (`node:sqlite`) and LevelDB
 * (`npm:classic-level`).
 *
 *     deno task bench                       # N = 1,000,000
 *     deno task bench --n 100000 --stores shale,leveldb --workloads fillrandom,readrandom
 *
 * Writes bench/RESULTS.md and bench/results.svg (unless --no-write), and
 * prints the same tables on stdout. Progress goes to stderr on a terminal.
 *
 * Method (see RESULTS.md for the numbers):
 * - 16-byte keys (zero-padded decimal of an even integer, so byte order is
 *   numeric order and the odd integers interleaved between them are the
 *   guaranteed misses of readmissing), 100-byte incompressible values.
 * - Stores run one after another, each through the whole sequence, so one
 *   store's background work never overlaps another's measurement.
 * - Sync off for the db_bench workloads; fills, overwrite and deleterandom
 *   write batches of BATCH ops (one transaction / WriteBatch / atomic op).
 * - Read latency is sampled on every 16th op (timing every op would add the
 *   clock's cost to every op); throughput is wall time over all ops.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { open as openShale } from "../mod.ts";
import { groupedBarSvg } from "./_chart.ts";
import { Progress, Samples } from "./_measure.ts";
import {
  commandLine,
  fmtInt,
  fmtRate,
  fmtUs,
  machineInfo,
  machineMarkdown,
  mdTable,
} from "./_report.ts";
import { keyFor, permutation, prng, ValuePool } from "./_workload.ts";

/** Ops per write batch for fills, overwrite and deleterandom (db_bench's -batch_size). */
export const BATCH = 1000;

const ALL_STORES = ["shale", "leveldb", "sqlite", "denokv"];
const ALL_WORKLOADS = [
  "fillseq",
  "fillrandom",
  "overwrite",
  "readrandom",
  "readmissing",
  "readseq",
  "mixed",
  "deleterandom",
  "fillrandom-put",
  "durable-1",
  "durable-64",
];
const WORKLOAD_TEXT: Record<string, string> = {
  fillseq: `fillseq: N keys in ascending order, batches of ${BATCH}`,
  fillrandom: `fillrandom: N keys in random order, batches of ${BATCH}`,
  overwrite:
    `overwrite: rewrite all N keys in another random order, batches of ${BATCH}`,
  readrandom: "readrandom: point reads of existing keys, random order",
  readmissing:
    "readmissing: point reads of absent keys interleaved with present ones",
  readseq: "readseq: one full forward scan (ops = entries returned)",
  mixed: "mixed: 90% point reads / 10% single awaited puts, random keys",
  deleterandom:
    `deleterandom: delete all N keys, random order, batches of ${BATCH}`,
  "fillrandom-put":
    "fillrandom-put: random fill with one awaited put per key (no batching), N/10 keys",
  "durable-1": "durable-1: sync on every write, 1 writer awaiting each put",
  "durable-64":
    "durable-64: sync on every write, 64 concurrent writers (group commit where the store has it)",
};
const READ_WORKLOADS = new Set(["readrandom", "readmissing", "mixed"]);

type Op = { key: Uint8Array; value: Uint8Array | null };

/** What each store offers the workloads; sync reads where the store has them. */
interface Store {
  write(ops: Op[]): Promise<void> | void;
  put(key: Uint8Array, value: Uint8Array): Promise<unknown> | unknown;
  getSync?(key: Uint8Array): boolean;
  get?(key: Uint8Array): Promise<boolean>;
  /** Visits every entry; returns the count. */
  scan(): Promise<number> | number;
  close(): Promise<void> | void;
  /** fsyncs so far, where the store exposes it. */
  syncs?(): number;
  /** Store state worth reporting after the run. */
  describe?(): Record<string, unknown>;
}

/** The part of `classic-level`'s API this benchmark uses. */
interface LevelDb {
  open(): Promise<void>;
  batch(
    ops: (
      | { type: "del"; key: Uint8Array }
      | { type: "put"; key: Uint8Array; value: Uint8Array }
    )[],
    opts: { sync: boolean },
  ): Promise<void>;
  put(k: Uint8Array, v: Uint8Array, opts: { sync: boolean }): Promise<void>;
  getSync(k: Uint8Array): Uint8Array | undefined;
  get(k: Uint8Array): Promise<Uint8Array | undefined>;
  iterator(): {
    nextv(n: number): Promise<unknown[]>;
    close(): Promise<void>;
  };
  close(): Promise<void>;
}

interface StoreDef {
  name: string;
  setup: string;
  open(dir: string, durable: boolean): Promise<Store>;
}

const STORES: Record<string, StoreDef> = {
  shale: {
    name: "shale",
    setup:
      "`open(dir, {sync})`, defaults otherwise (8 MiB memtable, 64 MiB block cache, background worker); `db.batch()` for fills, synchronous `db.get()`, `db.scan()` generator",
    async open(dir, durable) {
      const db = await openShale(dir, { sync: durable ? "always" : "none" });
      return {
        write: (ops) =>
          db.batch(
            ops.map((o) =>
              o.value === null
                ? { type: "delete" as const, key: o.key }
                : { type: "put" as const, key: o.key, value: o.value }
            ),
          ) as Promise<unknown> as Promise<void>,
        put: (k, v) => db.put(k, v),
        getSync: (k) => db.get(k) !== undefined,
        scan: () => {
          let n = 0;
          for (const _ of db.scan()) n++;
          return n;
        },
        close: () => db.close(),
        syncs: () => (db.stats().ops as { walSyncs: number }).walSyncs,
        describe: () => {
          const s = db.stats() as {
            ops: Record<string, number>;
            writeAmplification: number;
            levels: { level: number; tables: number; bytes: number }[];
            blockCache: Record<string, number>;
          };
          return {
            levels: s.levels.filter((l) => l.tables > 0).map((l) =>
              `L${l.level}: ${l.tables} tables, ${
                (l.bytes / 1048576).toFixed(1)
              } MiB`
            ).join("; "),
            writeAmplification: s.writeAmplification,
            flushes: s.ops.flushes,
            compactions: s.ops.compactions,
            trivialMoves: s.ops.trivialMoves,
            stalls: s.ops.stalls,
            stallMs: Math.round(s.ops.stallMs),
            slowdowns: s.ops.slowdowns,
            "maxEventLoopStallMs (includes this benchmark's own synchronous read loops)":
              s.ops.maxEventLoopStallMs,
            blockCache: JSON.stringify(s.blockCache),
          };
        },
      };
    },
  },
  leveldb: {
    name: "leveldb",
    setup:
      '`npm:classic-level@3.0.0` (LevelDB 1.23), `keyEncoding/valueEncoding: "view"`, 64 MiB cache; `db.batch()` for fills, `getSync()` for reads (its fastest read API; the awaited `get()` rate is in the notes), `iterator().nextv(1000)` for scans, `{sync: true}` puts when durable',
    async open(dir, durable) {
      // A bench-only, optional peer: loaded here so that the engine's own
      // dependency list stays empty and a missing addon only marks LevelDB
      // as unavailable. The specifier is not a literal so that type checks
      // and tests never fetch it; bench/deno.json's lock pins it.
      const specifier = "npm:classic-level@3.0.0";
      const { ClassicLevel } = await import(specifier) as {
        ClassicLevel: new (dir: string, opts: object) => LevelDb;
      };
      const db = new ClassicLevel(dir, {
        keyEncoding: "view",
        valueEncoding: "view",
        cacheSize: 64 << 20,
      });
      await db.open();
      const putOpts = { sync: durable };
      return {
        write: (ops) =>
          db.batch(
            ops.map((o) =>
              o.value === null
                ? { type: "del" as const, key: o.key }
                : { type: "put" as const, key: o.key, value: o.value }
            ),
            putOpts,
          ),
        put: (k, v) => db.put(k, v, putOpts),
        getSync: (k) => db.getSync(k) !== undefined,
        get: async (k) => (await db.get(k)) !== undefined,
        scan: async () => {
          let n = 0;
          const it = db.iterator();
          try {
            for (;;) {
              const items = await it.nextv(1000);
              if (items.length === 0) break;
              n += items.length;
            }
          } finally {
            await it.close();
          }
          return n;
        },
        close: () => db.close(),
      };
    },
  },
  sqlite: {
    name: "sqlite",
    setup:
      "`node:sqlite` `DatabaseSync`, `journal_mode=WAL`, `synchronous=OFF` (FULL when durable), 64 MiB page cache, `CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID`, prepared statements, fills in `BEGIN/COMMIT` transactions of the batch size, autocommit single puts",
    open(dir, durable) {
      const db = new DatabaseSync(`${dir}/kv.sqlite`);
      db.exec("PRAGMA journal_mode=WAL");
      db.exec(`PRAGMA synchronous=${durable ? "FULL" : "OFF"}`);
      db.exec("PRAGMA cache_size=-65536");
      db.exec(
        "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
      );
      const ins: StatementSync = db.prepare(
        "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)",
      );
      const del = db.prepare("DELETE FROM kv WHERE k = ?");
      const sel = db.prepare("SELECT v FROM kv WHERE k = ?");
      const all = db.prepare("SELECT k, v FROM kv ORDER BY k");
      return Promise.resolve({
        write: (ops) => {
          db.exec("BEGIN");
          try {
            for (const o of ops) {
              if (o.value === null) del.run(o.key);
              else ins.run(o.key, o.value);
            }
            db.exec("COMMIT");
          } catch (err) {
            db.exec("ROLLBACK");
            throw err;
          }
        },
        put: (k, v) => ins.run(k, v),
        getSync: (k) => sel.get(k) !== undefined,
        scan: () => {
          let n = 0;
          for (const _ of all.iterate()) n++;
          return n;
        },
        close: () => db.close(),
      });
    },
  },
  denokv: {
    name: "denokv",
    setup:
      "`Deno.openKv(path)` (SQLite-backed; its sync policy is built in and not configurable), keys `[Uint8Array]`, fills as `atomic()` ops of the batch size, awaited `get()`, `list({prefix: []}, {batchSize: 500})` for scans",
    async open(dir) {
      const kv = await Deno.openKv(`${dir}/kv.db`);
      return {
        write: async (ops) => {
          const a = kv.atomic();
          for (const o of ops) {
            if (o.value === null) a.delete([o.key]);
            else a.set([o.key], o.value);
          }
          const r = await a.commit();
          if (!r.ok) throw new Error("atomic commit failed");
        },
        put: (k, v) => kv.set([k], v),
        get: async (k) => (await kv.get([k])).versionstamp !== null,
        scan: async () => {
          let n = 0;
          for await (const _ of kv.list({ prefix: [] }, { batchSize: 500 })) {
            n++;
          }
          return n;
        },
        close: () => kv.close(),
      };
    },
  },
};

interface Result {
  ops: number;
  secs: number;
  rate: number;
  p50?: number;
  p99?: number;
  note?: string;
  error?: string;
  syncsPerWrite?: number;
}

// ---------------------------------------------------------------- args

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "1000000" },
    reads: { type: "string" },
    stores: { type: "string", default: ALL_STORES.join(",") },
    workloads: { type: "string", default: ALL_WORKLOADS.join(",") },
    "durable-seconds": { type: "string", default: "3" },
    dir: { type: "string" },
    seed: { type: "string", default: "42" },
    "no-write": { type: "boolean", default: false },
    results: { type: "string", default: "bench/RESULTS.md" },
    svg: { type: "string", default: "bench/results.svg" },
  },
});

function positiveInt(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive integer, got ${v}`);
    Deno.exit(2);
  }
  return n;
}

const N = positiveInt("n", args.n);
const READS = args.reads === undefined ? N : positiveInt("reads", args.reads);
const DURABLE_SECS = Number(args["durable-seconds"]);
const SEED = positiveInt("seed", args.seed);
const storeNames = args.stores.split(",").filter(Boolean);
const workloads = args.workloads.split(",").filter(Boolean);
for (const s of storeNames) {
  if (!STORES[s]) {
    console.error(`unknown store ${s} (known: ${ALL_STORES.join(", ")})`);
    Deno.exit(2);
  }
}
for (const w of workloads) {
  if (!ALL_WORKLOADS.includes(w)) {
    console.error(
      `unknown workload ${w} (known: ${ALL_WORKLOADS.join(", ")})`,
    );
    Deno.exit(2);
  }
}

// ---------------------------------------------------------------- workloads

const progress = new Progress();
const values = new ValuePool(SEED);
/** Present keys are keyFor(2*i); absent ones keyFor(2*i+1). */
const present = (i: number, out?: Uint8Array) => keyFor(2 * i, out);

async function fill(
  s: Store,
  label: string,
  order: (i: number) => number,
  count: number,
): Promise<Result> {
  progress.begin(label, count);
  const t0 = performance.now();
  for (let i = 0; i < count; i += BATCH) {
    const end = Math.min(count, i + BATCH);
    const ops: Op[] = new Array(end - i);
    for (let j = i; j < end; j++) {
      ops[j - i] = { key: present(order(j)), value: values.next() };
    }
    await s.write(ops);
    progress.tick(end);
  }
  const secs = (performance.now() - t0) / 1000;
  progress.end();
  return { ops: count, secs, rate: count / secs };
}

async function deleteAll(s: Store, order: Uint32Array): Promise<Result> {
  progress.begin("deleterandom", order.length);
  const t0 = performance.now();
  for (let i = 0; i < order.length; i += BATCH) {
    const end = Math.min(order.length, i + BATCH);
    const ops: Op[] = new Array(end - i);
    for (let j = i; j < end; j++) {
      ops[j - i] = { key: present(order[j]), value: null };
    }
    await s.write(ops);
    progress.tick(end);
  }
  const secs = (performance.now() - t0) / 1000;
  progress.end();
  return { ops: order.length, secs, rate: order.length / secs };
}

async function putEach(
  s: Store,
  label: string,
  count: number,
  seed: number,
): Promise<Result> {
  const order = permutation(count, seed);
  progress.begin(label, count);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    await s.put(present(order[i]), values.next());
    if ((i & 1023) === 0) progress.tick(i);
  }
  const secs = (performance.now() - t0) / 1000;
  progress.end();
  return { ops: count, secs, rate: count / secs };
}

/** Point reads of keys idx(i); expects every one present (or absent). */
async function reads(
  s: Store,
  label: string,
  count: number,
  idx: (i: number) => number,
  expectFound: boolean,
): Promise<Result> {
  const lat = new Samples();
  const key = new Uint8Array(16);
  let found = 0;
  progress.begin(label, count);
  const t0 = performance.now();
  if (s.getSync) {
    const get = s.getSync;
    for (let i = 0; i < count; i++) {
      keyFor(idx(i), key);
      if ((i & 15) === 0) {
        const a = performance.now();
        if (get(key)) found++;
        lat.add(performance.now() - a);
        if ((i & 16383) === 0) progress.tick(i);
      } else if (get(key)) found++;
    }
  } else {
    const get = s.get!;
    for (let i = 0; i < count; i++) {
      keyFor(idx(i), key);
      if ((i & 15) === 0) {
        const a = performance.now();
        if (await get(key)) found++;
        lat.add(performance.now() - a);
        if ((i & 16383) === 0) progress.tick(i);
      } else if (await get(key)) found++;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  progress.end();
  const [p50, p99] = lat.p50p99us();
  const want = expectFound ? count : 0;
  return {
    ops: count,
    secs,
    rate: count / secs,
    p50,
    p99,
    note: found === want ? undefined : `WRONG: found ${found} of ${count}`,
  };
}

async function mixed(s: Store, count: number, seed: number): Promise<Result> {
  const rnd = prng(seed);
  const lat = new Samples();
  const key = new Uint8Array(16);
  let found = 0, readsDone = 0, writes = 0;
  progress.begin("mixed", count);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const r = rnd();
    const k = Math.floor(rnd() * N);
    if (r < 0.1) {
      await s.put(present(k), values.next());
      writes++;
      continue;
    }
    readsDone++;
    keyFor(2 * k, key);
    const timed = (i & 15) === 0;
    const a = timed ? performance.now() : 0;
    const hit = s.getSync ? s.getSync(key) : await s.get!(key);
    if (timed) lat.add(performance.now() - a);
    if (hit) found++;
    if ((i & 16383) === 0) progress.tick(i);
  }
  const secs = (performance.now() - t0) / 1000;
  progress.end();
  const [p50, p99] = lat.p50p99us();
  return {
    ops: count,
    secs,
    rate: count / secs,
    p50,
    p99,
    note: found === readsDone
      ? `${writes} writes`
      : `WRONG: found ${found} of ${readsDone}`,
  };
}

async function scanAll(s: Store, expect: number): Promise<Result> {
  progress.begin("readseq", 0);
  const t0 = performance.now();
  const n = await s.scan();
  const secs = (performance.now() - t0) / 1000;
  progress.end();
  return {
    ops: n,
    secs,
    rate: n / secs,
    note: n === expect ? undefined : `WRONG: scanned ${n}, expected ${expect}`,
  };
}

async function durable(
  s: Store,
  writers: number,
  seconds: number,
  base: number,
): Promise<Result> {
  const label = `durable-${writers}`;
  progress.begin(label, 0);
  const syncs0 = s.syncs?.() ?? 0;
  let done = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const writer = async (w: number) => {
    for (let i = 0; performance.now() < deadline; i++) {
      await s.put(present(base + w * 10_000_000 + i), values.next());
      done++;
      if ((done & 255) === 0) progress.tick(done);
    }
  };
  await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
  const secs = (performance.now() - t0) / 1000;
  progress.end();
  const r: Result = { ops: done, secs, rate: done / secs };
  if (s.syncs) r.syncsPerWrite = (s.syncs() - syncs0) / done;
  return r;
}

/** One fdatasync per 116-byte append on the same disk: the floor group commit beats. */
async function rawFsync(dir: string, seconds: number): Promise<Result> {
  const f = await Deno.open(`${dir}/fsync.probe`, {
    create: true,
    write: true,
    append: true,
  });
  const rec = new Uint8Array(116).fill(7);
  let n = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  try {
    while (performance.now() < deadline) {
      await f.write(rec);
      await f.syncData();
      n++;
    }
  } finally {
    f.close();
  }
  const secs = (performance.now() - t0) / 1000;
  return { ops: n, secs, rate: n / secs, syncsPerWrite: 1 };
}

// ---------------------------------------------------------------- driver

async function runStore(
  def: StoreDef,
  root: string,
  out: Map<string, Result>,
  extra: Record<string, unknown>,
): Promise<void> {
  const want = (w: string) => workloads.includes(w);
  const fresh = async (name: string) => {
    const d = `${root}/${def.name}-${name}`;
    await Deno.mkdir(d, { recursive: true });
    return d;
  };
  const record = (w: string, r: Result) => {
    out.set(w, r);
    const lat = r.p50 !== undefined
      ? ` p50 ${fmtUs(r.p50)}us p99 ${fmtUs(r.p99!)}us`
      : "";
    const sp = r.syncsPerWrite !== undefined
      ? ` fsyncs/write ${r.syncsPerWrite.toFixed(3)}`
      : "";
    console.error(
      `${def.name.padEnd(8)} ${w.padEnd(15)} ${
        fmtRate(r.rate).padStart(8)
      } ops/s  (${fmtInt(r.ops)} in ${r.secs.toFixed(2)}s)${lat}${sp}${
        r.note ? "  " + r.note : ""
      }`,
    );
  };
  const attempt = async (w: string, fn: () => Promise<Result>) => {
    try {
      record(w, await fn());
    } catch (err) {
      progress.end();
      const msg = err instanceof Error ? err.message : String(err);
      out.set(w, { ops: 0, secs: 0, rate: NaN, error: msg });
      console.error(`${def.name.padEnd(8)} ${w.padEnd(15)} FAILED: ${msg}`);
    }
  };

  if (want("fillseq")) {
    const dir = await fresh("fillseq");
    const s = await def.open(dir, false);
    await attempt("fillseq", () => fill(s, "fillseq", (i) => i, N));
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }

  const main = [
    "fillrandom",
    "overwrite",
    "readrandom",
    "readmissing",
    "readseq",
    "mixed",
    "deleterandom",
  ];
  if (main.some(want)) {
    const dir = await fresh("main");
    const s = await def.open(dir, false);
    const p1 = permutation(N, SEED + 1);
    // Later phases need the keys present whether or not fillrandom is timed.
    await attempt("fillrandom", () => fill(s, "fillrandom", (i) => p1[i], N));
    if (!want("fillrandom")) out.delete("fillrandom");
    if (want("overwrite")) {
      const p2 = permutation(N, SEED + 2);
      await attempt("overwrite", () => fill(s, "overwrite", (i) => p2[i], N));
    }
    const rnd = prng(SEED + 3);
    const pick = () => Math.floor(rnd() * N);
    if (want("readrandom")) {
      await attempt(
        "readrandom",
        () => reads(s, "readrandom", READS, () => 2 * pick(), true),
      );
      if (def.name === "leveldb" && s.get) {
        // classic-level's promise API, for comparison with the sync one.
        const sAsync: Store = { ...s, getSync: undefined };
        const r = await reads(
          sAsync,
          "readrandom (await get)",
          Math.min(READS, 200_000),
          () => 2 * pick(),
          true,
        );
        extra["leveldb awaited get() readrandom"] = `${
          fmtRate(r.rate)
        } ops/s, p50 ${fmtUs(r.p50!)} us, p99 ${fmtUs(r.p99!)} us`;
      }
    }
    if (want("readmissing")) {
      await attempt(
        "readmissing",
        () => reads(s, "readmissing", READS, () => 2 * pick() + 1, false),
      );
    }
    if (want("readseq")) await attempt("readseq", () => scanAll(s, N));
    if (want("mixed")) {
      await attempt("mixed", () => mixed(s, READS, SEED + 4));
    }
    if (s.describe) {
      for (const [k, v] of Object.entries(s.describe())) {
        extra[`${def.name} after mixed: ${k}`] = v;
      }
    }
    if (want("deleterandom")) {
      const p3 = permutation(N, SEED + 5);
      await attempt("deleterandom", () => deleteAll(s, p3));
    }
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }

  if (want("fillrandom-put")) {
    const dir = await fresh("put");
    const s = await def.open(dir, false);
    const count = Math.max(1000, Math.floor(N / 10));
    await attempt(
      "fillrandom-put",
      () => putEach(s, "fillrandom-put", count, SEED + 6),
    );
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }

  if (want("durable-1") || want("durable-64")) {
    const dir = await fresh("durable");
    const s = await def.open(dir, true);
    if (want("durable-1")) {
      await attempt("durable-1", () => durable(s, 1, DURABLE_SECS, 0));
    }
    if (want("durable-64")) {
      await attempt(
        "durable-64",
        () => durable(s, 64, DURABLE_SECS, 1_000_000_000),
      );
    }
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const root = args.dir ?? await Deno.makeTempDir({ prefix: "shale-bench-" });
await Deno.mkdir(root, { recursive: true });
const machine = machineInfo(root);
const command = commandLine("bench/embedded.ts");
const results = new Map<string, Map<string, Result>>();
const unavailable = new Map<string, string>();
const extra: Record<string, unknown> = {};
const started = performance.now();
let baseline: Result | undefined;

console.error(
  `N=${fmtInt(N)} reads=${fmtInt(READS)} stores=${
    storeNames.join(",")
  } dir=${root}`,
);
try {
  if (workloads.some((w) => w.startsWith("durable"))) {
    const d = `${root}/fsync-probe`;
    await Deno.mkdir(d, { recursive: true });
    baseline = await rawFsync(d, DURABLE_SECS);
    console.error(
      `raw fdatasync per 116-byte append: ${fmtRate(baseline.rate)} /s`,
    );
  }
  for (const name of storeNames) {
    const def = STORES[name];
    const out = new Map<string, Result>();
    try {
      // Probe that the store opens at all (a missing addon, no --unstable-kv).
      const probeDir = `${root}/${name}-probe`;
      await Deno.mkdir(probeDir, { recursive: true });
      const p = await def.open(probeDir, false);
      await p.close();
      await Deno.remove(probeDir, { recursive: true });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      unavailable.set(name, msg.split("\n")[0]);
      console.error(`${name}: cannot run: ${msg}`);
      continue;
    }
    results.set(name, out);
    await runStore(def, root, out, extra);
  }
} finally {
  if (args.dir === undefined) {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}
const totalSecs = (performance.now() - started) / 1000;

// ---------------------------------------------------------------- report

const ran = [...results.keys()];
const peers = ran.filter((s) => s !== "shale");
const cell = (s: string, w: string) => {
  const r = results.get(s)?.get(w);
  if (!r) return "-";
  if (r.error) return "failed";
  return fmtInt(r.rate) + (r.note?.startsWith("WRONG") ? " (!)" : "");
};
const order = ALL_WORKLOADS.filter((w) => workloads.includes(w));

const throughput = mdTable(
  ["workload", ...ran.map((s) => `${s} ops/s`)],
  order.map((w) => [w, ...ran.map((s) => cell(s, w))]),
);
const ratios = results.has("shale") && peers.length > 0
  ? mdTable(
    ["workload", ...peers.map((p) => `shale / ${p}`)],
    order.map((w) => [
      w,
      ...peers.map((p) => {
        const a = results.get("shale")?.get(w)?.rate;
        const b = results.get(p)?.get(w)?.rate;
        return a && b && Number.isFinite(a) && Number.isFinite(b)
          ? `${(a / b).toFixed(2)}x`
          : "-";
      }),
    ]),
  )
  : "(needs shale and at least one peer)";
const latency = mdTable(
  ["workload", ...ran.flatMap((s) => [`${s} p50 us`, `${s} p99 us`])],
  order.filter((w) => READ_WORKLOADS.has(w)).map((w) => [
    w,
    ...ran.flatMap((s) => {
      const r = results.get(s)?.get(w);
      return r?.p50 === undefined ? ["-", "-"] : [fmtUs(r.p50), fmtUs(r.p99!)];
    }),
  ]),
);
const durableRows: string[][] = [];
if (baseline) {
  durableRows.push([
    "raw fdatasync per append (same disk)",
    "1",
    fmtInt(baseline.rate),
    "1.000",
    "1.00x",
  ]);
}
for (const s of ran) {
  for (const w of ["durable-1", "durable-64"]) {
    const r = results.get(s)?.get(w);
    if (!r) continue;
    durableRows.push([
      s,
      w === "durable-1" ? "1" : "64",
      r.error ? "failed" : fmtInt(r.rate),
      r.syncsPerWrite === undefined ? "n/a" : r.syncsPerWrite.toFixed(3),
      baseline && !r.error ? `${(r.rate / baseline.rate).toFixed(2)}x` : "-",
    ]);
  }
}
const durableTable = mdTable(
  ["store", "writers", "writes/s", "fsyncs per write", "vs raw fdatasync"],
  durableRows,
);
const notes: string[] = [];
for (const [s, m] of results) {
  for (const [w, r] of m) {
    if (r.error) notes.push(`- ${s} ${w} failed: ${r.error}`);
    else if (r.note?.startsWith("WRONG")) notes.push(`- ${s} ${w}: ${r.note}`);
  }
}
for (const [s, why] of unavailable) notes.push(`- ${s} could not run: ${why}`);
const kvPut = results.get("denokv")?.get("fillrandom-put")?.rate;
if (baseline && kvPut && kvPut < 3 * baseline.rate) {
  notes.push(
    `- denokv: its unbatched put rate (${
      fmtInt(kvPut)
    }/s) is close to the raw fdatasync rate (${
      fmtInt(baseline.rate)
    }/s): Deno KV appears to sync every commit, so it has no "sync off" mode and its fill rows are durable writes`,
  );
}
for (const [k, v] of Object.entries(extra)) notes.push(`- ${k}: ${v}`);

const loadEnd = (() => {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3)
      .join(" ");
  } catch {
    return "?";
  }
})();

const md = `# shale embedded benchmark results

Regenerated by \`deno task bench\` (bench/embedded.ts); do not edit by hand.

${machineMarkdown(machine, command)}
- Load average at end: ${loadEnd}; total run time ${totalSecs.toFixed(0)} s
- N = ${fmtInt(N)} keys (16-byte keys, 100-byte random values); ${
  fmtInt(READS)
} ops per read workload; write batches of ${BATCH} ops; durable phases run ${DURABLE_SECS} s each

The machine is shared (2 cores; other engineers' test suites were running at
the same time), so treat differences under ~20% as noise. Stores run one
after another in the same process, each through the whole sequence.

![ops/s per workload](results.svg)

## Throughput (ops/s, higher is better)

${throughput}

## shale's ratio to each peer (above 1 means shale is faster)

${ratios}

## Read latency per op (microseconds; every 16th op timed)

${latency}

## Durable writes (sync on every acknowledged write)

${durableTable}

Only shale exposes its fsync count (\`stats().ops.walSyncs\`); SQLite with
\`synchronous=FULL\` syncs once per commit, LevelDB syncs once per write group,
Deno KV's policy is internal.

## Workloads

${order.map((w) => `- ${WORKLOAD_TEXT[w]}`).join("\n")}

## Store setup

${ran.map((s) => `- ${s}: ${STORES[s].setup}`).join("\n")}

## Notes

${notes.length ? notes.join("\n") : "- none"}
`;

console.log(md);

if (!args["no-write"]) {
  await Deno.writeTextFile(args.results, md);
  const chartWorkloads = order;
  const svg = groupedBarSvg({
    title: "shale vs peers: ops/s per workload (higher is better)",
    subtitle: `N=${
      fmtInt(N)
    }, 16 B keys, 100 B values, ${machine.cpu}, ${machine.cores} cores, Deno ${machine.deno}, ${
      machine.date.slice(0, 10)
    }`,
    groups: chartWorkloads,
    series: ran,
    values: chartWorkloads.map((w) =>
      ran.map((s) => results.get(s)?.get(w)?.rate ?? NaN)
    ),
    yLabel: "ops/s",
  });
  await Deno.writeTextFile(args.svg, svg);
  console.error(`wrote ${args.results} and ${args.svg}`);
}
