/**
 * What block compression costs and saves: the same fill and the same random
 * reads with `compression: "none"` and `"zstd"`, on the benchmark data
 * (db_bench's 16-byte keys and 100-byte random values, which do not
 * compress) and on JSON documents (which do). Codecs alternate within each
 * round, so both see the same machine load; medians over the rounds.
 *
 *     deno run -A bench/compression.ts                   # 200k keys, 3 rounds
 *     deno run -A bench/compression.ts --n 100000 --rounds 1 --no-write
 *
 * Writes bench/RESULTS_COMPRESSION.md unless --no-write.
 *
 * @module
 */
import { benchArgs } from "./_args.ts";
import { type Db, open } from "../mod.ts";
import type { Compression } from "../engine/sstable/codec.ts";
import {
  commandLine,
  fmtInt,
  fmtRate,
  loadAverage,
  machineInfo,
  machineMarkdown,
  mdTable,
} from "./_report.ts";
import { median } from "./_measure.ts";
import { keyFor, permutation, prng, ValuePool } from "./_workload.ts";

const args = benchArgs({
  results: "bench/RESULTS_COMPRESSION.md",
  strings: { n: "200000", rounds: "3", reads: "200000" },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
const READS = Number(args.reads);
if (!(N > 0 && ROUNDS > 0 && READS > 0)) {
  throw new RangeError("--n, --rounds and --reads must be positive");
}

const CODECS: Compression[] = ["none", "zstd"];
/** Block cache of the second read phase: a small fraction of the data. */
const SMALL_CACHE = 4 << 20;

/** A dataset: the value written for key i. */
interface Dataset {
  name: string;
  describe: string;
  value(i: number): Uint8Array;
}

const pool = new ValuePool(7);
const enc = new TextEncoder();
const WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];

const DATASETS: Dataset[] = [
  {
    name: "benchmark data",
    describe: "100 B random values (bench/_workload.ts)",
    value: () => pool.next(),
  },
  {
    name: "JSON documents",
    describe: "JSON objects of 150-200 B: ids, names, tags, flags",
    value: (i) => {
      const r = prng(i + 1);
      return enc.encode(JSON.stringify({
        id: i,
        user: `user-${Math.floor(r() * 5000)}`,
        email: `user${Math.floor(r() * 5000)}@example.com`,
        tags: [WORDS[Math.floor(r() * 6)], WORDS[Math.floor(r() * 6)]],
        score: Math.floor(r() * 1000),
        active: r() < 0.5,
        created: 1_700_000_000_000 + Math.floor(r() * 1e9),
      }));
    },
  },
];

interface Run {
  /** Entries/s of the batch loop (what a writer waits for). */
  fill: number;
  /** Entries/s until flushed and compacted to idle (background work included). */
  settle: number;
  /** Bytes of table files once idle. */
  tableBytes: number;
  /** Random gets/s, every key present. */
  read: number;
  /** The same after reopening with a block cache far smaller than the data. */
  readSmallCache: number;
}

function tableBytes(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) {
    if (e.name.endsWith(".sst")) n += Deno.statSync(`${dir}/${e.name}`).size;
  }
  return n;
}

async function runOnce(ds: Dataset, compression: Compression): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "shale-compression-" });
  try {
    const db = await open(dir, { sync: "none", compression });
    const order = permutation(N, 42);
    const t0 = performance.now();
    for (let i = 0; i < N; i += 1000) {
      const ops = [];
      for (let j = i; j < Math.min(N, i + 1000); j++) {
        ops.push({
          type: "put" as const,
          key: keyFor(order[j]),
          value: ds.value(order[j]),
        });
      }
      await db.batch(ops);
    }
    const t1 = performance.now();
    await db.flush();
    await db.compactUntilIdle();
    const t2 = performance.now();
    const bytes = tableBytes(dir);
    const reads = permutation(N, 7);
    const keys = Array.from(
      { length: Math.min(READS, N) },
      (_, i) => keyFor(reads[i]),
    );
    const readAll = (d: Db): number => {
      const t = performance.now();
      for (let r = 0; r < READS; r++) {
        if (d.get(keys[r % keys.length]) === undefined) {
          throw new Error(`key ${reads[r % keys.length]} missing`);
        }
      }
      return READS / ((performance.now() - t) / 1000);
    };
    const read = readAll(db);
    await db.close();
    const small = await open(dir, {
      sync: "none",
      compression,
      blockCacheBytes: SMALL_CACHE,
    });
    const readSmallCache = readAll(small);
    await small.close();
    return {
      fill: N / ((t1 - t0) / 1000),
      settle: N / ((t2 - t0) / 1000),
      tableBytes: bytes,
      read,
      readSmallCache,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const info = machineInfo(Deno.cwd());
const results = new Map<string, Run[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const ds of DATASETS) {
    // Alternate which codec goes first, so neither always meets a warmer
    // page cache or a quieter machine.
    const order = round % 2 === 0 ? CODECS : [...CODECS].reverse();
    for (const c of order) {
      const run = await runOnce(ds, c);
      const key = `${ds.name}/${c}`;
      results.set(key, [...(results.get(key) ?? []), run]);
      console.error(
        `round ${round + 1} ${key}: fill ${fmtRate(run.fill)}/s, settle ${
          fmtRate(run.settle)
        }/s, ${fmtInt(run.tableBytes)} B, read ${fmtRate(run.read)}/s, ${
          fmtRate(run.readSmallCache)
        }/s with a small cache`,
      );
    }
  }
}
const loadEnd = loadAverage();

const med = (ds: Dataset, c: Compression, f: (r: Run) => number) =>
  median(results.get(`${ds.name}/${c}`)!.map(f));
const rows: string[][] = [];
for (const ds of DATASETS) {
  for (const c of CODECS) {
    rows.push([
      ds.name,
      c,
      fmtInt(med(ds, c, (r) => r.tableBytes)),
      fmtRate(med(ds, c, (r) => r.fill)),
      fmtRate(med(ds, c, (r) => r.settle)),
      fmtRate(med(ds, c, (r) => r.read)),
      fmtRate(med(ds, c, (r) => r.readSmallCache)),
    ]);
  }
  const ratio = (f: (r: Run) => number) =>
    `${(med(ds, "zstd", f) / med(ds, "none", f)).toFixed(2)}x`;
  rows.push([
    ds.name,
    "**zstd / none**",
    ratio((r) => r.tableBytes),
    ratio((r) => r.fill),
    ratio((r) => r.settle),
    ratio((r) => r.read),
    ratio((r) => r.readSmallCache),
  ]);
}
const table = mdTable(
  [
    "data",
    "compression",
    "table bytes",
    "fill (entries/s)",
    "fill + flush + compaction (entries/s)",
    "random get (/s)",
    "random get, 4 MiB cache, after reopen (/s)",
  ],
  rows,
);
const report = `# shale: block compression, none vs zstd

Regenerated by \`bench/compression.ts\`; do not edit by hand.

${machineMarkdown(info, commandLine("bench/compression.ts"))}
- Load average at the end: ${loadEnd}
- ${fmtInt(N)} keys of 16 B written in random order in batches of 1000
  (\`sync: "none"\`, default options otherwise: 4 KiB blocks, the read mode
  "auto" picks), then flushed and compacted until idle; then ${
  fmtInt(READS)
} \`get()\`s of present keys in random order, and the same again after
  reopening with a 4 MiB block cache (far smaller than the data: most gets of
  a compressed table inflate a block). Medians of ${ROUNDS} rounds; the two
  codecs alternate within each round.
- Data: ${DATASETS.map((d) => `${d.name}: ${d.describe}`).join("; ")}.

${table}
`;
console.log(report);
if (!args["no-write"]) {
  Deno.writeTextFileSync(args.results, report);
}
