/**
 * The main thread's CPU per write in the embedded benchmark's batched
 * write workloads (fillrandom, overwrite, deleterandom: 16-byte keys,
 * 100-byte values, batches of 1000, sync "none"), through `mod.ts`. On the
 * shared machine wall time swings with the other runs and with how much
 * CPU the flush and compaction workers get; the main thread's own CPU time
 * per op (from /proc, user + system) moves much less, and it is what the
 * write path costs.
 *
 *     deno run -A bench/micro/write_cpu.ts                  # 1M keys
 *     deno run -A bench/micro/write_cpu.ts --root ../base   # another checkout
 *
 * `--root DIR` opens the store of DIR/mod.ts, so one driver measures two
 * checkouts; run them alternately and compare medians. Keys are made per
 * op, as bench/embedded.ts makes them (fresh, so in cache: views into one
 * large array of premade keys put a cache miss into the store's first look
 * at each key); the same loop without the store is timed first, and
 * "store" is the difference.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { threadCpuSeconds } from "../_measure.ts";
import { keyFor, permutation } from "../_common.ts";
import { ValuePool } from "../_workload.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "1000000" },
    root: { type: "string", default: new URL("../..", import.meta.url).href },
  },
});
const N = Number(args.n);
const BATCH = 1000;
const root = args.root!.includes("://")
  ? args.root!
  : `file://${Deno.realPathSync(args.root!)}/`;
const { open } = await import(new URL("mod.ts", root).href);

/** Main-thread CPU seconds so far (the thread whose id is the pid). */
function mainCpu(): number {
  return threadCpuSeconds(Deno.pid).get(Deno.pid)?.seconds ?? NaN;
}

const values = new ValuePool(1);

/** Batch i.. of `order`'s keys (puts or deletes), as the benchmark's. */
function opsAt(order: Uint32Array, i: number, put: boolean) {
  const ops = [];
  for (let j = i; j < Math.min(N, i + BATCH); j++) {
    const key = keyFor(2 * order[j]);
    ops.push(
      put
        ? { type: "put" as const, key, value: values.next() }
        : { type: "delete" as const, key },
    );
  }
  return ops;
}

const dir = await Deno.makeTempDir({ prefix: "shale_write_cpu_" });
try {
  const db = await open(dir, { sync: "none" });
  const runs: [string, Uint32Array, boolean][] = [
    ["fillrandom", permutation(N, 11), true],
    ["overwrite", permutation(N, 12), true],
    ["deleterandom", permutation(N, 13), false],
  ];
  for (const [name, order, put] of runs) {
    const d0 = mainCpu();
    let sink = 0;
    for (let i = 0; i < N; i += BATCH) sink += opsAt(order, i, put).length;
    const driver = mainCpu() - d0;
    if (sink !== N) throw new Error("lost ops");
    const c0 = mainCpu();
    const t0 = performance.now();
    for (let i = 0; i < N; i += BATCH) await db.batch(opsAt(order, i, put));
    const secs = (performance.now() - t0) / 1000;
    const cpu = mainCpu() - c0;
    const us = (s: number) => (s * 1e6 / N).toFixed(2);
    console.log(
      `${name.padEnd(13)} ${(N / secs / 1000).toFixed(1).padStart(7)}k ops/s` +
        `  main thread CPU us/op: store ${us(cpu - driver)}` +
        ` (total ${us(cpu)}, driver ${us(driver)})`,
    );
  }
  await db.close();
} finally {
  await Deno.remove(dir, { recursive: true });
}
