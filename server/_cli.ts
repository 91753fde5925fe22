/**
 * Command-line parsing for `shale`: the flag tables, `--help` text, and the
 * merge of flags over `SHALE_*` environment variables over defaults. Pure:
 * takes argv and an env lookup, returns a config or throws {@link UsageError}.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runtime } from "./runtime.ts";
import { CLIENT_COMMANDS, EXIT_HELP } from "./client_cli.ts";

/** Shortest `--auth-token` accepted. */
export const MIN_TOKEN_LENGTH = 16;

/** shale's release version, printed by `shale --version`. */
export const VERSION = "0.1.0";

/** A command line that cannot be run; main prints it and exits 2. */
export class UsageError extends Error {
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

/** One flag: its env var is `SHALE_` + the name in upper snake case. */
interface FlagSpec {
  name: string;
  type: "string" | "boolean";
  /** Shown in help; also the value used when neither flag nor env is set. */
  default?: string;
  valueName?: string;
  help: string;
}

const SERVE_FLAGS: FlagSpec[] = [
  {
    name: "data-dir",
    type: "string",
    default: "./data",
    valueName: "DIR",
    help: "data directory (created if missing)",
  },
  {
    name: "host",
    type: "string",
    default: "127.0.0.1",
    valueName: "HOST",
    help: "address to listen on",
  },
  {
    name: "port",
    type: "string",
    default: "8080",
    valueName: "PORT",
    help: "port to listen on; 0 picks a free one (printed at start-up)",
  },
  {
    name: "sync",
    type: "string",
    default: "always",
    valueName: "MODE",
    help:
      "always: a 2xx write is on disk (fsyncs shared by concurrent writes); interval: fsync every --sync-interval-ms; none: left to the OS",
  },
  {
    name: "sync-interval-ms",
    type: "string",
    default: "100",
    valueName: "MS",
    help: "fsync period of --sync=interval",
  },
  {
    name: "memory-budget",
    type: "string",
    default: "auto",
    valueName: "SIZE",
    help:
      "one budget for memtables (3/16), block cache (3/8) and open tables' index and filter data (7/16); auto: 8MiB memtable, 64MiB cache, 500 open tables",
  },
  {
    name: "memtable-size",
    type: "string",
    default: "auto",
    valueName: "SIZE",
    help:
      "memtable size that triggers a flush to a table file (auto: 1/16 of --memory-budget, else 8MiB)",
  },
  {
    name: "block-cache-size",
    type: "string",
    default: "auto",
    valueName: "SIZE",
    help: "block cache capacity (auto: 3/8 of --memory-budget, else 64MiB)",
  },
  {
    name: "table-size",
    type: "string",
    default: "8MiB",
    valueName: "SIZE",
    help: "target size of a table file written by compaction",
  },
  {
    name: "base-level-size",
    type: "string",
    default: "64MiB",
    valueName: "SIZE",
    help: "target size of level 1; each deeper level is 10x larger",
  },
  {
    name: "max-key-size",
    type: "string",
    default: "4096",
    valueName: "SIZE",
    help: "largest key accepted (at most 4096)",
  },
  {
    name: "max-value-size",
    type: "string",
    default: "16MiB",
    valueName: "SIZE",
    help: "largest value accepted",
  },
  {
    name: "watch-history-size",
    type: "string",
    default: "64MiB",
    valueName: "SIZE",
    help:
      "memory for the change history that /kv/watch resumes from (plus the log not yet flushed after a restart)",
  },
  {
    name: "watch-max-lag",
    type: "string",
    default: "16MiB",
    valueName: "SIZE",
    help:
      "history a /kv/watch consumer may fall behind by before its stream is closed with consumer_too_slow",
  },
  {
    name: "watch-heartbeat-ms",
    type: "string",
    default: "5000",
    valueName: "MS",
    help:
      "an idle /kv/watch stream gets a heartbeat comment this often (keep it under 10 s on Bun, which closes connections idle for 10 s)",
  },
  {
    name: "max-batch-size",
    type: "string",
    default: "8MiB",
    valueName: "SIZE",
    help: "largest /kv/batch request body",
  },
  {
    name: "max-body-memory",
    type: "string",
    default: "32MiB",
    valueName: "SIZE",
    help:
      "request body bytes held at once over all requests (a /kv/batch counts 3x: text and parsed copies); past it a request waits up to 1 s, then gets 503 overloaded",
  },
  {
    name: "cursor-max-age",
    type: "string",
    default: "60",
    valueName: "SECONDS",
    help:
      "oldest a /kv/range cursor's snapshot may get; older cursors get 410 cursor_expired",
  },
  {
    name: "auth-token",
    type: "string",
    valueName: "TOKEN",
    help:
      `require Authorization: Bearer TOKEN on every route but /health; at least ${MIN_TOKEN_LENGTH} characters (prefer the env var: flags show in ps)`,
  },
  {
    name: "insecure-no-auth",
    type: "boolean",
    default: "false",
    help:
      "allow listening on a non-loopback address without --auth-token (anyone who reaches it can read and write)",
  },
  {
    name: "allow-host",
    type: "string",
    valueName: "NAMES",
    help:
      "comma-separated host names served without a token besides localhost, 127.x and [::1] (DNS-rebinding guard)",
  },
  {
    name: "allow-origin",
    type: "string",
    valueName: "ORIGINS",
    help:
      "comma-separated origins (https://app.example) whose browser requests are allowed; others get 403",
  },
  {
    name: "public-url",
    type: "string",
    valueName: "URL",
    help:
      "base URL clients reach the server at (KV Connect v1 endpoint URLs); default: from the validated Host",
  },
  {
    name: "tls-cert",
    type: "string",
    valueName: "FILE",
    help: "PEM certificate chain; serve HTTPS (needs --tls-key)",
  },
  {
    name: "tls-key",
    type: "string",
    valueName: "FILE",
    help: "PEM private key for --tls-cert",
  },
  {
    name: "log-format",
    type: "string",
    default: "text",
    valueName: "FORMAT",
    help: "text or json",
  },
  {
    name: "access-log",
    type: "boolean",
    default: "false",
    help: "log one line per request",
  },
  {
    name: "max-connections",
    type: "string",
    default: "auto",
    valueName: "N",
    help:
      "client connections open at once; past it new ones get 503 and are closed (auto: the descriptor limit less a quarter, 32-1024, kept for data files; Deno only, see docs/HTTP.md)",
  },
  {
    name: "header-timeout",
    type: "string",
    default: "10",
    valueName: "SECONDS",
    help:
      "a new connection that sends no complete request head in this long is closed",
  },
  {
    name: "idle-timeout",
    type: "string",
    default: "30",
    valueName: "SECONDS",
    help:
      "a kept-alive connection (HTTP/1.1 or 1.0) with no request in progress is closed after this long",
  },
  {
    name: "request-timeout",
    type: "string",
    default: "60",
    valueName: "SECONDS",
    help:
      "from a request's head to its response's head, body upload included; past it the connection is closed",
  },
  {
    name: "write-timeout",
    type: "string",
    default: "30",
    valueName: "SECONDS",
    help:
      "a response whose client reads nothing for this long is aborted and its connection closed",
  },
  {
    name: "max-response-memory",
    type: "string",
    default: "256MiB",
    valueName: "SIZE",
    help:
      "bytes of large (64 KiB and more) response bodies being written at once; past it 503 overloaded",
  },
  {
    name: "shutdown-timeout",
    type: "string",
    default: "5",
    valueName: "SECONDS",
    help:
      "on SIGINT/SIGTERM, how long in-flight requests (uploads included) may take to finish before they are cut and the store is closed",
  },
];

const VERIFY_FLAGS: FlagSpec[] = [
  SERVE_FLAGS[0],
  {
    name: "log-format",
    type: "string",
    default: "text",
    valueName: "FORMAT",
    help: "text or json (the summary and the list of errors)",
  },
];

const BACKUP_FLAGS: FlagSpec[] = [
  {
    name: "url",
    type: "string",
    valueName: "URL",
    help: "base URL of the running server, e.g. http://127.0.0.1:8080",
  },
  {
    name: "out",
    type: "string",
    valueName: "FILE",
    help: "where to write the archive (refused if it exists)",
  },
  {
    name: "token",
    type: "string",
    valueName: "TOKEN",
    help:
      "the server's admin token (else SHALE_AUTH_TOKEN; prefer the env vars: flags show in ps)",
  },
];

const RESTORE_FLAGS: FlagSpec[] = [
  {
    name: "from",
    type: "string",
    valueName: "FILE",
    help: "backup archive made by 'shale backup' or GET /admin/backup",
  },
  {
    name: "data-dir",
    type: "string",
    valueName: "DIR",
    help: "new data directory to create (must not exist or be empty)",
  },
];

const COMMANDS: Record<string, { summary: string; flags: FlagSpec[] }> = {
  serve: { summary: "run the HTTP server", flags: SERVE_FLAGS },
  verify: {
    summary:
      "check every checksum of every table and WAL record in a data directory",
    flags: VERIFY_FLAGS,
  },
  backup: {
    summary: "download a consistent backup of a running server to a file",
    flags: BACKUP_FLAGS,
  },
  restore: {
    summary: "check a backup file and restore it into a new data directory",
    flags: RESTORE_FLAGS,
  },
};

/** Limits of `shale serve` without a flag, for its help (docs/HTTP.md has all). */
const FIXED_LIMITS = [
  "Fixed limits (docs/HTTP.md, 'Limits and timeouts', lists every limit):",
  "  /kv/batch: 10000 ops; JSON nested at most 32 levels (400 json_too_deep)",
  "  a body over --max-body-memory waits up to 1 s, then 503 overloaded",
  "  range cursors: released 60 s after last use; 1000 in all, 100 per client",
  "  KV Connect: values 64 KiB, keys 2048 B, 100 checks and 1000 mutations",
  "    per atomic write, 8 MiB per read answer, 10 keys per watch, 64 watches",
  "    per client and 1024 per server, data tokens valid 1 h",
  "Connections: Deno enforces every connection flag above; Bun (and the",
  "  dist/shale binary) has no --max-connections and one idle timer (the",
  "  shortest of the header, idle and write timeouts) for the three; large",
  "  responses are bounded on both (docs/HTTP.md, 'Connections')",
];

/** Settings of `shale serve`, every default filled in. */
export interface ServeConfig {
  command: "serve";
  dataDir: string;
  host: string;
  port: number;
  sync: "always" | "interval" | "none";
  syncIntervalMs: number;
  /** Undefined: let the engine size it ("auto"). */
  memoryBudgetBytes: number | undefined;
  memtableBytes: number | undefined;
  blockCacheBytes: number | undefined;
  tableTargetBytes: number;
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
  insecureNoAuth: boolean;
  allowHosts: string[];
  allowOrigins: string[];
  publicUrl: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  logFormat: "text" | "json";
  accessLog: boolean;
  shutdownTimeoutMs: number;
  /** Undefined: derived from the descriptor limit ("auto"). */
  maxConnections: number | undefined;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  requestTimeoutMs: number;
  writeTimeoutMs: number;
  maxResponseMemoryBytes: number;
}

/** Settings of `shale verify`. */
export interface VerifyConfig {
  command: "verify";
  dataDir: string;
  logFormat: "text" | "json";
}

/** Settings of `shale backup`. */
export interface BackupConfig {
  command: "backup";
  url: string;
  out: string;
  token: string | undefined;
}

/** Settings of `shale restore`. */
export interface RestoreConfig {
  command: "restore";
  from: string;
  dataDir: string;
}

/** What the command line asks for. */
export type Invocation =
  | ServeConfig
  | VerifyConfig
  | BackupConfig
  | RestoreConfig
  | { command: "help"; text: string }
  | { command: "version"; text: string };

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

/** `data-dir` → `SHALE_DATA_DIR`. */
export function envName(flag: string): string {
  return `SHALE_${flag.toUpperCase().replaceAll("-", "_")}`;
}

/** Top-level help: commands and global flags. */
export function mainHelp(): string {
  const lines = [
    `shale ${VERSION}: an LSM key/value store served over HTTP`,
    "",
    "Usage:",
    "  shale <command> [flags]",
    "  shale --help | --version",
    "",
    "Commands:",
  ];
  for (const [name, c] of Object.entries(COMMANDS)) {
    lines.push(`  ${name.padEnd(8)} ${c.summary}`);
  }
  lines.push("", "Client commands (--url URL [--token TOKEN]):");
  for (const [name, summary] of Object.entries(CLIENT_COMMANDS)) {
    lines.push(`  ${name.padEnd(8)} ${summary}`);
  }
  lines.push("", ...EXIT_HELP);
  lines.push(
    "",
    "Run 'shale <command> --help' for the flags of a command. Every flag can",
    "also be set by an environment variable SHALE_<FLAG> (for example",
    "SHALE_DATA_DIR); flags win over the environment.",
  );
  return lines.join("\n");
}

/** Help of one command: every flag, its env var and default. */
export function commandHelp(command: string): string {
  const c = COMMANDS[command];
  const lines = [
    `shale ${command}: ${c.summary}`,
    "",
    "Usage:",
    `  shale ${command} [flags]`,
    "",
    "Flags:",
  ];
  for (const f of c.flags) {
    const left = `  --${f.name}${f.valueName ? ` ${f.valueName}` : ""}`;
    const dflt = f.default !== undefined ? ` (default ${f.default})` : "";
    lines.push(`${left.padEnd(30)} ${f.help}${dflt}`);
    lines.push(`${"".padEnd(30)} env ${envName(f.name)}`);
  }
  lines.push(`${"  -h, --help".padEnd(30)} show this help`);
  if (c.flags.some((f) => f.valueName === "SIZE")) {
    lines.push(
      "",
      "SIZE is a byte count with an optional suffix K, M or G (KiB, MiB, GiB).",
    );
  }
  if (command === "serve") lines.push("", ...FIXED_LIMITS);
  return lines.join("\n");
}

/**
 * Parses `args` (without the program name). `env` looks up environment
 * variables; flags win over it.
 */
export function parseCommandLine(
  args: string[],
  env: (name: string) => string | undefined,
): Invocation {
  const first = args[0];
  if (first === undefined) {
    throw new UsageError("no command given (try 'shale --help')");
  }
  if (first === "-h" || first === "--help" || first === "help") {
    if (args[1] !== undefined && args[1] in COMMANDS && first === "help") {
      return { command: "help", text: commandHelp(args[1]) };
    }
    return { command: "help", text: mainHelp() };
  }
  if (first === "-V" || first === "--version" || first === "version") {
    return {
      command: "version",
      text: `shale ${VERSION} (${runtime.name} ${runtime.version})`,
    };
  }
  if (first.startsWith("-")) {
    throw new UsageError(`unknown flag ${first} before the command`);
  }
  if (!(first in COMMANDS)) {
    throw new UsageError(
      `unknown command "${first}" (commands: ${
        Object.keys(COMMANDS).join(", ")
      })`,
    );
  }
  const specs = COMMANDS[first].flags;
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string }
  > = { help: { type: "boolean", short: "h" } };
  for (const f of specs) options[f.name] = { type: f.type };
  let values: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({
      args: args.slice(1),
      options,
      strict: true,
      allowPositionals: false,
    });
    values = parsed.values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new UsageError(
      err instanceof Error ? err.message.split("\n")[0] : String(err),
      first,
    );
  }
  if (values.help === true) {
    return { command: "help", text: commandHelp(first) };
  }
  /** Flags whose value came from their environment variable. */
  const fromEnv = new Set<string>();
  /** Flag, else non-empty env var, else default. */
  const get = (name: string): string | undefined => {
    const v = values[name];
    if (typeof v === "string") return v;
    if (v === true) return "true";
    const e = env(envName(name));
    if (e !== undefined && e !== "") {
      fromEnv.add(name);
      return e;
    }
    return specs.find((f) => f.name === name)?.default;
  };
  /** How an error names a setting: as the user gave it, flag or env var. */
  const label = (name: string): string =>
    fromEnv.has(name) ? envName(name) : `--${name}`;
  const fail = (message: string): never => {
    throw new UsageError(message, first);
  };
  if (first === "backup" || first === "restore") {
    const need = (name: string): string =>
      get(name) ?? fail(`${first} needs --${name}`);
    if (first === "restore") {
      return {
        command: "restore",
        from: need("from"),
        dataDir: need("data-dir"),
      };
    }
    const url = need("url");
    if (!/^https?:\/\/[^/]/.test(url)) {
      fail(`${label("url")} must be an http:// or https:// URL, got "${url}"`);
    }
    // The client side of the server's SHALE_AUTH_TOKEN convention.
    const token = get("token") ?? (env("SHALE_AUTH_TOKEN") || undefined);
    return { command: "backup", url, out: need("out"), token };
  }
  const logFormat = oneOf(
    get("log-format")!,
    ["text", "json"],
    label("log-format"),
    fail,
  );
  if (first === "verify") {
    return { command: "verify", dataDir: get("data-dir")!, logFormat };
  }

  const tlsCert = get("tls-cert");
  const tlsKey = get("tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    fail(`${label("tls-cert")} and ${label("tls-key")} must be given together`);
  }
  // An empty token must not quietly mean "no auth": `get` skips empty env
  // values, so look at both sources here.
  const rawToken = typeof values["auth-token"] === "string"
    ? values["auth-token"] as string
    : env(envName("auth-token"));
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
  return {
    command: "serve",
    dataDir: get("data-dir")!,
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
    tableTargetBytes: size(get("table-size")!, label("table-size"), fail),
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

function bool(v: string, flag: string, fail: (m: string) => never): boolean {
  return oneOf(v, ["true", "false", "1", "0"], flag, fail) === "true" ||
    v === "1";
}

function oneOf<T extends string>(
  v: string,
  allowed: readonly T[],
  /** The setting as the user named it: `--flag` or `SHALE_FLAG`. */
  what: string,
  fail: (m: string) => never,
): T {
  if (!(allowed as readonly string[]).includes(v)) {
    fail(`${what} must be one of ${allowed.join(", ")}, got "${v}"`);
  }
  return v as T;
}

function int(
  v: string,
  what: string,
  min: number,
  max: number,
  fail: (m: string) => never,
): number {
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) {
    fail(`${what} must be an integer from ${min} to ${max}, got "${v}"`);
  }
  return n;
}

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1 << 10,
  kb: 1 << 10,
  kib: 1 << 10,
  m: 1 << 20,
  mb: 1 << 20,
  mib: 1 << 20,
  g: 1 << 30,
  gb: 1 << 30,
  gib: 1 << 30,
};

/** Parses "64MiB", "512k", "4096" to a positive byte count. */
export function parseSize(v: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(v.trim());
  if (m === null) return undefined;
  const unit = UNITS[m[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const n = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** A size, or undefined for "auto" (the engine decides). */
function autoSize(
  v: string,
  what: string,
  fail: (m: string) => never,
): number | undefined {
  return v === "auto" ? undefined : size(v, what, fail);
}

function size(v: string, what: string, fail: (m: string) => never): number {
  const n = parseSize(v);
  if (n === undefined) {
    fail(
      `${what} must be a positive size such as 4096, 512K or 64MiB, got "${v}"`,
    );
  }
  return n!;
}
