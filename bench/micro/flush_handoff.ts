/**
 * What handing a frozen memtable to the flush worker costs the main thread:
 * `Memtable.image()` (copies of the node pool and the key/value buffers),
 * then posting it to a worker by transferring those copies (what
 * engine/scheduler.ts does), against posting the same bytes by structured
 * clone (the copy made inside postMessage instead). The two alternate, each
 * on 8 MiB memtables filled through the write path's encoding (batches in
 * an arena, as `encodeBatchOps` makes them).
 *
 *     deno run -A bench/micro/flush_handoff.ts            # batches of 1000
 *     deno run -A bench/micro/flush_handoff.ts --batch 10 --rounds 80
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Memtable } from "../../engine/memtable.ts";
import { median } from "../_measure.ts";
import { filledMemtable } from "./_data.ts";

const { values: args } = parseArgs({
  options: {
    batch: { type: "string", default: "1000" },
    rounds: { type: "string", default: "40" },
  },
});
const BATCH = Number(args.batch);
const ROUNDS = Number(args.rounds);

/** A memtable filled to 8 MiB (its own byte count) by random-key batches. */
function filled(seed: number): Memtable {
  return filledMemtable(seed, {
    bytes: 8 << 20,
    batch: BATCH,
    keyOf: (i) => 2 * i,
  });
}

const worker = new Worker(
  "data:text/javascript,self.onmessage = () => self.postMessage(0)",
  { type: "module" },
);
const mems = [filled(1), filled(2), filled(3)];
const ms: Record<string, number[]> = { image: [], transfer: [], clone: [] };
for (let r = 0; r < ROUNDS; r++) {
  const mem = mems[r % mems.length];
  if (r % 2 === 0) {
    let t = performance.now();
    const img = mem.image();
    ms.image.push(performance.now() - t);
    t = performance.now();
    worker.postMessage(img, [img.pool, ...img.bufs]);
    ms.transfer.push(performance.now() - t);
  } else {
    // The same bytes cloned (posting the memtable's own buffers would
    // copy as much, once, inside postMessage).
    const img = mem.image();
    const t = performance.now();
    worker.postMessage(img);
    ms.clone.push(performance.now() - t);
  }
  await new Promise((resolve) => worker.onmessage = resolve);
  await new Promise((resolve) => setTimeout(resolve, 10));
}
worker.terminate();
const img = mems[0].image();
const bufBytes = img.bufs.reduce((n, b) => n + b.byteLength, 0);
console.log(
  `8 MiB memtable, batches of ${BATCH}: ${mems[0].count} entries, ` +
    `${img.bufs.length} buffers (${(bufBytes / 1e6).toFixed(1)} MB), ` +
    `pool ${(img.pool.byteLength / 1e6).toFixed(1)} MB`,
);
for (const [k, v] of Object.entries(ms)) {
  v.sort((a, b) => a - b);
  console.log(
    `${k.padEnd(9)} median ${median(v).toFixed(2)} ms, max ${
      v[v.length - 1].toFixed(2)
    } ms (${v.length} runs)`,
  );
}
