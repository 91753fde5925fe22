/**
 * The one error funnel of the server. Every route family (the REST routes
 * in `routes/`, KV Connect under `/deno-kv`) turns whatever it threw into a
 * Response through {@link errorResponse}, so the code-to-status mapping and
 * the rule "server faults never show internals" live in one place:
 *
 * - {@link HttpError}: the route decided status, code and message; sent as is.
 * - {@link ShaleError}: status from {@link ERROR_STATUS}. A 4xx keeps the
 *   engine's message (it describes the client's input); a 5xx gets the code's
 *   fixed {@link publicMessage}, because engine faults name data files and
 *   offsets. The details go to the log.
 * - Anything else is a bug: logged with its stack, answered 500 `internal`.
 *
 * REST answers `{"error":{"code","message"}}`; KV Connect answers the message
 * as plain text, which is what Deno's KV client shows its user.
 *
 * @module
 */
import { type ErrorCode, ShaleError } from "../mod.ts";
import { HttpError } from "./_codec.ts";
import { markSmall } from "./response_guard.ts";
import { KEEP_PARTS, PartsResponse } from "./response_parts.ts";

export { HttpError } from "./_codec.ts";

/** HTTP status for every engine error code, on every route. Exhaustive by type. */
export const ERROR_STATUS: Readonly<Record<ErrorCode, number>> = {
  invalid_argument: 400,
  key_too_long: 414,
  value_too_large: 413,
  precondition_failed: 412,
  corruption: 500,
  unsupported_format: 500,
  closed: 503,
  read_only: 503,
  disk_full: 507,
  locked: 503,
  io_error: 503,
};

/**
 * What a client is told for the engine codes that are server-side faults.
 * Fixed text: no file names, offsets or OS messages.
 */
const PUBLIC_MESSAGE: Readonly<Partial<Record<ErrorCode, string>>> = {
  corruption:
    "stored data failed an integrity check; the server log names the file and offset",
  read_only:
    "the store is read-only after a failed write or fsync; restart the server once the cause is fixed",
  disk_full:
    "disk full: no space left on the device; the write was not applied",
  io_error: "an I/O error occurred; the server log has the details",
  closed: "the store is closed",
  locked: "the data directory is locked by another process",
  unsupported_format:
    "the data directory is in an older on-disk format; the server log says what to do",
};

/** The fixed, path-free explanation of an error code (for 5xx answers). */
export function publicMessage(code: string): string {
  return (PUBLIC_MESSAGE as Record<string, string>)[code] ??
    "the store failed the request";
}

/** Receives the server's own log lines (server faults, not access logs). */
export type LogFn = (
  level: "info" | "warn" | "error",
  message: string,
  fields?: Record<string, unknown>,
) => void;

/** How a route family renders errors: JSON object or plain text. */
export type ErrorFormat = "json" | "text";

/** Where {@link errorResponse} renders to and logs. */
export interface ErrorContext {
  format: ErrorFormat;
  log: LogFn;
  /** Added to log lines (method, route, ...). */
  fields?: Record<string, unknown>;
}

const JSON_HEADERS = { "content-type": "application/json" };
const TEXT_HEADERS = { "content-type": "text/plain; charset=utf-8" };

/**
 * Renders one error answer. `extra` adds fields next to code and message in
 * the JSON error object (the batch route's failing `index`); plain text has
 * only the message.
 */
export function renderError(
  format: ErrorFormat,
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
  extra?: Record<string, unknown>,
): Response {
  const base = format === "json" ? JSON_HEADERS : TEXT_HEADERS;
  const body = format === "json"
    ? JSON.stringify({ error: { code, message, ...extra } })
    : message + "\n";
  // Error bodies are short (messages are clipped): 3 bytes per UTF-16
  // unit at most.
  return markSmall(
    new Response(body, {
      status,
      headers: headers === undefined ? base : { ...base, ...headers },
    }),
    body.length * 3,
  );
}

/**
 * A factory of one fixed JSON error answer, its body rendered once: for an
 * answer a hot path gives often (the 404 of a missing key). Each call
 * makes a new Response, as a body can be sent only once.
 */
export function fixedError(
  status: number,
  code: string,
  message: string,
): () => Response {
  const body = JSON.stringify({ error: { code, message } });
  if (!KEEP_PARTS) {
    const init = { status, headers: JSON_HEADERS };
    return () => markSmall(new Response(body, init), body.length * 3);
  }
  // On Bun the listener writes these instead of reading each Response back.
  const bytes = new TextEncoder().encode(body);
  const headers = {
    ...JSON_HEADERS,
    "content-length": String(bytes.length),
  };
  return () =>
    markSmall(new PartsResponse(status, headers, bytes), bytes.length);
}

/** Turns any thrown value into the Response the client gets. Never throws. */
export function errorResponse(err: unknown, ctx: ErrorContext): Response {
  if (err instanceof HttpError) {
    return renderError(
      ctx.format,
      err.status,
      err.code,
      err.message,
      err.headers,
    );
  }
  if (err instanceof ShaleError) {
    const status = ERROR_STATUS[err.code] ?? 500;
    if (status < 500) {
      return renderError(ctx.format, status, err.code, err.message);
    }
    ctx.log("error", "engine error", {
      ...ctx.fields,
      code: err.code,
      message: err.message,
    });
    return renderError(ctx.format, status, err.code, publicMessage(err.code));
  }
  ctx.log("error", "unhandled error", {
    ...ctx.fields,
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  return renderError(ctx.format, 500, "internal", "internal server error");
}
