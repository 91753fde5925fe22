/**
 * The server's runtime port on Bun: `Bun.serve`, `process` signals, env and
 * exit. Bun has no published types for Deno's checker, so the few members
 * used are declared here.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import type { Listener, Runtime } from "./runtime.ts";

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
    listen(opts, handler): Listener {
      const server = bun.serve({
        hostname: opts.hostname,
        port: opts.port,
        // Never Bun's development error pages (they show source).
        development: false,
        maxRequestBodySize: opts.maxRequestBodyBytes,
        // Bun's default: a connection that sends and receives nothing for
        // 10 s is closed (Deno.serve has no such limit yet).
        idleTimeout: 10,
        ...(opts.tls ? { tls: opts.tls } : {}),
        fetch: (req, srv) =>
          handler(req, {
            get remoteAddr() {
              return { hostname: srv.requestIP(req)?.address ?? "" };
            },
          }),
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
      };
    },
  };
}
