/**
 * One open `GET /kv/watch` response body (routes/watch.ts has the route).
 *
 * Pacing: a stream is pulled, never pushed. Each stream keeps a cursor
 * (every group up to it was sent or skipped as out of range) and reads the
 * shared history from there when the runtime asks for more, so the memory
 * of one stream is its queue of encoded events (at most `queueBytes` plus
 * one read of {@link PULL_BYTES}). The route drops a stream whose consumer
 * fell behind ({@link WatchStream.drop}).
 *
 * @module
 */
import {
  type ChangeGroup,
  compareBytes,
  type Db,
  USER_KEY_SPACE,
} from "../../mod.ts";
import { toBase64 } from "../_codec.ts";
import type { LogFn } from "../errors.ts";
import type { SharedSpec, StreamSpec } from "./watch_shared.ts";

/** Encoded bytes one pull reads from the history before it yields. */
export const PULL_BYTES = 64 * 1024;
/** History groups one pull looks at before it yields. */
const PULL_GROUPS = 256;
const encoder = new TextEncoder();

/** What a stream's route (WatchRoute) keeps for it. */
export interface StreamSettings {
  heartbeatMs: number;
  queueBytes: number;
  history: Db["changes"];
  log: LogFn;
}

/** What a stream needs of its route: settings, counters, the end. */
export interface StreamHost {
  readonly settings: StreamSettings;
  drops: number;
  eventsSent: number;
  /** The stream ended: forget it. */
  forget(s: WatchStream): void;
}

/** One open `/kv/watch` response body. */
export class WatchStream {
  /** Every group up to this version was sent or skipped. */
  cursor: number;
  /** The history's published byte count when the runtime last pulled. */
  publishedAtPull: number;
  /** The last `id:` written to the stream. */
  #lastId: number;
  readonly body: ReadableStream<Uint8Array>;
  readonly #route: StreamHost;
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
    route: StreamHost,
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
