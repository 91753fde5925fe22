/**
 * The connection limits of `shale serve` (`--max-connections` and the
 * timeouts) and the descriptor arithmetic behind the default cap: a server
 * that accepts until the process runs out of file descriptors cannot open
 * table files or the WAL any more, so connections stop short of the limit.
 *
 * @module
 */
import { closeSync, openSync, readFileSync } from "node:fs";

/** The limits the listener enforces (see docs/HTTP.md, "Connections"). */
export interface ConnectionLimits {
  /** Connections open at once; past it new ones get 503 and are closed. */
  maxConnections: number;
  /** A new connection must deliver its first request's headers within this. */
  headerTimeoutMs: number;
  /** A kept-alive connection with no request in progress is closed after this. */
  idleTimeoutMs: number;
  /** From a request's arrival to its response's headers (body read included). */
  requestTimeoutMs: number;
  /** A response whose client reads nothing for this long is aborted. */
  writeTimeoutMs: number;
  /** Bytes of large response bodies written at once; past it 503 overloaded. */
  maxResponseMemoryBytes: number;
}

/** Bodies at least this large are streamed in chunks and counted. */
export const LARGE_RESPONSE_BYTES = 64 * 1024;

/**
 * How many file descriptors this process may open: the soft limit from
 * /proc/self/limits where it can be read (Linux; on Deno only with
 * --allow-all), else the descriptors free right now, counted by opening
 * /dev/null up to `probeMax` times (so a limit above `probeMax` reads as
 * `probeMax`), else 1024.
 */
export function descriptorLimit(probeMax = 4096): number {
  try {
    const text = readFileSync("/proc/self/limits", "utf8");
    const m = text.match(/^Max open files\s+(\d+|unlimited)/m);
    if (m) return m[1] === "unlimited" ? 1 << 20 : Number(m[1]);
  } catch {
    // not Linux, or not allowed: count instead.
  }
  const fds: number[] = [];
  try {
    while (fds.length < probeMax) fds.push(openSync("/dev/null", "r"));
  } catch {
    // out of descriptors (or no /dev/null: then fds is empty)
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  return fds.length > 0 ? fds.length : 1024;
}

/**
 * The default `--max-connections` for a descriptor limit: a quarter of the
 * descriptors (at least 32, at most 1024) stay for data files (the WAL, open
 * tables, the manifest, compaction's new files) and the runtime's own; never
 * more than 65,536 connections.
 */
export function defaultMaxConnections(fdLimit: number): number {
  const reserve = Math.min(1024, Math.max(32, Math.floor(fdLimit / 4)));
  return Math.max(1, Math.min(65_536, fdLimit - reserve));
}
