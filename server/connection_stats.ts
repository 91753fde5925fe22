/**
 * Connection counters of one server: connections open now, connections
 * refused at accept (over `--max-connections`), and connections the server
 * closed itself (a timeout fired), by reason. The listener updates them;
 * `/stats` (`server.connections`) and `/metrics` read them.
 *
 * @module
 */
import { labels } from "./metrics.ts";

/** Why the server refused a connection at accept. */
export type RefuseReason = "max_connections";

/** Why the server closed a connection it had accepted. */
export type CloseReason =
  | "header_timeout"
  | "idle_timeout"
  | "request_timeout"
  | "write_timeout";

/** Counters the listener updates; cheap enough to touch per connection. */
export class ConnectionStats {
  /** Connections accepted and not yet closed. */
  open = 0;
  /** False when the runtime does not let the listener see connections (Bun). */
  tracked = true;
  /** The cap in force (`--max-connections`), 0 when the runtime has none. */
  max = 0;
  /** Response body bytes of large responses being written right now. */
  responseBytesInFlight = 0;
  /** Large responses answered 503 because the response budget was full. */
  responsesRefused = 0;
  readonly #refused = new Map<string, number>();
  readonly #closed = new Map<string, number>();

  /** Counts one connection refused for `reason`. */
  refused(reason: RefuseReason): void {
    this.#refused.set(reason, (this.#refused.get(reason) ?? 0) + 1);
  }

  /** Counts one connection the server closed for `reason`. */
  closed(reason: CloseReason): void {
    this.#closed.set(reason, (this.#closed.get(reason) ?? 0) + 1);
  }

  /** Refusal count for one reason (0 when never seen). */
  refusedCount(reason: RefuseReason): number {
    return this.#refused.get(reason) ?? 0;
  }

  /** Close count for one reason (0 when never seen). */
  closedCount(reason: CloseReason): number {
    return this.#closed.get(reason) ?? 0;
  }

  /** The `/stats` view. */
  toJSON(): Record<string, unknown> {
    return {
      open: this.tracked ? this.open : null,
      max: this.max,
      responseBytesInFlight: this.responseBytesInFlight,
      responsesRefused: this.responsesRefused,
      refused: Object.fromEntries([...this.#refused].sort()),
      closed: Object.fromEntries([...this.#closed].sort()),
    };
  }

  /** The connection families in the Prometheus text format. */
  render(): string[] {
    const out = this.tracked
      ? [
        "# HELP shale_http_connections_open Client connections open now.",
        "# TYPE shale_http_connections_open gauge",
        `shale_http_connections_open ${this.open}`,
      ]
      : [];
    out.push(
      "# HELP shale_http_connections_max The connection cap (--max-connections); 0 when the runtime enforces none.",
      "# TYPE shale_http_connections_max gauge",
      `shale_http_connections_max ${this.max}`,
      "# HELP shale_http_response_bytes_in_flight Bytes of large response bodies being written.",
      "# TYPE shale_http_response_bytes_in_flight gauge",
      `shale_http_response_bytes_in_flight ${this.responseBytesInFlight}`,
      "# HELP shale_http_responses_refused_total Large responses answered 503 because --max-response-memory was in use.",
      "# TYPE shale_http_responses_refused_total counter",
      `shale_http_responses_refused_total ${this.responsesRefused}`,
      "# HELP shale_http_connections_refused_total Connections refused at accept, by reason.",
      "# TYPE shale_http_connections_refused_total counter",
    );
    for (const [reason, n] of [...this.#refused].sort()) {
      out.push(
        `shale_http_connections_refused_total${labels({ reason })} ${n}`,
      );
    }
    out.push(
      "# HELP shale_http_connections_closed_total Connections the server closed because a timeout fired, by reason.",
      "# TYPE shale_http_connections_closed_total counter",
    );
    for (const [reason, n] of [...this.#closed].sort()) {
      out.push(`shale_http_connections_closed_total${labels({ reason })} ${n}`);
    }
    return out;
  }
}
