/**
 * `GET /kv/watch`: the change feed, as Server-Sent Events. Every committed
 * write group in the requested key range goes out as one `change` event,
 * in commit order, with the group's version as the event `id`; a client
 * that reconnects with `Last-Event-ID` (or `?since=`) gets every later
 * change exactly once. The history comes from the engine's change history
 * (`engine/changes.ts`); this module only filters, encodes and paces it.
 * Contract and wire format: `docs/HTTP.md`, "Change feed".
 *
 * Pacing: a stream is pulled, never pushed. Each stream keeps a cursor
 * (every group up to it was sent or skipped as out of range) and reads the
 * shared history from there when the runtime asks for more, so the memory
 * of one stream is its queue of encoded events (at most `queueBytes` plus
 * one read of {@link PULL_BYTES}). A consumer that stops reading stops the
 * pulls; once more than `maxLagBytes` of changes were committed since its
 * last pull (or its cursor fell below the history's floor, so the next
 * change it needs is gone) the stream gets an `error` event,
 * `consumer_too_slow`, and is closed: the client resumes from the last id
 * it received. A consumer catching up on a long backlog keeps pulling, so
 * it is not dropped for the backlog alone.
 *
 * @module
 */
import {
  type ChangeGroup,
  compareBytes,
  type Db,
  prefixEnd,
  USER_KEY_SPACE,
} from "../../mod.ts";
import { clip, HttpError, parseQuery, toBase64 } from "../_codec.ts";
import { authorizeRange, type Scope } from "../scope.ts";
import { requestHeader } from "../request_headers.ts";
import type { LogFn } from "../errors.ts";
import type { Sample } from "../metrics.ts";

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

/** Encoded bytes one pull reads from the history before it yields. */
export const PULL_BYTES = 64 * 1024;
/** History groups one pull looks at before it yields. */
const PULL_GROUPS = 256;
const PARAMS = [
  "start",
  "end",
  "prefix",
  "since",
  "values",
  "value_limit",
] as const;
const encoder = new TextEncoder();

interface StreamSpec {
  start: Uint8Array | undefined;
  end: Uint8Array | undefined;
  values: boolean;
  valueLimit: number;
}

/** The change feed route: open streams, their counters, shutdown. */
export class WatchRoute {
  readonly #db: Db;
  readonly #heartbeatMs: number;
  readonly #maxLagBytes: number;
  readonly #queueBytes: number;
  readonly #valueLimit: number;
  readonly #log: LogFn;
  readonly #streams = new Set<WatchStream>();
  /** The open streams' specs, by spec key (see {@link specKey}). */
  readonly #specs = new Map<string, SharedSpec>();
  #unsubscribe: (() => void) | undefined;
  /** Counters for `/metrics`. */
  eventsSent = 0;
  resumes = 0;
  drops = 0;

  constructor(db: Db, options: WatchOptions = {}) {
    this.#db = db;
    this.#heartbeatMs = options.heartbeatMs ?? 5_000;
    this.#maxLagBytes = options.maxLagBytes ?? 16 << 20;
    this.#queueBytes = options.queueBytes ?? 256 * 1024;
    this.#valueLimit = options.valueLimit ?? 64 * 1024;
    this.#log = options.log ??
      ((level, message, fields) => console.error(level, message, fields ?? ""));
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
    const key = specKey(spec);
    let shared = this.#specs.get(key);
    if (shared === undefined) {
      this.#specs.set(key, shared = new SharedSpec(key));
    }
    shared.streams++;
    const stream = new WatchStream(this, since, spec, shared);
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

  /** Stream bookkeeping, for {@link WatchStream}. */
  get settings() {
    return {
      heartbeatMs: this.#heartbeatMs,
      queueBytes: this.#queueBytes,
      history: this.#db.changes,
      log: this.#log,
    };
  }

  /** @internal A stream ended: forget it, and stop listening when none is left. */
  forget(s: WatchStream): void {
    if (!this.#streams.delete(s)) return;
    if (--s.shared.streams === 0) this.#specs.delete(s.shared.key);
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

/** Bytes of encoded events one spec keeps for its streams (then emptied). */
const SHARED_EVENT_BYTES = 1 << 20;

/**
 * The open streams of one spec and the events already encoded for them:
 * every commit wakes every stream, and each would otherwise encode the same
 * group the same way (base64, JSON) again. Only recent groups are asked
 * for (streams read near the head), so the map is emptied when it passes
 * {@link SHARED_EVENT_BYTES} rather than trimmed.
 */
class SharedSpec {
  streams = 0;
  #events = new Map<number, string | null>();
  #bytes = 0;

  constructor(readonly key: string) {}

  /** The event of `g` for this spec: `encode(g)`, once if streams share it. */
  event(
    g: ChangeGroup,
    encode: (g: ChangeGroup) => string | undefined,
  ): string | undefined {
    if (this.streams < 2) return encode(g);
    const known = this.#events.get(g.version);
    if (known !== undefined) return known ?? undefined;
    const event = encode(g);
    if (this.#bytes > SHARED_EVENT_BYTES) {
      this.#events = new Map();
      this.#bytes = 0;
    }
    this.#events.set(g.version, event ?? null);
    this.#bytes += 16 + (event?.length ?? 0);
    return event;
  }
}

/** What makes two streams' events the same: range and value options. */
function specKey(spec: StreamSpec): string {
  return `${spec.values ? 1 : 0} ${spec.valueLimit} ${
    spec.start?.toHex() ?? "-"
  } ${spec.end?.toHex() ?? "-"}`;
}

/** One open `/kv/watch` response body. */
class WatchStream {
  /** Every group up to this version was sent or skipped. */
  cursor: number;
  /** The history's published byte count when the runtime last pulled. */
  publishedAtPull: number;
  /** The last `id:` written to the stream. */
  #lastId: number;
  readonly body: ReadableStream<Uint8Array>;
  readonly #route: WatchRoute;
  readonly #spec: StreamSpec;
  /** What this stream shares with the open streams of the same spec. */
  readonly shared: SharedSpec;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #waiter: (() => void) | undefined;
  /** Ends a wait with a heartbeat. */
  #beat: (() => void) | undefined;
  /** When the current wait began (performance.now()). */
  #waitingSince = 0;
  /**
   * The heartbeat timer: armed by a wait, left running when a commit ends
   * the wait (a timer per event costs microseconds), re-armed when it fires
   * before the wait it finds is heartbeatMs old.
   */
  #beatTimer: ReturnType<typeof setTimeout> | undefined;
  #ended = false;

  constructor(
    route: WatchRoute,
    since: number,
    spec: StreamSpec,
    shared: SharedSpec,
  ) {
    this.#route = route;
    this.shared = shared;
    this.cursor = since;
    this.#lastId = since;
    this.publishedAtPull = route.settings.history.published;
    this.#spec = spec;
    const { queueBytes, history } = route.settings;
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        // The first event names the position, so a client that sees no
        // change before it disconnects still resumes from here.
        controller.enqueue(encoder.encode(
          `retry: 1000\nid: ${since}\nevent: ready\ndata: ${
            JSON.stringify({ version: since, floor: history.floor })
          }\n\n`,
        ));
      },
      pull: () => this.#pull(),
      cancel: () => this.end(),
    }, { highWaterMark: queueBytes, size: (c) => c.byteLength });
  }

  /** True while a pull waits for a commit (the consumer is caught up). */
  get waiting(): boolean {
    return this.#waiter !== undefined;
  }

  /** Lets a waiting pull look at the history again. */
  wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** The consumer fell behind: tell it where to resume, then close. */
  drop(): void {
    if (this.#ended) return;
    const message =
      `the consumer fell behind the change feed; reconnect with Last-Event-ID set to the last id received (${this.#lastId} on this stream)`;
    this.#send(
      `event: error\ndata: ${
        JSON.stringify({
          error: { code: "consumer_too_slow", message },
          resume_from: this.#lastId,
        })
      }\n\n`,
    );
    this.end(true);
  }

  /** Ends the stream; `close` also closes the body (else it was cancelled). */
  end(close = false): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#beatTimer);
    this.#beatTimer = undefined;
    this.#route.forget(this);
    this.wake();
    if (close) {
      try {
        this.#controller.close();
      } catch {
        // already closed or errored by the runtime
      }
    }
  }

  #send(text: string): void {
    try {
      this.#controller.enqueue(encoder.encode(text));
    } catch {
      this.end();
    }
  }

  async #pull(): Promise<void> {
    const { history, heartbeatMs } = this.#route.settings;
    this.publishedAtPull = history.published;
    while (!this.#ended) {
      const groups = history.after(this.cursor, PULL_GROUPS);
      if (groups === undefined) {
        this.#route.drops++;
        this.drop();
        return;
      }
      let out = "";
      for (const g of groups) {
        const event = this.shared.event(g, this.#encode);
        this.cursor = g.version;
        if (event === undefined) continue;
        out += event;
        this.#lastId = g.version;
        this.#route.eventsSent++;
        if (out.length >= PULL_BYTES) break;
      }
      if (out !== "") {
        this.#send(out);
        return;
      }
      if (groups.length > 0) continue; // all out of range: read on
      // Nothing new: wait for a commit or the heartbeat.
      const beat = await new Promise<boolean>((resolve) => {
        this.#waiter = () => resolve(false);
        this.#beat = () => resolve(true);
        this.#waitingSince = performance.now();
        this.#beatTimer ??= setTimeout(this.#onBeatTimer, heartbeatMs);
      });
      this.#waiter = undefined;
      this.#beat = undefined;
      if (beat && !this.#ended) {
        // Carry the cursor as the id, so a client watching a quiet range
        // resumes from here, not from before every skipped group.
        const id = this.cursor > this.#lastId ? `id: ${this.cursor}\n` : "";
        this.#lastId = this.cursor;
        this.#send(`: heartbeat\n${id}\n`);
        return;
      }
    }
  }

  /** The heartbeat timer fired: beat if the wait is old enough, else re-arm. */
  #onBeatTimer = (): void => {
    this.#beatTimer = undefined;
    const beat = this.#beat;
    // Not waiting (events are flowing): the next wait arms a new timer.
    if (beat === undefined || this.#ended) return;
    const { heartbeatMs } = this.#route.settings;
    const left = this.#waitingSince + heartbeatMs - performance.now();
    if (left > 0) this.#beatTimer = setTimeout(this.#onBeatTimer, left);
    else beat();
  };

  /** One SSE event for the group's changes in range, or undefined. */
  #encode = (g: ChangeGroup): string | undefined => {
    const { start, end, values, valueLimit } = this.#spec;
    const items: Record<string, unknown>[] = [];
    for (const c of g.changes) {
      // The feed is the /kv/ routes' view: user keys only (KV Connect
      // databases live in another key space and have their own watch).
      if (c.space !== USER_KEY_SPACE) continue;
      const key = c.key;
      if (c.type === "delete_range") {
        const item = rangeItem(key, c.end, start, end);
        if (item) items.push(item);
        continue;
      }
      if (start !== undefined && compareBytes(key, start) < 0) continue;
      if (end !== undefined && compareBytes(key, end) >= 0) continue;
      const item: Record<string, unknown> = {
        key: toBase64(key),
        type: c.type,
      };
      if (c.type === "put") {
        if (values && c.value.length <= valueLimit) {
          item.value = toBase64(c.value);
        } else item.value_size = c.value.length;
        if (c.expiresAt !== 0) item.expires_at = c.expiresAt;
      }
      items.push(item);
    }
    if (items.length === 0) return undefined;
    return `id: ${g.version}\nevent: change\ndata: ${
      JSON.stringify({ version: g.version, changes: items })
    }\n\n`;
  };
}

/**
 * A range delete as a feed item, when its range [from, to) (`to` absent:
 * through the last key) meets the watched one: cut to the watched range, so
 * a stream (a scoped token's included) never shows keys outside it.
 */
function rangeItem(
  from: Uint8Array,
  to: Uint8Array | undefined,
  start: Uint8Array | undefined,
  end: Uint8Array | undefined,
): Record<string, unknown> | undefined {
  if (end !== undefined && compareBytes(from, end) >= 0) return undefined;
  if (start !== undefined && to !== undefined && compareBytes(to, start) <= 0) {
    return undefined;
  }
  if (start !== undefined && compareBytes(from, start) < 0) from = start;
  if (end !== undefined && (to === undefined || compareBytes(to, end) > 0)) {
    to = end;
  }
  const item: Record<string, unknown> = {
    type: "delete_range",
    start: toBase64(from),
  };
  if (to !== undefined) item.end = toBase64(to);
  return item;
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
