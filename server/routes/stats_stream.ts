/**
 * `GET /stats/stream`: the `/stats` numbers as server-sent events, one event
 * a second, for the dashboard (`/ui`). Each event also carries what a
 * reader would otherwise derive from two `/stats` bodies: per-second rates
 * over the last interval and latency percentiles estimated from the same
 * histogram buckets `/metrics` exposes.
 *
 * The stream never ends on its own; {@link StatsStreams.closeAll} ends every
 * open one so a graceful shutdown does not wait for dashboards to go away.
 *
 * @module
 */
import { LATENCY_BUCKETS } from "../metrics.ts";

/** The `/stats` body: what every event's `stats` field holds. */
export interface StatsBody {
  /** The local engine's counters (absent in gateway mode). */
  engine?: Record<string, unknown>;
  /** The KV Connect backend client's counters (gateway mode only). */
  backend?: Record<string, unknown>;
  server: Record<string, unknown>;
}

/** Where the stream reads its numbers. */
export interface StatsSource {
  /** The current `/stats` body. */
  stats(): StatsBody;
  /** Non-cumulative latency bucket counts of the data routes (`/kv/`, `/deno-kv`). */
  latency(): number[];
}

/** Per-second rates over one interval; computed from cumulative counters. */
export interface Rates {
  /** Keys put or deleted (batch ops count one each). */
  writes: number;
  /** Point reads. */
  reads: number;
  /** Scans (one per range page). */
  scans: number;
  /** HTTP requests answered. */
  requests: number;
  /** HTTP answers with status 4xx. */
  clientErrors: number;
  /** HTTP answers with status 5xx. */
  serverErrors: number;
  /** Key and value bytes written by users. */
  userBytes: number;
  /** Bytes written by compactions. */
  compactionBytes: number;
  /** Bytes written by memtable flushes. */
  flushBytes: number;
  /** Bytes appended to the write-ahead log. */
  walBytes: number;
}

/** Latency of the data routes over one interval. */
export interface IntervalLatency {
  /** Requests answered in the interval. */
  count: number;
  /** Estimated median in milliseconds (null with no requests). */
  p50Ms: number | null;
  /** Estimated 99th percentile in milliseconds (null with no requests). */
  p99Ms: number | null;
}

/** One event's `data`. */
export interface StatsEvent {
  /** Wall clock, ms since the epoch. */
  time: number;
  /** Length of the interval the rates cover (0 on the first event). */
  intervalMs: number;
  stats: StatsBody;
  /** Null on the first event, which has no earlier numbers to compare. */
  rates: Rates | null;
  latency: IntervalLatency | null;
}

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-store",
  // Proxies that buffer responses would hold the events back.
  "x-accel-buffering": "no",
};

/** The open stats streams of one handler. */
export class StatsStreams {
  readonly #source: StatsSource;
  readonly #intervalMs: number;
  readonly #open = new Set<() => void>();

  constructor(source: StatsSource, intervalMs = 1000) {
    this.#source = source;
    this.#intervalMs = intervalMs;
  }

  /** Streams currently open. */
  get size(): number {
    return this.#open.size;
  }

  /** Starts a stream; it ends when the client goes away or on {@link closeAll}. */
  open(signal: AbortSignal): Response {
    const encoder = new TextEncoder();
    let stop = () => {};
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        let prev: { at: number; stats: StatsBody; latency: number[] };
        const send = () => {
          const at = performance.now();
          const stats = this.#source.stats();
          const latency = this.#source.latency();
          const event: StatsEvent = {
            time: Date.now(),
            intervalMs: prev === undefined
              ? 0
              : Math.round((at - prev.at) * 10) / 10,
            stats,
            rates: prev === undefined
              ? null
              : rates(prev.stats, stats, (at - prev.at) / 1000),
            latency: prev === undefined
              ? null
              : intervalLatency(prev.latency, latency),
          };
          prev = { at, stats, latency };
          controller.enqueue(
            encoder.encode(`data: ${JSON.stringify(event)}\n\n`),
          );
        };
        const timer = setInterval(() => {
          try {
            send();
          } catch {
            // The client left between ticks (enqueue on a closed stream).
            stop();
          }
        }, this.#intervalMs);
        stop = () => {
          clearInterval(timer);
          signal.removeEventListener("abort", stop);
          if (this.#open.delete(stop)) {
            try {
              controller.close();
            } catch {
              // Already cancelled by the client.
            }
          }
        };
        this.#open.add(stop);
        signal.addEventListener("abort", stop);
        // Reconnect after 2 s if the connection drops; first numbers now.
        controller.enqueue(encoder.encode("retry: 2000\n\n"));
        send();
      },
      cancel: () => stop(),
    });
    return new Response(body, { headers: SSE_HEADERS });
  }

  /** The headers of a stream without one (for HEAD). */
  head(): Response {
    return new Response(null, { headers: SSE_HEADERS });
  }

  /** Ends every open stream (server shutting down). */
  closeAll(): void {
    for (const stop of [...this.#open]) stop();
  }
}

/** Per-second rates between two `/stats` bodies taken `seconds` apart. */
export function rates(a: StatsBody, b: StatsBody, seconds: number): Rates {
  const opsA = ((a.engine ?? a.backend)?.ops ?? {}) as Record<string, number>;
  const opsB = ((b.engine ?? b.backend)?.ops ?? {}) as Record<string, number>;
  const per = (d: number) =>
    seconds > 0 ? Math.round(d / seconds * 100) / 100 : 0;
  const op = (...names: string[]) =>
    per(names.reduce((s, n) => s + (opsB[n] ?? 0) - (opsA[n] ?? 0), 0));
  const statusSum = (s: StatsBody, digit: string) => {
    const by = (s.server.byStatus ?? {}) as Record<string, number>;
    let n = 0;
    for (const [status, count] of Object.entries(by)) {
      if (status[0] === digit) n += count;
    }
    return n;
  };
  return {
    writes: op("puts", "deletes"),
    reads: op("gets"),
    scans: op("scans"),
    requests: per(
      Number(b.server.requests ?? 0) - Number(a.server.requests ?? 0),
    ),
    clientErrors: per(statusSum(b, "4") - statusSum(a, "4")),
    serverErrors: per(statusSum(b, "5") - statusSum(a, "5")),
    userBytes: op("userBytes"),
    compactionBytes: op("compactBytesWritten"),
    flushBytes: op("flushBytes"),
    walBytes: op("walBytes"),
  };
}

/** Percentiles of the requests between two cumulative bucket snapshots. */
export function intervalLatency(
  before: number[],
  after: number[],
): IntervalLatency {
  const counts = after.map((n, i) => n - (before[i] ?? 0));
  const count = counts.reduce((s, n) => s + n, 0);
  return {
    count,
    p50Ms: percentileMs(counts, 0.5),
    p99Ms: percentileMs(counts, 0.99),
  };
}

/**
 * The `q` quantile of a histogram with bounds {@link LATENCY_BUCKETS}, in
 * ms, interpolating linearly inside the bucket it falls in (as Prometheus'
 * `histogram_quantile` does); the open +Inf bucket reports its lower bound.
 */
export function percentileMs(counts: number[], q: number): number | null {
  const total = counts.reduce((s, n) => s + n, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] === 0 || seen + counts[i] < rank) {
      seen += counts[i];
      continue;
    }
    const lower = i === 0 ? 0 : LATENCY_BUCKETS[i - 1];
    if (i >= LATENCY_BUCKETS.length) return lower * 1000;
    const upper = LATENCY_BUCKETS[i];
    const within = (rank - seen) / counts[i];
    return Math.round((lower + (upper - lower) * within) * 1e6) / 1000;
  }
  return LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1] * 1000;
}
