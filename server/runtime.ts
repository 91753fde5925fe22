/**
 * The server's runtime port: what `main.ts` needs from the process (args,
 * env, exit, signals, stdout) and the HTTP listener, with one
 * implementation per runtime (`runtime_deno.ts`, `runtime_bun.ts`).
 * Everything above it, the HTTP handler (`(Request) => Response`) and KV
 * Connect included, is runtime-neutral.
 *
 * @module
 */
import { isBun } from "../engine/runtime.ts";
import type { ConnectionLimits } from "./connection_limits.ts";
import type { ConnectionStats } from "./connection_stats.ts";
import { bunRuntime } from "./runtime_bun.ts";
import { denoRuntime } from "./runtime_deno.ts";

/** The signals the server stops on. */
export type StopSignal = "SIGINT" | "SIGTERM";

/** The signals the server handles: stop, or reload the token file (SIGHUP). */
export type Signal = StopSignal | "SIGHUP";

/** A bound address. */
export interface Addr {
  hostname: string;
  port: number;
}

/** What {@link Runtime.listen} takes. */
export interface ListenOptions {
  hostname: string;
  port: number;
  /** PEM certificate chain and key: serve HTTPS. */
  tls?: { cert: string; key: string };
  /** The largest request body the listener itself lets through. */
  maxRequestBodyBytes: number;
  /** Called once the socket is bound. */
  onListen(addr: Addr): void;
  /** Connection cap and timeouts. */
  limits: ConnectionLimits;
  /**
   * "fast": the runtime's fastest listener even where it cannot enforce
   * `limits` (Bun.serve; `unenforced` then says what is not). Deno has one
   * listener and ignores it.
   */
  listener: "hardened" | "fast";
  /** Where the listener counts connections (shown in /stats and /metrics). */
  stats: ConnectionStats;
}

/** The request handler: the request and where it came from. */
export type ServeHandler = (
  req: Request,
  info: {
    readonly remoteAddr: { readonly hostname: string };
    /** See `ClientInfo.receivedAt` in app.ts. */
    readonly receivedAt?: number;
  },
) => Response | Promise<Response>;

/** A running HTTP listener. */
export interface Listener {
  readonly addr: Addr;
  /** Settles if the listener stops by itself. */
  readonly finished: Promise<void>;
  /** Stops accepting; resolves once in-flight requests have finished. */
  shutdown(): Promise<void>;
  /** Set when some of `limits` are not enforced: which, and why. */
  readonly unenforced?: string;
}

/** The process and listener operations of one runtime. */
export interface Runtime {
  /** "deno" or "bun". */
  readonly name: string;
  /** The runtime's version, e.g. "2.9.6". */
  readonly version: string;
  /** The operating system: "linux", "darwin", "windows", ... */
  readonly os: string;
  /** Command-line arguments after the program (and script) name. */
  args(): string[];
  env(name: string): string | undefined;
  exit(code: number): never;
  /** Writes `text` to stdout before returning. */
  writeStdout(text: string): void;
  /** Writes `text` to stderr before returning. */
  writeStderr(text: string): void;
  stderrIsTerminal(): boolean;
  /** Calls `fn` on `signal`; returns the function that stops it. */
  onSignal(signal: Signal, fn: () => void): () => void;
  /** Binds and serves; rejects when the address cannot be bound. */
  listen(opts: ListenOptions, handler: ServeHandler): Promise<Listener>;
}

/** The runtime this process runs on. */
export const runtime: Runtime = isBun ? bunRuntime() : denoRuntime();
