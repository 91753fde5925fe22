/**
 * CPU the flush worker spends per entry: `runFlush` (engine/jobs.ts) on the
 * image of a full 16 MiB memtable of the embedded benchmark's entries
 * (16-byte keys, 100-byte values, random order, batches of 1000), timed by
 * process CPU (user + system) and divided by the entries written. fsyncs
 * are skipped (they cost the disk, not the worker's CPU); the file is
 * written to a temporary directory and removed after each round.
 *
 *     deno run -A bench/micro/flush_cpu.ts              # 8 rounds
 *     deno run -A bench/micro/flush_cpu.ts --rounds 20
 *     deno run -A bench/micro/flush_cpu.ts --base ../main-checkout
 *
 * `--base DIR` also loads DIR/engine/jobs.ts (another checkout, whose
 * memtable image has the same layout) and alternates the two `runFlush`es
 * round by round in this process, so that both see the same machine load
 * (it is shared: single numbers mislead); it prints both medians and their
 * ratio. The process's own checkout comes out ahead of the loaded one by
 * 1-10% even when the code is identical (measured A/A), so run it both
 * ways (from each checkout, `--base` the other) and take the geometric
 * mean of "this / base" and "1 / (base / this)".
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import {
  type FileSystem,
  type OpenWritableOptions,
  realFs,
  type WritableFile,
} from "../../engine/fs.ts";
import { runFlush } from "../../engine/jobs.ts";
import { Memtable } from "../../engine/memtable.ts";
import { median } from "../_measure.ts";
import { filledMemtable } from "./_data.ts";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "8" },
    base: { type: "string" },
  },
});
const ROUNDS = Number(args.rounds);
type Flush = typeof runFlush;
const flushes: [string, Flush][] = [["this", runFlush]];
if (args.base !== undefined) {
  const url = new URL(`${args.base}/engine/jobs.ts`, `file://${Deno.cwd()}/`);
  flushes.push(["base", (await import(url.href)).runFlush as Flush]);
}

/** A memtable filled to 16 MiB (its own byte count) by random-key batches. */
function filled(seed: number): Memtable {
  return filledMemtable(seed, { bytes: 16 << 20, batch: 1000 });
}

// The real file system minus the syncs.
const fs: FileSystem = Object.assign(Object.create(realFs), {
  openWritable(path: string, opts?: OpenWritableOptions): WritableFile {
    const f = realFs.openWritable(path, opts);
    return {
      path: f.path,
      get size() {
        return f.size;
      },
      append: (d: Uint8Array) => f.append(d),
      sync: () => Promise.resolve(),
      truncate: (n: number) => f.truncate(n),
      close: () => f.close(),
    };
  },
  syncDir: () => Promise.resolve(),
});

const dir = Deno.makeTempDirSync({ prefix: "shale-flush-cpu-" });
const mem = filled(1);
const usPerEntry: number[][] = flushes.map(() => []);
const pairs: [number, number][] = [];
let file = 0;
try {
  for (let r = 0; r < ROUNDS + 1; r++) {
    for (let i = 0; i < flushes.length; i++) {
      // Alternate which goes first, so neither always runs after the other.
      const k = (i + r) % flushes.length;
      const image = mem.image();
      const t = process.cpuUsage();
      const res = await flushes[k][1](fs, {
        type: "flush",
        image,
        fileNumber: ++file,
        dir,
        blockSize: 4096,
        bloomBitsPerKey: 10,
        compression: "none",
      });
      const d = process.cpuUsage(t);
      // Round 0 warms the JIT up.
      if (r > 0) usPerEntry[k].push((d.user + d.system) / res.table!.entries);
      Deno.removeSync(`${dir}/${String(file).padStart(6, "0")}.sst`);
    }
    if (r > 0 && flushes.length > 1) {
      pairs.push([usPerEntry[0][r - 1], usPerEntry[1][r - 1]]);
    }
  }
} finally {
  Deno.removeSync(dir, { recursive: true });
}
console.log(
  `flush of ${mem.count} entries (16 MiB memtable), ${ROUNDS} rounds:`,
);
for (let k = 0; k < flushes.length; k++) {
  const xs = usPerEntry[k].sort((a, b) => a - b);
  console.log(
    `  ${flushes[k][0]}: median ${median(xs).toFixed(3)} us CPU/entry, ` +
      `min ${xs[0].toFixed(3)}, max ${xs[xs.length - 1].toFixed(3)}`,
  );
}
if (flushes.length > 1) {
  // Paired by round too: each round ran both under about the same load.
  const paired = pairs.map(([a, b]) => a / b).sort((a, b) => a - b);
  console.log(
    `  this / base: ${
      (median(usPerEntry[0]) / median(usPerEntry[1])).toFixed(3)
    } (median of per-round ratios ${median(paired).toFixed(3)})`,
  );
}
