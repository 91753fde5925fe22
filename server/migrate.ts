/**
 * Copies every live key, with its value and expiry, from one {@link Store}
 * to another (`shale migrate`): a local data directory to a KV Connect
 * backend and back, or between two backends.
 *
 * - Paged: the source is read a page at a time in key order (the engine at
 *   one snapshot); each page is written in atomic batches within the
 *   destination's limits (a KV Connect backend: 1000 mutations and 800 KiB
 *   per write).
 * - Resumable: after each page the last key copied is saved to a state
 *   file (written whole, then renamed over the old one); a run that finds
 *   the state file of the same source and destination continues after that
 *   key. A page copied twice rewrites the same values, so resuming is safe.
 * - Verified: at the end both sides are read again and their key count and
 *   SHA-256 over (key, value) in key order compared.
 *
 * Expiry: the engine's scan gives each key's expiry, so a copy from a data
 * directory keeps TTLs; KV Connect reads carry no expiry, so keys copied
 * from a backend arrive without one (counted in `withoutExpiry`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { successor } from "./_codec.ts";
import type { Store, StoreOp } from "./store/store.ts";

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Where progress is saved; undefined: not resumable. */
  stateFile?: string;
  /** Identifies source and destination in the state file. */
  label: { from: string; to: string };
  /** Keys read per page. Default 1000. */
  pageKeys?: number;
  /** Most bytes (keys and values) of one destination write. Default 512 KiB. */
  maxWriteBytes?: number;
  /** Most puts in one destination write. Default 500. */
  maxWriteOps?: number;
  /** Called after each page is written. */
  onProgress?: (p: MigrateProgress) => void;
  /** Wall clock (ms since epoch), to skip keys that expired meanwhile. */
  clock?: () => number;
}

/** Where a migration stands. */
export interface MigrateProgress {
  copied: number;
  bytes: number;
  /** Keys written without an expiry because the source does not report it. */
  withoutExpiry: number;
  /** Keys skipped because they expired before they were written. */
  expired: number;
  /** True when this run continued from a state file. */
  resumed: boolean;
}

/** Key count and SHA-256 of one side. */
export interface SideSummary {
  keys: number;
  sha256: string;
}

/** The outcome of {@link migrate}. */
export interface MigrateReport extends MigrateProgress {
  source: SideSummary;
  destination: SideSummary;
  /** Whether both sides hold the same keys and values. */
  match: boolean;
}

interface State {
  from: string;
  to: string;
  /** base64 of the last key copied. */
  lastKey: string;
  copied: number;
  bytes: number;
  withoutExpiry: number;
  expired: number;
}

/** Copies `from` into `to`, then compares both. See the module doc. */
export async function migrate(
  from: Store,
  to: Store,
  options: MigrateOptions,
): Promise<MigrateReport> {
  const clock = options.clock ?? Date.now;
  const pageKeys = options.pageKeys ?? 1000;
  const maxWriteBytes = options.maxWriteBytes ?? 512 << 10;
  const maxWriteOps = options.maxWriteOps ?? 500;
  const saved = await loadState(options);
  const progress: MigrateProgress = {
    copied: saved?.copied ?? 0,
    bytes: saved?.bytes ?? 0,
    withoutExpiry: saved?.withoutExpiry ?? 0,
    expired: saved?.expired ?? 0,
    resumed: saved !== undefined,
  };
  let start = saved === undefined
    ? undefined
    : successor(Uint8Array.fromBase64(saved.lastKey));
  const snapshot = from.snapshot();
  try {
    for (;;) {
      const page = await from.scanPage({
        start,
        reverse: false,
        limit: pageKeys,
        maxBytes: 8 << 20,
        keysOnly: false,
        snapshot,
      });
      let ops: StoreOp[] = [];
      let opBytes = 0;
      const flush = async () => {
        if (ops.length > 0) await to.batch(ops);
        ops = [];
        opBytes = 0;
      };
      const now = clock();
      for (const item of page.items) {
        if (item.expiresAt > 0 && item.expiresAt <= now) {
          progress.expired++;
          continue;
        }
        const size = item.key.length + item.value.length;
        if (ops.length >= maxWriteOps || opBytes + size > maxWriteBytes) {
          await flush();
        }
        ops.push({
          type: "put",
          key: item.key,
          value: item.value,
          expiresAt: item.expiresAt > 0 ? item.expiresAt : undefined,
        });
        opBytes += size;
        progress.copied++;
        progress.bytes += size;
        if (item.expiresAt === 0 && from.kind === "kv_connect") {
          progress.withoutExpiry++;
        }
      }
      await flush();
      const last = page.items.at(-1)?.key;
      if (last !== undefined) {
        await saveState(options, progress, last);
        start = successor(last);
      }
      options.onProgress?.({ ...progress });
      if (!page.more) break;
    }
  } finally {
    snapshot?.release();
  }
  const [source, destination] = [await summarize(from), await summarize(to)];
  return {
    ...progress,
    source,
    destination,
    match: source.keys === destination.keys &&
      source.sha256 === destination.sha256,
  };
}

/** Key count and SHA-256 over (key length, key, value length, value) in key order. */
export async function summarize(store: Store): Promise<SideSummary> {
  const h = createHash("sha256");
  const len = new Uint8Array(4);
  const view = new DataView(len.buffer);
  let keys = 0;
  let start: Uint8Array | undefined;
  for (;;) {
    const page = await store.scanPage({
      start,
      reverse: false,
      limit: 1000,
      maxBytes: 8 << 20,
      keysOnly: false,
    });
    for (const item of page.items) {
      view.setUint32(0, item.key.length);
      h.update(len).update(item.key);
      view.setUint32(0, item.value.length);
      h.update(len).update(item.value);
      keys++;
    }
    const last = page.items.at(-1)?.key;
    if (!page.more || last === undefined) break;
    start = successor(last);
  }
  return { keys, sha256: h.digest("hex") };
}

async function loadState(
  options: MigrateOptions,
): Promise<State | undefined> {
  if (options.stateFile === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(options.stateFile, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return undefined;
    throw err;
  }
  const s = JSON.parse(text) as State;
  if (s.from !== options.label.from || s.to !== options.label.to) {
    throw new Error(
      `the state file ${options.stateFile} belongs to a migration from ${s.from} to ${s.to}; remove it or pass another --state`,
    );
  }
  return s;
}

async function saveState(
  options: MigrateOptions,
  p: MigrateProgress,
  lastKey: Uint8Array,
): Promise<void> {
  if (options.stateFile === undefined) return;
  const state: State = {
    ...options.label,
    lastKey: lastKey.toBase64(),
    copied: p.copied,
    bytes: p.bytes,
    withoutExpiry: p.withoutExpiry,
    expired: p.expired,
  };
  const tmp = options.stateFile + ".tmp";
  await writeFile(tmp, JSON.stringify(state) + "\n");
  await rename(tmp, options.stateFile);
}
