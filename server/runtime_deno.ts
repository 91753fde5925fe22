/**
 * The server's runtime port on Deno: `Deno.serve`, `Deno.addSignalListener`,
 * `Deno.env`, `Deno.exit`.
 *
 * @module
 */
import type { Listener, Runtime } from "./runtime.ts";

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
    listen(opts, handler): Listener {
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
      };
    },
  };
}
