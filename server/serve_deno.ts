/**
 * Deno's HTTP listener with the connection protections `Deno.serve` lacks
 * (Deno 2.9 has no connection cap, no header-read, idle or write timeout):
 * connections are accepted here with `Deno.listen`, counted, refused past
 * `maxConnections` (503, then closed) and each handed to Deno's own HTTP
 * server (hyper) with its own abort signal, so the same request path as
 * `Deno.serve` runs (measured: no req/s loss). A sweeper closes connections
 * that deliver no request in time, take too long to produce a response, or
 * do not take a small response. The hand-over uses
 * `Deno[Deno.internal].serveHttpOnConnection`, which `Deno.serve` itself is
 * built on; where a Deno lacks it, `Deno.serve` runs without the
 * protections (logged).
 *
 * @module
 */
import type { ConnectionLimits } from "./connection_limits.ts";
import type { ConnectionStats } from "./connection_stats.ts";
import {
  type ConnClock,
  newClock,
  overdue,
  REFUSED_RESPONSE,
  requestArrived,
  requestDone,
  responseReady,
  sweepPeriodMs,
} from "./connection_clock.ts";
import type { Listener, ListenOptions, ServeHandler } from "./runtime.ts";

type ServeOnConnection = (
  conn: Deno.Conn,
  signal: AbortSignal,
  handler: (
    req: Request,
    info: Deno.ServeHandlerInfo,
  ) => Response | Promise<Response>,
  onError: (err: unknown) => Response,
  onListen: (scheme: string) => void,
) => {
  finished: Promise<void>;
  /** Hyper's graceful shutdown: the response in progress is written whole. */
  shutdown(): Promise<void>;
};

/** Deno's per-connection HTTP server, when this Deno has it. */
export function serveOnConnection(): ServeOnConnection | undefined {
  const d = Deno as unknown as Record<symbol, Record<string, unknown>> & {
    internal?: symbol;
  };
  const internals = d.internal === undefined ? undefined : d[d.internal];
  const fn = internals?.serveHttpOnConnection;
  return typeof fn === "function" ? fn as ServeOnConnection : undefined;
}

interface ConnState extends ConnClock {
  conn: Deno.Conn;
  abort: AbortController;
  /** The connection's HTTP server, once handed over. */
  http?: ReturnType<ServeOnConnection>;
}

/**
 * Serves `handler` on `opts` with `limits` enforced, counting into
 * `stats`. Throws like `Deno.listen` when the address cannot be bound.
 */
export function serveWithLimits(
  opts: ListenOptions,
  handler: ServeHandler,
  limits: ConnectionLimits,
  stats: ConnectionStats,
  serveOn: ServeOnConnection,
): Listener {
  const listener: Deno.Listener = opts.tls === undefined
    ? Deno.listen({ hostname: opts.hostname, port: opts.port })
    : Deno.listenTls({
      hostname: opts.hostname,
      port: opts.port,
      cert: opts.tls.cert,
      key: opts.tls.key,
      // As Deno.serve does: HTTP/2 where the client offers it.
      alpnProtocols: ["h2", "http/1.1"],
    });
  const netAddr = listener.addr as Deno.NetAddr;
  const addr = { hostname: netAddr.hostname, port: netAddr.port };
  stats.max = limits.maxConnections;
  const conns = new Set<ConnState>();
  const finished = Promise.withResolvers<void>();
  let closing = false;

  const close = (
    s: ConnState,
    reason: Parameters<ConnectionStats["closed"]>[0],
  ) => {
    stats.closed(reason);
    abortConnection(s.abort);
  };

  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const s of conns) {
      const why = overdue(s, limits, now);
      if (why === "stalled") abortConnection(s.abort); // counted when it fired
      else if (why !== undefined) close(s, why);
    }
  }, sweepPeriodMs(limits));

  const onError = () =>
    Response.json(
      { error: { code: "internal", message: "internal server error" } },
      { status: 500 },
    );

  const serveConn = (conn: Deno.Conn) => {
    const s: ConnState = { ...newClock(), conn, abort: new AbortController() };
    conns.add(s);
    stats.open++;
    // receivedAt is set per request, read by the handler before it
    // returns or awaits anything: requests on one connection cannot mix it.
    const client = {
      remoteAddr: conn.remoteAddr as Deno.NetAddr,
      receivedAt: 0,
    };
    // Per connection, not per request: the hot path allocates no closure.
    const done = () => requestDone(s);
    const ready = (
      res: Response,
      info: Deno.ServeHandlerInfo,
      now?: number,
    ) => {
      responseReady(s, res, now);
      info.completed.then(done, done);
      return res;
    };
    // Not async: a synchronous answer goes back to Deno without a promise.
    const perRequest = (req: Request, info: Deno.ServeHandlerInfo) => {
      requestArrived(s);
      client.receivedAt = s.since;
      let out: Response | Promise<Response>;
      try {
        out = handler(req, client);
      } catch (err) {
        done();
        throw err;
      }
      if (out instanceof Promise) {
        return out.then((res) => ready(res, info), (err) => {
          done();
          throw err;
        });
      }
      // Answered in the same run as its arrival, microseconds ago: the
      // write deadline starts from the arrival's clock reading.
      return ready(out, info, s.since);
    };
    let served;
    try {
      served = serveOn(conn, s.abort.signal, perRequest, onError, () => {});
    } catch {
      conns.delete(s);
      stats.open--;
      try {
        conn.close();
      } catch { /* already closed */ }
      return;
    }
    s.http = served;
    served.finished.catch(() => {}).finally(() => {
      conns.delete(s);
      stats.open--;
    });
  };

  const accept = async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (closing) break;
        // Out of descriptors, say: stop listening (listen.ts binds again)
        // and keep serving the connections already open.
        try {
          listener.close();
        } catch { /* already closed */ }
        finished.reject(err);
        return;
      }
      // stats.open, not conns.size: after a rebind (listen.ts) the earlier
      // listener's connections count too.
      if (stats.open >= limits.maxConnections) {
        stats.refused("max_connections");
        // Awaited, so a burst of refusals holds one descriptor at a time
        // (the 503 fits an empty socket buffer: the write does not wait
        // for the client).
        await refuse(conn);
        continue;
      }
      serveConn(conn);
    }
    finished.resolve();
  };
  opts.onListen(addr);
  accept();

  return {
    addr,
    finished: finished.promise,
    async shutdown() {
      closing = true;
      try {
        listener.close();
      } catch { /* already closed */ }
      // Hyper's graceful shutdown closes idle connections at once and busy
      // ones once their response is written. Not `busy` (which drops when
      // `info.completed` settles): for a body given whole, Deno settles it
      // once hyper has the bytes, before they are written, so aborting then
      // cut the body short (tests/server/serve_deno_test.ts). The sweeper's
      // timeouts still bound a client that stalls.
      const waits: Promise<void>[] = [];
      for (const s of conns) {
        if (s.http === undefined) abortConnection(s.abort);
        else waits.push(s.http.shutdown().catch(() => {}));
      }
      await Promise.all(waits);
      clearInterval(sweeper);
    },
  };
}

let aborting = false;
let errorFilterInstalled = false;

/**
 * Aborts one connection's HTTP server. When the client has just closed the
 * connection, Deno's abort listener closes a resource that is already gone
 * and reports BadResource as an uncaught error (from inside dispatchEvent,
 * so no try/catch sees it), which would end the process; that one report is
 * dropped here, synchronously, while the abort runs.
 */
function abortConnection(ac: AbortController): void {
  if (!errorFilterInstalled) {
    errorFilterInstalled = true;
    globalThis.addEventListener("error", (e) => {
      if (aborting && e.error instanceof Deno.errors.BadResource) {
        e.preventDefault();
      }
    });
  }
  aborting = true;
  try {
    ac.abort();
  } finally {
    aborting = false;
  }
}

/** Answers 503 on a connection over the cap and closes it. */
async function refuse(conn: Deno.Conn): Promise<void> {
  // TLS would need a handshake first: just close those.
  if (!("handshake" in conn)) {
    await Promise.race([
      conn.write(REFUSED_RESPONSE).catch(() => 0),
      new Promise((r) => setTimeout(r, 50)),
    ]);
  }
  try {
    conn.close();
  } catch { /* already closed */ }
}
