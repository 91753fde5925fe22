/**
 * The server's runtime port on Bun: the listener, `process` signals, env and
 * exit. The listener is `serve_bun.ts` (node:http, every connection limit
 * enforced) unless `--bun-listener fast` asks for `Bun.serve`, which costs
 * about half the CPU per request but can enforce neither the connection
 * cap nor a deadline for a request head (docs/HTTP.md, "Connections").
 * Bun has no published types for Deno's checker, so the few members of
 * `Bun` used are declared here.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import type { Listener, Runtime } from "./runtime.ts";
import { guardResponses } from "./response_guard.ts";
import { realResponse } from "./response_parts.ts";
import { serveNodeHttp } from "./serve_bun.ts";

interface BunServer {
  readonly hostname: string;
  readonly port: number;
  stop(closeActiveConnections?: boolean): Promise<void>;
  requestIP(req: Request): { address: string } | null;
}

interface BunGlobal {
  readonly version: string;
  serve(options: {
    hostname: string;
    port: number;
    development: boolean;
    maxRequestBodySize: number;
    idleTimeout: number;
    tls?: { cert: string; key: string };
    fetch(req: Request, server: BunServer): Response | Promise<Response>;
    error(err: Error): Response;
  }): BunServer;
}

/** Writes all of `text` to a file descriptor, waiting out a full pipe. */
function writeAll(fd: number, text: string): void {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  while (off < bytes.length) {
    try {
      off += fs.writeSync(fd, bytes, off, bytes.length - off);
    } catch (err) {
      // A non-blocking pipe that is full: retry until the reader drains it.
      if ((err as { code?: string }).code !== "EAGAIN") throw err;
    }
  }
}

/** The Bun implementation of the server's runtime port. */
export function bunRuntime(): Runtime {
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  return {
    name: "bun",
    version: bun.version,
    os: process.platform === "win32" ? "windows" : process.platform,
    // argv is [bun, script, ...args], also in a compiled binary.
    args: () => process.argv.slice(2),
    env: (name) => process.env[name],
    exit: (code) => process.exit(code),
    writeStdout: (text) => writeAll(1, text),
    writeStderr: (text) => writeAll(2, text),
    stderrIsTerminal: () => process.stderr.isTTY === true,
    onSignal(signal, fn) {
      process.on(signal, fn);
      return () => process.off(signal, fn);
    },
    // deno-lint-ignore require-await
    async listen(opts, plainHandler): Promise<Listener> {
      const handler = guardResponses(plainHandler, {
        writeTimeoutMs: opts.limits.writeTimeoutMs,
        maxResponseMemoryBytes: opts.limits.maxResponseMemoryBytes,
        stats: opts.stats,
      });
      if (opts.listener === "hardened") return serveNodeHttp(opts, handler);
      // Bun.serve has one timer per connection: closed once no byte moved
      // either way for idleTimeout seconds (1-255). It stands in for the
      // header-read, keep-alive and write timeouts, so it takes the
      // shortest of them.
      const l = opts.limits;
      const idleSeconds = Math.max(
        1,
        Math.min(
          255,
          Math.ceil(
            Math.min(l.headerTimeoutMs, l.idleTimeoutMs, l.writeTimeoutMs) /
              1000,
          ),
        ),
      );
      opts.stats.tracked = false;
      const server = bun.serve({
        hostname: opts.hostname,
        port: opts.port,
        // Never Bun's development error pages (they show source).
        development: false,
        maxRequestBodySize: opts.maxRequestBodyBytes,
        idleTimeout: idleSeconds,
        ...(opts.tls ? { tls: opts.tls } : {}),
        fetch: (req, srv) => {
          const out = handler(req, {
            get remoteAddr() {
              return { hostname: srv.requestIP(req)?.address ?? "" };
            },
          });
          // Bun.serve writes only its own Response objects.
          return out instanceof Promise
            ? out.then(realResponse)
            : realResponse(out);
        },
        // The handler answers its own errors; this is the last resort.
        error: () =>
          Response.json(
            { error: { code: "internal", message: "internal server error" } },
            { status: 500 },
          ),
      });
      const addr = { hostname: server.hostname, port: server.port };
      opts.onListen(addr);
      return {
        addr,
        // Bun.serve only stops when told to.
        finished: new Promise<void>(() => {}),
        shutdown: () => server.stop(false),
        unenforced:
          `Bun.serve exposes no connection events: no connection cap and no open-connection count; one ${idleSeconds} s idle timeout stands in for the header, keep-alive and write timeouts (a client trickling bytes resets it), no request timeout, HTTP/1.1 only (Deno's KV client cannot connect)`,
      };
    },
  };
}
