/**
 * LevelDB for the benchmarks (`npm:classic-level`, LevelDB 1.23), opened the
 * same way everywhere it is a peer: binary keys and values
 * (`keyEncoding/valueEncoding: "view"`) and a 64 MiB block cache. Used by the
 * embedded benchmark (bench/_stores.ts) and by the HTTP benchmark's bare
 * handler backed by LevelDB (bench/_bare_server.ts).
 *
 * @module
 */

/** The part of `classic-level`'s API the benchmarks use. */
export interface LevelDb {
  open(): Promise<void>;
  batch(
    ops: (
      | { type: "del"; key: Uint8Array }
      | { type: "put"; key: Uint8Array; value: Uint8Array }
    )[],
    opts: { sync: boolean },
  ): Promise<void>;
  put(k: Uint8Array, v: Uint8Array, opts: { sync: boolean }): Promise<void>;
  getSync(k: Uint8Array): Uint8Array | undefined;
  get(k: Uint8Array): Promise<Uint8Array | undefined>;
  iterator(opts?: { gte?: Uint8Array; limit?: number }): {
    nextv(n: number): Promise<[Uint8Array, Uint8Array][]>;
    close(): Promise<void>;
  };
  /** A LevelDB property, e.g. `leveldb.num-files-at-level0`. */
  getProperty(name: string): string;
  close(): Promise<void>;
}

/** How LevelDB is opened wherever it is measured, in words. */
export const LEVELDB_SETUP =
  '`npm:classic-level@3.0.0` (LevelDB 1.23), `keyEncoding/valueEncoding: "view"`, 64 MiB cache';

/**
 * Opens (creating) a LevelDB database in `dir`. Rejects when the native
 * addon cannot be loaded.
 */
export async function openLevelDb(dir: string): Promise<LevelDb> {
  // A bench-only, optional peer: loaded here so that the engine's own
  // dependency list stays empty and a missing addon only marks LevelDB
  // as unavailable. The specifier is not a literal so that type checks
  // and tests never fetch it; bench/deno.json's lock pins it.
  const specifier = "npm:classic-level@3.0.0";
  const { ClassicLevel } = await import(specifier) as {
    ClassicLevel: new (dir: string, opts: object) => LevelDb;
  };
  const db = new ClassicLevel(dir, {
    keyEncoding: "view",
    valueEncoding: "view",
    cacheSize: 64 << 20,
  });
  await db.open();
  return db;
}
