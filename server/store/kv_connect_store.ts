/**
 * The {@link Store} over a KV Connect backend (Deno Deploy KV, denokv, or
 * another shale's `/deno-kv`): shale as a stateless gateway. Keys and
 * versions map as `kv_connect_keys.ts` says; values are stored as bytes
 * (`Uint8Array`), TTLs as the mutation's expiry.
 *
 * What differs from the local engine, by the protocol's design:
 * - Reads are strongly consistent, each at its own snapshot: a `/kv/range`
 *   cursor continues at the latest state (strictly after its last key), and
 *   `/kv/get` reads at most {@link MAX_READ_RANGES} keys at one snapshot.
 * - A conditional write reads the key's versionstamp, decides the
 *   condition, and writes with a check on that versionstamp; when the check
 *   fails (another writer came between) it decides again. So racing
 *   conditional writes through any number of gateways stay linearizable:
 *   the backend's check is the arbiter.
 * - The backend's limits (Deno KV's: keys of 2048 bytes as encoded, values
 *   of 64 KiB, 1000 mutations and 100 checks per write, 80 KiB of keys and
 *   800 KiB in all per write) are checked before sending, as 4xx naming the
 *   limit.
 * - GET carries no `Expires`: KV Connect reads do not return expiry.
 *
 * @module
 */
import { PreconditionFailedError } from "../../mod.ts";
import { HttpError } from "../_codec.ts";
import { conditionFailure } from "../etag.ts";
import { MAX_CHECKS, MAX_MUTATIONS } from "../kv_connect/atomic.ts";
import { MAX_READ_RANGES } from "../kv_connect/data_path.ts";
import {
  MAX_TOTAL_KEY_BYTES,
  MAX_TOTAL_MUTATION_BYTES,
  MAX_VALUE_BYTES,
  MAX_WRITE_KEY_BYTES,
} from "../kv_connect/limits.ts";
import {
  type Check,
  type KvEntry,
  M_DELETE,
  M_SET,
  type Mutation,
  type ReadRange,
  VE_BYTES,
} from "../kv_connect/protobuf.ts";
import type { Sample } from "../metrics.ts";
import { responseTooLarge } from "./engine_store.ts";
import {
  KvConnectClient,
  type KvConnectClientOptions,
} from "./kv_connect_client.ts";
import {
  ALL_KEYS,
  decodeKey,
  encodeKey,
  versionOf,
  versionstampOf,
} from "./kv_connect_keys.ts";
import type {
  HeaderConditions,
  ScanPage,
  ScanRequest,
  Store,
  StoreEntry,
  StoreHealth,
  StoreItem,
  StoreOp,
} from "./store.ts";

export { MAX_READ_RANGES };

/** Entries asked per read of a scan: 100 values of 64 KiB stay under 8 MiB. */
const SCAN_READ_ENTRIES = 100;
/** Tries of a conditional write whose check lost a race. */
const MAX_CONDITION_ATTEMPTS = 20;
/** How long a health probe's answer is reused. */
const HEALTH_TTL_MS = 1000;
const EMPTY = new Uint8Array(0);

/** A store on a KV Connect backend. */
export class KvConnectStore implements Store {
  readonly kind = "kv_connect" as const;
  /** A key encodes to at least 2 more bytes (tag and terminator). */
  readonly maxKeyBytes = MAX_WRITE_KEY_BYTES - 2;
  readonly maxValueBytes = MAX_VALUE_BYTES;
  readonly client: KvConnectClient;
  readonly #ops = { gets: 0, puts: 0, deletes: 0, batches: 0, scans: 0 };
  #probe: Promise<void> | undefined;

  constructor(options: KvConnectClientOptions) {
    this.client = new KvConnectClient(options);
  }

  async get(key: Uint8Array): Promise<StoreEntry | undefined> {
    this.#ops.gets++;
    const out = await this.client.snapshotRead([pointRange(this.#key(key))]);
    const e = out.ranges[0]?.[0];
    return e === undefined ? undefined : toEntry(e);
  }

  async getMany(
    keys: Uint8Array[],
    maxResponseBytes: number,
  ): Promise<{ entries: (StoreEntry | undefined)[]; snapshot: string }> {
    if (keys.length > MAX_READ_RANGES) {
      throw new HttpError(
        413,
        "too_many_keys",
        `multi-get has ${keys.length} keys; a KV Connect backend reads at most ${MAX_READ_RANGES} keys at one snapshot`,
      );
    }
    this.#ops.gets += keys.length;
    const out = await this.client.snapshotRead(
      keys.map((k) => pointRange(this.#key(k))),
    );
    let bytes = 0;
    let snapshot = 0n;
    const entries = keys.map((_, i) => {
      const e = out.ranges[i]?.[0];
      if (e === undefined) return undefined;
      bytes += e.value.length;
      if (bytes > maxResponseBytes) throw responseTooLarge(maxResponseBytes);
      const entry = toEntry(e);
      if (BigInt(entry.version) > snapshot) snapshot = BigInt(entry.version);
      return entry;
    });
    return { entries, snapshot: snapshot.toString() };
  }

  async put(
    key: Uint8Array,
    value: Uint8Array,
    expiresAt: number | undefined,
    cond: HeaderConditions,
  ): Promise<string> {
    this.#ops.puts++;
    const k = this.#key(key);
    return await this.#conditional(k, cond, setMutation(k, value, expiresAt));
  }

  async delete(key: Uint8Array, cond: HeaderConditions): Promise<void> {
    this.#ops.deletes++;
    const k = this.#key(key);
    await this.#conditional(k, cond, deleteMutation(k));
  }

  async batch(ops: StoreOp[]): Promise<string> {
    this.#ops.batches++;
    const checks: Check[] = [];
    const checkOps: number[] = [];
    const mutations: Mutation[] = [];
    let keyBytes = 0;
    let total = 0;
    ops.forEach((op, i) => {
      if (op.type === "deleteRange") {
        // KV Connect has no range delete, and emulating it would read every
        // key of the range first: not atomic with the rest, not bounded.
        throw new HttpError(
          501,
          "not_supported_by_backend",
          `op ${i}: delete_range needs shale's local engine; this server is a gateway onto a KV Connect backend (docs/HTTP.md, "Gateway mode")`,
        );
      }
      const k = this.#key(op.key, `op ${i}: `);
      if (op.ifVersion !== undefined) {
        checks.push({ key: k, versionstamp: stampOf(op.ifVersion) });
        checkOps.push(i);
        keyBytes += k.length;
        total += k.length;
      }
      if (op.type === "check") return;
      mutations.push(
        op.type === "put"
          ? setMutation(k, op.value, op.expiresAt)
          : deleteMutation(k),
      );
      keyBytes += k.length;
      total += k.length + (op.type === "put" ? op.value.length : 0);
    });
    checkWriteLimits(checks.length, mutations.length, keyBytes, total);
    const out = await this.client.atomicWrite({ checks, mutations });
    if (out.status === 1) return versionOf(out.versionstamp);
    const failed = out.failedChecks.length > 0
      ? checkOps[out.failedChecks[0]]
      : await this.#firstFailedCheck(checks, checkOps);
    throw new PreconditionFailedError(
      `op ${failed}: the key's version does not match`,
      failed,
    );
  }

  snapshot(): undefined {
    return undefined;
  }

  async scanPage(req: ScanRequest): Promise<ScanPage> {
    this.#ops.scans++;
    let start = req.start === undefined ? ALL_KEYS.start : encodeKey(req.start);
    let end = req.end === undefined ? ALL_KEYS.end : encodeKey(req.end);
    const items: StoreItem[] = [];
    let bytes = 0;
    for (;;) {
      const want = Math.min(SCAN_READ_ENTRIES, req.limit - items.length + 1);
      const out = await this.client.snapshotRead([
        { start, end, limit: want, reverse: req.reverse },
      ]);
      const entries = out.ranges[0] ?? [];
      for (const e of entries) {
        const key = decodeKey(e.key);
        if (key === undefined) continue; // not a REST key (more elements)
        if (items.length >= req.limit || bytes >= req.maxBytes) {
          return { items, more: true };
        }
        const entry = toEntry(e);
        items.push({ key, ...entry });
        bytes += key.length + (req.keysOnly ? 0 : entry.value.length);
      }
      if (entries.length < want) return { items, more: false };
      // Continue strictly after (reversed: before) the last key read.
      const last = entries[entries.length - 1].key;
      if (req.reverse) end = last;
      else start = successorOf(last);
    }
  }

  /**
   * Whether the backend answers: the last call's outcome when it is under
   * a second old, else a probe (a one-entry read).
   */
  async health(): Promise<StoreHealth> {
    if (performance.now() - this.client.reach.at >= HEALTH_TTL_MS) {
      this.#probe ??= this.client.snapshotRead([
        { ...ALL_KEYS, limit: 1, reverse: false },
      ]).then(() => {}, () => {}).finally(() => this.#probe = undefined);
      await this.#probe;
    }
    return this.lastHealth();
  }

  lastHealth(): StoreHealth {
    const r = this.client.reach;
    return r.ok ? { ok: true } : {
      ok: false,
      code: "backend_unavailable",
      message: r.message,
      reason: r.message,
    };
  }

  stats(): Record<string, unknown> {
    return {
      url: this.client.url,
      ops: { ...this.#ops },
      ...this.client.counters,
      health: this.lastHealth(),
    };
  }

  samples(): Sample[] {
    const c = this.client.counters;
    return [
      {
        name: "shale_backend_calls_total",
        help: "HTTP calls to the KV Connect backend (retries included).",
        type: "counter",
        value: c.calls,
      },
      {
        name: "shale_backend_failures_total",
        help: "Backend calls that failed (no answer, 4xx or 5xx).",
        type: "counter",
        value: c.failures,
      },
      {
        name: "shale_backend_retries_total",
        help:
          "Backend calls repeated after a failure (reads; writes never sent).",
        type: "counter",
        value: c.retries,
      },
      {
        name: "shale_backend_latency_seconds_total",
        help: "Seconds spent waiting for the backend, over all calls.",
        type: "counter",
        value: c.latencySeconds,
      },
      {
        name: "shale_backend_up",
        help: "1 when the last call reached the backend.",
        type: "gauge",
        value: this.client.reach.ok ? 1 : 0,
      },
    ];
  }

  /** The backend key of `key`, refused (414) past the backend's key limit. */
  #key(key: Uint8Array, what = ""): Uint8Array {
    const k = encodeKey(key);
    if (k.length > MAX_WRITE_KEY_BYTES) {
      throw new HttpError(
        414,
        "key_too_long",
        `${what}key is ${k.length} bytes as a KV Connect key; the backend's limit is ${MAX_WRITE_KEY_BYTES}`,
      );
    }
    return k;
  }

  /**
   * Writes `mutation` if the header conditions hold: reads the current
   * versionstamp, decides, and writes with a check on it; a lost race
   * decides again on the new version.
   */
  async #conditional(
    k: Uint8Array,
    cond: HeaderConditions,
    mutation: Mutation,
  ): Promise<string> {
    const conditional = cond.ifMatch !== undefined || cond.ifNone !== undefined;
    for (let attempt = 0; attempt < MAX_CONDITION_ATTEMPTS; attempt++) {
      const checks: Check[] = [];
      if (conditional) {
        const out = await this.client.snapshotRead([pointRange(k)]);
        const e = out.ranges[0]?.[0];
        const current = e === undefined ? null : versionOf(e.versionstamp);
        const failure = conditionFailure(cond.ifMatch, cond.ifNone, current);
        if (failure !== undefined) throw failure;
        checks.push({ key: k, versionstamp: e?.versionstamp ?? EMPTY });
      }
      const out = await this.client.atomicWrite({
        checks,
        mutations: [mutation],
      });
      if (out.status === 1) return versionOf(out.versionstamp);
    }
    throw new HttpError(
      503,
      "contention",
      `the key changed under ${MAX_CONDITION_ATTEMPTS} conditional writes in a row; nothing was written, try again`,
      { "retry-after": "1" },
    );
  }

  /** Which check of a failed write no longer holds (the first, when all hold again). */
  async #firstFailedCheck(
    checks: Check[],
    checkOps: number[],
  ): Promise<number> {
    for (let at = 0; at < checks.length; at += MAX_READ_RANGES) {
      const part = checks.slice(at, at + MAX_READ_RANGES);
      const out = await this.client.snapshotRead(
        part.map((c) => pointRange(c.key)),
      );
      for (let i = 0; i < part.length; i++) {
        const e = out.ranges[i]?.[0];
        const now = e === undefined ? "" : versionOf(e.versionstamp);
        const want = part[i].versionstamp.length === 0
          ? ""
          : versionOf(part[i].versionstamp);
        if (now !== want) return checkOps[at + i];
      }
    }
    return checkOps[0];
  }
}

/** The backend's per-write limits, as 413 errors naming each. */
function checkWriteLimits(
  checks: number,
  mutations: number,
  keyBytes: number,
  total: number,
): void {
  const limits: [number, number, string][] = [
    [checks, MAX_CHECKS, "conditions (if_match, if_none_match, check ops)"],
    [mutations, MAX_MUTATIONS, "puts and deletes"],
    [keyBytes, MAX_TOTAL_KEY_BYTES, "bytes of keys (as KV Connect keys)"],
    [total, MAX_TOTAL_MUTATION_BYTES, "bytes of keys and values"],
  ];
  for (const [n, max, what] of limits) {
    if (n > max) {
      throw new HttpError(
        413,
        "too_many_ops",
        `the batch has ${n} ${what}; a KV Connect backend takes at most ${max} in one atomic write`,
      );
    }
  }
}

function pointRange(k: Uint8Array): ReadRange {
  return { start: k, end: successorOf(k), limit: 1, reverse: false };
}

/** The smallest key after `k`. */
function successorOf(k: Uint8Array): Uint8Array {
  const out = new Uint8Array(k.length + 1);
  out.set(k);
  return out;
}

function stampOf(v: string | null): Uint8Array {
  return v === null ? EMPTY : versionstampOf(v);
}

function setMutation(
  key: Uint8Array,
  value: Uint8Array,
  expiresAt: number | undefined,
): Mutation {
  return {
    key,
    value: { data: value, encoding: VE_BYTES },
    type: M_SET,
    expireAtMs: BigInt(expiresAt ?? 0),
    sumMin: EMPTY,
    sumMax: EMPTY,
    sumClamp: false,
  };
}

function deleteMutation(key: Uint8Array): Mutation {
  return {
    ...setMutation(key, EMPTY, undefined),
    value: undefined,
    type: M_DELETE,
  };
}

function toEntry(e: KvEntry): StoreEntry {
  if (e.encoding !== VE_BYTES) {
    throw new HttpError(
      422,
      "unsupported_value",
      `the value under this key was written by a Deno KV client as ${
        e.encoding === 2 ? "a Deno.KvU64" : "a serialized JavaScript value"
      }, not bytes; read it with Deno KV`,
    );
  }
  return { value: e.value, version: versionOf(e.versionstamp), expiresAt: 0 };
}
