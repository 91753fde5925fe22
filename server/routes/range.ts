/**
 * `GET /kv/range`: one page of a scan (`start`/`end` or `prefix`, `limit`,
 * `reverse`, `keys_only`), with a cursor for the next page that continues on
 * the same snapshot (`cursors.ts`). A page ends at `limit` items or once its
 * keys and values pass `maxPageBytes`.
 *
 * @module
 */
import {
  ascii,
  clip,
  HttpError,
  parseBool,
  parseQuery,
  successor,
  toBase64,
} from "../_codec.ts";
import { compareBytes, prefixEnd, type Snapshot } from "../../mod.ts";
import { type Ctx, jsonText, type ServerEnv } from "../context.ts";
import { cursorBinding, decodeCursor, encodeCursor } from "../cursors.ts";
import { authorizeRange } from "../scope.ts";
import type { ScanPage } from "../store/store.ts";

const RANGE_PARAMS = [
  "start",
  "end",
  "prefix",
  "limit",
  "reverse",
  "cursor",
  "keys_only",
] as const;
const DEFAULT_SCAN_LIMIT = 1000;
/** The snapshot id of cursors over a store without snapshots (never held). */
const NO_SNAPSHOT = "00".repeat(16);

/** The range route's handler over `env`. */
export function rangeRoute(
  env: ServerEnv,
): (ctx: Ctx) => Promise<Response> {
  const { store, limits, cursors } = env;
  return async function range(ctx: Ctx): Promise<Response> {
    const p = parseQuery(ctx.query, RANGE_PARAMS);
    const limitText = p.get("limit");
    let limit = DEFAULT_SCAN_LIMIT;
    if (limitText !== undefined) {
      const t = ascii(limitText, "limit");
      limit = /^[0-9]{1,9}$/.test(t) ? Number(t) : NaN;
      if (!(limit >= 1 && limit <= limits.maxScanLimit)) {
        throw new HttpError(
          400,
          "invalid_parameter",
          `limit must be an integer from 1 to ${limits.maxScanLimit}, got "${
            clip(t)
          }"`,
        );
      }
    }
    const reverse = parseBool(p.get("reverse"), "reverse");
    const keysOnly = parseBool(p.get("keys_only"), "keys_only");
    let start = p.get("start");
    let end = p.get("end");
    const prefix = p.get("prefix");
    if (prefix !== undefined) {
      if (start !== undefined || end !== undefined) {
        throw new HttpError(
          400,
          "invalid_parameter",
          "prefix cannot be combined with start or end",
        );
      }
      start = prefix;
      end = prefixEnd(prefix);
    }
    if (start !== undefined && start.length === 0) start = undefined;
    if (end !== undefined && end.length === 0) end = undefined;
    // The bounds as asked; a cursor below only narrows them (and must come
    // with the same bounds), so it cannot lead outside the prefix.
    authorizeRange(ctx.scope, "read", start, end);

    const now = env.monotonic();
    cursors.releaseExpired(now);
    let snapshot: Snapshot | undefined;
    let snapshotId: string | undefined;
    // A cursor only continues the range it was made for: limit and
    // keys_only may change between pages, the bounds may not.
    const binding = cursorBinding(p.get("start"), p.get("end"), prefix);
    let createdAt = now;
    const cursorText = p.get("cursor");
    if (cursorText !== undefined && cursorText.length > 0) {
      const c = decodeCursor(ascii(cursorText, "cursor"));
      if (c.reverse !== reverse) {
        throw new HttpError(
          400,
          "invalid_cursor",
          "cursor was made for the other scan direction",
        );
      }
      if (compareBytes(c.binding, binding) !== 0) {
        throw new HttpError(
          400,
          "invalid_cursor",
          "cursor was made for other range parameters (start, end, prefix); repeat them unchanged with the cursor",
        );
      }
      // Resume strictly after (or, reversed, before) the last key returned.
      if (reverse) {
        if (end === undefined || compareBytes(c.lastKey, end) < 0) {
          end = c.lastKey;
        }
      } else {
        const after = successor(c.lastKey);
        if (start === undefined || compareBytes(after, start) > 0) {
          start = after;
        }
      }
      const resumed = cursors.resume(c.snapshotId, now);
      if (resumed !== undefined) {
        snapshot = resumed.snapshot;
        snapshotId = c.snapshotId;
        createdAt = resumed.createdAt;
      }
    }
    if (snapshot === undefined) {
      // A backend without snapshots reads the latest state on every page.
      snapshot = store.snapshot();
      snapshotId = undefined;
    }

    let page: ScanPage = { items: [], more: false };
    const empty = start !== undefined && end !== undefined &&
      compareBytes(start, end) >= 0;
    try {
      if (!empty) {
        page = await store.scanPage({
          start,
          end,
          reverse,
          limit,
          maxBytes: limits.maxPageBytes,
          keysOnly,
          snapshot,
        });
      }
    } catch (err) {
      // The snapshot is out of the cache while this request owns it.
      if (snapshot !== undefined) cursors.release(snapshot);
      throw err;
    }
    const parts = page.items.map((item) => {
      const k = toBase64(item.key);
      return keysOnly
        ? `{"key":"${k}","version":"${item.version}"}`
        : `{"key":"${k}","value":"${
          toBase64(item.value)
        }","version":"${item.version}"}`;
    });
    const lastKey = page.items.at(-1)?.key;
    let next = "null";
    if (page.more && lastKey !== undefined) {
      snapshotId = snapshot === undefined ? NO_SNAPSHOT : cursors.keep(
        snapshotId,
        snapshot,
        createdAt,
        ctx.client,
        now,
      );
      next = `"${encodeCursor({ reverse, binding, snapshotId, lastKey })}"`;
    } else if (snapshot !== undefined) {
      cursors.release(snapshot);
    }
    return jsonText(`{"items":[${parts.join(",")}],"next":${next}}`);
  };
}
