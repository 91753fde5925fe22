/**
 * The per-connection deadlines both listeners enforce (`serve_deno.ts`,
 * `serve_bun.ts`): what a connection is doing (waiting for its first
 * request head, idle between requests, handling a request, writing a
 * response) and since when, and one sweep over all connections that says
 * which to close and why. One timer for all connections: per-request
 * timers would cost more than the requests on the fast path.
 *
 * @module
 */
import type { ConnectionLimits } from "./connection_limits.ts";
import type { CloseReason } from "./connection_stats.ts";
import { CHUNK_TIMED } from "./response_guard.ts";

/** What one connection is doing, updated by the listener. */
export interface ConnClock {
  /** Requests being handled (one at a time per connection on HTTP/1.1). */
  busy: number;
  /** Requests answered so far. */
  served: number;
  /** performance.now() of the last change: accepted, request in, answered. */
  since: number;
  /** The current request's handler returned; its body is being written. */
  responded: boolean;
  /** The current response is small and fixed: it must be written in time. */
  timedWrite: boolean;
  /** The chunk timer of the current response, when it has one. */
  chunks: { stalled: boolean } | undefined;
}

/** A connection just accepted: waiting for its first request head. */
export function newClock(): ConnClock {
  return {
    busy: 0,
    served: 0,
    since: performance.now(),
    responded: false,
    timedWrite: false,
    chunks: undefined,
  };
}

/** A request head arrived. */
export function requestArrived(c: ConnClock): void {
  c.busy++;
  c.responded = false;
  c.since = performance.now();
}

/**
 * The handler returned `res`: its body is being written from now on.
 * `now` is the time when the caller has it without reading the clock.
 */
export function responseReady(
  c: ConnClock,
  res: Response,
  now: number = performance.now(),
): void {
  c.responded = true;
  c.since = now;
  // Streamed and large bodies are timed chunk by chunk
  // (response_guard.ts); the rest must be written within the timeout.
  c.chunks = CHUNK_TIMED.get(res);
  c.timedWrite = c.chunks === undefined;
}

/** The response was written (or the request failed): idle from now on. */
export function requestDone(c: ConnClock): void {
  c.busy--;
  c.served++;
  c.responded = false;
  c.since = performance.now();
}

/** How often to sweep: a quarter of the shortest timeout, 20 ms to 1 s. */
export function sweepPeriodMs(limits: ConnectionLimits): number {
  const shortest = Math.min(
    limits.headerTimeoutMs,
    limits.idleTimeoutMs,
    limits.requestTimeoutMs,
    limits.writeTimeoutMs,
  );
  return Math.max(20, Math.min(1000, Math.floor(shortest / 4)));
}

/**
 * Why `c` must be closed at `now`: a timeout's reason, "stalled" when a
 * chunk timer fired (response_guard.ts counted it already), or undefined
 * when it may stay open.
 */
export function overdue(
  c: ConnClock,
  limits: ConnectionLimits,
  now: number,
): CloseReason | "stalled" | undefined {
  const age = now - c.since;
  if (c.busy === 0) {
    if (c.served === 0) {
      return age > limits.headerTimeoutMs ? "header_timeout" : undefined;
    }
    return age > limits.idleTimeoutMs ? "idle_timeout" : undefined;
  }
  if (!c.responded) {
    return age > limits.requestTimeoutMs ? "request_timeout" : undefined;
  }
  if (c.timedWrite) {
    return age > limits.writeTimeoutMs ? "write_timeout" : undefined;
  }
  return c.chunks?.stalled ? "stalled" : undefined;
}

/** The answer to a connection over the cap (then closed), as raw bytes. */
export const REFUSED_RESPONSE: Uint8Array = (() => {
  const body = JSON.stringify({
    error: {
      code: "too_many_connections",
      message: "the server has too many open connections",
    },
  });
  return new TextEncoder().encode(
    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\n" +
      `content-length: ${body.length}\r\n\r\n${body}`,
  );
})();
