/**
 * `shale serve`'s settings: the {@link ServeConfig} every default filled in,
 * built from the flags and environment by {@link parseServeConfig}, which
 * checks each value and how they combine (TLS pairs, auth on exposed hosts).
 *
 * @module
 */
import { envName, MIN_TOKEN_LENGTH } from "./cli_flags.ts";
import {
  autoSize,
  bool,
  int,
  oneOf,
  type Settings,
  size,
} from "./cli_values.ts";

/** Settings of `shale serve`, every default filled in. */
export interface ServeConfig {
  command: "serve";
  dataDir: string;
  /** KV Connect URL to serve from instead of `dataDir` (gateway mode). */
  backend: string | undefined;
  backendToken: string | undefined;
  host: string;
  port: number;
  sync: "always" | "interval" | "none";
  syncIntervalMs: number;
  /** Undefined: let the engine size it ("auto"). */
  memoryBudgetBytes: number | undefined;
  memtableBytes: number | undefined;
  blockCacheBytes: number | undefined;
  compression: "none" | "zstd";
  tableTargetBytes: number;
  /** 0: unlimited. */
  compactionBytesPerSecond: number;
  /** Nice value of the background worker threads; 0 leaves them alone. */
  compactionNice: number;
  /** Nice value of V8's garbage-collector helper threads; 0 leaves them alone. */
  gcThreadNice: number;
  baseLevelBytes: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  maxBatchBytes: number;
  maxBodyMemoryBytes: number;
  cursorMaxAgeMs: number;
  watchHistoryBytes: number;
  watchMaxLagBytes: number;
  watchHeartbeatMs: number;
  authToken: string | undefined;
  /** `--token-file`: scoped tokens (read at start and on SIGHUP). */
  tokenFile: string | undefined;
  insecureNoAuth: boolean;
  allowHosts: string[];
  allowOrigins: string[];
  publicUrl: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  logFormat: "text" | "json";
  accessLog: boolean;
  shutdownTimeoutMs: number;
  /** Bun's listener: node:http with every limit, or Bun.serve. */
  bunListener: "hardened" | "fast";
  /** Undefined: derived from the descriptor limit ("auto"). */
  maxConnections: number | undefined;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  requestTimeoutMs: number;
  writeTimeoutMs: number;
  maxResponseMemoryBytes: number;
}

/** True for host names only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.[0-9]{1,3}){3}$/.test(h);
}

/**
 * The warning to print at start when the server listens where other
 * machines can reach it and no auth token is set; undefined otherwise.
 */
export function exposureWarning(
  host: string,
  authToken: string | undefined,
): string | undefined {
  if (authToken !== undefined || isLoopback(host)) return undefined;
  return `listening on ${host}, which other machines can reach, without an auth token: anyone who can connect can read and write every key; set --auth-token (or SHALE_AUTH_TOKEN)`;
}

/**
 * Checks and types the settings of `shale serve`; `logFormat` is already
 * parsed (every command shares it). Throws through `s.fail`.
 */
export function parseServeConfig(
  s: Settings,
  logFormat: "text" | "json",
): ServeConfig {
  const { get, label, fail } = s;
  const tlsCert = get("tls-cert");
  const tlsKey = get("tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    fail(`${label("tls-cert")} and ${label("tls-key")} must be given together`);
  }
  // An empty token must not quietly mean "no auth": `get` skips empty env
  // values, so look at both sources here.
  const rawToken = s.raw("auth-token");
  if (rawToken === "") {
    fail(
      `--auth-token (${
        envName("auth-token")
      }) is set but empty; unset it to run without auth`,
    );
  }
  const authToken = get("auth-token");
  if (authToken !== undefined && !/^[\x21-\x7e]+$/.test(authToken)) {
    fail(`${label("auth-token")} must be printable ASCII without spaces`);
  }
  if (authToken !== undefined && authToken.length < MIN_TOKEN_LENGTH) {
    fail(
      `${
        label("auth-token")
      } must be at least ${MIN_TOKEN_LENGTH} characters, got ${authToken.length}`,
    );
  }
  const tokenFile = get("token-file");
  if (tokenFile !== undefined && authToken === undefined) {
    fail(
      `${
        label("token-file")
      } needs --auth-token (the admin token): without it every request would pass`,
    );
  }
  const insecureNoAuth = bool(
    get("insecure-no-auth")!,
    label("insecure-no-auth"),
    fail,
  );
  const host = get("host")!;
  if (authToken === undefined && !insecureNoAuth && !isLoopback(host)) {
    fail(
      `refusing to listen on ${host} without --auth-token: anyone who reaches it could read and write; set ${
        envName("auth-token")
      }, listen on 127.0.0.1, or pass --insecure-no-auth`,
    );
  }
  const list = (name: string) =>
    (get(name) ?? "").split(",").map((x) => x.trim()).filter((x) => x !== "");
  const allowHosts = list("allow-host");
  for (const h of allowHosts) {
    if (!/^[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$/i.test(h)) {
      fail(`${label("allow-host")} takes host names without port, got "${h}"`);
    }
  }
  const allowOrigins = list("allow-origin");
  for (const o of allowOrigins) {
    if (!/^https?:\/\/[^/\s]+$/i.test(o)) {
      fail(
        `${
          label("allow-origin")
        } takes origins such as https://app.example, got "${o}"`,
      );
    }
  }
  const publicUrl = get("public-url");
  if (publicUrl !== undefined && !/^https?:\/\/[^/\s?#]+$/i.test(publicUrl)) {
    fail(
      `${
        label("public-url")
      } must be scheme://host[:port] without a path, got "${publicUrl}"`,
    );
  }
  const maxKeyBytes = size(get("max-key-size")!, label("max-key-size"), fail);
  if (maxKeyBytes < 1 || maxKeyBytes > 4096) {
    fail(`${label("max-key-size")} must be from 1 to 4096`);
  }
  const accessLog = get("access-log")!;
  /** A timeout flag in seconds (fractions allowed, for tests), as ms. */
  const seconds = (name: string): number => {
    const raw = get(name)!;
    const v = Number(raw);
    if (!/^\d+(\.\d+)?$/.test(raw) || !(v >= 0.05 && v <= 86400)) {
      fail(`${label(name)} must be seconds from 0.05 to 86400, got "${raw}"`);
    }
    return Math.round(v * 1000);
  };
  const backend = get("backend");
  if (backend !== undefined && !/^https?:\/\/[^/\s]/i.test(backend)) {
    fail(
      `${
        label("backend")
      } must be an http:// or https:// URL, got "${backend}"`,
    );
  }
  return {
    command: "serve",
    dataDir: get("data-dir")!,
    backend,
    backendToken: get("backend-token"),
    host,
    port: int(get("port")!, label("port"), 0, 65535, fail),
    sync: oneOf(
      get("sync")!,
      ["always", "interval", "none"],
      label("sync"),
      fail,
    ),
    syncIntervalMs: int(
      get("sync-interval-ms")!,
      label("sync-interval-ms"),
      1,
      3_600_000,
      fail,
    ),
    memoryBudgetBytes: autoSize(
      get("memory-budget")!,
      label("memory-budget"),
      fail,
    ),
    memtableBytes: autoSize(
      get("memtable-size")!,
      label("memtable-size"),
      fail,
    ),
    blockCacheBytes: autoSize(
      get("block-cache-size")!,
      label("block-cache-size"),
      fail,
    ),
    compression: oneOf(
      get("compression")!,
      ["none", "zstd"],
      label("compression"),
      fail,
    ),
    tableTargetBytes: size(get("table-size")!, label("table-size"), fail),
    compactionBytesPerSecond: get("compaction-rate") === "unlimited"
      ? 0
      : size(get("compaction-rate")!, label("compaction-rate"), fail),
    compactionNice: int(
      get("compaction-nice")!,
      label("compaction-nice"),
      0,
      19,
      fail,
    ),
    gcThreadNice: int(
      get("gc-thread-nice")!,
      label("gc-thread-nice"),
      0,
      19,
      fail,
    ),
    baseLevelBytes: size(
      get("base-level-size")!,
      label("base-level-size"),
      fail,
    ),
    maxKeyBytes,
    maxValueBytes: size(get("max-value-size")!, label("max-value-size"), fail),
    maxBatchBytes: size(get("max-batch-size")!, label("max-batch-size"), fail),
    maxBodyMemoryBytes: size(
      get("max-body-memory")!,
      label("max-body-memory"),
      fail,
    ),
    cursorMaxAgeMs: int(
      get("cursor-max-age")!,
      label("cursor-max-age"),
      1,
      86400,
      fail,
    ) * 1000,
    watchHistoryBytes: size(
      get("watch-history-size")!,
      label("watch-history-size"),
      fail,
    ),
    watchMaxLagBytes: size(
      get("watch-max-lag")!,
      label("watch-max-lag"),
      fail,
    ),
    watchHeartbeatMs: int(
      get("watch-heartbeat-ms")!,
      label("watch-heartbeat-ms"),
      10,
      3_600_000,
      fail,
    ),
    authToken,
    tokenFile,
    insecureNoAuth,
    allowHosts,
    allowOrigins,
    publicUrl,
    tlsCert,
    tlsKey,
    logFormat,
    accessLog: oneOf(
          accessLog,
          ["true", "false", "1", "0"],
          label("access-log"),
          fail,
        ) === "true" || accessLog === "1",
    shutdownTimeoutMs: int(
      get("shutdown-timeout")!,
      label("shutdown-timeout"),
      0,
      3600,
      fail,
    ) * 1000,
    bunListener: oneOf(
      get("bun-listener")!,
      ["hardened", "fast"],
      label("bun-listener"),
      fail,
    ),
    maxConnections: get("max-connections") === "auto" ? undefined : int(
      get("max-connections")!,
      label("max-connections"),
      1,
      1_000_000,
      fail,
    ),
    headerTimeoutMs: seconds("header-timeout"),
    idleTimeoutMs: seconds("idle-timeout"),
    requestTimeoutMs: seconds("request-timeout"),
    writeTimeoutMs: seconds("write-timeout"),
    maxResponseMemoryBytes: size(
      get("max-response-memory")!,
      label("max-response-memory"),
      fail,
    ),
  };
}
