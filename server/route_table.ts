/**
 * The route table's machinery: a {@link Route} names a path pattern (the
 * metrics label), whether it needs the access token, and its handlers by
 * method; {@link route} builds one from a pattern, {@link read} makes a
 * GET/HEAD pair, {@link methodNotAllowed} answers 405 (or 204 to OPTIONS)
 * with `Allow`. The table itself is in `app.ts`.
 *
 * @module
 */
import { clip, HttpError } from "./_codec.ts";
import type { Ctx, RouteHandler } from "./context.ts";

/** One entry of the route table. */
export interface Route {
  /** Metrics label (`/kv/{key}`). */
  name: string;
  /** Whether this route serves the raw path. */
  match: (path: string) => boolean;
  /** Served without the access token (it checks its own, or reveals nothing). */
  public?: boolean;
  /**
   * Serves scoped tokens too, checking every key it touches against the
   * token's prefix (`scope.ts`); other routes need the admin token.
   */
  scoped?: boolean;
  /** Handlers by method, in the order `Allow` lists them. */
  methods: Readonly<Record<string, RouteHandler>>;
}

/** A route that takes every method itself (KV Connect). */
export const ANY = "*";

/** Options of a route that needs no token. */
export const PUBLIC = { public: true };

/** Options of a data route that scoped tokens may use. */
export const SCOPED = { scoped: true };

/**
 * A route table entry. `pattern` is the metrics label and, unless
 * `opts.match` is given, the matcher: `/a/*` matches `/a` and all below it,
 * `/a/{key}` everything below `/a/`, anything else exactly itself.
 */
export function route(
  pattern: string,
  methods: Record<string, RouteHandler>,
  opts: {
    public?: boolean;
    scoped?: boolean;
    match?: (path: string) => boolean;
  } = {},
): Route {
  let name = pattern;
  let match = opts.match ?? ((p: string) => p === pattern);
  if (pattern.endsWith("/*")) {
    const base = name = pattern.slice(0, -2);
    match = opts.match ?? ((p) => p === base || p.startsWith(base + "/"));
  } else if (pattern.endsWith("/{key}")) {
    const base = pattern.slice(0, -5);
    match = opts.match ?? ((p) => p.startsWith(base));
  }
  return { name, match, public: opts.public, scoped: opts.scoped, methods };
}

/**
 * A read-only route: GET, and HEAD answering GET's status and headers,
 * Content-Length included (RFC 9110 9.3.2), without the body.
 */
export function read(
  get: (ctx: Ctx) => Response | Promise<Response>,
): Record<string, RouteHandler> {
  return { GET: get, HEAD: async (ctx) => withoutBody(await get(ctx)) };
}

/** The bodies of read-only routes are small and already in memory. */
async function withoutBody(res: Response): Promise<Response> {
  const headers = new Headers(res.headers);
  if (res.body !== null && !headers.has("content-length")) {
    headers.set("content-length", String((await res.arrayBuffer()).byteLength));
  } else {
    res.body?.cancel().catch(() => {});
  }
  return new Response(null, { status: res.status, headers });
}

/** 405 with `Allow`; OPTIONS gets 204 with `Allow`. */
export function methodNotAllowed(method: string, allow: string): Response {
  if (method === "OPTIONS") {
    return new Response(null, { status: 204, headers: { allow } });
  }
  throw new HttpError(
    405,
    "method_not_allowed",
    `method ${clip(method, 16)} is not allowed here (allowed: ${allow})`,
    { allow },
  );
}
