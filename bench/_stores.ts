/**
 * The stores the embedded benchmark compares, behind one small interface:
 * shale (through `mod.ts`), LevelDB (`npm:classic-level`, loaded only when
 * asked for), SQLite (`node:sqlite`) and Deno KV (`Deno.openKv`). Each
 * entry says how it is set up, for the results file.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { type DbOptions, open as openShale } from "../mod.ts";
import { LEVELDB_SETUP, openLevelDb } from "./_leveldb.ts";

/** Every store, in report order. */
export const ALL_STORES = ["shale", "leveldb", "sqlite", "denokv"];

/** One write of a batch: a put, or a delete when `value` is null. */
export type Op = { key: Uint8Array; value: Uint8Array | null };

/** What each store offers the workloads; sync reads where the store has them. */
export interface Store {
  write(ops: Op[]): Promise<void> | void;
  put(key: Uint8Array, value: Uint8Array): Promise<unknown> | unknown;
  getSync?(key: Uint8Array): boolean;
  get?(key: Uint8Array): Promise<boolean>;
  /** Visits every entry; returns the count. */
  scan(): Promise<number> | number;
  close(): Promise<void> | void;
  /** fsyncs so far, where the store exposes it. */
  syncs?(): number;
  /** Store state worth reporting after the run. */
  describe?(): Record<string, unknown>;
  /**
   * Background-work counters (write stalls, flushes, compactions) so far,
   * where the store exposes them: the write workloads report their change.
   */
  counters?(): Record<string, number>;
}

/** A store: its name, its setup in words, and how to open it. */
export interface StoreDef {
  name: string;
  setup: string;
  open(dir: string, durable: boolean): Promise<Store>;
}

/** The stores by name. */
export const STORES: Record<string, StoreDef> = {
  shale: shaleStore(),
  leveldb: {
    name: "leveldb",
    setup:
      `${LEVELDB_SETUP}; \`db.batch()\` for fills, \`getSync()\` for reads (its fastest read API; the awaited \`get()\` rate is in the notes), \`iterator().nextv(1000)\` for scans, \`{sync: true}\` puts when durable`,
    async open(dir, durable) {
      const db = await openLevelDb(dir);
      const putOpts = { sync: durable };
      return {
        write: (ops) =>
          db.batch(
            ops.map((o) =>
              o.value === null
                ? { type: "del" as const, key: o.key }
                : { type: "put" as const, key: o.key, value: o.value }
            ),
            putOpts,
          ),
        put: (k, v) => db.put(k, v, putOpts),
        getSync: (k) => db.getSync(k) !== undefined,
        get: async (k) => (await db.get(k)) !== undefined,
        scan: async () => {
          let n = 0;
          const it = db.iterator();
          try {
            for (;;) {
              const items = await it.nextv(1000);
              if (items.length === 0) break;
              n += items.length;
            }
          } finally {
            await it.close();
          }
          return n;
        },
        close: () => db.close(),
      };
    },
  },
  sqlite: {
    name: "sqlite",
    setup:
      "`node:sqlite` `DatabaseSync`, `journal_mode=WAL`, `synchronous=OFF` (FULL when durable), 64 MiB page cache, `CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID`, prepared statements, fills in `BEGIN/COMMIT` transactions of the batch size, autocommit single puts",
    open(dir, durable) {
      const db = new DatabaseSync(`${dir}/kv.sqlite`);
      db.exec("PRAGMA journal_mode=WAL");
      db.exec(`PRAGMA synchronous=${durable ? "FULL" : "OFF"}`);
      db.exec("PRAGMA cache_size=-65536");
      db.exec(
        "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
      );
      const ins: StatementSync = db.prepare(
        "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)",
      );
      const del = db.prepare("DELETE FROM kv WHERE k = ?");
      const sel = db.prepare("SELECT v FROM kv WHERE k = ?");
      const all = db.prepare("SELECT k, v FROM kv ORDER BY k");
      return Promise.resolve({
        write: (ops) => {
          db.exec("BEGIN");
          try {
            for (const o of ops) {
              if (o.value === null) del.run(o.key);
              else ins.run(o.key, o.value);
            }
            db.exec("COMMIT");
          } catch (err) {
            db.exec("ROLLBACK");
            throw err;
          }
        },
        put: (k, v) => ins.run(k, v),
        getSync: (k) => sel.get(k) !== undefined,
        scan: () => {
          let n = 0;
          for (const _ of all.iterate()) n++;
          return n;
        },
        close: () => db.close(),
      });
    },
  },
  denokv: {
    name: "denokv",
    setup:
      "`Deno.openKv(path)` (SQLite-backed; its sync policy is built in and not configurable), keys `[Uint8Array]`, fills as `atomic()` ops of the batch size, awaited `get()`, `list({prefix: []}, {batchSize: 500})` for scans",
    async open(dir) {
      const kv = await Deno.openKv(`${dir}/kv.db`);
      return {
        write: async (ops) => {
          const a = kv.atomic();
          for (const o of ops) {
            if (o.value === null) a.delete([o.key]);
            else a.set([o.key], o.value);
          }
          const r = await a.commit();
          if (!r.ok) throw new Error("atomic commit failed");
        },
        put: (k, v) => kv.set([k], v),
        get: async (k) => (await kv.get([k])).versionstamp !== null,
        scan: async () => {
          let n = 0;
          for await (const _ of kv.list({ prefix: [] }, { batchSize: 500 })) {
            n++;
          }
          return n;
        },
        close: () => kv.close(),
      };
    },
  },
};

/**
 * shale through `mod.ts`, opened with `options` besides `sync` (bench/embedded.ts
 * `--shale-options` tries engine options without changing their defaults).
 */
export function shaleStore(options: DbOptions = {}): StoreDef {
  return {
    name: "shale",
    setup: Object.keys(options).length === 0
      ? "`open(dir, {sync})`, defaults otherwise (8 MiB memtable, 64 MiB block cache, background worker); `db.batch()` for fills, synchronous `db.get()`, `db.scan()` generator"
      : `\`open(dir, {sync, ...${
        JSON.stringify(options)
      }})\`, defaults otherwise; \`db.batch()\` for fills, synchronous \`db.get()\`, \`db.scan()\` generator`,
    async open(dir, durable) {
      const db = await openShale(dir, {
        ...options,
        sync: durable ? "always" : "none",
      });
      return {
        write: (ops) =>
          db.batch(
            ops.map((o) =>
              o.value === null
                ? { type: "delete" as const, key: o.key }
                : { type: "put" as const, key: o.key, value: o.value }
            ),
          ) as Promise<unknown> as Promise<void>,
        put: (k, v) => db.put(k, v),
        getSync: (k) => db.get(k) !== undefined,
        scan: () => {
          let n = 0;
          for (const _ of db.scan()) n++;
          return n;
        },
        close: () => db.close(),
        counters: () => {
          const o = db.stats().ops as Record<string, number>;
          return {
            stalls: o.stalls,
            stallMs: o.stallMs,
            slowdowns: o.slowdowns,
            flushes: o.flushes,
            compactions: o.compactions,
            trivialMoves: o.trivialMoves,
            compactMiB: o.compactBytesWritten / 1048576,
          };
        },
        syncs: () => (db.stats().ops as { walSyncs: number }).walSyncs,
        describe: () => {
          const s = db.stats() as {
            ops: Record<string, number>;
            writeAmplification: number;
            levels: { level: number; tables: number; bytes: number }[];
            blockCache: Record<string, number>;
          };
          return {
            levels: s.levels.filter((l) => l.tables > 0).map((l) =>
              `L${l.level}: ${l.tables} tables, ${
                (l.bytes / 1048576).toFixed(1)
              } MiB`
            ).join("; "),
            writeAmplification: s.writeAmplification,
            flushes: s.ops.flushes,
            compactions: s.ops.compactions,
            trivialMoves: s.ops.trivialMoves,
            stalls: s.ops.stalls,
            stallMs: Math.round(s.ops.stallMs),
            slowdowns: s.ops.slowdowns,
            "maxEventLoopStallMs (includes this benchmark's own synchronous read loops)":
              s.ops.maxEventLoopStallMs,
            blockCache: JSON.stringify(s.blockCache),
          };
        },
      };
    },
  };
}
