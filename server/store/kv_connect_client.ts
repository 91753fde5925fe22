/**
 * A KV Connect client over `fetch` (no dependency): the metadata exchange
 * (protocol versions 1 to 3, as shale's server, denokv and Deno Deploy speak
 * them), `snapshot_read`, `atomic_write` and `watch` on the strongly
 * consistent endpoint. The codec is `../kv_connect/client_codec.ts`.
 *
 * Failure rules, so that an error never becomes a false acknowledgement:
 * - A read is retried with backoff on a network error, a timeout, a 5xx or
 *   "read disabled"; after the last try it is 503 `backend_unavailable`.
 * - A write is retried only when it cannot have reached the backend (the
 *   connection was refused). A write whose answer was lost (timeout, cut
 *   connection, 5xx) is 503 `backend_unavailable` saying that its outcome
 *   is unknown; it is never retried (a second try could apply it twice or
 *   fail a check that the first try passed).
 * - A 4xx answer is the backend refusing the request: its limits become
 *   413/414 carrying the backend's own reason; auth and a missing database
 *   are 503 (the gateway's setup, not the client's request); anything else
 *   is 502 `backend_error`.
 * - A 401 or 400 on the data path repeats the metadata exchange once (the
 *   data token expired, or the URL now names another database).
 *
 * @module
 */
import { HttpError } from "../_codec.ts";
import { errorChain } from "../error_text.ts";
import { badBackend, refused, unavailable } from "./backend_errors.ts";
import {
  type AtomicWriteOutput,
  decodeAtomicWriteOutput,
  decodeSnapshotReadOutput,
  decodeWatchOutput,
  encodeAtomicWrite,
  encodeSnapshotRead,
  encodeWatch,
  type SnapshotReadOutput,
} from "../kv_connect/client_codec.ts";
import type {
  AtomicWrite,
  ReadRange,
  WatchKeyOutput,
} from "../kv_connect/protobuf.ts";

/** Protocol versions this client speaks, best last. */
export const CLIENT_VERSIONS: readonly number[] = [1, 2, 3];

/** Options of {@link KvConnectClient}. */
export interface KvConnectClientOptions {
  /** The metadata URL (`http://host:port/deno-kv/name`, a Deno Deploy KV URL). */
  url: string;
  /** The access token (`DENO_KV_ACCESS_TOKEN` of Deno's client). */
  token?: string;
  /** How long one backend call may take. Default 10 s. */
  timeoutMs?: number;
  /** Tries of a call that is safe to retry. Default 4. */
  attempts?: number;
  /** First backoff delay; it doubles per retry (with jitter). Default 50 ms. */
  backoffMs?: number;
  /** Wall clock (ms since epoch) for token expiry. Default `Date.now`. */
  clock?: () => number;
}

/** Counters of backend calls, for `/metrics` and `/stats`. */
export interface BackendCounters {
  calls: number;
  failures: number;
  retries: number;
  metadataExchanges: number;
  latencySeconds: number;
}

interface Metadata {
  version: number;
  databaseId: string;
  endpoint: string;
  token: string;
  expiresAt: number;
}

/** How a failed attempt may be handled. */
type Retry = "always" | "unsent";

/** One backend call: where, what, and when it may be repeated. */
interface Call {
  url: string;
  headers: Record<string, string>;
  body: BodyInit;
  retry: Retry;
  /** Names the call in errors ("snapshot_read", "metadata exchange"). */
  what: string;
}

/** Did a fetch failure happen before any byte could reach the server? */
function neverSent(err: unknown): boolean {
  return /connection refused|ECONNREFUSED|dns error|failed to lookup/i.test(
    errorChain(err),
  );
}

/** A KV Connect client for one database. */
export class KvConnectClient {
  readonly url: string;
  readonly counters: BackendCounters = {
    calls: 0,
    failures: 0,
    retries: 0,
    metadataExchanges: 0,
    latencySeconds: 0,
  };
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #clock: () => number;
  #meta: Promise<Metadata> | undefined;
  /**
   * The last call's outcome: reached (an answer, even a refusal), or not
   * (503, with why) at `at` (`performance.now()`).
   */
  reach: { ok: boolean; at: number; message?: string } = {
    ok: true,
    at: -Infinity,
  };

  constructor(options: KvConnectClientOptions) {
    let u: URL;
    try {
      u = new URL(options.url);
    } catch {
      throw new Error(`backend URL ${options.url} is not a URL`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new Error(`backend URL ${options.url} must be http: or https:`);
    }
    this.url = u.href.replace(/\/$/, "");
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#attempts = Math.max(1, options.attempts ?? 4);
    this.#backoffMs = options.backoffMs ?? 50;
    this.#clock = options.clock ?? Date.now;
  }

  /** Reads `ranges` at one snapshot (strongly consistent). Retried when it fails. */
  async snapshotRead(ranges: ReadRange[]): Promise<SnapshotReadOutput> {
    const body = encodeSnapshotRead(ranges);
    for (let attempt = 1;; attempt++) {
      const out = decodeSnapshotReadOutput(
        await this.#dataCall("snapshot_read", body, "always"),
      );
      if (!out.readDisabled && (out.status === 0 || out.status === 1)) {
        return out;
      }
      if (attempt >= this.#attempts) {
        throw unavailable(`the backend ${this.url} has reads disabled`);
      }
      await this.#backoff(attempt);
    }
  }

  /**
   * Sends one atomic write. Resolves with the backend's answer (success or
   * check failure); throws 503 when its outcome is unknown.
   */
  async atomicWrite(
    aw: Omit<AtomicWrite, "enqueues">,
  ): Promise<AtomicWriteOutput> {
    const out = decodeAtomicWriteOutput(
      await this.#dataCall("atomic_write", encodeAtomicWrite(aw), "unsent"),
    );
    if (out.status === 1 || out.status === 2) return out;
    if (out.status === 5) {
      throw unavailable(
        `the backend ${this.url} has writes disabled; the write was not applied`,
      );
    }
    throw new HttpError(
      502,
      "backend_error",
      `the backend ${this.url} answered the atomic write with status ${out.status}; its outcome is unknown`,
    );
  }

  /**
   * Watches `keys` (protocol version 3): yields, per frame the backend sends,
   * one {@link WatchKeyOutput} per key, in order; the first frame holds every
   * key's current entry. Ends when `signal` aborts; a lost stream throws 503
   * (watch again to resume: the first frame says where things stand).
   */
  async *watch(
    keys: Uint8Array[],
    signal: AbortSignal,
  ): AsyncGenerator<WatchKeyOutput[]> {
    const meta = await this.#metadata();
    if (meta.version < 3) {
      throw badBackend(
        `speaks KV Connect version ${meta.version}; watching needs version 3`,
      );
    }
    this.counters.calls++;
    let res: Response;
    try {
      res = await fetch(`${meta.endpoint}/watch`, {
        method: "POST",
        headers: dataHeaders(meta),
        body: encodeWatch(keys),
        signal,
      });
    } catch (err) {
      if (signal.aborted) return;
      this.counters.failures++;
      throw unavailable(
        `the backend did not answer the watch (${errorChain(err)})`,
      );
    }
    if (!res.ok || res.body === null) {
      this.counters.failures++;
      const reason = (await res.text()).slice(0, 500);
      throw res.status >= 500
        ? unavailable(
          `the backend answered the watch with ${res.status}: ${reason}`,
        )
        : refused(res.status, "watch", reason);
    }
    const reader = res.body.getReader();
    let buf = new Uint8Array(0);
    try {
      for (;;) {
        // A frame: u32 little-endian length, then a WatchOutput; 0 = keep-alive.
        while (buf.length >= 4) {
          const len = new DataView(buf.buffer, buf.byteOffset).getUint32(
            0,
            true,
          );
          if (buf.length < 4 + len) break;
          const frame = buf.subarray(4, 4 + len);
          buf = buf.subarray(4 + len);
          if (len === 0) continue;
          const out = decodeWatchOutput(frame);
          if (out.status !== 1) {
            throw unavailable(
              `the backend ended the watch with status ${out.status}`,
            );
          }
          yield out.keys;
        }
        const { done, value } = await reader.read();
        if (done) {
          throw unavailable("the backend closed the watch stream");
        }
        const next = new Uint8Array(buf.length + value.length);
        next.set(buf);
        next.set(value, buf.length);
        buf = next;
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof HttpError) throw err;
      throw unavailable(`the watch stream was cut (${errorChain(err)})`);
    } finally {
      reader.releaseLock();
      await res.body.cancel().catch(() => {});
    }
  }

  /** Forgets the data-path token, so the next call repeats the exchange. */
  reset(): void {
    this.#meta = undefined;
  }

  async #metadata(): Promise<Metadata> {
    const m = this.#meta;
    if (m !== undefined) {
      try {
        const meta = await m;
        // Renew a minute before the token expires.
        if (meta.expiresAt - 60_000 > this.#clock()) return meta;
      } catch {
        // A failed exchange is not kept: try again below.
      }
      if (this.#meta === m) this.#meta = undefined;
    }
    this.#meta ??= this.#exchange();
    return await this.#meta;
  }

  async #exchange(): Promise<Metadata> {
    this.counters.metadataExchanges++;
    const headers: Record<string, string> = {
      "content-type": "application/json",
    };
    if (this.#token !== undefined) {
      headers.authorization = `Bearer ${this.#token}`;
    }
    const res = await this.#call({
      url: this.url,
      headers,
      body: JSON.stringify({ supportedVersions: CLIENT_VERSIONS }),
      retry: "always",
      what: "metadata exchange",
    });
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(new TextDecoder().decode(res));
    } catch {
      throw badBackend("its metadata answer is not JSON");
    }
    const version = Number(doc.version ?? 1);
    const endpoints = Array.isArray(doc.endpoints) ? doc.endpoints : [];
    const strong = endpoints.find((e) =>
      (e as { consistency?: unknown }).consistency === "strong"
    ) as { url?: unknown } | undefined;
    if (
      !CLIENT_VERSIONS.includes(version) ||
      typeof doc.databaseId !== "string" ||
      typeof doc.token !== "string" || typeof strong?.url !== "string"
    ) {
      throw badBackend(
        "its metadata answer lacks a version this client speaks, a database id, a token or a strongly consistent endpoint",
      );
    }
    const expiresAt = Date.parse(String(doc.expiresAt));
    return {
      version,
      databaseId: doc.databaseId,
      // Versions 2 and 3 may give endpoints relative to the metadata URL.
      endpoint: new URL(strong.url, this.url + "/").href.replace(/\/$/, ""),
      token: doc.token,
      expiresAt: Number.isFinite(expiresAt)
        ? expiresAt
        : this.#clock() + 60_000,
    };
  }

  async #dataCall(
    method: string,
    body: Uint8Array<ArrayBuffer>,
    retry: Retry,
  ): Promise<Uint8Array> {
    for (let relogin = 0;; relogin++) {
      const meta = await this.#metadata();
      try {
        return await this.#call({
          url: `${meta.endpoint}/${method}`,
          headers: dataHeaders(meta),
          body,
          retry,
          what: method,
        });
      } catch (err) {
        // An expired data token (401), or a backend that now holds another
        // database under the URL (400: database id mismatch): the request
        // was refused, not applied, so one fresh exchange may repeat it.
        const status = (err as { backendStatus?: number }).backendStatus;
        if (status === 401 || status === 400) {
          this.reset();
          if (relogin === 0) continue;
        }
        throw err;
      }
    }
  }

  /** {@link #tries}, recording the outcome in {@link reach}. */
  async #call(call: Call): Promise<Uint8Array> {
    try {
      const out = await this.#tries(call);
      this.reach = { ok: true, at: performance.now() };
      return out;
    } catch (err) {
      if (err instanceof HttpError && err.status === 503) {
        this.reach = { ok: false, at: performance.now(), message: err.message };
      }
      throw err;
    }
  }

  /** One HTTP call with its retry rule; resolves with the body. */
  async #tries(call: Call): Promise<Uint8Array> {
    const { url, headers, body, retry, what } = call;
    for (let attempt = 1;; attempt++) {
      this.counters.calls++;
      const t0 = performance.now();
      let res: Response;
      try {
        res = await fetch(url, {
          method: "POST",
          headers,
          body,
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (err) {
        this.counters.latencySeconds += (performance.now() - t0) / 1000;
        this.counters.failures++;
        const safe = retry === "always" || neverSent(err);
        if (safe && attempt < this.#attempts) {
          await this.#backoff(attempt);
          continue;
        }
        const outcome = retry === "always"
          ? ""
          : safe
          ? "; the write was not applied"
          : "; the write's outcome is unknown, read the key to find out";
        throw unavailable(
          `the backend ${this.url} did not answer the ${what} (${
            errorChain(err)
          })${outcome}`,
        );
      }
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await res.arrayBuffer());
      } catch (err) {
        this.counters.failures++;
        if (retry === "always" && attempt < this.#attempts) {
          await this.#backoff(attempt);
          continue;
        }
        throw unavailable(
          `the backend's answer to the ${what} was cut (${errorChain(err)})${
            retry === "always" ? "" : "; the write's outcome is unknown"
          }`,
        );
      } finally {
        this.counters.latencySeconds += (performance.now() - t0) / 1000;
      }
      if (res.ok) return bytes;
      this.counters.failures++;
      const reason = new TextDecoder().decode(bytes.subarray(0, 500)).trim();
      if (res.status >= 500) {
        if (retry === "always" && attempt < this.#attempts) {
          await this.#backoff(attempt);
          continue;
        }
        throw unavailable(
          `the backend answered the ${what} with ${res.status}: ${reason}${
            retry === "always" ? "" : "; the write's outcome is unknown"
          }`,
        );
      }
      throw refused(res.status, what, reason);
    }
  }

  async #backoff(attempt: number): Promise<void> {
    this.counters.retries++;
    const base = this.#backoffMs * 2 ** (attempt - 1);
    await new Promise((r) => setTimeout(r, base / 2 + Math.random() * base));
  }
}

/** The headers of a data-path call under `meta`. */
function dataHeaders(meta: Metadata): Record<string, string> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${meta.token}`,
    "content-type": "application/x-protobuf",
  };
  if (meta.version === 1) {
    headers["x-transaction-domain-id"] = meta.databaseId;
  } else {
    headers["x-denokv-database-id"] = meta.databaseId;
    headers["x-denokv-version"] = String(meta.version);
  }
  return headers;
}
