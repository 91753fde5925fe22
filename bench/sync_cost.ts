/**
 * What a durable commit costs the machine besides its wait: the CPU time of
 * this process (user + system, every thread) per write + fdatasync, where
 * shale writes its WAL (into zeros written and synced beforehand: the
 * preallocated segment, engine/FORMAT.md) and at the end of a growing file.
 * The HTTP benchmark's PUT target is a share of a handler that syncs
 * nothing; this is the part of each write group that no engine code
 * removes, paid on the core the server runs on. Prints only.
 *
 *     taskset -c 0 deno run -A bench/sync_cost.ts --n 3000 --bytes 3300
 *
 * `--bytes` is one write group's WAL bytes (3300: about 22 PUTs of 100 B,
 * the group size shale forms at 64 connections). The fdatasync goes through
 * `FsFile.syncData()`, awaited, as the commit loop does.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { processCpuSeconds } from "./_servers.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "3000" },
    bytes: { type: "string", default: "3300" },
    dir: { type: "string", default: "" },
  },
});
const N = Number(args.n);
const BYTES = Number(args.bytes);

interface Cost {
  /** Median wall time of one write + fdatasync, µs. */
  wallUs: number;
  /** Process CPU time per write + fdatasync, µs. */
  cpuUs: number;
}

/** `N` writes of `BYTES` + fdatasync into `path`, zero-filled first or not. */
async function measure(path: string, zeroed: boolean): Promise<Cost> {
  const f = await Deno.open(path, {
    create: true,
    write: true,
    truncate: true,
  });
  try {
    if (zeroed) {
      f.writeSync(new Uint8Array(N * BYTES));
      await f.syncData();
      f.seekSync(0, Deno.SeekMode.Start);
    }
    const buf = new Uint8Array(BYTES).fill(0x5a);
    const walls: number[] = [];
    const cpu0 = processCpuSeconds(Deno.pid);
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      f.writeSync(buf);
      await f.syncData();
      walls.push(performance.now() - t0);
    }
    const cpu = processCpuSeconds(Deno.pid) - cpu0;
    walls.sort((a, b) => a - b);
    return { wallUs: walls[N >> 1] * 1000, cpuUs: (cpu / N) * 1e6 };
  } finally {
    f.close();
  }
}

const dir = args.dir || await Deno.makeTempDir({ prefix: "shale-sync-" });
try {
  for (const zeroed of [true, false]) {
    const c = await measure(`${dir}/sync.bin`, zeroed);
    console.log(
      `${
        zeroed ? "into synced zeros" : "growing file     "
      }: ${BYTES} B + fdatasync: wall ${c.wallUs.toFixed(0)} µs (median), CPU ${
        c.cpuUs.toFixed(0)
      } µs per sync (${N} syncs)`,
    );
  }
} finally {
  if (!args.dir) await Deno.remove(dir, { recursive: true });
}
