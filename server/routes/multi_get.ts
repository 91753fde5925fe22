/**
 * `POST /kv/get`: reads many keys at one snapshot. The body is
 * `{"keys":["<base64>", ...]}`; the answer lists, in request order, each
 * key's `{"key","value","version"}` or `null` when it is absent, all as of
 * one version (the `snapshot` field), so no write lands between two of the
 * reads. Contract in `docs/HTTP.md`.
 *
 * The route lives here, apart from `app.ts`, and reaches the handler's body
 * reader and key checks through {@link MultiGetDeps}, so the limits and the
 * reserved-key rule stay the ones every other route applies.
 *
 * @module
 */
import { clip, HttpError, parseJson, toBase64 } from "../_codec.ts";
import { Base64Slab } from "../base64_slab.ts";
import { readBody } from "../body.ts";
import { requestHeader } from "../request_headers.ts";
import type { Ctx, RouteHandler, ServerEnv } from "../context.ts";
import { checkJsonDepth } from "../json_depth.ts";
import { authorizeKey } from "../scope.ts";
import type { Store } from "../store/store.ts";

/** Most keys in one multi-get unless the caller sets another limit. */
export const DEFAULT_MAX_GET_KEYS = 1000;
/** Largest multi-get body: enough for 1000 keys of 4096 bytes in base64. */
export const DEFAULT_MAX_GET_BODY_BYTES = 8 << 20;
/** Largest total of the values one answer carries (keys and JSON aside). */
export const DEFAULT_MAX_GET_RESPONSE_BYTES = 64 << 20;

/** What the route needs from the handler that mounts it. */
export interface MultiGetDeps {
  store: Store;
  /** The handler's streaming body reader (413 past `limit`, 411 unframed). */
  readBody(
    req: Request,
    limit: number,
    tooLargeCode: string,
    what: string,
  ): Promise<Uint8Array>;
  /** Throws the handler's error for a key the caller may not read (scoped tokens). */
  checkKey(key: Uint8Array, what: string): void;
  maxKeyBytes: number;
  /** Default {@link DEFAULT_MAX_GET_KEYS}. */
  maxKeys?: number;
  /** Default {@link DEFAULT_MAX_GET_BODY_BYTES}. */
  maxBodyBytes?: number;
  /** Default {@link DEFAULT_MAX_GET_RESPONSE_BYTES}. */
  maxResponseBytes?: number;
}

const ALLOW = "POST";

/**
 * Answers one request to `/kv/get` (auth is checked by the caller). Throws
 * {@link HttpError}s, which the handler renders as `{"error":{...}}`.
 *
 * @example Reading two keys at one snapshot
 * ```ts
 * import { deepEqual as assertEquals } from "node:assert/strict";
 * import { open } from "../../mod.ts";
 * import { createHandler } from "../app.ts";
 * const dir = await Deno.makeTempDir();
 * const db = await open(dir, { sync: "none", background: "inline" });
 * const handler = createHandler(db);
 * await db.put(new TextEncoder().encode("a"), new TextEncoder().encode("1"));
 * const res = await handler(new Request("http://127.0.0.1/kv/get", {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ keys: [btoa("a"), btoa("b")] }),
 * }));
 * const body = await res.json();
 * assertEquals(body.items[0].value, btoa("1"));
 * assertEquals(body.items[1], null);
 * handler.close();
 * await db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function multiGet(
  req: Request,
  deps: MultiGetDeps,
): Promise<Response> {
  if (req.method === "OPTIONS") {
    return new Response(null, { status: 204, headers: { allow: ALLOW } });
  }
  if (req.method !== "POST") {
    throw new HttpError(
      405,
      "method_not_allowed",
      `method ${
        clip(req.method, 16)
      } is not allowed here (allowed: ${ALLOW}); read one key with GET /kv/%67et`,
      { allow: ALLOW },
    );
  }
  requireJson(req);
  const maxKeys = deps.maxKeys ?? DEFAULT_MAX_GET_KEYS;
  const body = await deps.readBody(
    req,
    deps.maxBodyBytes ?? DEFAULT_MAX_GET_BODY_BYTES,
    "payload_too_large",
    "multi-get body",
  );
  const keys = parseKeys(body, maxKeys, deps);
  const maxResponse = deps.maxResponseBytes ?? DEFAULT_MAX_GET_RESPONSE_BYTES;
  const { entries, snapshot } = await deps.store.getMany(keys, maxResponse);
  const parts = entries.map((r, i) =>
    r === undefined
      ? "null"
      : `{"key":"${toBase64(keys[i])}","value":"${
        toBase64(r.value)
      }","version":"${r.version}"}`
  );
  return new Response(
    `{"items":[${parts.join(",")}],"snapshot":"${snapshot}"}`,
    { headers: { "content-type": "application/json" } },
  );
}

/** JSON routes take only JSON: anything else is refused before reading. */
function requireJson(req: Request): void {
  const type = requestHeader(req, "content-type");
  const media = type?.split(";")[0].trim().toLowerCase();
  if (media !== "application/json") {
    req.body?.cancel().catch(() => {});
    throw new HttpError(
      415,
      "unsupported_media_type",
      type === null
        ? "send the body with Content-Type: application/json"
        : `Content-Type must be application/json, got "${clip(type)}"`,
      { accept: "application/json" },
    );
  }
}

function parseKeys(
  body: Uint8Array,
  maxKeys: number,
  deps: MultiGetDeps,
): Uint8Array[] {
  const doc = parseJson(body, "multi-get body");
  const bad = (message: string) =>
    new HttpError(400, "invalid_request", message);
  if (
    typeof doc !== "object" || doc === null || Array.isArray(doc) ||
    !Array.isArray((doc as { keys?: unknown }).keys)
  ) {
    throw bad('multi-get body must be an object {"keys":["<base64>", ...]}');
  }
  for (const k of Object.keys(doc)) {
    if (k !== "keys") throw bad(`unknown field "${clip(k)}" in multi-get body`);
  }
  const raw: unknown[] = (doc as { keys: unknown[] }).keys;
  if (raw.length === 0) throw bad("keys must not be empty");
  if (raw.length > maxKeys) {
    throw new HttpError(
      413,
      "too_many_keys",
      `multi-get has ${raw.length} keys; the limit is ${maxKeys}`,
    );
  }
  // The keys only live as long as the request: views of shared slabs.
  const slab = new Base64Slab();
  return raw.map((text, i) => {
    const key = slab.decode(text, `key ${i}`);
    if (key.length === 0) {
      throw new HttpError(400, "invalid_key", `key ${i} is empty`);
    }
    if (key.length > deps.maxKeyBytes) {
      throw new HttpError(
        414,
        "key_too_long",
        `key ${i} is ${key.length} bytes; the limit is ${deps.maxKeyBytes}`,
      );
    }
    deps.checkKey(key, `key ${i}`);
    return key;
  });
}

/**
 * The route `app.ts` mounts: {@link multiGet} with the handler's streaming
 * body reader (plus the JSON depth check) and the scoped token's read check.
 */
export function multiGetRoute(env: ServerEnv): RouteHandler {
  return (ctx: Ctx) =>
    multiGet(ctx.req, {
      store: env.store,
      readBody: async (_req, limit, code, what) => {
        const body = await readBody(
          ctx.req,
          ctx.lease,
          { bytes: limit, code, what },
          (n) => env.metrics.addBytesIn(n),
        );
        checkJsonDepth(body, what);
        return body;
      },
      checkKey: (key, what) => authorizeKey(ctx.scope, "read", key, what),
      maxKeyBytes: env.limits.maxKeyBytes,
    });
}
