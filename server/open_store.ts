/**
 * What `shale serve` serves from: the engine over `--data-dir`, or in
 * gateway mode (`--backend`) a KV Connect store, with the fields its
 * start-up line reports.
 *
 * @module
 */
import { type Db, open } from "../mod.ts";
import type { LogFn } from "./errors.ts";
import type { ServeConfig } from "./serve_config.ts";
import { KvConnectStore } from "./store/kv_connect_store.ts";
import { errorText } from "./error_text.ts";

/**
 * The engine over `cfg.dataDir`, or in gateway mode (`--backend`) the
 * KV Connect store; undefined (logged) when the data directory cannot be
 * opened.
 */
export async function openStore(
  cfg: ServeConfig,
  log: LogFn,
): Promise<
  {
    db?: Db;
    store?: KvConnectStore;
    listenFields: Record<string, unknown>;
  } | undefined
> {
  if (cfg.backend !== undefined) {
    const store = new KvConnectStore({
      url: cfg.backend,
      token: cfg.backendToken,
    });
    // Not fatal: the gateway serves 503 until the backend answers.
    const h = await store.health();
    if (!h.ok) {
      log("warn", "the backend does not answer yet", { error: h.message });
    }
    return { store, listenFields: { backend: store.client.url } };
  }
  const t0 = performance.now();
  let db;
  try {
    db = await open(cfg.dataDir, {
      sync: cfg.sync,
      syncIntervalMs: cfg.syncIntervalMs,
      memoryBudgetBytes: cfg.memoryBudgetBytes,
      memtableBytes: cfg.memtableBytes,
      blockCacheBytes: cfg.blockCacheBytes,
      compression: cfg.compression,
      tableTargetBytes: cfg.tableTargetBytes,
      compactionBytesPerSecond: cfg.compactionBytesPerSecond,
      compactionNice: cfg.compactionNice,
      baseLevelBytes: cfg.baseLevelBytes,
      maxKeyBytes: cfg.maxKeyBytes,
      maxValueBytes: cfg.maxValueBytes,
      changeHistoryBytes: cfg.watchHistoryBytes,
    });
  } catch (err) {
    log("error", "cannot open the data directory", {
      data_dir: cfg.dataDir,
      error: errorText(err),
    });
    return undefined;
  }
  const recoveryMs = Math.round((performance.now() - t0) * 10) / 10;
  for (const w of db.recovery.warnings) {
    log("warn", w, { data_dir: cfg.dataDir });
  }
  for (const t of db.recovery.tornTails) {
    log("warn", "recovery found a torn log tail (never acknowledged)", {
      ...t,
    });
  }
  return {
    db,
    listenFields: {
      data_dir: cfg.dataDir,
      sync: cfg.sync,
      recovery_ms: recoveryMs,
    },
  };
}
