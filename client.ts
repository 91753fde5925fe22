/**
 * A typed client for shale's REST API (`docs/HTTP.md`). It uses `fetch` and
 * nothing else, so the same file works in Deno, Node 20+, Bun and browsers.
 * It is its own module, apart from `mod.ts` (the embedded engine).
 *
 * Keys and values are bytes: pass a `Uint8Array`, or a string (taken as
 * UTF-8). The client percent-encodes keys into the path, turns conditions
 * into `If-Match` / `If-None-Match`, pages through ranges with cursors, and
 * turns every error answer into a {@link ShaleClientError} that carries the
 * server's `code`.
 *
 * @example Put, get and delete against a server started in-process
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { ShaleClient } from "./client.ts";
 * import { open } from "./mod.ts";
 * import { createHandler } from "./server/app.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = await open(dir, { sync: "none", background: "inline" });
 * const handler = createHandler(db, { authToken: "secret" });
 * const server = Deno.serve({ port: 0, onListen() {} }, handler);
 * const shale = new ShaleClient(`http://localhost:${server.addr.port}`, {
 *   token: "secret",
 * });
 *
 * const version = await shale.put("users/ada", "Ada Lovelace");
 * const entry = await shale.get("users/ada");
 * equal(new TextDecoder().decode(entry!.value), "Ada Lovelace");
 * equal(entry!.version, version);
 * await shale.delete("users/ada");
 * equal(await shale.get("users/ada"), null);
 *
 * await server.shutdown();
 * handler.close();
 * await db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

/** A key or value: bytes, or a string taken as its UTF-8 bytes. */
export type Bytes = Uint8Array | string;

/**
 * How to reach a server; every field is optional.
 *
 * @example Options with a token and a timeout
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { ShaleClient, type ShaleClientOptions } from "./client.ts";
 * const options: ShaleClientOptions = { token: "secret", timeoutMs: 5000 };
 * const shale = new ShaleClient("http://127.0.0.1:8080", options);
 * equal(shale.baseUrl, "http://127.0.0.1:8080");
 * ```
 */
export interface ShaleClientOptions {
  /** Sent as `Authorization: Bearer <token>` on every request. */
  token?: string;
  /** Default time limit of each call in milliseconds (none when unset). */
  timeoutMs?: number;
  /** The `fetch` to use. Default: the global `fetch`. */
  fetch?: typeof fetch;
}

/**
 * Per-call controls, accepted by every method.
 *
 * @example Cancelling a call with an AbortSignal
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { ShaleClient, type CallOptions } from "./client.ts";
 * const shale = new ShaleClient("http://127.0.0.1:9");
 * const controller = new AbortController();
 * controller.abort(new Error("user gave up"));
 * const call: CallOptions = { signal: controller.signal };
 * await rejects(shale.get("k", call), /user gave up/);
 * ```
 */
export interface CallOptions {
  /** Aborts the call; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Time limit of this call in milliseconds (overrides the client's). */
  timeoutMs?: number;
}

/**
 * A write's condition. `ifVersion`: the key must exist at exactly this
 * version (`If-Match`). `ifAbsent`: the key must not exist
 * (`If-None-Match: *`). A failed condition rejects with a
 * {@link ShaleClientError} whose code is `precondition_failed`.
 *
 * @example Compare-and-set
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { Condition } from "./client.ts";
 * const firstWrite: Condition = { ifAbsent: true };
 * const update: Condition = { ifVersion: 12 };
 * equal(firstWrite.ifAbsent, true);
 * equal(update.ifVersion, 12);
 * ```
 */
export interface Condition {
  ifVersion?: number;
  ifAbsent?: boolean;
}

/**
 * Options of {@link ShaleClient.put}.
 *
 * @example A value that expires after a minute, written only if absent
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { PutOptions } from "./client.ts";
 * const opts: PutOptions = { ttl: 60, ifAbsent: true };
 * equal(opts.ttl, 60);
 * ```
 */
export interface PutOptions extends CallOptions, Condition {
  /** Seconds until the key expires (fractions allowed). */
  ttl?: number;
}

/**
 * A stored key with its value and version. `expiresAt` (ms since the epoch,
 * whole seconds) is set by {@link ShaleClient.get} for keys with a TTL.
 *
 * @example The shape of an entry
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { Entry } from "./client.ts";
 * const e: Entry = { key: new Uint8Array([1]), value: new Uint8Array(), version: 3 };
 * equal(e.version, 3);
 * ```
 */
export interface Entry {
  key: Uint8Array;
  value: Uint8Array;
  version: number;
  expiresAt?: number;
}

/**
 * Options of {@link ShaleClient.list} and {@link ShaleClient.listPage}.
 * `prefix` cannot be combined with `start` / `end`.
 *
 * @example Every key under a prefix, newest name first, 100 per request
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { ListOptions } from "./client.ts";
 * const opts: ListOptions = { prefix: "users/", reverse: true, pageSize: 100 };
 * equal(opts.pageSize, 100);
 * ```
 */
export interface ListOptions extends CallOptions {
  /** Inclusive lower bound. */
  start?: Bytes;
  /** Exclusive upper bound. */
  end?: Bytes;
  prefix?: Bytes;
  reverse?: boolean;
  /** Leave values out (entries then have an empty `value`). */
  keysOnly?: boolean;
  /** Items per request (1 to the server's limit, 10000 by default). */
  pageSize?: number;
  /** Stop after this many entries in all ({@link ShaleClient.list} only). */
  limit?: number;
}

/**
 * One page of a range and the cursor of the next (`null` on the last page).
 *
 * @example The shape of a page
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { Page } from "./client.ts";
 * const last: Page = { items: [], next: null };
 * equal(last.next, null);
 * ```
 */
export interface Page {
  items: Entry[];
  next: string | null;
}

/**
 * One operation of {@link ShaleClient.batch}. A `check` writes nothing and
 * needs `ifVersion` or `ifAbsent`.
 *
 * @example A transfer guarded by a version check
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { BatchOp } from "./client.ts";
 * const ops: BatchOp[] = [
 *   { op: "check", key: "config", ifVersion: 7 },
 *   { op: "put", key: "a", value: "90" },
 *   { op: "put", key: "b", value: "10", ttl: 3600 },
 *   { op: "delete", key: "pending/1" },
 *   { op: "delete_range", prefix: "sessions/" },
 *   { op: "delete_range", start: "log/2024", end: "log/2025" },
 * ];
 * equal(ops.length, 6);
 * ```
 */
export type BatchOp =
  | ({ op: "put"; key: Bytes; value: Bytes; ttl?: number } & Condition)
  | ({ op: "delete"; key: Bytes } & Condition)
  | ({ op: "check"; key: Bytes } & Condition)
  | DeleteRangeOp;

/**
 * A range delete in a {@link ShaleClient.batch}: every key starting with
 * `prefix`, or every key `>= start` and `< end` (`end` left out: through
 * the last key; `start: ""` is the first key). It takes no condition; ops
 * of the batch before it on keys in the range are deleted with it.
 */
export type DeleteRangeOp =
  | { op: "delete_range"; prefix: Bytes }
  | { op: "delete_range"; start: Bytes; end?: Bytes };

/**
 * Options of {@link ShaleClient.watch}. `prefix` cannot be combined with
 * `start` / `end`; with none of them every key of `/kv/` is watched.
 *
 * @example Changes under a prefix after version 41, without values
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { WatchOptions } from "./client.ts";
 * const opts: WatchOptions = { prefix: "users/", since: 41, values: false };
 * equal(opts.since, 41);
 * ```
 */
export interface WatchOptions {
  prefix?: Bytes;
  /** Inclusive lower bound. */
  start?: Bytes;
  /** Exclusive upper bound. */
  end?: Bytes;
  /** Resume point: every change with a version above this one. Default: from now. */
  since?: number;
  /** `false`: puts carry `valueSize` instead of `value`. Default `true`. */
  values?: boolean;
  /** Stops the watch; the loop then ends without an error. */
  signal?: AbortSignal;
  /**
   * Connection attempts in a row that may fail (no answer at all) before the
   * watch gives up with a `network_error`. Default 10, one second apart
   * (or the server's `retry:` hint).
   */
  retries?: number;
}

/**
 * One change of a {@link ChangeEvent}: a put (with its `value`, or only its
 * `valueSize` when values are off or the value is over the server's
 * `value_limit`), a delete, or a range delete (`key` is then the range's
 * inclusive start and `end` its exclusive end, absent when it runs through
 * the last key).
 *
 * @example The shape of a change
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { Change } from "./client.ts";
 * const c: Change = { key: new Uint8Array([1]), type: "delete" };
 * equal(c.type, "delete");
 * ```
 */
export interface Change {
  key: Uint8Array;
  type: "put" | "delete" | "delete_range";
  /** A range delete's exclusive end; absent: through the last key. */
  end?: Uint8Array;
  value?: Uint8Array;
  valueSize?: number;
  /** ms since the epoch, for a put with a TTL. */
  expiresAt?: number;
}

/**
 * One committed write in the watched range: a single put or delete, or the
 * ops of one atomic batch that fall in the range, with their shared version.
 *
 * @example The shape of an event
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { ChangeEvent } from "./client.ts";
 * const ev: ChangeEvent = { version: 7, changes: [] };
 * equal(ev.version, 7);
 * ```
 */
export interface ChangeEvent {
  version: number;
  changes: Change[];
}

/**
 * An error answer from the server (its `code`, `status` and message), or a
 * failure to get one: `code` is then `timeout` or `network_error` (status
 * 0), or `bad_response` when the answer was not shale's JSON.
 *
 * @example A failed condition
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { ShaleClient, ShaleClientError } from "./client.ts";
 * import { open } from "./mod.ts";
 * import { createHandler } from "./server/app.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = await open(dir, { sync: "none", background: "inline" });
 * const handler = createHandler(db);
 * const server = Deno.serve({ port: 0, onListen() {} }, handler);
 * const shale = new ShaleClient(`http://localhost:${server.addr.port}`);
 *
 * const v = await shale.put("counter", "1");
 * await shale.put("counter", "2", { ifVersion: v });
 * try {
 *   await shale.put("counter", "3", { ifVersion: v }); // v is stale now
 *   throw new Error("unreachable");
 * } catch (err) {
 *   ok(err instanceof ShaleClientError);
 *   equal(err.status, 412);
 *   equal(err.code, "precondition_failed");
 * }
 *
 * await server.shutdown();
 * handler.close();
 * await db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ShaleClientError extends Error {
  /** The server's snake_case error code, or `timeout` / `network_error` / `bad_response`. */
  readonly code: string;
  /** The HTTP status; 0 when no answer arrived. */
  readonly status: number;
  /** For a failed batch condition: the index of the first failing op. */
  readonly index: number | undefined;
  constructor(
    status: number,
    code: string,
    message: string,
    options: { index?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "ShaleClientError";
    this.status = status;
    this.code = code;
    this.index = options.index;
  }
}

const encoder = new TextEncoder();
const HEX = "0123456789ABCDEF";

/**
 * A client for one shale server.
 *
 * @example Paging through a prefix, a batch and a multi-get
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { ShaleClient } from "./client.ts";
 * import { open } from "./mod.ts";
 * import { createHandler } from "./server/app.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = await open(dir, { sync: "none", background: "inline" });
 * const handler = createHandler(db);
 * const server = Deno.serve({ port: 0, onListen() {} }, handler);
 * const shale = new ShaleClient(`http://localhost:${server.addr.port}`);
 *
 * await shale.batch([
 *   { op: "put", key: "fruit/apple", value: "red" },
 *   { op: "put", key: "fruit/kiwi", value: "green" },
 *   { op: "put", key: "veg/leek", value: "white" },
 * ]);
 * const names: string[] = [];
 * for await (const e of shale.list({ prefix: "fruit/", pageSize: 1 })) {
 *   names.push(new TextDecoder().decode(e.key));
 * }
 * deepEqual(names, ["fruit/apple", "fruit/kiwi"]);
 * const [kiwi, pear] = await shale.getMany(["fruit/kiwi", "fruit/pear"]);
 * equal(new TextDecoder().decode(kiwi!.value), "green");
 * equal(pear, null);
 *
 * await server.shutdown();
 * handler.close();
 * await db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ShaleClient {
  /** The server's base URL, without a trailing slash. */
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #fetch: typeof fetch;

  constructor(baseUrl: string | URL, options: ShaleClientOptions = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /**
   * Reads one key: its value, version and expiry, or `null` when it is
   * absent, deleted or expired.
   */
  async get(key: Bytes, opts: CallOptions = {}): Promise<Entry | null> {
    const k = toBytes(key);
    if (isDotKey(k)) return (await this.getMany([k], opts))[0];
    return await this.#call(opts, async (signal) => {
      const res = await this.#send("GET", keyPath(k), { signal });
      if (res.status !== 200) {
        const e = await failure(res);
        if (e.code === "not_found") return null;
        throw e;
      }
      const value = new Uint8Array(await res.arrayBuffer());
      const version = parseEtag(res.headers.get("etag"));
      const expires = res.headers.get("expires");
      const entry: Entry = { key: k, value, version };
      if (expires !== null) entry.expiresAt = Date.parse(expires);
      return entry;
    });
  }

  /**
   * Reads many keys at one snapshot (`POST /kv/get`, at most 1000 keys):
   * one entry or `null` per key, in the order asked.
   *
   * @example Two keys, one absent
   * ```ts
   * import { equal } from "node:assert/strict";
   * import { ShaleClient } from "./client.ts";
   * import { open } from "./mod.ts";
   * import { createHandler } from "./server/app.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const db = await open(dir, { sync: "none", background: "inline" });
   * const handler = createHandler(db);
   * const server = Deno.serve({ port: 0, onListen() {} }, handler);
   * const shale = new ShaleClient(`http://localhost:${server.addr.port}`);
   *
   * await shale.put(new Uint8Array([1, 0, 255]), "binary key");
   * const [a, b] = await shale.getMany([new Uint8Array([1, 0, 255]), "nope"]);
   * equal(new TextDecoder().decode(a!.value), "binary key");
   * equal(b, null);
   *
   * await server.shutdown();
   * handler.close();
   * await db.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async getMany(
    keys: readonly Bytes[],
    opts: CallOptions = {},
  ): Promise<(Entry | null)[]> {
    const body = JSON.stringify({ keys: keys.map((k) => b64(toBytes(k))) });
    return await this.#call(opts, async (signal) => {
      const doc = await this.#json("/kv/get", body, signal) as {
        items: ({ key: string; value: string; version: string } | null)[];
      };
      return doc.items.map((it) =>
        it === null ? null : {
          key: unb64(it.key),
          value: unb64(it.value),
          version: Number(it.version),
        }
      );
    });
  }

  /**
   * Writes a value; resolves to the new version. With `ifVersion` or
   * `ifAbsent` the write happens only if the condition holds (else a
   * `precondition_failed` {@link ShaleClientError}), atomically.
   *
   * @example An expiring key, created only once
   * ```ts
   * import { equal, ok, rejects } from "node:assert/strict";
   * import { ShaleClient, ShaleClientError } from "./client.ts";
   * import { open } from "./mod.ts";
   * import { createHandler } from "./server/app.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const db = await open(dir, { sync: "none", background: "inline" });
   * const handler = createHandler(db);
   * const server = Deno.serve({ port: 0, onListen() {} }, handler);
   * const shale = new ShaleClient(`http://localhost:${server.addr.port}`);
   *
   * await shale.put("session/abc", "token", { ttl: 300, ifAbsent: true });
   * const e = await shale.get("session/abc");
   * ok(e!.expiresAt! > Date.now());
   * await rejects(
   *   shale.put("session/abc", "again", { ifAbsent: true }),
   *   (err) => err instanceof ShaleClientError && err.status === 412,
   * );
   *
   * await server.shutdown();
   * handler.close();
   * await db.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async put(key: Bytes, value: Bytes, opts: PutOptions = {}): Promise<number> {
    const k = toBytes(key);
    if (isDotKey(k)) {
      return (await this.batch(
        [{ op: "put", key: k, value, ...pick(opts) }],
        opts,
      ))
        .version;
    }
    const query = opts.ttl === undefined ? "" : `?ttl=${ttlText(opts.ttl)}`;
    return await this.#call(opts, async (signal) => {
      const res = await this.#send("PUT", keyPath(k) + query, {
        signal,
        headers: conditionHeaders(opts),
        body: toBytes(value),
      });
      if (res.status !== 204) throw await failure(res);
      await res.body?.cancel();
      return parseEtag(res.headers.get("etag"));
    });
  }

  /**
   * Deletes a key (deleting an absent key succeeds). `ifVersion` deletes
   * only that version; `ifAbsent` is accepted for symmetry and only
   * succeeds when there is nothing to delete.
   */
  async delete(
    key: Bytes,
    opts: CallOptions & Condition = {},
  ): Promise<void> {
    const k = toBytes(key);
    if (isDotKey(k)) {
      await this.batch([{ op: "delete", key: k, ...pick(opts) }], opts);
      return;
    }
    await this.#call(opts, async (signal) => {
      const res = await this.#send("DELETE", keyPath(k), {
        signal,
        headers: conditionHeaders(opts),
      });
      if (res.status !== 204) throw await failure(res);
      await res.body?.cancel();
    });
  }

  /**
   * Applies puts, deletes and checks atomically (`POST /kv/batch`): all at
   * one version, or none. A failed condition rejects with a
   * `precondition_failed` error whose `index` is the first failing op.
   *
   * @example A compare-and-swap over two keys
   * ```ts
   * import { equal, rejects } from "node:assert/strict";
   * import { ShaleClient, ShaleClientError } from "./client.ts";
   * import { open } from "./mod.ts";
   * import { createHandler } from "./server/app.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const db = await open(dir, { sync: "none", background: "inline" });
   * const handler = createHandler(db);
   * const server = Deno.serve({ port: 0, onListen() {} }, handler);
   * const shale = new ShaleClient(`http://localhost:${server.addr.port}`);
   *
   * const v = await shale.put("balance/a", "100");
   * const r = await shale.batch([
   *   { op: "put", key: "balance/a", value: "70", ifVersion: v },
   *   { op: "put", key: "balance/b", value: "30", ifAbsent: true },
   * ]);
   * equal(r.applied, 2);
   * await rejects(
   *   shale.batch([{ op: "check", key: "balance/a", ifVersion: v }]),
   *   (err) => err instanceof ShaleClientError && err.index === 0,
   * );
   *
   * await server.shutdown();
   * handler.close();
   * await db.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async batch(
    ops: readonly BatchOp[],
    opts: CallOptions = {},
  ): Promise<{ applied: number; version: number }> {
    const body = JSON.stringify({
      ops: ops.map((o) => {
        if (o.op === "delete_range") {
          const wire: Record<string, unknown> = { op: o.op };
          if ("prefix" in o) wire.prefix = b64(toBytes(o.prefix));
          else {
            wire.start = b64(toBytes(o.start));
            if (o.end !== undefined) wire.end = b64(toBytes(o.end));
          }
          return wire;
        }
        const wire: Record<string, unknown> = {
          op: o.op,
          key: b64(toBytes(o.key)),
        };
        if (o.op === "put") {
          wire.value = b64(toBytes(o.value));
          if (o.ttl !== undefined) wire.ttl = o.ttl;
        }
        if (o.ifVersion !== undefined) wire.if_match = String(o.ifVersion);
        if (o.ifAbsent) wire.if_none_match = "*";
        return wire;
      }),
    });
    return await this.#call(opts, async (signal) => {
      const doc = await this.#json("/kv/batch", body, signal) as {
        applied: number;
        version: string;
      };
      return { applied: doc.applied, version: Number(doc.version) };
    });
  }

  /**
   * Reads one page of a range (`GET /kv/range`). Pass the previous page's
   * `next` as `cursor`, with the same bounds, to continue; the pages then
   * read at the first page's snapshot while the server holds it.
   */
  async listPage(
    opts: ListOptions & { cursor?: string } = {},
  ): Promise<Page> {
    const params: string[] = [];
    const add = (name: string, v: Bytes | undefined) => {
      if (v !== undefined) params.push(`${name}=${percentEncode(toBytes(v))}`);
    };
    add("prefix", opts.prefix);
    add("start", opts.start);
    add("end", opts.end);
    if (opts.reverse) params.push("reverse=true");
    if (opts.keysOnly) params.push("keys_only=true");
    if (opts.pageSize !== undefined) params.push(`limit=${opts.pageSize}`);
    if (opts.cursor !== undefined) {
      params.push(`cursor=${encodeURIComponent(opts.cursor)}`);
    }
    const path = `/kv/range${params.length ? "?" + params.join("&") : ""}`;
    return await this.#call(opts, async (signal) => {
      const res = await this.#send("GET", path, { signal });
      if (res.status !== 200) throw await failure(res);
      const doc = await res.json() as {
        items: { key: string; value?: string; version: string }[];
        next: string | null;
      };
      return {
        items: doc.items.map((it) => ({
          key: unb64(it.key),
          value: it.value === undefined ? new Uint8Array(0) : unb64(it.value),
          version: Number(it.version),
        })),
        next: doc.next,
      };
    });
  }

  /**
   * Every entry of a range, in key order (or reversed), fetched page by
   * page with cursors as the loop asks for more. Each key comes once.
   */
  async *list(opts: ListOptions = {}): AsyncGenerator<Entry, void, void> {
    let cursor: string | undefined;
    let left = opts.limit ?? Infinity;
    while (left > 0) {
      const pageSize = opts.pageSize === undefined && left < 1000
        ? left
        : opts.pageSize;
      const page = await this.listPage({ ...opts, pageSize, cursor });
      for (const item of page.items) {
        if (left-- <= 0) return;
        yield item;
      }
      if (page.next === null) return;
      cursor = page.next;
    }
  }

  /**
   * `GET /health`: `ok` when the store takes writes; otherwise the server's
   * error code (`read_only`, `disk_full`, `not_ready`, ...).
   */
  async health(
    opts: CallOptions = {},
  ): Promise<{ ok: boolean; code?: string; message?: string }> {
    return await this.#call(opts, async (signal) => {
      const res = await this.#send("GET", "/health", { signal });
      if (res.status === 200) {
        await res.body?.cancel();
        return { ok: true };
      }
      const e = await failure(res);
      if (res.status !== 503) throw e;
      return { ok: false, code: e.code, message: e.message };
    });
  }

  /**
   * Follows the change feed (`GET /kv/watch`): yields every committed change
   * in the range, in commit order, one {@link ChangeEvent} per write (a batch
   * is one event). When the connection drops or the server drops a slow
   * consumer (`consumer_too_slow`), it reconnects with `Last-Event-ID` set to
   * the last position seen, so each change is yielded exactly once. A resume
   * point the server no longer holds rejects with a {@link ShaleClientError}
   * (`410 history_gone`): read the current state and watch again without
   * `since`. Breaking out of the loop or aborting `signal` closes the
   * connection and ends the loop without an error.
   *
   * @example Watching a prefix while writing to it
   * ```ts
   * import { deepEqual } from "node:assert/strict";
   * import { ShaleClient } from "./client.ts";
   * import { open } from "./mod.ts";
   * import { createHandler } from "./server/app.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const db = await open(dir, { sync: "none", background: "inline" });
   * const handler = createHandler(db);
   * const server = Deno.serve({ port: 0, onListen() {} }, handler);
   * const shale = new ShaleClient(`http://localhost:${server.addr.port}`);
   *
   * const start = await shale.put("other", "not watched");
   * await shale.put("jobs/1", "queued");
   * await shale.batch([
   *   { op: "delete", key: "jobs/1" },
   *   { op: "put", key: "jobs/2", value: "queued" },
   * ]);
   * const seen: string[][] = [];
   * for await (const ev of shale.watch({ prefix: "jobs/", since: start })) {
   *   seen.push(ev.changes.map((c) =>
   *     `${c.type} ${new TextDecoder().decode(c.key)}`
   *   ));
   *   if (seen.length === 2) break;
   * }
   * deepEqual(seen, [["put jobs/1"], ["delete jobs/1", "put jobs/2"]]);
   *
   * await server.shutdown();
   * handler.close();
   * await db.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async *watch(
    opts: WatchOptions = {},
  ): AsyncGenerator<ChangeEvent, void, void> {
    const params: string[] = [];
    const add = (name: string, v: Bytes | undefined) => {
      if (v !== undefined) params.push(`${name}=${percentEncode(toBytes(v))}`);
    };
    add("prefix", opts.prefix);
    add("start", opts.start);
    add("end", opts.end);
    if (opts.values === false) params.push("values=false");
    const path = `/kv/watch${params.length ? "?" + params.join("&") : ""}`;
    let last = opts.since === undefined ? undefined : String(opts.since);
    let retryMs = 1000;
    let failures = 0;
    const retries = opts.retries ?? 10;
    // One controller for the whole watch: aborting it (caller's signal, or
    // the loop ending) cancels the fetch and the body being read.
    const stop = new AbortController();
    const onAbort = () => stop.abort(opts.signal?.reason);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (opts.signal?.aborted) return;
    try {
      while (!stop.signal.aborted) {
        let res: Response;
        try {
          res = await this.#send("GET", path, {
            signal: stop.signal,
            headers: last === undefined ? {} : { "last-event-id": last },
          });
        } catch (err) {
          if (stop.signal.aborted) return;
          if (!(err instanceof TypeError) || ++failures > retries) {
            throw new ShaleClientError(
              0,
              "network_error",
              `watch of ${this.baseUrl} failed: ${(err as Error).message}`,
              { cause: err },
            );
          }
          await sleep(retryMs, stop.signal);
          continue;
        }
        if (res.status !== 200) throw await failure(res);
        failures = 0;
        try {
          for await (const ev of sseEvents(res.body!)) {
            if (ev.retry !== undefined) retryMs = ev.retry;
            if (ev.event === "error") {
              const doc = JSON.parse(ev.data) as {
                error: { code: string; message: string };
              };
              // A dropped slow consumer resumes like a cut connection.
              if (doc.error.code === "consumer_too_slow") break;
              throw new ShaleClientError(0, doc.error.code, doc.error.message);
            }
            if (ev.event === "change") {
              const event = parseChange(ev.data);
              last = ev.id ?? String(event.version);
              yield event;
            } else if (ev.id !== undefined) {
              // `ready` and heartbeats move the resume point forward too.
              last = ev.id;
            }
          }
        } catch (err) {
          if (err instanceof ShaleClientError || err instanceof SyntaxError) {
            throw err;
          }
          if (stop.signal.aborted) return;
          // The connection broke mid-stream: reconnect from `last`.
        }
      }
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      stop.abort();
    }
  }

  // ---- plumbing ---------------------------------------------------------

  /** POSTs a JSON body and returns the parsed 200 answer. */
  async #json(
    path: string,
    body: string,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const res = await this.#send("POST", path, {
      signal,
      headers: { "content-type": "application/json" },
      body,
    });
    if (res.status !== 200) throw await failure(res);
    return await res.json();
  }

  #send(
    method: string,
    path: string,
    init: {
      signal?: AbortSignal;
      headers?: Record<string, string>;
      body?: string | Uint8Array;
    },
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.#token !== undefined) {
      headers.authorization = `Bearer ${this.#token}`;
    }
    return this.#fetch(this.baseUrl + path, {
      method,
      headers,
      body: init.body as BodyInit | undefined,
      signal: init.signal,
    });
  }

  /**
   * Runs one call with its time limit and the caller's signal, and maps a
   * timeout or a network failure to a {@link ShaleClientError}. A caller's
   * abort rejects with the signal's own reason.
   */
  async #call<T>(
    opts: CallOptions,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const timeout = timeoutMs === undefined
      ? undefined
      : AbortSignal.timeout(timeoutMs);
    const signals = [opts.signal, timeout].filter((s) => s !== undefined);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    try {
      return await fn(signal);
    } catch (err) {
      if (err instanceof ShaleClientError) throw err;
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (timeout?.aborted) {
        throw new ShaleClientError(
          0,
          "timeout",
          `no answer from ${this.baseUrl} within ${timeoutMs} ms`,
          { cause: err },
        );
      }
      if (err instanceof TypeError) {
        throw new ShaleClientError(
          0,
          "network_error",
          `request to ${this.baseUrl} failed: ${err.message}`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}

// ---- helpers ----------------------------------------------------------------

function toBytes(v: Bytes): Uint8Array {
  return typeof v === "string" ? encoder.encode(v) : v;
}

/**
 * Keys `.` and `..` have no path of their own (URL parsers and the server
 * treat them as dot segments), so they go through `/kv/get` and
 * `/kv/batch` instead.
 */
function isDotKey(k: Uint8Array): boolean {
  return (k.length === 1 && k[0] === 0x2e) ||
    (k.length === 2 && k[0] === 0x2e && k[1] === 0x2e);
}

/** Keeps only the condition and TTL fields of per-call options. */
function pick(opts: PutOptions): Condition & { ttl?: number } {
  const out: Condition & { ttl?: number } = {};
  if (opts.ifVersion !== undefined) out.ifVersion = opts.ifVersion;
  if (opts.ifAbsent !== undefined) out.ifAbsent = opts.ifAbsent;
  if (opts.ttl !== undefined) out.ttl = opts.ttl;
  return out;
}

/**
 * `/kv/` plus the key, percent-encoded byte by byte. The first byte is
 * always encoded, so no key's path can spell a route name (`range`, `get`,
 * `batch`); `/` is encoded too, so a key is a single path segment.
 */
function keyPath(k: Uint8Array): string {
  if (k.length === 0) {
    throw new ShaleClientError(0, "invalid_key", "the key is empty");
  }
  return "/kv/" + escapeByte(k[0]) + percentEncode(k.subarray(1));
}

/** Percent-encodes every byte but the URL-unreserved ones (A-Z a-z 0-9 - . _ ~). */
function percentEncode(bytes: Uint8Array): string {
  let out = "";
  for (const c of bytes) {
    const unreserved = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f ||
      c === 0x7e;
    out += unreserved ? String.fromCharCode(c) : escapeByte(c);
  }
  return out;
}

function escapeByte(c: number): string {
  return "%" + HEX[c >> 4] + HEX[c & 15];
}

function conditionHeaders(c: Condition): Record<string, string> {
  const h: Record<string, string> = {};
  if (c.ifVersion !== undefined) h["if-match"] = `"${c.ifVersion}"`;
  if (c.ifAbsent) h["if-none-match"] = "*";
  return h;
}

function ttlText(seconds: number): string {
  if (!(Number.isFinite(seconds) && seconds > 0)) {
    throw new ShaleClientError(
      0,
      "invalid_parameter",
      `ttl must be a positive number of seconds, got ${seconds}`,
    );
  }
  // The server takes up to 9 decimals and no exponent.
  return Number.isInteger(seconds) ? String(seconds) : seconds.toFixed(9);
}

function parseEtag(tag: string | null): number {
  const m = tag === null ? null : /^"([0-9]+)"$/.exec(tag);
  if (m === null) {
    throw new ShaleClientError(
      0,
      "bad_response",
      `the server sent no version ETag (got ${tag})`,
    );
  }
  return Number(m[1]);
}

/** The error an unsuccessful answer stands for (consumes its body). */
async function failure(res: Response): Promise<ShaleClientError> {
  const text = await res.text();
  try {
    const doc = JSON.parse(text);
    const e = doc?.error;
    if (typeof e?.code === "string" && typeof e?.message === "string") {
      return new ShaleClientError(res.status, e.code, e.message, {
        index: typeof e.index === "number" ? e.index : undefined,
      });
    }
  } catch {
    // Not JSON: reported below with the start of the text.
  }
  return new ShaleClientError(
    res.status,
    "bad_response",
    `unexpected ${res.status} answer: ${text.slice(0, 200) || "(empty)"}`,
  );
}

/** One dispatched Server-Sent Event; `id` is the last `id:` of its block. */
interface SseEvent {
  event: string;
  data: string;
  id: string | undefined;
  retry: number | undefined;
}

/**
 * Parses a `text/event-stream` body (HTML spec rules that shale uses:
 * blank line dispatches, `:` starts a comment, an `id:` counts even in a
 * block without data, such as a heartbeat). Yields blocks with data or an id.
 */
async function* sseEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<SseEvent, void, void> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      buf += r.value.replaceAll("\r\n", "\n");
      let cut: number;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const ev: SseEvent = {
          event: "message",
          data: "",
          id: undefined,
          retry: undefined,
        };
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line === "" || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") ev.event = value;
          else if (field === "data") data.push(value);
          else if (field === "id") ev.id = value;
          else if (field === "retry" && /^[0-9]+$/.test(value)) {
            ev.retry = Number(value);
          }
        }
        ev.data = data.join("\n");
        if (data.length > 0 || ev.id !== undefined || ev.retry !== undefined) {
          yield ev;
        }
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** A `change` event's JSON data as a {@link ChangeEvent}. */
function parseChange(data: string): ChangeEvent {
  const doc = JSON.parse(data) as {
    version: number;
    changes: {
      key?: string;
      start?: string;
      end?: string;
      type: "put" | "delete" | "delete_range";
      value?: string;
      value_size?: number;
      expires_at?: number;
    }[];
  };
  return {
    version: Number(doc.version),
    changes: doc.changes.map((c) => {
      const out: Change = { key: unb64(c.key ?? c.start ?? ""), type: c.type };
      if (c.end !== undefined) out.end = unb64(c.end);
      if (c.value !== undefined) out.value = unb64(c.value);
      if (c.value_size !== undefined) out.valueSize = c.value_size;
      if (c.expires_at !== undefined) out.expiresAt = c.expires_at;
      return out;
    }),
  };
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Standard base64 with `btoa`, which every runtime has (Node 20 lacks `toBase64`). */
function b64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

function unb64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
