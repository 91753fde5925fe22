/**
 * Request counters and latency histograms for the HTTP layer, rendered as
 * JSON (for `/stats`) and in the Prometheus text exposition format (for
 * `/metrics`, version 0.0.4: `# HELP`, `# TYPE`, counters end in `_total`).
 *
 * @module
 */
import { ConnectionStats } from "./connection_stats.ts";

/** Upper bounds (seconds) of the latency histogram buckets; `+Inf` is implied. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** One extra sample a caller wants exposed next to the request metrics. */
export interface Sample {
  name: string;
  help: string;
  type: "counter" | "gauge";
  value: number;
}

interface Histogram {
  route: string;
  method: string;
  /** Non-cumulative counts per bucket; the last slot is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/** Counters and histograms of one server; cheap enough to update per request. */
export class Metrics {
  /** Connection counters, updated by the listener (see `listen.ts`). */
  readonly connections: ConnectionStats = new ConnectionStats();
  readonly #started: number;
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();
  /**
   * route → method → histogram and per-status keys of #requests, so the
   * per-request path does Map lookups on strings it already has instead of
   * building two key strings each time.
   */
  readonly #slots = new Map<
    string,
    Map<string, { h: Histogram; keys: Map<number, string> }>
  >();
  #inFlight = 0;
  #bytesIn = 0;
  #total = 0;
  #errors5xx = 0;

  constructor(now: number = performance.now()) {
    this.#started = now;
  }

  /** Marks a request as started; pair with {@link observe}. */
  begin(): void {
    this.#inFlight++;
  }

  /** Records a finished request. */
  observe(route: string, method: string, status: number, seconds: number) {
    this.#inFlight--;
    this.#total++;
    if (status >= 500) this.#errors5xx++;
    let byMethod = this.#slots.get(route);
    if (byMethod === undefined) {
      byMethod = new Map();
      this.#slots.set(route, byMethod);
    }
    let slot = byMethod.get(method);
    if (slot === undefined) {
      const h: Histogram = {
        route,
        method,
        counts: new Array(LATENCY_BUCKETS.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.#latency.set(`${route}\u0000${method}`, h);
      slot = { h, keys: new Map() };
      byMethod.set(method, slot);
    }
    let key = slot.keys.get(status);
    if (key === undefined) {
      key = `${route}\u0000${method}\u0000${status}`;
      slot.keys.set(status, key);
    }
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    const h = slot.h;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
    h.counts[i]++;
    h.sum += seconds;
    h.count++;
  }

  /**
   * Non-cumulative latency bucket counts (bounds {@link LATENCY_BUCKETS},
   * then +Inf) summed over the routes `include` accepts; the stats stream
   * takes two of these a second apart to estimate recent percentiles.
   */
  latencyCounts(include: (route: string) => boolean = () => true): number[] {
    const sum = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
    for (const h of this.#latency.values()) {
      if (!include(h.route)) continue;
      for (let i = 0; i < sum.length; i++) sum[i] += h.counts[i];
    }
    return sum;
  }

  /** Counts request body bytes read from clients. */
  addBytesIn(n: number): void {
    this.#bytesIn += n;
  }

  /** Server counters as a JSON-friendly object. */
  toJSON(now: number = performance.now()): Record<string, unknown> {
    const byStatus: Record<string, number> = {};
    const byRoute: Record<string, number> = {};
    for (const [key, n] of this.#requests) {
      const [route, method, status] = key.split("\u0000");
      byStatus[status] = (byStatus[status] ?? 0) + n;
      const r = `${method} ${route}`;
      byRoute[r] = (byRoute[r] ?? 0) + n;
    }
    return {
      uptimeSeconds: Math.round((now - this.#started) / 10) / 100,
      requests: this.#total,
      inFlight: this.#inFlight,
      serverErrors: this.#errors5xx,
      requestBytes: this.#bytesIn,
      connections: this.connections.toJSON(),
      byStatus,
      byRoute,
    };
  }

  /** Renders every metric in the Prometheus text format. */
  render(
    engineStats: Record<string, unknown> | undefined,
    extra: Sample[] = [],
    now: number = performance.now(),
  ): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };

    family("shale_http_requests_total", "counter", "HTTP requests answered.");
    for (const [key, n] of sortedEntries(this.#requests)) {
      const [route, method, status] = key.split("\u0000");
      out.push(
        `shale_http_requests_total${labels({ route, method, status })} ${n}`,
      );
    }
    family(
      "shale_http_request_duration_seconds",
      "histogram",
      "Time from request arrival to response headers, by route.",
    );
    for (const [, h] of sortedEntries(this.#latency)) {
      let cumulative = 0;
      for (let i = 0; i <= LATENCY_BUCKETS.length; i++) {
        cumulative += h.counts[i];
        const le = i < LATENCY_BUCKETS.length
          ? String(LATENCY_BUCKETS[i])
          : "+Inf";
        out.push(
          `shale_http_request_duration_seconds_bucket${
            labels({ route: h.route, method: h.method, le })
          } ${cumulative}`,
        );
      }
      const l = labels({ route: h.route, method: h.method });
      out.push(
        `shale_http_request_duration_seconds_sum${l} ${h.sum}`,
        `shale_http_request_duration_seconds_count${l} ${h.count}`,
      );
    }
    family(
      "shale_http_requests_in_flight",
      "gauge",
      "Requests being handled.",
    );
    out.push(`shale_http_requests_in_flight ${this.#inFlight}`);
    family(
      "shale_http_request_bytes_total",
      "counter",
      "Request body bytes read.",
    );
    out.push(`shale_http_request_bytes_total ${this.#bytesIn}`);
    family(
      "shale_uptime_seconds",
      "gauge",
      "Seconds since the server started.",
    );
    out.push(`shale_uptime_seconds ${(now - this.#started) / 1000}`);
    out.push(...this.connections.render());
    for (const s of extra) {
      family(s.name, s.type, s.help);
      out.push(`${s.name} ${s.value}`);
    }
    if (engineStats !== undefined) out.push(...renderEngine(engineStats));
    return out.join("\n") + "\n";
  }
}

function sortedEntries<V>(m: Map<string, V>): [string, V][] {
  return [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Formats a label set, escaping `\`, `"` and newlines as the format requires. */
export function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) =>
    `${k}="${
      v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
    }"`
  );
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** `memtable.flushCount` → `memtable_flush_count`, restricted to [a-z0-9_]. */
export function metricName(parts: string[]): string {
  return parts
    .map((p) =>
      p.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase().replace(
        /[^a-z0-9_]+/g,
        "_",
      )
    )
    .filter((p) => p !== "")
    .join("_");
}

interface EngineSample {
  labels: Record<string, string>;
  value: number;
}

/**
 * Engine stats that count events since the store opened, besides every
 * number under `ops`: exposed as counters (`_total`).
 */
const CUMULATIVE = new Set([
  "tables.opens",
  "tables.bloomChecks",
  "tables.bloomNegatives",
  "tables.bloomFalsePositives",
  "tables.blockReads",
  "blockCache.hits",
  "blockCache.misses",
  "blockCache.evictions",
  "memory.workers.flush.jobs",
  "memory.workers.compaction.jobs",
]);

/** Engine stats in bytes whose name does not say so: exposed with `_bytes`. */
const IN_BYTES = new Set([
  "memory.budget",
  "memory.memtables",
  "memory.blockCache",
  "memory.tableMeta",
  "blockCache.capacity",
]);

/** How one engine stat is exposed. */
export interface EngineMetric {
  name: string;
  type: "counter" | "gauge";
  /** Multiply the stat by this to get the exposed value (ms -> seconds). */
  scale: number;
}

/**
 * Names the Prometheus metric of the engine stat at `path` (`levels` array
 * items share their array's path), following Prometheus' naming rules as
 * `promtool check metrics` enforces them: base units (milliseconds become
 * `_seconds`, byte amounts end in `_bytes`), counters and only counters end
 * in `_total`. Counters: everything under `ops` but its maxima, the
 * {@link CUMULATIVE} stats, and names ending in `total`.
 */
export function engineMetric(path: string[]): EngineMetric {
  const key = path.join(".");
  const last = path.at(-1) ?? "";
  const parts = path.slice(0, -1);
  let leaf = last;
  let scale = 1;
  if (last === "ms" || /[a-z0-9]Ms$/.test(last)) {
    leaf = last === "ms" ? "seconds" : last.slice(0, -2) + "Seconds";
    scale = 1 / 1000;
  }
  // The workers' heap figures are all bytes but their job count.
  const workerBytes = key.startsWith("memory.workers.") && last !== "jobs";
  if (IN_BYTES.has(key) || workerBytes) leaf += "Bytes";
  const counter = (path[0] === "ops" && !/^max[A-Z]/.test(last)) ||
    CUMULATIVE.has(key) || /total$/i.test(last);
  let name = metricName(["shale", "engine", ...parts, leaf]);
  if (counter && !name.endsWith("_total")) name += "_total";
  return { name, type: counter ? "counter" : "gauge", scale };
}

/**
 * Flattens the engine's nested stats into families named by
 * {@link engineMetric}. Arrays become a label (`level` for `levels`, else
 * `index`).
 */
export function renderEngine(stats: Record<string, unknown>): string[] {
  const families = new Map<
    string,
    { type: string; help: string; samples: EngineSample[] }
  >();
  const walk = (
    v: unknown,
    path: string[],
    l: Record<string, string>,
  ): void => {
    if (typeof v === "number" && Number.isFinite(v)) {
      add(path, l, v);
    } else if (typeof v === "boolean") {
      add(path, l, v ? 1 : 0);
    } else if (Array.isArray(v)) {
      const label = path.at(-1) === "levels" ? "level" : "index";
      v.forEach((item, i) => walk(item, path, { ...l, [label]: String(i) }));
    } else if (v !== null && typeof v === "object") {
      for (const [k, child] of Object.entries(v)) {
        // `levels[i].level` repeats the label the array already gave it.
        if (!(k in l)) walk(child, [...path, k], l);
      }
    }
  };
  const add = (path: string[], l: Record<string, string>, value: number) => {
    const m = engineMetric(path);
    if (!/^[a-z_][a-z0-9_]*$/.test(m.name)) return;
    let f = families.get(m.name);
    if (f === undefined) {
      const unit = m.scale === 1 ? "" : " (ms in stats(), seconds here)";
      f = {
        type: m.type,
        help: `Engine stats() field ${path.join(".")}${unit}.`,
        samples: [],
      };
      families.set(m.name, f);
    }
    f.samples.push({ labels: l, value: value * m.scale });
  };
  walk(stats, [], {});
  const out: string[] = [];
  for (const [name, f] of families) {
    out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
    for (const s of f.samples) {
      out.push(`${name}${labels(s.labels)} ${s.value}`);
    }
  }
  return out;
}
