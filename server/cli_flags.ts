/**
 * The flag tables of the `shale` server-side commands (`serve`, `verify`,
 * `backup`, `restore`): each flag's name, type, default and help line.
 * Every flag can also be set by its environment variable ({@link envName}).
 * Parsing is in `_cli.ts`; the help text built from these is `cli_help.ts`.
 *
 * @module
 */

/** Shortest `--auth-token` accepted. */
export const MIN_TOKEN_LENGTH = 16;

/** One flag: its env var is `SHALE_` + the name in upper snake case. */
export interface FlagSpec {
  name: string;
  type: "string" | "boolean";
  /** Shown in help; also the value used when neither flag nor env is set. */
  default?: string;
  valueName?: string;
  help: string;
}

export const SERVE_FLAGS: FlagSpec[] = [
  {
    name: "data-dir",
    type: "string",
    default: "./data",
    valueName: "DIR",
    help: "data directory (created if missing)",
  },
  {
    name: "backend",
    type: "string",
    valueName: "URL",
    help:
      "serve the API from this KV Connect database (Deno Deploy KV, denokv, another shale's /deno-kv/NAME) instead of a data directory: a stateless gateway (docs/HTTP.md, 'Gateway mode')",
  },
  {
    name: "backend-token",
    type: "string",
    valueName: "TOKEN",
    help:
      "the backend's access token, as DENO_KV_ACCESS_TOKEN is for Deno (prefer the env var: flags show in ps)",
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
    name: "compression",
    type: "string",
    default: "none",
    valueName: "CODEC",
    help:
      "how new tables store their data blocks: none (raw) or zstd (smaller on disk for compressible values, slower reads that miss the block cache; a block that does not shrink by 1/8 stays raw); tables already written stay readable either way",
  },
  {
    name: "table-size",
    type: "string",
    default: "4MiB",
    valueName: "SIZE",
    help: "target size of a table file written by compaction",
  },
  {
    name: "compaction-rate",
    type: "string",
    default: "unlimited",
    valueName: "SIZE",
    help:
      "most bytes compaction writes per second (a SIZE, e.g. 32MiB), so that it leaves disk and CPU to requests; flushes are not limited",
  },
  {
    name: "compaction-nice",
    type: "string",
    default: "10",
    valueName: "N",
    help:
      "nice value 0-19 of the compaction worker thread, so the OS prefers the request thread when they share a core (Linux, needs --allow-ffi under Deno; 0 leaves it alone)",
  },
  {
    name: "gc-thread-nice",
    type: "string",
    default: "5",
    valueName: "N",
    help:
      "nice value 0-19 of the JavaScript runtime's garbage-collector helper threads, so the OS prefers the request thread when they share a core (Linux under Deno, needs --allow-ffi; 0 leaves them alone)",
  },
  {
    name: "base-level-size",
    type: "string",
    default: "16MiB",
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
    name: "token-file",
    type: "string",
    valueName: "FILE",
    help:
      "JSON file of scoped tokens, each limited to a key prefix and a mode (read or read-write) on the /kv/ routes; needs --auth-token (the admin token); mode 600; reloaded on SIGHUP (docs/HTTP.md, 'Scoped tokens')",
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
      "client connections open at once; past it new ones get 503 and are closed (auto: the descriptor limit less a quarter, 32-1024, kept for data files; see docs/HTTP.md)",
  },
  {
    name: "bun-listener",
    type: "string",
    default: "hardened",
    valueName: "KIND",
    help:
      "Bun only (ignored on Deno): hardened (node:http; every connection flag here enforced) or fast (Bun.serve: about half the server CPU per request, but no --max-connections and only one idle timer, reset by every byte, for the header, idle and write timeouts)",
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

export const VERIFY_FLAGS: FlagSpec[] = [
  SERVE_FLAGS[0],
  {
    name: "log-format",
    type: "string",
    default: "text",
    valueName: "FORMAT",
    help: "text or json (the summary and the list of errors)",
  },
];

export const BACKUP_FLAGS: FlagSpec[] = [
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

export const RESTORE_FLAGS: FlagSpec[] = [
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

/** The commands this table describes, with their one-line summary. */
export const COMMANDS: Record<string, { summary: string; flags: FlagSpec[] }> =
  {
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

/** `data-dir` → `SHALE_DATA_DIR`. */
export function envName(flag: string): string {
  return `SHALE_${flag.toUpperCase().replaceAll("-", "_")}`;
}
