/**
 * KV Connect's data path once a request is authorised and its body read:
 * snapshot reads, atomic writes (with checks, sums, min/max and enqueues
 * planned by `atomic.ts`) and watches (streamed by `watch.ts`), each from
 * and to protobuf (`protobuf.ts`) within Deno KV's limits (`limits.ts`).
 *
 * @module
 */
import {
  compareBytes,
  type Db,
  type KeySpace,
  PreconditionFailedError,
  prefixEnd,
} from "../../mod.ts";
import {
  failedChecks,
  parseAtomicWrite,
  type ParsedWrite,
  planBatch,
  wireEncoding,
} from "./atomic.ts";
import { badRequest, KvConnectError } from "./errors.ts";
import type { KvConnectContext, State } from "./handler.ts";
import { join, toVersionstamp } from "./keyspace.ts";
import {
  AW_CHECK_FAILURE,
  AW_SUCCESS,
  decodeAtomicWrite,
  decodeSnapshotRead,
  decodeWatch,
  encodeAtomicWriteOutput,
  encodeSnapshotReadOutput,
  type KvEntry,
} from "./protobuf.ts";
import { keyId } from "./watch.ts";
import {
  checkReadLimits,
  checkWatchKey,
  checkWriteLimits,
  MAX_READ_RESPONSE_BYTES,
  MAX_WATCHED_KEYS,
  MAX_WATCHES,
  MAX_WATCHES_PER_CLIENT,
} from "./limits.ts";

/** Most ranges in one snapshot read. */
export const MAX_READ_RANGES = 10;
/** Most entries one read may ask for, over all its ranges (Deno's client: 1000). */
export const MAX_READ_ENTRIES = 1000;
/** Most keys one watch may cover (Deno KV's limit). */
export const MAX_WATCH_KEYS = MAX_WATCHED_KEYS;
/** Attempts at a sum/min/max write before answering 503 (the client retries). */
export const MAX_RMW_ATTEMPTS = 50;

const PROTO_HEADERS = { "content-type": "application/x-protobuf" };

function toEntry(
  prefixLength: number,
  key: Uint8Array,
  value: Uint8Array,
  encoding: number,
  seq: number,
): KvEntry {
  return {
    key: key.subarray(prefixLength),
    value,
    encoding: wireEncoding(encoding),
    versionstamp: toVersionstamp(seq),
  };
}

/** Answers a snapshot read: every range at one snapshot. */
export function snapshotRead(
  ctx: KvConnectContext,
  db: KeySpace,
  prefix: Uint8Array,
  body: Uint8Array,
): Response {
  const ranges = decodeSnapshotRead(body);
  checkReadLimits(ranges);
  if (ranges.length > MAX_READ_RANGES) {
    throw badRequest(
      `too many ranges in one read (${ranges.length} > ${MAX_READ_RANGES})`,
    );
  }
  let total = 0;
  ranges.forEach((r, i) => {
    if (r.limit <= 0 || r.limit > MAX_READ_ENTRIES) {
      throw badRequest(
        `range ${i}: limit must be 1 to ${MAX_READ_ENTRIES}, got ${r.limit}`,
      );
    }
    total += r.limit;
  });
  // Returning fewer entries than asked would end the client's listing early,
  // so an over-large read is refused rather than cut short.
  if (total > MAX_READ_ENTRIES) {
    throw badRequest(
      `the ranges of one read ask for ${total} entries; at most ${MAX_READ_ENTRIES}`,
    );
  }
  const out: KvEntry[][] = [];
  let bytes = 0;
  const snapshot = db.snapshot();
  try {
    for (const r of ranges) {
      const start = join(prefix, r.start);
      // Every key-space prefix ends in 0x00, so it always has an end.
      const end = r.end.length === 0 ? prefixEnd(prefix)! : join(prefix, r.end);
      const entries: KvEntry[] = [];
      if (compareBytes(start, end) < 0) {
        for (
          const item of db.scan({
            start,
            end,
            reverse: r.reverse,
            limit: r.limit,
            snapshot,
          })
        ) {
          bytes += item.key.length + item.value.length;
          if (bytes > MAX_READ_RESPONSE_BYTES) {
            ctx.refused?.("kv_read_too_large");
            throw badRequest(
              `the answer to this read would pass ${MAX_READ_RESPONSE_BYTES} bytes; read fewer entries at a time (a smaller limit or batchSize)`,
            );
          }
          entries.push(
            toEntry(
              prefix.length,
              item.key,
              item.value,
              item.encoding,
              item.version,
            ),
          );
        }
      }
      out.push(entries);
    }
  } finally {
    snapshot.release();
  }
  return new Response(encodeSnapshotReadOutput(out), {
    headers: PROTO_HEADERS,
  });
}

/** Applies an atomic write, or answers which check failed. */
export async function atomicWrite(
  store: Db,
  db: KeySpace,
  state: State,
  prefix: Uint8Array,
  body: Uint8Array,
): Promise<Response> {
  const aw = decodeAtomicWrite(body);
  checkWriteLimits(aw);
  const parsed = parseAtomicWrite(aw, prefix);
  if (parsed.checks.some((c) => c.seq === -1)) return checkFailure(db, parsed);
  for (let attempt = 0; attempt < MAX_RMW_ATTEMPTS; attempt++) {
    const plan = planBatch(db, parsed);
    if (plan.ops.length === 0) {
      return writeOutput(AW_SUCCESS, toVersionstamp(store.visibleSeq));
    }
    let seq: number;
    try {
      seq = await db.batch(plan.ops);
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      if (err.index < parsed.checks.length) return checkFailure(db, parsed);
      // A key read for sum/min/max changed (or its write is still syncing):
      // wait a moment and recompute.
      await new Promise((r) => setTimeout(r, Math.min(1 + attempt, 10)));
      continue;
    }
    state.hub.notify(plan.touched.map(keyId));
    return writeOutput(AW_SUCCESS, toVersionstamp(seq));
  }
  throw new KvConnectError(
    503,
    "too much contention on the keys of this sum/min/max; retry",
  );
}

function checkFailure(db: KeySpace, parsed: ParsedWrite): Response {
  const failed = failedChecks(db, parsed);
  return writeOutput(AW_CHECK_FAILURE, new Uint8Array(0), failed);
}

function writeOutput(
  status: number,
  versionstamp: Uint8Array,
  failed: number[] = [],
): Response {
  return new Response(encodeAtomicWriteOutput(status, versionstamp, failed), {
    headers: PROTO_HEADERS,
  });
}

/** Opens a watch stream over the keys of the request. */
export function watch(
  req: Request,
  ctx: KvConnectContext,
  db: KeySpace,
  state: State,
  prefix: Uint8Array,
  body: Uint8Array,
): Response {
  const client = ctx.client ?? "local";
  const keys = decodeWatch(body);
  if (keys.length === 0) throw badRequest("a watch needs at least one key");
  if (keys.length > MAX_WATCH_KEYS) {
    throw badRequest(
      `too many keys in one watch (${keys.length} > ${MAX_WATCH_KEYS})`,
    );
  }
  keys.forEach((k, i) => {
    if (k.length === 0) throw badRequest(`watch key ${i} is empty`);
    checkWatchKey(k, `watch key ${i}`);
  });
  const admit = state.hub.admit(client);
  if (admit !== "ok") {
    ctx.refused?.("too_many_watches");
    // Per client: the client's own doing (4xx, shown to it). Server-wide:
    // temporary (503; Deno's client retries).
    throw admit === "client"
      ? new KvConnectError(
        429,
        `too many open watches from this client (at most ${MAX_WATCHES_PER_CLIENT})`,
      )
      : new KvConnectError(
        503,
        `too many open watches on this server (at most ${MAX_WATCHES}); retry later`,
        { "retry-after": "5" },
      );
  }
  const full = keys.map((k) => join(prefix, k));
  const read = (key: Uint8Array): KvEntry | undefined => {
    const r = db.get(key);
    return r === undefined
      ? undefined
      : toEntry(prefix.length, key, r.value, r.encoding, r.version);
  };
  // Read once up front so that a bad key or a closed store is answered
  // here, with a status, rather than by a stream that errors.
  for (const k of full) read(k);
  const probe = (key: Uint8Array) => {
    const r = db.get(key);
    return r === undefined
      ? { version: 0, expiresAt: 0 }
      : { version: r.version, expiresAt: r.expiresAt };
  };
  const stream = state.hub.open(full, { read, probe, client }, req.signal);
  // The stream is length-prefixed frames, not one protobuf message:
  // `@deno/kv` (Node) refuses any type but application/octet-stream here.
  return new Response(stream, {
    headers: {
      "content-type": "application/octet-stream",
      "cache-control": "no-store",
    },
  });
}
