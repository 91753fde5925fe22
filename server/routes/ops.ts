/**
 * The operations routes: `/health` (liveness and readiness, no token),
 * `/stats` (engine and server counters as JSON), `/stats/stream` (the same
 * each second as server-sent events, see `stats_stream.ts`) and `/metrics`
 * (Prometheus text).
 *
 * @module
 */
import process from "node:process";
import { ShaleError } from "../../mod.ts";
import { parseQuery } from "../_codec.ts";
import { type Ctx, json, type ServerEnv } from "../context.ts";
import { publicMessage } from "../errors.ts";
import { kvConnectWatchCount } from "../kv_connect/handler.ts";
import { type StatsBody, StatsStreams } from "./stats_stream.ts";
import type { Sample } from "../metrics.ts";
import type { StoreHealth } from "../store/store.ts";

/** The operations routes' handlers, and the stats streams they serve. */
export interface OpsRoutes {
  health(ctx: Ctx): Promise<Response>;
  stats(ctx: Ctx): Response;
  statsStream(ctx: Ctx): Response;
  metrics(ctx: Ctx): Response;
  /** Open `/stats/stream` connections (closed by drain and close). */
  readonly streams: StatsStreams;
}

/**
 * The operations routes over `env`. `isDataRoute` picks the routes whose
 * latency the stats stream reports.
 */
export function opsRoutes(
  env: ServerEnv,
  isDataRoute: (route: string) => boolean,
  statsStreamIntervalMs?: number,
  /** More /metrics samples (the change feed's). */
  extraSamples: () => Sample[] = () => [],
  /** Open change-feed streams, for /stats. */
  watchStreams: () => number = () => 0,
): OpsRoutes {
  const { store, db, metrics, budget, refusals, cursors, log } = env;
  /** The last unhealthy reason logged, so polling does not flood the log. */
  let lastUnhealthy: string | undefined;
  const streams = new StatsStreams({
    stats: statsBody,
    latency: () => metrics.latencyCounts(isDataRoute),
  }, statsStreamIntervalMs);

  async function health(ctx: Ctx): Promise<Response> {
    parseQuery(ctx.query, []);
    if (env.draining) {
      return healthError("not_ready", "server is shutting down");
    }
    let h: StoreHealth;
    try {
      h = await store.health();
    } catch (err) {
      if (err instanceof ShaleError) return healthError(err.code, err.message);
      throw err;
    }
    if (h.ok) return json(200, { status: "ok" });
    const code = h.code ?? "unavailable";
    // /health needs no token: the engine's reason (with file paths) goes to
    // the log, the client gets the code's fixed explanation.
    if (h.reason !== lastUnhealthy) {
      lastUnhealthy = h.reason;
      log("warn", "store unhealthy", { code, reason: h.reason });
    }
    return healthError(
      code,
      h.message ??
        (h.code === undefined
          ? "store cannot take writes"
          : publicMessage(code)),
    );
  }

  function statsBody(): StatsBody {
    const mem = process.memoryUsage();
    return {
      [store.kind === "engine" ? "engine" : "backend"]: store.stats(),
      server: {
        ...metrics.toJSON(),
        cursors: { open: cursors.size, expired: cursors.expired },
        bodyBytesInFlight: budget.used,
        refused: refusals.toJSON(),
        health: env.draining
          ? { ok: false, code: "not_ready" }
          : store.lastHealth(),
        statsStreams: streams.size,
        kvConnectWatches: db === undefined ? 0 : kvConnectWatchCount(db),
        watchStreams: watchStreams(),
        memory: {
          rss: mem.rss,
          heapUsed: mem.heapUsed,
          heapTotal: mem.heapTotal,
          external: mem.external,
        },
      },
    };
  }

  function stats(ctx: Ctx): Response {
    parseQuery(ctx.query, []);
    return json(200, statsBody());
  }

  function statsStream(ctx: Ctx): Response {
    parseQuery(ctx.query, []);
    // HEAD gets the headers only: the stream never ends, so a body to
    // measure and drop would never finish.
    return ctx.req.method === "HEAD"
      ? streams.head()
      : streams.open(ctx.req.signal);
  }

  function prometheus(ctx: Ctx): Response {
    parseQuery(ctx.query, []);
    const body = metrics.render(db?.stats(), [
      {
        name: "shale_http_body_bytes_in_flight",
        help: "Request body bytes held against --max-body-memory.",
        type: "gauge",
        value: budget.used,
      },
      {
        name: "shale_http_cursors_open",
        help: "Range cursors holding a snapshot.",
        type: "gauge",
        value: cursors.size,
      },
      {
        name: "shale_http_cursors_expired_total",
        help: "Cursor snapshots released after expiring or being evicted.",
        type: "counter",
        value: cursors.expired,
      },
      ...store.samples(),
      ...extraSamples(),
    ]);
    return new Response(body + refusals.render().join("\n") + "\n", {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  }

  return { health, stats, statsStream, metrics: prometheus, streams };
}

function healthError(code: string, message: string): Response {
  return json(503, {
    status: "unavailable",
    reason: message,
    error: { code, message },
  });
}
