/**
 * Borrowed reads: a value served straight from a memory-mapped table,
 * without the copy that {@link Db.get} makes.
 *
 * `Db.get` never hands out a view into a table's map, because the map is
 * unmapped when compaction deletes the table, and touching it after that
 * kills the process. Yet a caller that copies the value at once anyway (the
 * HTTP server: a `Response` copies its body when it is constructed, on Deno
 * and on Bun) pays for two copies. `db[getBorrowed](key)` answers as
 * `db.get(key)` does, except that the value may be such a view: valid only
 * until the caller returns to the event loop, so it must be used (copied)
 * synchronously and never kept. A table is unmapped only after a version
 * change that the main thread installs in a task of its own, so no table
 * closes before then.
 *
 * The symbol is not exported from mod.ts: embedders get copies. Measured
 * with `bench/http_ab.ts --workloads get_hit --keys 200000` (8 alternating
 * rounds, 2026-12-01): 13.5 -> 12.7 server CPU µs per GET hit (-5.6%).
 *
 * @module
 */

/** The key of Db's borrowed-read method (see the module's text). */
export const getBorrowed: unique symbol = Symbol("shale.getBorrowed");
