/**
 * The compaction merge loop on its own (`runCompaction`, in this thread):
 * four L0-sized tables of random keys (32,000 entries each) merged with an
 * L1 of `--l1` keys in `--table-kib` tables (default 2 MiB; each L1 table
 * is one merge child before they are concatenated, one in all after), the
 * benchmark's 16-byte keys and 100-byte values, repeated `--rounds` times. Reports wall time and this
 * process's CPU time per input entry: on the shared machine the wall time
 * swings with other runs, the CPU time much less, so compare builds by it,
 * alternating.
 *
 * `--deletes F` writes that fraction of the L0 entries as tombstones, and
 * `--deeper T` gives the job T tables' key ranges in the level below,
 * covering the key space: each tombstone then asks whether a deeper level
 * may hold its key (deleterandom's compactions).
 *
 *     deno run -A bench/micro/compaction_merge.ts
 *     deno run -A bench/micro/compaction_merge.ts --l1 300000 --rounds 5
 *     deno run -A bench/micro/compaction_merge.ts --deletes 0.5 --deeper 300
 *     deno run -A bench/micro/compaction_merge.ts --l1 300000 --table-kib 512
 *
 * `--against DIR` also loads `runCompaction` from another checkout (a git
 * worktree of the base commit) and runs both builds on the same tables in
 * this one process, alternating round by round (A B B A ...): on the
 * shared machine that compares them far more steadily than two processes
 * run one after the other. It reports each build's median over all but its
 * first two rounds (warm-up) and their ratio.
 *
 *     deno run -A bench/micro/compaction_merge.ts --against ../base --rounds 40
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { runCompaction, tableMetaFrom } from "../../engine/compaction.ts";
import type { TableMeta } from "../../engine/manifest.ts";
import type { KeyRange } from "../../engine/deeper_ranges.ts";
import { KIND_DELETE, KIND_PUT } from "../../engine/entry.ts";
import { tablePath } from "../../engine/filename.ts";
import { realFs } from "../../engine/fs.ts";
import { TableWriter } from "../../engine/sstable/writer.ts";
import { median } from "../_measure.ts";
import { keyFor, prng, ValuePool } from "../_workload.ts";

const { values: args } = parseArgs({
  options: {
    l1: { type: "string", default: "100000" },
    rounds: { type: "string", default: "4" },
    deletes: { type: "string", default: "0" },
    deeper: { type: "string", default: "0" },
    "table-kib": { type: "string", default: "2048" },
    against: { type: "string" },
  },
});
const L1_KEYS = Number(args.l1);
const ROUNDS = Number(args.rounds);
const DELETES = Number(args.deletes);
const DEEPER = Number(args.deeper);
/** Target size of the L1 tables (and the outputs). */
const TABLE_BYTES = Number(args["table-kib"]) * 1024;
/** Key space the keys are drawn from (the embedded benchmark's N). */
const N = 1_000_000;

/** The builds to run, this checkout's first; alternated round by round. */
const builds: { name: string; run: typeof runCompaction }[] = [
  { name: "this", run: runCompaction },
];
if (args.against) {
  const url = new URL(
    "engine/compaction.ts",
    `file://${Deno.realPathSync(args.against)}/`,
  );
  const other = await import(url.href) as {
    runCompaction: typeof runCompaction;
  };
  builds.push({ name: "against", run: other.runCompaction });
}

const fs = realFs;
const dir = await Deno.makeTempDir({ prefix: "shale-merge-" });
const rnd = prng(7);
const values = new ValuePool(7);
let seq = 1;
let fileNumber = 1;

/**
 * Writes `keys` (sorted here) as tables of up to `target` bytes, a
 * `deletes` fraction of them tombstones; returns their numbers.
 */
async function tables(
  keys: number[],
  target: number,
  level: number,
  deletes = 0,
): Promise<TableMeta[]> {
  keys.sort((a, b) => a - b);
  const out: TableMeta[] = [];
  let w: TableWriter | undefined;
  for (const k of keys) {
    if (!w) {
      w = TableWriter.create(fs, dir, fileNumber++, {});
    }
    const tomb = deletes > 0 && rnd() < deletes;
    w.add({
      key: keyFor(2 * k),
      seq: seq++,
      kind: tomb ? KIND_DELETE : KIND_PUT,
      encoding: 0,
      expiresAt: 0,
      value: tomb ? new Uint8Array(0) : values.next(),
    });
    if (w.estimatedSize >= target) {
      out.push(tableMetaFrom(await w.finish(), level));
      w = undefined;
    }
  }
  if (w) out.push(tableMetaFrom(await w.finish(), level));
  return out;
}

function distinct(count: number): number[] {
  const s = new Set<number>();
  while (s.size < count) s.add(Math.floor(rnd() * N));
  return [...s];
}

/**
 * `count` key ranges splitting the key space, as the tables of a level
 * below the output would (odd keys bound them, so no merged key is a bound).
 */
function deeperLevel(count: number): KeyRange[] {
  const out: KeyRange[] = [];
  for (let i = 0; i < count; i++) {
    const lo = Math.floor(i * N / count);
    const hi = Math.floor((i + 1) * N / count) - 1;
    out.push({ smallest: keyFor(2 * lo + 1), largest: keyFor(2 * hi + 1) });
  }
  return out;
}

try {
  const deeper = DEEPER > 0 ? [deeperLevel(DEEPER)] : [];
  const l1 = await tables(distinct(L1_KEYS), TABLE_BYTES, 1);
  // Newest first, as the scheduler lists a compaction's inputs.
  const l0: TableMeta[] = [];
  for (let t = 0; t < 4; t++) {
    l0.unshift(...await tables(distinct(32000), Infinity, 0, DELETES));
  }
  const inputTables = [...l0, ...l1];
  const cpu: number[][] = builds.map(() => []);
  for (let i = 0; i < ROUNDS * builds.length; i++) {
    const round = Math.floor(i / builds.length);
    // A B B A: each build runs first as often as second.
    const b = builds.length === 1 ? 0 : (i ^ (round & 1)) & 1;
    const outputNumbers = Array.from({ length: 200 }, () => fileNumber++);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const r = await builds[b].run(fs, {
      type: "compact",
      dir,
      blockSize: 4096,
      bloomBitsPerKey: 10,
      compression: "none",
      tableTargetBytes: TABLE_BYTES,
      bytesPerSecond: 0,
      inputs: inputTables.map((t) => t.fileNumber),
      inputTables,
      outputLevel: 1,
      outputNumbers,
      smallestSnapshot: Number.MAX_SAFE_INTEGER,
      now: Date.now(),
      deeper,
      map: true,
    });
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const cpuUs = (c.user + c.system) / r.entriesIn;
    cpu[b].push(cpuUs);
    console.log(
      `${
        builds.length > 1 ? builds[b].name + " " : ""
      }round ${round}: ${r.entriesIn} entries, ${
        (r.bytesRead / 1048576).toFixed(1)
      } MiB in ${ms.toFixed(0)} ms (${
        (r.bytesRead / 1048576 / (ms / 1000)).toFixed(1)
      } MiB/s), CPU ${cpuUs.toFixed(2)} us per entry, ${r.dropped} dropped`,
    );
    for (const o of r.outputs) fs.remove(tablePath(dir, o.fileNumber));
  }
  if (builds.length === 1) {
    console.log(`median CPU per entry: ${median(cpu[0]).toFixed(2)} us`);
  } else {
    const [a, b] = cpu.map((c) => median(c.slice(c.length > 2 ? 2 : 0)));
    console.log(
      `median CPU per entry: this ${a.toFixed(3)} us, against ${
        b.toFixed(3)
      } us, this/against ${(a / b).toFixed(3)}`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
