/**
 * `GET /kv/watch`: the change feed, as Server-Sent Events. Every committed
 * write group in the requested key range goes out as one `change` event,
 * in commit order, with the group's version as the event `id`; a client
 * that reconnects with `Last-Event-ID` (or `?since=`) gets every later
 * change exactly once. The history comes from the engine's change history
 * (`engine/changes.ts`); this module only filters, encodes and paces it.
 * Contract and wire format: `docs/HTTP.md`, "Change feed".
 *
 * Streams (`watch_stream.ts`) are pulled, never pushed, each from its own
 * cursor in the shared history. A consumer that stops reading stops the
 * pulls; once more than `maxLagBytes` of changes were committed since its
 * last pull (or its cursor fell below the history's floor, so the next
 * change it needs is gone) the stream gets an `error` event,
 * `consumer_too_slow`, and is closed: the client resumes from the last id
 * it received. A consumer catching up on a long backlog keeps pulling, so
 * it is not dropped for the backlog alone. Streams of one spec share their
 * encoded events (`watch_shared.ts`).
 *
 * @module
 */
import { type ChangeGroup, type Db, prefixEnd } from "../../mod.ts";
import { clip, HttpError, parseQuery } from "../_codec.ts";
import { authorizeRange, type Scope } from "../scope.ts";
import { requestHeader } from "../request_headers.ts";
import type { LogFn } from "../errors.ts";
import type { Sample } from "../metrics.ts";
import { SharedSpecs } from "./watch_shared.ts";
import { type StreamSettings, WatchStream } from "./watch_stream.ts";

/** Options of {@link WatchRoute}; every field has a default. */
export interface WatchOptions {
  /** A comment line goes out when a stream was idle this long. Default 5 s (Bun closes a connection idle for 10 s). */
  heartbeatMs?: number;
  /**
   * Changes (bytes, as the history counts them) committed while a stream
   * takes nothing, after which it is dropped. Default 16 MiB.
   */
  maxLagBytes?: number;
  /** Encoded events a stream may queue before it stops pulling. Default 256 KiB. */
  queueBytes?: number;
  /** Default of `value_limit`: larger values are sent as their size. 64 KiB. */
  valueLimit?: number;
  /** Where stream faults go. */
  log?: LogFn;
}

const PARAMS = [
  "start",
  "end",
  "prefix",
  "since",
  "values",
  "value_limit",
] as const;

/** The change feed route: open streams, their counters, shutdown. */
export class WatchRoute {
  readonly #db: Db;
  readonly #maxLagBytes: number;
  readonly #valueLimit: number;
  readonly #streams = new Set<WatchStream>();
  readonly #specs = new SharedSpecs();
  /** Stream bookkeeping, for {@link WatchStream}. */
  readonly settings: StreamSettings;
  #unsubscribe: (() => void) | undefined;
  /** Counters for `/metrics`. */
  eventsSent = 0;
  resumes = 0;
  drops = 0;

  constructor(db: Db, options: WatchOptions = {}) {
    this.#db = db;
    this.#maxLagBytes = options.maxLagBytes ?? 16 << 20;
    this.#valueLimit = options.valueLimit ?? 64 * 1024;
    this.settings = {
      heartbeatMs: options.heartbeatMs ?? 5_000,
      queueBytes: options.queueBytes ?? 256 * 1024,
      history: db.changes,
      log: options.log ??
        ((level, message, fields) =>
          console.error(level, message, fields ?? "")),
    };
  }

  /** Streams open now. */
  get open(): number {
    return this.#streams.size;
  }

  /**
   * Answers `GET /kv/watch?<query>`; errors before streaming are thrown. A
   * scoped token's `scope` must hold the whole watched range.
   */
  handle(req: Request, query: string, scope?: Scope): Response {
    if (req.method !== "GET") {
      if (req.method === "OPTIONS") {
        return new Response(null, { status: 204, headers: { allow: "GET" } });
      }
      throw new HttpError(
        405,
        "method_not_allowed",
        `method ${clip(req.method, 16)} is not allowed here (allowed: GET)`,
        { allow: "GET" },
      );
    }
    const p = parseQuery(query, PARAMS);
    const text = (name: string): string | undefined => {
      const v = p.get(name);
      return v === undefined ? undefined : new TextDecoder().decode(v);
    };
    let start = p.get("start");
    let end = p.get("end");
    const prefix = p.get("prefix");
    if (prefix !== undefined) {
      if (start !== undefined || end !== undefined) {
        throw badParam("prefix cannot be combined with start or end");
      }
      start = prefix.length > 0 ? prefix : undefined;
      end = prefix.length > 0 ? prefixEnd(prefix) : undefined;
    }
    if (start !== undefined && start.length === 0) start = undefined;
    if (end !== undefined && end.length === 0) end = undefined;
    authorizeRange(scope, "read", start, end);
    const values = parseBool(text("values"), "values", true);
    const limitText = text("value_limit");
    let valueLimit = this.#valueLimit;
    if (limitText !== undefined) {
      valueLimit = /^[0-9]{1,10}$/.test(limitText) ? Number(limitText) : NaN;
      if (!Number.isSafeInteger(valueLimit)) {
        throw badParam(
          `value_limit must be a byte count, got "${clip(limitText)}"`,
        );
      }
    }
    // EventSource repeats the original URL when it reconnects, so the
    // header (the last id it received) wins over ?since=.
    const header = requestHeader(req, "last-event-id");
    const sinceText = header !== null && header.trim() !== ""
      ? header.trim()
      : text("since");
    const history = this.#db.changes;
    let since = history.head;
    if (sinceText !== undefined) {
      if (!/^[0-9]{1,16}$/.test(sinceText)) {
        throw badParam(
          `the resume point (Last-Event-ID or since) must be a version number, got "${
            clip(sinceText)
          }"`,
        );
      }
      since = Number(sinceText);
      if (since > history.head) {
        throw new HttpError(
          410,
          "version_unknown",
          `version ${since} is newer than the store's last version ${history.head} (a different store, or writes lost in a crash without sync always); start again without a resume point`,
        );
      }
      if (since < history.floor) {
        throw new HttpError(
          410,
          "history_gone",
          `changes after version ${since} are no longer retained (history starts after version ${history.floor}); read the current state and watch again without a resume point`,
        );
      }
      this.resumes++;
    }
    const spec = { start, end, values, valueLimit };
    const stream = new WatchStream(this, since, spec, this.#specs.join(spec));
    this.#streams.add(stream);
    this.#unsubscribe ??= history.subscribe((g) => this.#onCommit(g));
    // A client that goes away cancels the body (both runtimes), which ends
    // the stream; req.signal is not used: Deno aborts it on success too.
    return new Response(stream.body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        // Proxies (nginx) must not hold events back.
        "x-accel-buffering": "no",
      },
    });
  }

  /** Ends every stream (server shutdown); EventSource clients reconnect. */
  close(): void {
    for (const s of [...this.#streams]) s.end(true);
  }

  /** Samples for `/metrics` (base units, counters end in `_total`). */
  samples(): Sample[] {
    const h = this.#db.changes;
    return [
      {
        name: "shale_watch_streams_open",
        help: "Change feed (/kv/watch) streams open.",
        type: "gauge",
        value: this.#streams.size,
      },
      {
        name: "shale_watch_events_sent_total",
        help: "Change events sent on change feed streams.",
        type: "counter",
        value: this.eventsSent,
      },
      {
        name: "shale_watch_resumes_total",
        help: "Change feed streams opened with a resume point.",
        type: "counter",
        value: this.resumes,
      },
      {
        name: "shale_watch_drops_total",
        help: "Change feed streams closed because the consumer fell behind.",
        type: "counter",
        value: this.drops,
      },
      {
        name: "shale_watch_history_bytes",
        help: "Memory counted for the retained change history.",
        type: "gauge",
        value: h.bytes,
      },
      {
        name: "shale_watch_history_floor_version",
        help: "A resume point must be at least this version.",
        type: "gauge",
        value: h.floor,
      },
    ];
  }

  /** @internal A stream ended: forget it, and stop listening when none is left. */
  forget(s: WatchStream): void {
    if (!this.#streams.delete(s)) return;
    this.#specs.leave(s.shared);
    if (this.#streams.size === 0) {
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
    }
  }

  #onCommit(_g: ChangeGroup): void {
    const history = this.#db.changes;
    for (const s of this.#streams) {
      if (
        s.cursor < history.floor ||
        (!s.waiting &&
          history.published - s.publishedAtPull > this.#maxLagBytes)
      ) {
        this.drops++;
        s.drop();
      } else s.wake();
    }
  }
}

function badParam(message: string): HttpError {
  return new HttpError(400, "invalid_parameter", message);
}

function parseBool(
  v: string | undefined,
  name: string,
  dflt: boolean,
): boolean {
  if (v === undefined || v === "") return dflt;
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw badParam(`${name} must be true or false, got "${clip(v)}"`);
}
