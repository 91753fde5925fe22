/**
 * `POST /kv/batch`: a JSON list of puts, deletes, checks and range deletes
 * applied atomically. {@link parseBatch} is the pure part (a JSON document to engine
 * ops, every field validated); {@link batchRoute} reads the body and
 * applies the ops, answering 412 with the failing op's `index`.
 *
 * @module
 */
import { compareBytes, PreconditionFailedError, prefixEnd } from "../../mod.ts";
import {
  checkTtl,
  clip,
  HttpError,
  isObject,
  parseJson,
  parseQuery,
} from "../_codec.ts";
import { Base64Slab } from "../base64_slab.ts";
import { readBody } from "../body.ts";
import { type Ctx, json, type ServerEnv } from "../context.ts";
import { renderError } from "../errors.ts";
import { requireJson } from "../guard.ts";
import { checkJsonDepth } from "../json_depth.ts";
import { authorizeKey, authorizeRange, type Scope } from "../scope.ts";
import { canonicalVersion } from "../etag.ts";
import type { IfVersion, StoreOp } from "../store/store.ts";

/** The limits {@link parseBatch} checks. */
export interface BatchLimits {
  maxBatchOps: number;
  maxKeyBytes: number;
  maxValueBytes: number;
}

/** The batch route's handler over `env`. */
export function batchRoute(env: ServerEnv): (ctx: Ctx) => Promise<Response> {
  const { store, limits, metrics } = env;
  const bodyLimit = {
    bytes: limits.maxBatchBytes,
    code: "payload_too_large",
    what: "batch body",
  };
  /**
   * The request's ops, read, parsed and authorized. Its own function so
   * that the body and the parsed document are garbage once it returns,
   * not held (by the handler's frame) while the write waits for its
   * group's fsync.
   */
  async function readOps(ctx: Ctx): Promise<StoreOp[]> {
    const body = await readBody(
      ctx.req,
      ctx.lease,
      bodyLimit,
      (n) => metrics.addBytesIn(n),
    );
    checkJsonDepth(body, "batch body");
    // Decoding and parsing hold about two more copies of the body (the text,
    // then the parsed strings and their decoded bytes): charge them too.
    await ctx.lease.take(2 * body.length);
    const ops = parseBatch(parseJson(body, "batch body"), limits, env.clock());
    ops.forEach((op, i) => authorizeOp(ctx.scope, op, i));
    return ops;
  }

  return async function batch(ctx: Ctx): Promise<Response> {
    parseQuery(ctx.query, []);
    // A browser page can send text/plain without a preflight; JSON cannot.
    requireJson(ctx.req);
    // The ops are dropped once the engine has encoded them (it copies the
    // bytes): held across the wait for the fsync, 1000 ops survive a
    // scavenge or two and are promoted, to die in the old generation.
    let ops: StoreOp[] | undefined = await readOps(ctx);
    const applied = ops.length;
    const written = store.batch(ops);
    ops = undefined;
    try {
      const version = await written;
      return json(200, { applied, version });
    } catch (err) {
      if (err instanceof PreconditionFailedError) {
        // The engine's message already starts with "op <index>: ".
        return renderError("json", 412, err.code, err.message, undefined, {
          index: err.index,
        });
      }
      throw err;
    }
  };
}

/**
 * Throws 403 `forbidden` unless a scoped token may apply op `i`: a check
 * reads its key, a put or delete writes it, a range delete writes every key
 * of its `[start, end)` (or its prefix), which must lie within the token's.
 */
export function authorizeOp(
  scope: Scope | undefined,
  op: StoreOp,
  i: number,
): void {
  if (op.type === "deleteRange") {
    const start = op.prefix ?? op.start;
    const end = op.prefix ? prefixEnd(op.prefix) : op.end;
    authorizeRange(scope, "write", start, end, `op ${i}'s range`);
    return;
  }
  const access = op.type === "check" ? "read" : "write";
  authorizeKey(scope, access, op.key, `op ${i} key`);
}

/**
 * Turns a parsed batch body into store ops. Pure: `now` (ms since epoch)
 * turns each `ttl` into an expiry time. Throws {@link HttpError} (400
 * `invalid_batch`, 413, 414) naming the op at fault.
 */
export function parseBatch(
  doc: unknown,
  limits: BatchLimits,
  now: number,
): StoreOp[] {
  const { maxBatchOps, maxKeyBytes, maxValueBytes } = limits;
  const bad = (message: string) => new HttpError(400, "invalid_batch", message);
  if (!isObject(doc) || !Array.isArray(doc.ops)) {
    throw bad('batch body must be an object {"ops":[...]}');
  }
  for (const k of Object.keys(doc)) {
    if (k !== "ops") throw bad(`unknown field "${clip(k)}" in batch body`);
  }
  const raw: unknown[] = doc.ops;
  if (raw.length === 0) throw bad("ops must not be empty");
  if (raw.length > maxBatchOps) {
    throw new HttpError(
      413,
      "too_many_ops",
      `batch has ${raw.length} ops; the limit is ${maxBatchOps}`,
    );
  }
  const tooLong = (i: number, what: string, key: Uint8Array) =>
    new HttpError(
      414,
      "key_too_long",
      `op ${i}: ${what} is ${key.length} bytes; the limit is ${maxKeyBytes}`,
    );
  // One slab for the batch's fields: the engine copies them when it
  // encodes the write, so the views live no longer than the request.
  const slab = new Base64Slab();
  return raw.map((op, i): StoreOp => {
    if (!isObject(op)) throw bad(`op ${i} must be an object`);
    const allowed = op.op === "put"
      ? ["op", "key", "value", "ttl", "if_match", "if_none_match"]
      : op.op === "delete" || op.op === "check"
      ? ["op", "key", "if_match", "if_none_match"]
      : op.op === "delete_range"
      ? ["op", "start", "end", "prefix"]
      : undefined;
    if (allowed === undefined) {
      throw bad(
        `op ${i}: "op" must be "put", "delete", "check" or "delete_range"`,
      );
    }
    for (const k of Object.keys(op)) {
      if (!allowed.includes(k)) {
        throw bad(`op ${i}: unknown field "${clip(k)}" for ${op.op}`);
      }
    }
    if (op.op === "delete_range") {
      return parseDeleteRange(op, i, maxKeyBytes, tooLong, slab);
    }
    const key = slab.decode(op.key, `op ${i} key`);
    if (key.length === 0) throw bad(`op ${i}: key is empty`);
    if (key.length > maxKeyBytes) throw tooLong(i, "key", key);
    let ifVersion: IfVersion;
    if (op.if_match !== undefined && op.if_none_match !== undefined) {
      throw bad(`op ${i}: give if_match or if_none_match, not both`);
    }
    if (op.if_match !== undefined) {
      const m = typeof op.if_match === "string"
        ? /^"?([0-9]{1,30})"?$/.exec(op.if_match)
        : null;
      ifVersion = m === null ? undefined : canonicalVersion(m[1]);
      if (ifVersion === undefined) {
        throw bad(`op ${i}: if_match must be a version string such as "12"`);
      }
    } else if (op.if_none_match !== undefined) {
      if (op.if_none_match !== "*") {
        throw bad(`op ${i}: if_none_match must be "*"`);
      }
      ifVersion = null;
    }
    if (op.op === "delete") return { type: "delete", key, ifVersion };
    if (op.op === "check") {
      if (ifVersion === undefined) {
        throw bad(`op ${i}: check needs if_match or if_none_match`);
      }
      return { type: "check", key, ifVersion };
    }
    if (op.value === undefined) throw bad(`op ${i}: put needs a value`);
    const value = slab.decode(op.value, `op ${i} value`);
    if (value.length > maxValueBytes) {
      throw new HttpError(
        413,
        "value_too_large",
        `op ${i}: value is ${value.length} bytes; the limit is ${maxValueBytes}`,
      );
    }
    let expiresAt: number | undefined;
    if (op.ttl !== undefined) {
      if (typeof op.ttl !== "number") {
        throw bad(`op ${i}: ttl must be a number of seconds`);
      }
      expiresAt = Math.round(now + checkTtl(op.ttl, `op ${i} ttl`) * 1000);
    }
    return { type: "put", key, value, expiresAt, ifVersion };
  });
}

/**
 * A `delete_range` op: `prefix` alone, or `start` (inclusive; "" is the
 * first key) with an optional `end` (exclusive; absent: through the last
 * key). Requiring one of `start` and `prefix` keeps a mistyped op from
 * deleting every key.
 */
function parseDeleteRange(
  op: Record<string, unknown>,
  i: number,
  maxKeyBytes: number,
  tooLong: (i: number, what: string, key: Uint8Array) => HttpError,
  slab: Base64Slab,
): StoreOp {
  const bad = (message: string) =>
    new HttpError(400, "invalid_batch", `op ${i}: ${message}`);
  const field = (name: string): Uint8Array | undefined => {
    if (op[name] === undefined) return undefined;
    const b = slab.decode(op[name], `op ${i} ${name}`);
    if (b.length > maxKeyBytes) throw tooLong(i, name, b);
    return b;
  };
  const prefix = field("prefix");
  const start = field("start");
  const end = field("end");
  if (prefix !== undefined) {
    if (start !== undefined || end !== undefined) {
      throw bad("delete_range takes a prefix or start/end, not both");
    }
    if (prefix.length === 0) throw bad("prefix is empty");
    return { type: "deleteRange", prefix };
  }
  if (start === undefined) {
    throw bad('delete_range needs "start" (and "end") or "prefix"');
  }
  if (end !== undefined) {
    if (end.length === 0) throw bad("end is empty (leave it out: to the end)");
    if (compareBytes(start, end) >= 0) {
      throw bad("start must sort before end");
    }
  }
  return { type: "deleteRange", start, end };
}
