/**
 * `/metrics` follows Prometheus' naming rules: checked by a restatement of
 * promtool's linter (always), and by `promtool check metrics` itself when
 * it is installed (Debian package `prometheus`; `make promtool-test`).
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { engineMetric } from "../../server/metrics.ts";
import { lintMetrics } from "./_promlint.ts";
import { withServer } from "./_helpers.ts";

/** `/metrics` of a server whose store has flushed, compacted and served. */
async function realMetrics(): Promise<string> {
  let text = "";
  await withServer({}, async ({ base, db }) => {
    for (let i = 0; i < 200; i++) {
      const res = await fetch(`${base}/kv/k${i}`, { method: "PUT", body: "v" });
      await res.body?.cancel();
    }
    await db.compactRange();
    await (await fetch(`${base}/kv/k1`)).body?.cancel();
    await (await fetch(`${base}/kv/missing`)).body?.cancel();
    await (await fetch(`${base}/kv/range?limit=10`)).body?.cancel();
    const res = await fetch(`${base}/metrics`);
    equal(res.status, 200);
    text = await res.text();
  });
  return text;
}

Deno.test("the naming rules catch what promtool flagged before", () => {
  const old = [
    "# HELP shale_engine_ops_compact_ms_total x",
    "# TYPE shale_engine_ops_compact_ms_total counter",
    "shale_engine_ops_compact_ms_total 1",
    "# HELP shale_engine_recovery_ms x",
    "# TYPE shale_engine_recovery_ms gauge",
    "shale_engine_recovery_ms 1",
    "# HELP a_hits_total x",
    "# TYPE a_hits_total gauge",
    "a_hits_total 1",
    "# HELP a_latency_milliseconds x",
    "# TYPE a_latency_milliseconds gauge",
    "a_latency_milliseconds 1",
    "# TYPE a_puts counter",
    "a_puts 1",
  ].join("\n");
  deepEqual(lintMetrics(old), [
    'shale_engine_ops_compact_ms_total contains the abbreviated unit "ms"',
    'shale_engine_recovery_ms contains the abbreviated unit "ms"',
    'a_hits_total is a gauge with the "_total" suffix',
    'a_latency_milliseconds uses "milliseconds" instead of the base unit "seconds"',
    "a_puts has no # HELP",
    'a_puts is a counter without the "_total" suffix',
  ]);
});

Deno.test("engine stats get base units, and only cumulative ones are counters", () => {
  deepEqual(engineMetric(["ops", "compactMs"]), {
    name: "shale_engine_ops_compact_seconds_total",
    type: "counter",
    scale: 1 / 1000,
  });
  deepEqual(engineMetric(["ops", "maxEventLoopStallMs"]), {
    name: "shale_engine_ops_max_event_loop_stall_seconds",
    type: "gauge",
    scale: 1 / 1000,
  });
  deepEqual(engineMetric(["recovery", "ms"]), {
    name: "shale_engine_recovery_seconds",
    type: "gauge",
    scale: 1 / 1000,
  });
  deepEqual(
    engineMetric(["blockCache", "hits"]).name,
    "shale_engine_block_cache_hits_total",
  );
  deepEqual(
    engineMetric(["memory", "memtables"]).name,
    "shale_engine_memory_memtables_bytes",
  );
  deepEqual(engineMetric(["levels", "tables"]).type, "gauge");
  // The background workers' heaps are bytes; their job counts accumulate.
  deepEqual(engineMetric(["memory", "workers", "flush", "heapUsed"]), {
    name: "shale_engine_memory_workers_flush_heap_used_bytes",
    type: "gauge",
    scale: 1,
  });
  deepEqual(engineMetric(["memory", "workers", "compaction", "jobs"]), {
    name: "shale_engine_memory_workers_compaction_jobs_total",
    type: "counter",
    scale: 1,
  });
});

Deno.test("the real /metrics output breaks none of the naming rules", async () => {
  const text = await realMetrics();
  ok(text.includes("shale_engine_ops_compact_seconds_total"), text);
  deepEqual(lintMetrics(text), []);
});

/** Why the promtool test cannot run here, or undefined when it can. */
function promtoolMissing(): string | undefined {
  try {
    const out = new Deno.Command("promtool", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return out.success ? undefined : "promtool --version failed";
  } catch (err) {
    return `promtool is not installed (${
      err instanceof Error ? err.name : String(err)
    }); apt-get install prometheus, or run make promtool-test`;
  }
}

const missing = promtoolMissing();

Deno.test({
  name:
    "promtool check metrics passes the real /metrics output with no warning" +
    (missing === undefined ? "" : ` -- ignored: ${missing}`),
  ignore: missing !== undefined,
  async fn() {
    const text = await realMetrics();
    const child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
    const out = await child.output();
    const said = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    equal(out.code, 0, said);
    equal(said.trim(), "", said);
  },
});
