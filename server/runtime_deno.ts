/**
 * The server's runtime port on Deno: `Deno.serve`, `Deno.addSignalListener`,
 * `Deno.env`, `Deno.exit`.
 *
 * @module
 */
import type { Listener, Runtime } from "./runtime.ts";
import { guardResponses } from "./response_guard.ts";
import { serveOnConnection, serveWithLimits } from "./serve_deno.ts";

/** The Deno implementation of the server's runtime port. */
export function denoRuntime(): Runtime {
  const encoder = new TextEncoder();
  return {
    name: "deno",
    version: Deno.version.deno,
    os: Deno.build.os,
    args: () => Deno.args,
    env: (name) => Deno.env.get(name),
    exit: (code) => Deno.exit(code),
    writeStdout(text) {
      const bytes = encoder.encode(text);
      let off = 0;
      while (off < bytes.length) {
        off += Deno.stdout.writeSync(bytes.subarray(off));
      }
    },
    writeStderr(text) {
      const bytes = encoder.encode(text);
      let off = 0;
      while (off < bytes.length) {
        off += Deno.stderr.writeSync(bytes.subarray(off));
      }
    },
    stderrIsTerminal: () => Deno.stderr.isTerminal(),
    onSignal(signal, fn) {
      Deno.addSignalListener(signal, fn);
      return () => Deno.removeSignalListener(signal, fn);
    },
    // deno-lint-ignore require-await
    async listen(opts, plainHandler): Promise<Listener> {
      const handler = guardResponses(plainHandler, {
        writeTimeoutMs: opts.limits.writeTimeoutMs,
        maxResponseMemoryBytes: opts.limits.maxResponseMemoryBytes,
        stats: opts.stats,
      });
      const serveOn = serveOnConnection();
      if (serveOn !== undefined) {
        return serveWithLimits(opts, handler, opts.limits, opts.stats, serveOn);
      }
      const server = Deno.serve({
        hostname: opts.hostname,
        port: opts.port,
        onListen: (addr: Deno.NetAddr) =>
          opts.onListen({ hostname: addr.hostname, port: addr.port }),
        ...opts.tls,
      }, handler);
      return {
        addr: { hostname: server.addr.hostname, port: server.addr.port },
        finished: server.finished,
        shutdown: () => server.shutdown(),
        unenforced:
          "this Deno has no Deno[Deno.internal].serveHttpOnConnection: no connection cap, header, idle, request or write timeout (large responses are still bounded)",
      };
    },
  };
}
