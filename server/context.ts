/**
 * What the route modules share: the per-request {@link Ctx} and the
 * per-server {@link ServerEnv} that `app.ts` builds once in
 * `createHandler`. A route module exports a factory taking the env and
 * returning its handlers, so each route reads its limits and collaborators
 * from one place and can be tested alone.
 *
 * @module
 */
import type { Db } from "../mod.ts";
import { HttpError } from "./_codec.ts";
import type { BodyBudget, BodyLease } from "./body_budget.ts";
import type { CursorSnapshots } from "./cursors.ts";
import type { LogFn } from "./errors.ts";
import type { Metrics } from "./metrics.ts";
import type { Refusals } from "./refusals.ts";
import type { Scope } from "./scope.ts";
import type { Store } from "./store/store.ts";

/** One request on its way through the routes. */
export interface Ctx {
  req: Request;
  /** The raw (still percent-encoded) path. */
  path: string;
  /** The raw query, without `?`. */
  query: string;
  /** Validated `host[:port]` the request was sent to. */
  authority: string;
  /** Metrics label of the matched route. */
  route: string;
  /** Who holds cursors: the remote address ("local" in-process). */
  client: string;
  /** This request's share of the body budget. */
  lease: BodyLease;
  /**
   * The scoped token's prefix and mode, once auth has passed; undefined for
   * the admin token or without auth (everything allowed).
   */
  scope?: Scope;
}

/** A route's answer to one request. */
export type RouteHandler = (ctx: Ctx) => Response | Promise<Response>;

/** Size limits of the REST routes (see `HandlerOptions` for each). */
export interface Limits {
  maxKeyBytes: number;
  maxValueBytes: number;
  maxBatchBytes: number;
  maxBatchOps: number;
  maxScanLimit: number;
  maxPageBytes: number;
}

/** The server's shared state and collaborators, built once per handler. */
export interface ServerEnv {
  /** The data behind the REST routes (the engine, or a KV Connect backend). */
  store: Store;
  /** The local engine, when the store is one (watch, backup, KV Connect serving). */
  db: Db | undefined;
  limits: Limits;
  /** Wall clock for TTLs (ms since epoch). */
  clock: () => number;
  /** Monotonic clock for cursor ages (ms). */
  monotonic: () => number;
  log: LogFn;
  metrics: Metrics;
  budget: BodyBudget;
  refusals: Refusals;
  cursors: CursorSnapshots;
  /** Set by `drain()`: `/health` answers 503 from then on. */
  draining: boolean;
}

/** The engine, or 501 for a route a KV Connect backend cannot serve. */
export function requireEngine(env: ServerEnv, what: string): Db {
  if (env.db === undefined) {
    throw new HttpError(
      501,
      "not_supported_by_backend",
      `${what} needs shale's local engine; this server is a gateway onto a KV Connect backend (docs/HTTP.md, "Gateway mode")`,
    );
  }
  return env.db;
}

const JSON_HEADERS = { "content-type": "application/json" };

/** A JSON response. */
export function json(
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: headers === undefined ? JSON_HEADERS : {
      ...JSON_HEADERS,
      ...headers,
    },
  });
}

/** A JSON response whose body is already text. */
export function jsonText(text: string): Response {
  return new Response(text, { headers: JSON_HEADERS });
}
