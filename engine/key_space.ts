/**
 * Key spaces: the Db's API bound to one of 256 one-byte prefixes of the
 * stored keys (space 0 is the Db itself). A handle is a set of closures
 * over DbImpl, made on first use and kept for the Db's life; it is here
 * rather than in db.ts so that the public surface reads as the Db's own
 * methods.
 *
 * @module
 */
import { deleteOp, deleteRangeOp, putOp } from "./batch.ts";
import type { DbImpl } from "./db_impl.ts";
import { InvalidArgumentError } from "./errors.ts";
import type { KeySpace, Snapshot } from "./types.ts";
import { MAX_KEY_SPACE } from "./types.ts";

/** Throws InvalidArgumentError unless `id` is a key space (0..255). */
export function checkKeySpaceId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_KEY_SPACE) {
    throw new InvalidArgumentError(
      `a key space is an integer 0..${MAX_KEY_SPACE}, got ${id}`,
    );
  }
}

/** The handles of one Db's key spaces other than 0, made on first use. */
export class KeySpaces {
  #impl: DbImpl;
  #snapshot: () => Snapshot;
  #handles = new Map<number, KeySpace>();

  constructor(impl: DbImpl, snapshot: () => Snapshot) {
    this.#impl = impl;
    this.#snapshot = snapshot;
  }

  /** The handle of key space `id` (a valid id, not 0). */
  handle(id: number): KeySpace {
    let space = this.#handles.get(id);
    if (space === undefined) {
      const impl = this.#impl;
      space = {
        get: (key, opts) => impl.get(id, key, opts),
        version: (key) => impl.version(id, key),
        put: (key, value, opts) => impl.batch(id, [putOp(key, value, opts)]),
        delete: (key, opts) => impl.batch(id, [deleteOp(key, opts)]),
        batch: (ops) => impl.batch(id, ops),
        deleteRange: (start, end) =>
          impl.batch(id, [deleteRangeOp(start, end)]),
        scan: (opts) => impl.scan(id, opts),
        snapshot: this.#snapshot,
      };
      this.#handles.set(id, space);
    }
    return space;
  }
}
