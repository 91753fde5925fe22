/**
 * The embedded benchmark's workloads (db_bench's, plus durable writes),
 * run against any {@link Store}, and {@link runStore}, which runs the
 * chosen ones on one store in their fixed order.
 *
 * @module
 */
import { Progress, Samples } from "./_measure.ts";
import { fmtInt, fmtRate, fmtUs } from "./_report.ts";
import type { Op, Store, StoreDef } from "./_stores.ts";
import { keyFor, permutation, prng, ValuePool } from "./_workload.ts";

/** Ops per write batch for fills, overwrite and deleterandom (db_bench's -batch_size). */
export const BATCH = 1000;

/** Every workload, in run and report order. */
export const ALL_WORKLOADS = [
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
/** One line per workload for the results file. */
export const WORKLOAD_TEXT: Record<string, string> = {
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
/** Workloads whose latency is sampled. */
export const READ_WORKLOADS = new Set(["readrandom", "readmissing", "mixed"]);

/** One workload's measurement. */
export interface Result {
  ops: number;
  secs: number;
  rate: number;
  p50?: number;
  p99?: number;
  note?: string;
  error?: string;
  syncsPerWrite?: number;
}

/** What a run is asked to do. */
export interface RunConfig {
  /** Keys in the store (N). */
  n: number;
  /** Point reads per read workload. */
  reads: number;
  seed: number;
  /** Length of each durable workload. */
  durableSecs: number;
  /** The workloads to run (names from ALL_WORKLOADS). */
  workloads: string[];
  progress: Progress;
}

/** The workload functions over one run's keys and values. */
function workloadsFor(cfg: RunConfig) {
  const { progress } = cfg;
  const N = cfg.n;
  const values = new ValuePool(cfg.seed);
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
      note: n === expect
        ? undefined
        : `WRONG: scanned ${n}, expected ${expect}`,
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

  return { fill, deleteAll, putEach, reads, mixed, scanAll, durable };
}

/**
 * One fdatasync per 116-byte write (synchronous, as shale's WAL appends)
 * on the same disk: the floor group commit beats. `preallocated`: the writes go into zeros written and synced before
 * (wrapping around in them), as shale's WAL does, so no fdatasync has a
 * block allocation or a file size to record; otherwise each appends to a
 * growing file, as LevelDB's log and SQLite's WAL do.
 */
export async function rawFsync(
  dir: string,
  seconds: number,
  preallocated = false,
): Promise<Result> {
  const space = 16 << 20;
  const path = `${dir}/fsync-${preallocated ? "zeroed" : "append"}.probe`;
  const f = await Deno.open(path, {
    create: true,
    write: true,
    truncate: true,
  });
  const rec = new Uint8Array(116).fill(7);
  if (preallocated) {
    await f.write(new Uint8Array(space));
    await f.syncData();
    await f.seek(0, Deno.SeekMode.Start);
  }
  let n = 0;
  let pos = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  try {
    while (performance.now() < deadline) {
      if (preallocated && pos + rec.length > space) {
        await f.seek(0, Deno.SeekMode.Start);
        pos = 0;
      }
      f.writeSync(rec);
      pos += rec.length;
      await f.syncData();
      n++;
    }
  } finally {
    f.close();
  }
  const secs = (performance.now() - t0) / 1000;
  return { ops: n, secs, rate: n / secs, syncsPerWrite: 1 };
}

/**
 * Runs the configured workloads on store `def` under `root`, each phase in
 * a fresh directory; results go to `out`, store details to `extra`.
 */
export async function runStore(
  def: StoreDef,
  root: string,
  out: Map<string, Result>,
  extra: Record<string, unknown>,
  cfg: RunConfig,
): Promise<void> {
  const { fill, deleteAll, putEach, reads, mixed, scanAll, durable } =
    workloadsFor(cfg);
  const { progress, workloads } = cfg;
  const N = cfg.n;
  const READS = cfg.reads;
  const SEED = cfg.seed;
  const DURABLE_SECS = cfg.durableSecs;
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
  const attempt = async (w: string, fn: () => Promise<Result>, s?: Store) => {
    const before = s?.counters?.();
    try {
      record(w, await fn());
      if (s?.counters && before) {
        // What the write held back for, and what the background did meanwhile.
        const after = s.counters();
        const delta = Object.entries(after).map(([k, v]) => {
          const d = v - (before[k] ?? 0);
          return `${k} ${Number.isInteger(d) ? d : d.toFixed(0)}`;
        }).join(", ");
        extra[`${def.name} ${w}`] = delta;
        console.error(`${def.name.padEnd(8)} ${w.padEnd(15)} ${delta}`);
      }
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
    await attempt("fillseq", () => fill(s, "fillseq", (i) => i, N), s);
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
    await attempt(
      "fillrandom",
      () => fill(s, "fillrandom", (i) => p1[i], N),
      s,
    );
    if (!want("fillrandom")) out.delete("fillrandom");
    if (want("overwrite")) {
      const p2 = permutation(N, SEED + 2);
      await attempt(
        "overwrite",
        () => fill(s, "overwrite", (i) => p2[i], N),
        s,
      );
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
      await attempt("deleterandom", () => deleteAll(s, p3), s);
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
