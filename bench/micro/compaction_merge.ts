/**
 * The compaction merge loop on its own (`runCompaction`, in this thread):
 * four L0-sized tables of random keys (32,000 entries each) merged with an
 * L1 of `--l1` keys in 2 MiB tables, the benchmark's 16-byte keys and
 * 100-byte values, repeated `--rounds` times. Reports wall time and this
 * process's CPU time per input entry: on the shared machine the wall time
 * swings with other runs, the CPU time much less, so compare builds by it,
 * alternating.
 *
 *     deno run -A bench/micro/compaction_merge.ts
 *     deno run -A bench/micro/compaction_merge.ts --l1 300000 --rounds 5
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { runCompaction } from "../../engine/compaction.ts";
import { KIND_PUT } from "../../engine/entry.ts";
import { tablePath } from "../../engine/filename.ts";
import { realFs } from "../../engine/fs.ts";
import { TableWriter } from "../../engine/sstable/writer.ts";
import { median } from "../_measure.ts";
import { keyFor, prng, ValuePool } from "../_workload.ts";

const { values: args } = parseArgs({
  options: {
    l1: { type: "string", default: "100000" },
    rounds: { type: "string", default: "4" },
  },
});
const L1_KEYS = Number(args.l1);
const ROUNDS = Number(args.rounds);
/** Key space the keys are drawn from (the embedded benchmark's N). */
const N = 1_000_000;

const fs = realFs;
const dir = await Deno.makeTempDir({ prefix: "shale-merge-" });
const rnd = prng(7);
const values = new ValuePool(7);
let seq = 1;
let fileNumber = 1;

/** Writes `keys` (sorted here) as tables of up to `target` bytes; returns their numbers. */
async function tables(keys: number[], target: number): Promise<number[]> {
  keys.sort((a, b) => a - b);
  const out: number[] = [];
  let w: TableWriter | undefined;
  for (const k of keys) {
    if (!w) {
      w = TableWriter.create(fs, dir, fileNumber, {});
      out.push(fileNumber++);
    }
    w.add({
      key: keyFor(2 * k),
      seq: seq++,
      kind: KIND_PUT,
      encoding: 0,
      expiresAt: 0,
      value: values.next(),
    });
    if (w.estimatedSize >= target) {
      await w.finish();
      w = undefined;
    }
  }
  if (w) await w.finish();
  return out;
}

function distinct(count: number): number[] {
  const s = new Set<number>();
  while (s.size < count) s.add(Math.floor(rnd() * N));
  return [...s];
}

try {
  const l1 = await tables(distinct(L1_KEYS), 2 << 20);
  // Newest first, as the scheduler lists a compaction's inputs.
  const l0: number[] = [];
  for (let t = 0; t < 4; t++) {
    l0.unshift(...await tables(distinct(32000), Infinity));
  }
  const cpu: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const outputNumbers = Array.from({ length: 200 }, () => fileNumber++);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const r = await runCompaction(fs, {
      type: "compact",
      dir,
      blockSize: 4096,
      bloomBitsPerKey: 10,
      compression: "none",
      tableTargetBytes: 2 << 20,
      bytesPerSecond: 0,
      inputs: [...l0, ...l1],
      outputLevel: 1,
      outputNumbers,
      smallestSnapshot: Number.MAX_SAFE_INTEGER,
      now: Date.now(),
      deeper: [],
      map: true,
    });
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const cpuUs = (c.user + c.system) / r.entriesIn;
    cpu.push(cpuUs);
    console.log(
      `round ${round}: ${r.entriesIn} entries, ${
        (r.bytesRead / 1048576).toFixed(1)
      } MiB in ${ms.toFixed(0)} ms (${
        (r.bytesRead / 1048576 / (ms / 1000)).toFixed(1)
      } MiB/s), CPU ${cpuUs.toFixed(2)} us per entry`,
    );
    for (const o of r.outputs) fs.remove(tablePath(dir, o.fileNumber));
  }
  console.log(`median CPU per entry: ${median(cpu).toFixed(2)} us`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
