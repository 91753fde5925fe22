/**
 * Counts requests refused to protect the server (bad Host, foreign origin,
 * overload, oversized or too-deep bodies, expired cursors...), by reason, for
 * `/metrics` (`shale_http_refused_total{reason}`) and `/stats`.
 *
 * @module
 */
import { labels } from "./metrics.ts";

/** Error codes that count as protective refusals; the code is the reason. */
export const REFUSAL_REASONS: ReadonlySet<string> = new Set([
  "invalid_host",
  "forbidden_origin",
  "cross_site",
  "host_not_allowed",
  "unsupported_media_type",
  "overloaded",
  "payload_too_large",
  "value_too_large",
  "json_too_deep",
  "cursor_expired",
]);

/** Refusal counters of one server. */
export class Refusals {
  readonly #counts = new Map<string, number>();

  /** Counts one refusal of `reason`. */
  count(reason: string): void {
    this.#counts.set(reason, (this.#counts.get(reason) ?? 0) + 1);
  }

  /** Count for one reason (0 when never seen). */
  get(reason: string): number {
    return this.#counts.get(reason) ?? 0;
  }

  /** Counts by reason, for `/stats`. */
  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort());
  }

  /** The `shale_http_refused_total` family in the Prometheus text format. */
  render(): string[] {
    const out = [
      "# HELP shale_http_refused_total Requests refused to protect the server, by reason.",
      "# TYPE shale_http_refused_total counter",
    ];
    for (const [reason, n] of [...this.#counts].sort()) {
      out.push(`shale_http_refused_total${labels({ reason })} ${n}`);
    }
    return out;
  }
}
