/**
 * Memory cost of one maximum-size `/kv/batch`: starts `shale serve` with
 * `--max-batch-size SIZE` (default 8MiB; pass 64MiB for the old default),
 * sends one batch that fills the limit (ops of 1 MiB random values, base64),
 * and prints the server's resident set before the request,
 * after it, and its peak (VmRSS / VmHWM from /proc/PID/status).
 *
 * Usage: deno run -A bench/batch_memory.ts [SIZE]
 *
 * @module
 */
import {
  mustStart,
  removeDir,
  rssKiB,
  sleep,
  stopServer,
} from "../tests/fault/_harness.ts";
import { parseSize } from "../server/cli_values.ts";

const sizeText = Deno.args[0] ?? "8MiB";
const limit = parseSize(sizeText);
if (limit === undefined) throw new Error(`bad size ${sizeText}`);
const dir = await Deno.makeTempDir({ prefix: "shale-batch-mem-" });
const server = await mustStart(`${dir}/data`, {
  args: ["--sync", "none", "--max-batch-size", sizeText],
});
try {
  await sleep(500);
  const before = rssKiB(server.pid);
  // Fill the limit with ops of 1 MiB values; each op's JSON framing is
  // about 40 bytes, plus the base64 of its key.
  const ops: { op: string; key: string; value: string }[] = [];
  let left = limit - 16;
  for (let i = 0; left > 100; i++) {
    const key = btoa(`big${i}`);
    const room = Math.floor((left - 40 - key.length) / 4) * 3;
    const value = new Uint8Array(Math.min(1 << 20, room));
    for (let off = 0; off < value.length; off += 65536) {
      crypto.getRandomValues(value.subarray(off, off + 65536));
    }
    const op = { op: "put", key, value: value.toBase64() };
    ops.push(op);
    left -= JSON.stringify(op).length + 1;
  }
  const body = JSON.stringify({ ops });
  const t0 = performance.now();
  const res = await fetch(`${server.base}/kv/batch`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  await res.body?.cancel();
  const ms = performance.now() - t0;
  await sleep(200);
  const after = rssKiB(server.pid);
  const mib = (kib: number) => Math.round(kib / 102.4) / 10;
  console.log(JSON.stringify({
    maxBatchSize: sizeText,
    bodyBytes: body.length,
    status: res.status,
    ms: Math.round(ms),
    rssBeforeMiB: mib(before.rss),
    rssAfterMiB: mib(after.rss),
    rssPeakMiB: mib(after.peak),
    peakGrowthMiB: mib(after.peak - before.rss),
  }));
} finally {
  await stopServer(server);
  await removeDir(dir);
}
