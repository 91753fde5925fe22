/**
 * The HTTP API as a pure function: {@link createHandler} turns an open
 * database into a `(Request) => Promise<Response>` handler. No sockets, no
 * environment, no signals; `server/main.ts` owns those. The full contract is
 * in `docs/HTTP.md`.
 *
 * Invariants:
 * - Routing looks at the raw (still percent-encoded) path, so `/kv/range` is
 *   the scan route and the key `range` is `/kv/%72ange`.
 * - Every error body is `{"error":{"code","message"}}`, rendered by the one
 *   error funnel in `errors.ts` (engine codes map to statuses in
 *   `ERROR_STATUS` only; anything else is a bug: logged, answered 500).
 *   Client input is validated before it reaches the engine.
 * - Request bodies are read as streams and refused (413) as soon as they pass
 *   the limit; nothing is buffered past it.
 *
 * @module
 */
import type { Db } from "../mod.ts";
import { clip, HttpError } from "./_codec.ts";
import { BearerAuth } from "./auth.ts";
import { type Ctx, requireEngine } from "./context.ts";
import { type HandlerOptions, serverEnv } from "./handler_options.ts";
import { errorResponse } from "./errors.ts";
import { WatchRoute } from "./routes/watch.ts";
import { backupResponse } from "./backup_route.ts";
import { checkSite, requestTarget } from "./guard.ts";
import {
  ANY,
  methodNotAllowed,
  PUBLIC,
  read,
  type Route,
  route,
  SCOPED,
} from "./route_table.ts";
import {
  closeKvConnectWatches,
  handleKvConnect,
} from "./kv_connect/handler.ts";
import type { Metrics } from "./metrics.ts";
import { REFUSAL_REASONS, type Refusals } from "./refusals.ts";
import { batchRoute } from "./routes/batch.ts";
import { kvRoutes } from "./routes/kv.ts";
import { multiGetRoute } from "./routes/multi_get.ts";
import { opsRoutes } from "./routes/ops.ts";
import { rangeRoute } from "./routes/range.ts";
import { isUiPath, uiRoute } from "./routes/ui.ts";
import { requireAdmin } from "./scope.ts";
import type { ScopedToken } from "./token_file.ts";
import type { Store } from "./store/store.ts";

export { HttpError } from "./_codec.ts";
export { ERROR_STATUS, type LogFn } from "./errors.ts";
export type { HandlerOptions } from "./handler_options.ts";

/** What the listener knows about the client (`Deno.ServeHandlerInfo`). */
export interface ClientInfo {
  remoteAddr?: { hostname?: string };
  /**
   * `performance.now()` when the listener took the request, if it read the
   * clock then: the handler times the request from it rather than reading
   * the clock again (an op call on Deno).
   */
  receivedAt?: number;
}

/** The request handler plus the few controls `main.ts` needs. */
export interface Handler {
  (req: Request, info?: ClientInfo): Promise<Response>;
  /**
   * The same answers, synchronously where the route could (a GET served
   * from the engine), for a listener: Deno and Bun take either. Each async
   * layer costs a promise per request (deno bench: five nested async
   * functions 1.6 µs, the same calls synchronously 0.3 µs).
   */
  readonly serve: (
    req: Request,
    info?: ClientInfo,
  ) => Response | Promise<Response>;
  /** The counters this handler updates. */
  readonly metrics: Metrics;
  /** Requests refused to protect the server, by reason. */
  readonly refusals: Refusals;
  /** Marks the server as shutting down: `/health` answers 503 from now on. */
  drain(): void;
  /** Releases every snapshot held for cursors. Call before `db.close()`. */
  close(): void;
  /** Replaces the scoped tokens (a reloaded `--token-file`). */
  setScopedTokens(tokens: ScopedToken[]): void;
}

const KNOWN_METHODS = new Set([
  "GET",
  "HEAD",
  "PUT",
  "POST",
  "DELETE",
  "OPTIONS",
  "PATCH",
]);

/**
 * Builds the HTTP handler for `source`: a function from `Request` to
 * `Response` that never throws (every failure is an answer with a JSON error
 * body). Serve it with `Deno.serve` or Bun's `serve`, or call it directly.
 * Call `close()` on it before `db.close()`.
 *
 * `source` is the local engine (`Db`), or any `Store` (`store/store.ts`),
 * such as a `KvConnectStore` onto a KV Connect backend (gateway mode): then
 * the routes that need the engine (the change feed, backups, KV Connect
 * serving) answer 501 `not_supported_by_backend`.
 *
 * Requests must name a loopback host (`127.0.0.1`, `localhost`) or one of
 * `allowHosts`, unless a token is required (DNS-rebinding guard).
 *
 * @example Store and read a value over HTTP, in process
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "../mod.ts";
 * import { createHandler } from "./app.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = await open(dir, { background: "inline" });
 * const handler = createHandler(db);
 * const put = await handler(
 *   new Request("http://127.0.0.1/kv/greeting", { method: "PUT", body: "hi" }),
 * );
 * assert.equal(put.status, 204);
 * const etag = put.headers.get("etag");
 *
 * const get = await handler(new Request("http://127.0.0.1/kv/greeting"));
 * assert.equal(get.status, 200);
 * assert.equal(get.headers.get("etag"), etag);
 * assert.equal(await get.text(), "hi");
 *
 * // A write conditional on an old version is refused with 412.
 * const stale = await handler(
 *   new Request("http://127.0.0.1/kv/greeting", {
 *     method: "DELETE",
 *     headers: { "if-match": '"999"' },
 *   }),
 * );
 * assert.equal(stale.status, 412);
 * assert.equal((await stale.json()).error.code, "precondition_failed");
 *
 * handler.close();
 * await db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @example Serve it
 * ```ts ignore
 * const db = await open("./data");
 * const handler = createHandler(db, { authToken: "a-long-secret-token" });
 * Deno.serve({ port: 8080 }, handler);
 * ```
 */
export function createHandler(
  source: Db | Store,
  options: HandlerOptions = {},
): Handler {
  const env = serverEnv(source, options);
  const { store, db, log, metrics, refusals, cursors, budget } = env;
  const auth = new BearerAuth(options.authToken, options.scopedTokens);
  const site = {
    tokenRequired: auth.required,
    allowHosts: new Set((options.allowHosts ?? []).map((h) => h.toLowerCase())),
    allowOrigins: new Set(
      (options.allowOrigins ?? []).map((o) => o.toLowerCase()),
    ),
  };
  const kv = kvRoutes(env);
  const watch = db === undefined
    ? undefined
    : new WatchRoute(db, { log, ...options.watch });
  const ops = opsRoutes(
    env,
    isDataRoute,
    options.statsStreamIntervalMs,
    () => watch?.samples() ?? [],
    () => watch?.open ?? 0,
  );

  // KV Connect (Deno's KV client) does its own auth and answers errors as
  // plain text, as that protocol requires.
  const kvConnect = (ctx: Ctx, db: Db) => {
    const scheme = ctx.req.url.slice(0, ctx.req.url.indexOf(":"));
    return handleKvConnect(ctx.req, ctx.path, {
      db,
      authToken: options.authToken,
      log,
      origin: options.publicUrl ?? `${scheme}://${ctx.authority}`,
      clock: env.clock,
      client: ctx.client,
      reserveBody: (n) => ctx.lease.take(n),
      refused: (reason) => refusals.count(reason),
    });
  };

  const keyMethods = {
    GET: kv.get,
    HEAD: kv.get,
    PUT: kv.put,
    DELETE: kv.delete,
  };
  // The route table: the first match serves the path. Routing looks at the
  // raw path, so the key "range" is /kv/%72ange. One line per route.
  // SCOPED routes check each key against a scoped token's prefix
  // themselves; every other non-public route needs the admin token.
  const routes: Route[] = [
    route("/health", read(ops.health), PUBLIC),
    route(
      "/deno-kv/*",
      {
        [ANY]: (ctx) =>
          kvConnect(ctx, requireEngine(env, "KV Connect serving")),
      },
      PUBLIC,
    ),
    // The dashboard's files are public; the API calls it makes are not.
    route("/ui", read(uiRoute), { public: true, match: isUiPath }),
    route("/kv/range", read(rangeRoute(env)), SCOPED),
    // POST /kv/get answers its own 405s (server/routes/multi_get.ts).
    route("/kv/get", { [ANY]: multiGetRoute(env) }, SCOPED),
    // GET /kv/watch answers its own 405s (server/routes/watch.ts).
    route("/kv/watch", {
      [ANY]: (ctx) => {
        requireEngine(env, "the change feed");
        return watch!.handle(ctx.req, ctx.query, ctx.scope);
      },
    }, SCOPED),
    route("/kv/batch", { POST: batchRoute(env) }, SCOPED),
    route("/kv/{key}", keyMethods, SCOPED),
    route("/stats", read(ops.stats)),
    route("/stats/stream", read(ops.statsStream)),
    route("/metrics", read(ops.metrics)),
    route("/admin/backup", {
      GET: (ctx) =>
        backupResponse(requireEngine(env, "/admin/backup"), ctx.query),
    }),
  ];

  /** Not async: the handler awaits what the route returns, sync or not. */
  function dispatch(ctx: Ctx): Response | Promise<Response> {
    const path = ctx.path;
    let hit: Route | undefined;
    for (let i = 0; i < routes.length && hit === undefined; i++) {
      if (routes[i].match(path)) hit = routes[i];
    }
    // Unknown paths need the token too: a 404 would confirm a guess.
    if (hit?.public !== true) ctx.scope = auth.check(ctx.req);
    if (hit === undefined) {
      throw new HttpError(
        404,
        "unknown_route",
        `no route for ${clip(ctx.path)}`,
      );
    }
    if (hit.scoped !== true) requireAdmin(ctx.scope, hit.name);
    ctx.route = hit.name;
    const method = ctx.req.method;
    const fn = Object.hasOwn(hit.methods, method)
      ? hit.methods[method]
      : hit.methods[ANY];
    if (fn !== undefined) return fn(ctx);
    return methodNotAllowed(method, Object.keys(hit.methods).join(", "));
  }

  // ---- entry point ------------------------------------------------------

  /** Any failure as the client sees it (counting the refusals). */
  function failed(err: unknown, ctx: Ctx): Response {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === "string" && REFUSAL_REASONS.has(code)) {
      refusals.count(code);
    }
    return errorResponse(err, {
      format: "json",
      log,
      fields: { method: ctx.req.method, route: ctx.route },
    });
  }

  /** The bookkeeping after an answer: the body lease, cursors, metrics. */
  function finish(ctx: Ctx, res: Response, t0: number): Response {
    ctx.lease.release();
    if (cursors.size > 0) cursors.releaseExpired(env.monotonic());
    const method = ctx.req.method;
    metrics.observe(
      ctx.route,
      KNOWN_METHODS.has(method) ? method : "other",
      res.status,
      (performance.now() - t0) / 1000,
    );
    return res;
  }

  // Not async: a route that answers synchronously (a GET served from the
  // engine) gets its Response back without a promise per layer.
  const serve = (
    req: Request,
    info?: ClientInfo,
  ): Response | Promise<Response> => {
    const t0 = info?.receivedAt ?? performance.now();
    metrics.begin();
    const ctx: Ctx = {
      req,
      path: "/",
      query: "",
      authority: "",
      route: "other",
      client: info?.remoteAddr?.hostname ?? "local",
      lease: budget.lease(),
    };
    let out: Response | Promise<Response>;
    try {
      // Route from the request path only: Deno builds req.url from Host.
      const target = requestTarget(req);
      ctx.path = target.path;
      ctx.query = target.query;
      ctx.authority = target.authority;
      // /health stays reachable for probes by any name; it reveals nothing.
      if (target.path !== "/health") checkSite(req, target, site);
      out = dispatch(ctx);
    } catch (err) {
      out = failed(err, ctx);
    }
    if (out instanceof Promise) {
      return out.then(
        (res) => finish(ctx, res, t0),
        (err) => finish(ctx, failed(err, ctx), t0),
      );
    }
    return finish(ctx, out, t0);
  };
  const handler = (req: Request, info?: ClientInfo): Promise<Response> =>
    Promise.resolve(serve(req, info));
  return Object.assign(handler, {
    serve,
    metrics,
    refusals,
    drain() {
      env.draining = true;
      if (db !== undefined) closeKvConnectWatches(db);
      ops.streams.closeAll();
      watch?.close();
    },
    close() {
      ops.streams.closeAll();
      cursors.close();
      store.close?.();
    },
    setScopedTokens(tokens: ScopedToken[]) {
      auth.setScoped(tokens);
    },
  });
}

// ---- helpers --------------------------------------------------------------

/** Routes whose latency the stats stream reports: the data API, not monitoring. */
function isDataRoute(route: string): boolean {
  return route.startsWith("/kv/") || route === "/deno-kv";
}
