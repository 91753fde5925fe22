/**
 * Range paging: the cursor codec and the snapshots cursors hold.
 *
 * Cursor bytes (then base64url): [version u8 = 2][flags u8: bit 0 reverse]
 * [range binding, 8 bytes][snapshot id, 16 bytes][last key returned, rest].
 * The binding is a digest of the request's start, end and prefix, so a
 * cursor cannot continue another range. The snapshot id names a snapshot
 * this process holds in {@link CursorSnapshots}; when it has expired (or the
 * server restarted) the scan continues at the latest state, still strictly
 * after the last key, so no key is returned twice. A snapshot released for
 * age (`maxAgeMs`) answers 410 instead, so a long scan cannot pin old data.
 *
 * @module
 */
import type { Snapshot } from "../mod.ts";
import { HttpError } from "./_codec.ts";
import type { LogFn } from "./errors.ts";
import { sha256 } from "./token_digest.ts";

const CURSOR_VERSION = 2;
const SNAPSHOT_ID_BYTES = 16;
/** Bytes of the range-parameter digest a cursor carries. */
const CURSOR_BINDING_BYTES = 8;
const HEAD_BYTES = 2 + CURSOR_BINDING_BYTES + SNAPSHOT_ID_BYTES;

/** What a cursor says: where to resume, in which scan, on which snapshot. */
export interface Cursor {
  reverse: boolean;
  binding: Uint8Array;
  snapshotId: string;
  lastKey: Uint8Array;
}

/**
 * The first bytes of SHA-256 over start, end and prefix, each framed as
 * [0] when absent or empty, else [1][length u32 BE][bytes]. Hashed in
 * JavaScript (`token_digest.ts`): every range request computes it, and
 * `node:crypto`'s hash object cost several runtime calls per update.
 */
export function cursorBinding(
  start: Uint8Array | undefined,
  end: Uint8Array | undefined,
  prefix: Uint8Array | undefined,
): Uint8Array {
  const parts = [start, end, prefix];
  let size = 0;
  for (const part of parts) size += part?.length ? 5 + part.length : 1;
  const framed = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    // An empty bound is no bound (as in the scan itself).
    if (part === undefined || part.length === 0) {
      framed[at++] = 0;
    } else {
      framed[at] = 1;
      new DataView(framed.buffer).setUint32(at + 1, part.length);
      framed.set(part, at + 5);
      at += 5 + part.length;
    }
  }
  return sha256(framed).subarray(0, CURSOR_BINDING_BYTES);
}

/** The cursor's text form (base64url, no padding). */
export function encodeCursor(c: Cursor): string {
  const out = new Uint8Array(HEAD_BYTES + c.lastKey.length);
  out[0] = CURSOR_VERSION;
  out[1] = c.reverse ? 1 : 0;
  out.set(c.binding, 2);
  out.set(Uint8Array.fromHex(c.snapshotId), 2 + CURSOR_BINDING_BYTES);
  out.set(c.lastKey, HEAD_BYTES);
  return out.toBase64({ alphabet: "base64url", omitPadding: true });
}

/** Parses a cursor this server issued; 400 `invalid_cursor` otherwise. */
export function decodeCursor(text: string): Cursor {
  let b: Uint8Array;
  try {
    b = Uint8Array.fromBase64(text, { alphabet: "base64url" });
  } catch {
    b = new Uint8Array(0);
  }
  if (b.length < HEAD_BYTES + 1 || b[0] !== CURSOR_VERSION || b[1] > 1) {
    throw new HttpError(
      400,
      "invalid_cursor",
      "cursor is not one this server issued",
    );
  }
  return {
    reverse: b[1] === 1,
    binding: b.slice(2, 2 + CURSOR_BINDING_BYTES),
    snapshotId: b.subarray(2 + CURSOR_BINDING_BYTES, HEAD_BYTES).toHex(),
    lastKey: b.slice(HEAD_BYTES),
  };
}

/** Limits of {@link CursorSnapshots}. */
export interface CursorLimits {
  /** How long a snapshot is kept after its last use. */
  ttlMs: number;
  /** Oldest a snapshot may get, however often it is used. */
  maxAgeMs: number;
  /** Most snapshots held; the least recently used goes first. */
  max: number;
  /** Most snapshots one client holds; its own least recently used goes first. */
  maxPerClient: number;
}

interface Held {
  snapshot: Snapshot;
  expiresAt: number;
  /** When the snapshot was taken; it is refused past `maxAgeMs`. */
  createdAt: number;
  client: string;
}

/** A snapshot taken back from the cache for one request. */
export interface Resumed {
  snapshot: Snapshot;
  createdAt: number;
}

/**
 * The snapshots held for cursors, by id, least recently used first, with a
 * per-client share. Times are monotonic milliseconds given by the caller.
 * A request owns a snapshot between {@link resume} and {@link keep} (or
 * {@link release}); meanwhile the cache does not list it.
 */
export class CursorSnapshots {
  readonly #limits: CursorLimits;
  readonly #log: LogFn;
  /** Cursor snapshots by hex id, least recently used first. */
  readonly #held = new Map<string, Held>();
  /** Cursors held per client, for the per-client share. */
  readonly #heldBy = new Map<string, number>();
  /** Ids of snapshots released for age, so their cursors get 410, not a silent restart. */
  readonly #agedOut = new Set<string>();
  #expired = 0;

  constructor(limits: CursorLimits, log: LogFn) {
    this.#limits = limits;
    this.#log = log;
  }

  /** Snapshots held now. */
  get size(): number {
    return this.#held.size;
  }

  /** Snapshots released after expiring or being evicted, since start. */
  get expired(): number {
    return this.#expired;
  }

  /** Releases the snapshots past their time, and the oldest past `max`. */
  releaseExpired(now: number): void {
    for (const [id, h] of this.#held) {
      if (h.expiresAt > now && this.#held.size <= this.#limits.max) break;
      this.#drop(id, h, now);
    }
  }

  /**
   * Takes the snapshot of cursor `id` for this request, or undefined when it
   * is gone (the scan goes on at the latest state). Throws 410
   * `cursor_expired` when it was released for age.
   */
  resume(id: string, now: number): Resumed | undefined {
    const h = this.#held.get(id);
    if (h !== undefined && h.createdAt + this.#limits.maxAgeMs <= now) {
      this.#drop(id, h, now);
    }
    if (this.#agedOut.has(id)) {
      throw new HttpError(
        410,
        "cursor_expired",
        `the cursor's snapshot is older than the limit of ${this.#limits.maxAgeMs} ms; start the scan again`,
      );
    }
    if (h === undefined) return undefined;
    // Back in the cache by keep(), at the end of the LRU order.
    this.#unhold(id, h);
    return { snapshot: h.snapshot, createdAt: h.createdAt };
  }

  /**
   * Holds `snapshot` for the next page of `client`'s scan, under `id` (a
   * fresh id when undefined); returns the id for the cursor.
   */
  keep(
    id: string | undefined,
    snapshot: Snapshot,
    createdAt: number,
    client: string,
    now: number,
  ): string {
    id ??= randomId();
    const h: Held = {
      snapshot,
      expiresAt: Math.min(
        now + this.#limits.ttlMs,
        createdAt + this.#limits.maxAgeMs,
      ),
      createdAt,
      client,
    };
    // A client past its share gives up its own least recently used cursor,
    // so it cannot evict the cursors of others.
    if ((this.#heldBy.get(client) ?? 0) >= this.#limits.maxPerClient) {
      for (const [oid, o] of this.#held) {
        if (o.client === client) {
          this.#drop(oid, o, now);
          break;
        }
      }
    }
    this.#held.set(id, h);
    this.#heldBy.set(client, (this.#heldBy.get(client) ?? 0) + 1);
    this.releaseExpired(now);
    return id;
  }

  /** Releases a snapshot a request owns; a failure is logged, not thrown. */
  release(s: Snapshot): void {
    try {
      s.release();
    } catch (err) {
      this.#log("warn", "releasing a snapshot failed", { error: String(err) });
    }
  }

  /** Releases every held snapshot. */
  close(): void {
    for (const h of this.#held.values()) this.release(h.snapshot);
    this.#held.clear();
  }

  #drop(id: string, h: Held, now: number): void {
    this.#unhold(id, h);
    this.#expired++;
    if (h.createdAt + this.#limits.maxAgeMs <= now) {
      this.#agedOut.add(id);
      // Ids only (16 bytes each), bounded: the oldest are forgotten first.
      if (this.#agedOut.size > 4 * this.#limits.max) {
        this.#agedOut.delete(this.#agedOut.values().next().value!);
      }
    }
    this.release(h.snapshot);
  }

  /** Takes `id` out of the cache (the caller owns its snapshot from then on). */
  #unhold(id: string, h: Held): void {
    if (!this.#held.delete(id)) return;
    const n = (this.#heldBy.get(h.client) ?? 1) - 1;
    if (n <= 0) this.#heldBy.delete(h.client);
    else this.#heldBy.set(h.client, n);
  }
}

function randomId(): string {
  const b = new Uint8Array(SNAPSHOT_ID_BYTES);
  crypto.getRandomValues(b);
  return b.toHex();
}
