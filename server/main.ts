/**
 * The `shale` command: `serve` (the HTTP server) and `verify` (offline
 * checksum check). Owns flags and env (see `_cli.ts`), logging, the
 * listener, signals and shutdown; the HTTP API itself is `app.ts`. What
 * differs between Deno and Bun is behind `runtime.ts`.
 *
 * Shutdown order on SIGINT/SIGTERM: mark /health not ready, answer new
 * requests 503 `shutting_down`, wait for the requests in flight to finish
 * (uploads included; see `drain.ts`), stop the listener -- both bounded by
 * --shutdown-timeout -- then release cursor snapshots, close the engine
 * (flushes queued writes, releases the LOCK), exit 0. A second signal exits
 * at once with 130.
 *
 * @module
 */
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { verify } from "../mod.ts";
import { createHandler, type Handler, type LogFn } from "./app.ts";
import { openStore } from "./open_store.ts";
import { loadTokenFile, type ScopedToken } from "./token_file.ts";
import { parseCommandLine, UsageError, type VerifyConfig } from "./_cli.ts";
import { VERSION } from "./cli_help.ts";
import { exposureWarning, type ServeConfig } from "./serve_config.ts";
import { listenSurvivingEmfile } from "./listen.ts";
import { defaultMaxConnections, descriptorLimit } from "./connection_limits.ts";
import { Metrics } from "./metrics.ts";
import {
  type Listener,
  runtime,
  type ServeHandler,
  type StopSignal,
} from "./runtime.ts";
import { requestTarget } from "./guard.ts";
import { Drain, within } from "./drain.ts";
import { runBackup, runRestore } from "./backup_cli.ts";
import { runClient } from "./client_cli.ts";
import { CLIENT_COMMANDS } from "./client_cli_help.ts";
import { runMigrate } from "./migrate_cli.ts";
import { errorText } from "./error_text.ts";
import { lowerGcThreads } from "./gc_threads.ts";
import { LineWriter } from "./log_writer.ts";

/** A logger writing one line per call to `out`, as text or JSON. */
export function createLogger(
  format: "text" | "json",
  out: (line: string) => void = (line) => runtime.writeStdout(line + "\n"),
): LogFn {
  // With --access-log this runs for every request: the timestamp is made
  // once per millisecond, and plain numbers skip JSON.stringify.
  let lastMs = -1;
  let lastTime = "";
  return (level, message, fields = {}) => {
    const ms = Date.now();
    if (ms !== lastMs) {
      lastMs = ms;
      lastTime = new Date(ms).toISOString();
    }
    const time = lastTime;
    if (format === "json") {
      out(JSON.stringify({ time, level, msg: message, ...fields }));
      return;
    }
    let line = `${time} ${level.padEnd(5)} ${message}`;
    for (const k in fields) {
      const v = fields[k];
      const s = typeof v === "string"
        ? v
        : typeof v === "number" && Number.isFinite(v)
        ? String(v)
        : JSON.stringify(v);
      line += ` ${k}=${PLAIN_VALUE.test(s) ? s : JSON.stringify(s)}`;
    }
    out(line);
  };
}

/** A text-log value written without quotes. */
const PLAIN_VALUE = /^[^\s"=]+$/;

/** Runs the command line `args`; resolves with the process exit code. */
export async function main(args: string[]): Promise<number> {
  if (args[0] !== undefined && Object.hasOwn(CLIENT_COMMANDS, args[0])) {
    return await runClient(args, runtime.env);
  }
  if (args[0] === "migrate") {
    return await runMigrate(args.slice(1), runtime.env);
  }
  let inv;
  try {
    inv = parseCommandLine(args, runtime.env);
  } catch (err) {
    if (err instanceof UsageError) {
      const hint = err.command === undefined
        ? "shale --help"
        : `shale ${err.command} --help`;
      console.error(`shale: ${err.message}\nRun '${hint}' for usage.`);
      return 2;
    }
    throw err;
  }
  switch (inv.command) {
    case "help":
    case "version":
      console.log(inv.text);
      return 0;
    case "verify":
      return runVerify(inv);
    case "backup":
      return await runBackup(inv);
    case "restore":
      return await runRestore(inv);
    case "serve":
      return await serve(inv);
  }
}

async function serve(cfg: ServeConfig): Promise<number> {
  // Access-log lines are written once per event-loop turn (log_writer.ts);
  // every other line at once, after them.
  const out = new LineWriter((text) => runtime.writeStdout(text));
  const log = createLogger(cfg.logFormat, (line) => out.line(line));
  const exposed = exposureWarning(cfg.host, cfg.authToken);
  if (exposed !== undefined) log("warn", exposed, { host: cfg.host });
  let cert: string | undefined;
  let key: string | undefined;
  if (cfg.tlsCert !== undefined && cfg.tlsKey !== undefined) {
    try {
      cert = await readFile(cfg.tlsCert, "utf8");
      key = await readFile(cfg.tlsKey, "utf8");
    } catch (err) {
      log("error", "cannot read the TLS certificate or key", {
        error: errorText(err),
      });
      return 1;
    }
  }

  let scopedTokens: ScopedToken[] = [];
  if (cfg.tokenFile !== undefined) {
    try {
      scopedTokens = loadTokenFile(cfg.tokenFile, cfg.authToken);
    } catch (err) {
      log("error", "cannot use --token-file", { error: errorText(err) });
      return 1;
    }
  }

  const opened = await openStore(cfg, log);
  if (opened === undefined) return 1;
  const { db, store, listenFields } = opened;
  // Reported in the listening line; why not, on a line after it.
  const gcThreads = lowerGcThreads(cfg.gcThreadNice);

  const metrics = new Metrics();
  const handler = createHandler(db ?? store!, {
    authToken: cfg.authToken,
    scopedTokens,
    // A backend's own limits bound the flags (their defaults are the engine's).
    maxKeyBytes: Math.min(cfg.maxKeyBytes, store?.maxKeyBytes ?? Infinity),
    maxValueBytes: Math.min(
      cfg.maxValueBytes,
      store?.maxValueBytes ?? Infinity,
    ),
    maxBatchBytes: cfg.maxBatchBytes,
    maxBodyMemoryBytes: cfg.maxBodyMemoryBytes,
    cursorMaxAgeMs: cfg.cursorMaxAgeMs,
    allowHosts: cfg.allowHosts,
    allowOrigins: cfg.allowOrigins,
    publicUrl: cfg.publicUrl,
    log,
    metrics,
    watch: {
      maxLagBytes: cfg.watchMaxLagBytes,
      heartbeatMs: cfg.watchHeartbeatMs,
    },
  });
  // Counts requests in flight; after the signal it answers new ones 503
  // shutting_down (/health still says why: not_ready).
  const drain = new Drain();
  const tracked = drain.wrap(
    handler.serve,
    (req) => logPath(req) === "/health",
  );
  const accessLog = createLogger(
    cfg.logFormat,
    (line) => out.deferred(line),
  );
  const logRequest = (
    req: Request,
    info: Parameters<ServeHandler>[1],
    start: number,
    res: Response,
  ): Response => {
    // The path only: query strings may carry secrets, and Host is not
    // trusted to say where the path starts (see guard.ts).
    accessLog("info", "request", {
      method: req.method,
      path: logPath(req),
      status: res.status,
      ms: Math.round((performance.now() - start) * 1000) / 1000,
      remote: info.remoteAddr.hostname,
    });
    return res;
  };
  // Not async: a synchronous answer passes through without a promise.
  const serveHandler: ServeHandler = cfg.accessLog
    ? (req, info) => {
      const start = performance.now();
      const res = tracked(req, info);
      return res instanceof Promise
        ? res.then((r) => logRequest(req, info, start, r))
        : logRequest(req, info, start, res);
    }
    : tracked;

  const stop = Promise.withResolvers<string>();
  let stopping = false;
  const onSignal = (signal: StopSignal) => () => {
    if (stopping) {
      log("warn", "second signal: exiting without a clean close", { signal });
      runtime.exit(130);
    }
    stopping = true;
    stop.resolve(signal);
  };
  const signals: StopSignal[] = runtime.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  const unlisten = signals.map((s) => runtime.onSignal(s, onSignal(s)));
  if (cfg.tokenFile !== undefined && runtime.os !== "windows") {
    unlisten.push(
      runtime.onSignal("SIGHUP", () => reloadTokens(cfg, handler, log)),
    );
  }

  let server: Listener;
  try {
    server = await listenSurvivingEmfile(
      runtime,
      {
        hostname: cfg.host,
        port: cfg.port,
        tls: cert === undefined || key === undefined
          ? undefined
          : { cert, key },
        // The handler enforces the real limits with JSON errors; the
        // listener's own cap only needs to stay out of their way.
        maxRequestBodyBytes: Math.max(cfg.maxBatchBytes, cfg.maxValueBytes) +
          1024 * 1024,
        limits: {
          maxConnections: cfg.maxConnections ??
            defaultMaxConnections(descriptorLimit()),
          headerTimeoutMs: cfg.headerTimeoutMs,
          idleTimeoutMs: cfg.idleTimeoutMs,
          requestTimeoutMs: cfg.requestTimeoutMs,
          writeTimeoutMs: cfg.writeTimeoutMs,
          maxResponseMemoryBytes: cfg.maxResponseMemoryBytes,
        },
        listener: cfg.bunListener,
        stats: metrics.connections,
        onListen: (addr) => {
          const scheme = cert === undefined ? "http" : "https";
          const host = addr.hostname.includes(":")
            ? `[${addr.hostname}]`
            : addr.hostname;
          log("info", `shale listening on ${scheme}://${host}:${addr.port}`, {
            ...listenFields,
            auth: cfg.authToken === undefined ? "off" : "on",
            scoped_tokens: scopedTokens.length,
            version: VERSION,
            runtime: `${runtime.name} ${runtime.version}`,
            max_connections: metrics.connections.max || "none",
            gc_threads_reniced: gcThreads.threads,
          });
        },
      },
      serveHandler,
      log,
    );
  } catch (err) {
    log("error", "cannot listen", {
      host: cfg.host,
      port: cfg.port,
      error: errorText(err),
    });
    for (const off of unlisten) off();
    handler.close();
    await db?.close();
    return 1;
  }

  if (gcThreads.requested > 0 && gcThreads.reason !== null) {
    log("info", "garbage-collector threads keep their priority", {
      why: gcThreads.reason,
    });
  }
  if (server.unenforced !== undefined) {
    log("info", "some connection limits are not enforced on this runtime", {
      why: server.unenforced,
    });
  }
  const signal = await Promise.race([
    stop.promise,
    server.finished.then(() => "server stopped"),
  ]);
  log("info", "shutting down", { reason: signal });
  handler.drain();
  // Let every request already inside finish, uploads included, and only
  // then stop the listener: Deno's shutdown() cuts bodies still arriving.
  drain.close();
  const deadline = performance.now() + cfg.shutdownTimeoutMs;
  const idle = await drain.idle(cfg.shutdownTimeoutMs);
  // Past the deadline the listener's shutdown cuts what still runs; the
  // store is closed without waiting for it.
  const stopped = await within(
    server.shutdown(),
    idle ? deadline - performance.now() : 0,
  );
  if (!idle || !stopped) {
    log("warn", "in-flight requests did not finish in time", {
      timeout_ms: cfg.shutdownTimeoutMs,
      in_flight: drain.inFlight,
    });
  }
  handler.close();
  let code = 0;
  try {
    await db?.close();
  } catch (err) {
    log("error", "closing the engine failed", { error: errorText(err) });
    code = 1;
  }
  for (const off of unlisten) off();
  log("info", "stopped", { code });
  return code;
}

/**
 * SIGHUP: reads `--token-file` again. A file that no longer parses leaves
 * the tokens in force as they were.
 */
function reloadTokens(cfg: ServeConfig, handler: Handler, log: LogFn): void {
  try {
    const tokens = loadTokenFile(cfg.tokenFile!, cfg.authToken);
    handler.setScopedTokens(tokens);
    log("info", "token file reloaded", { scoped_tokens: tokens.length });
  } catch (err) {
    log("error", "token file not reloaded; the previous tokens stay", {
      error: errorText(err),
    });
  }
}

function runVerify(cfg: VerifyConfig): number {
  const log = createLogger(cfg.logFormat);
  try {
    if (!statSync(cfg.dataDir).isDirectory()) {
      throw new Error(`${cfg.dataDir} is not a directory`);
    }
  } catch (err) {
    log("error", "cannot verify", {
      data_dir: cfg.dataDir,
      error: errorText(err),
    });
    return 1;
  }
  const tty = runtime.stderrIsTerminal();
  const progress = (done: number, total: number, file: string) => {
    const name = file.length > 60 ? "..." + file.slice(-57) : file;
    const line = `\r\x1b[2Kverifying ${done}/${total} ${name}`;
    runtime.writeStderr(line);
  };
  let report;
  try {
    report = verify(cfg.dataDir, tty ? { onProgress: progress } : {});
  } catch (err) {
    if (tty) runtime.writeStderr("\r\x1b[2K");
    log("error", "cannot verify", {
      data_dir: cfg.dataDir,
      error: errorText(err),
    });
    return 1;
  } finally {
    if (tty) runtime.writeStderr("\r\x1b[2K");
  }
  for (const t of report.tornTails) {
    log(
      "warn",
      "WAL tail that can be a torn write (never acknowledged; the next open drops it)",
      {
        ...t,
      },
    );
  }
  for (const e of report.errors) {
    log("error", "corruption", {
      file: e.file,
      offset: e.offset,
      message: e.message,
    });
  }
  const ok = report.errors.length === 0;
  log(ok ? "info" : "error", ok ? "verify ok" : "verify found corruption", {
    data_dir: cfg.dataDir,
    files: report.files,
    tables: report.tables,
    entries: report.entries,
    wal_records: report.walRecords,
    errors: report.errors.length,
  });
  return ok ? 0 : 1;
}

/** The request path without query or fragment, for the access log. */
export function logPath(req: Request): string {
  let path: string;
  try {
    path = requestTarget(req).path;
  } catch {
    return "(invalid host)";
  }
  return path.length > 200 ? path.slice(0, 200) + "..." : path;
}

if (import.meta.main) {
  runtime.exit(await main(runtime.args()));
}
