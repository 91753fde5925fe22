/**
 * How the black-box tests start the `shale` command: on Deno
 * (`deno run server/main.ts`), on Bun (`bun server/main.ts`), or as the
 * single binary `dist/shale` built by `bun build --compile`. Process-level
 * tests loop over {@link SHALE_RUNTIMES} so each runtime passes the same
 * checks.
 *
 * {@link startServer} is the one starter of the server as a process
 * (`shale serve` on port 0 with JSON logs, ready at its listening line),
 * for the fault suites, the HTTP contract tests and the browser tests.
 *
 * Bun is found through `SHALE_BUN` (the Makefile exports the pinned one),
 * then `.tools/`, then PATH. Without it, the Bun and binary variants are
 * reported as ignored with the reason.
 *
 * @module
 */

/** The repository root (this file is tests/_shale.ts). */
export const REPO: string = new URL("../", import.meta.url).pathname;
/** server/main.ts, the `shale` command. */
export const MAIN: string = `${REPO}server/main.ts`;
/** The permissions `deno task start` gives the server, and no more. */
export const SERVER_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-ffi",
];

/** One way to run shale. */
export type ShaleRuntime = "deno" | "bun" | "binary";

/** Every way, in the order tests run them. */
export const SHALE_RUNTIMES: readonly ShaleRuntime[] = [
  "deno",
  "bun",
  "binary",
];

/** The program and leading arguments that run `shale` on `rt`. */
export interface ShaleCommand {
  command: string;
  args: string[];
}

function isExecutable(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

let bunFound: string | null | undefined;

/** The Bun executable, or undefined when there is none. */
export function bunPath(): string | undefined {
  if (bunFound !== undefined) return bunFound ?? undefined;
  bunFound = null;
  const candidates = [
    Deno.env.get("SHALE_BUN"),
    `${REPO}.tools/node_modules/.bin/bun`,
    ...(Deno.env.get("PATH") ?? "").split(":").map((d) => `${d}/bun`),
  ];
  for (const c of candidates) {
    if (c && isExecutable(c)) {
      bunFound = c;
      break;
    }
  }
  return bunFound ?? undefined;
}

/** Why `rt` cannot run here, or undefined when it can. */
export function unavailable(rt: ShaleRuntime): string | undefined {
  if (rt === "deno") return undefined;
  return bunPath() === undefined
    ? "Bun not found (run `make setup`, or set SHALE_BUN)"
    : undefined;
}

/** The built binary, `dist/shale`. */
export const BINARY: string = `${REPO}dist/shale`;

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) newest = Math.max(newest, newestSource(path));
    else if (e.name.endsWith(".ts")) {
      newest = Math.max(newest, Deno.statSync(path).mtime?.getTime() ?? 0);
    }
  }
  return newest;
}

let built: Promise<string> | undefined;

/**
 * Builds `dist/shale` the way `make build` does, unless it is newer than
 * every source file it is built from. Once per test process.
 */
export function ensureBinary(): Promise<string> {
  built ??= (async () => {
    const sources = Math.max(
      newestSource(`${REPO}engine`),
      newestSource(`${REPO}server`),
      Deno.statSync(`${REPO}mod.ts`).mtime?.getTime() ?? 0,
    );
    let binaryTime = 0;
    try {
      binaryTime = Deno.statSync(BINARY).mtime?.getTime() ?? 0;
    } catch {
      // not built yet
    }
    if (binaryTime > sources) return BINARY;
    const bun = bunPath();
    if (bun === undefined) throw new Error(unavailable("bun"));
    const out = await new Deno.Command(bun, {
      args: [...BUILD_ARGS, "--outfile", BINARY],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `bun build --compile failed:\n${new TextDecoder().decode(out.stderr)}`,
      );
    }
    return BINARY;
  })();
  return built;
}

/** `bun` arguments of `make build` (without `--outfile`). */
export const BUILD_ARGS: readonly string[] = [
  "build",
  "--compile",
  "--root",
  ".",
  "server/main.ts",
  "engine/worker.ts",
];

/** The command that runs `shale` on `rt` (builds the binary when needed). */
export async function shaleCommand(rt: ShaleRuntime): Promise<ShaleCommand> {
  switch (rt) {
    case "deno":
      return {
        command: Deno.execPath(),
        args: ["run", ...SERVER_PERMISSIONS, MAIN],
      };
    case "bun": {
      const bun = bunPath();
      if (bun === undefined) throw new Error(unavailable(rt));
      return { command: bun, args: [MAIN] };
    }
    case "binary":
      return { command: await ensureBinary(), args: [] };
  }
}

// ---- the one server starter: `shale serve` as a subprocess -----------------

/** One line the server logged (its stdout and stderr, JSON or not). */
export interface LogLine {
  text: string;
  /** Parsed JSON log record, when the line was one. */
  json?: Record<string, unknown>;
}

/** A running (or exited) `shale serve` subprocess. */
export interface ServerProcess {
  readonly pid: number;
  readonly dataDir: string;
  /** Every line of output so far. */
  readonly logs: LogLine[];
  /** Resolves with the exit status when the process ends. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** performance.now() at spawn. */
  readonly spawnedAt: number;
  /** Sends a signal (ignored once the process has exited). */
  kill(signal: Deno.Signal): void;
  /** All output as text (for failure messages). */
  output(): string;
}

/** A server that printed its listening line. */
export interface ReadyServer extends ServerProcess {
  readonly port: number;
  readonly base: string;
  /** performance.now() when the listening line arrived. */
  readonly listeningAt: number;
  /** The engine's own recovery time from the start-up line, in ms. */
  readonly recoveryMs: number;
}

/** What starting a server came to: listening, or exited with output. */
export type StartResult =
  | { ok: true; server: ReadyServer }
  | { ok: false; code: number; signal: string | null; output: string };

/** Options of {@link startServer}. */
export interface StartOptions {
  /** Extra `serve` flags (e.g. `--memtable-size 64K`). */
  args?: string[];
  /** Extra environment for the subprocess. */
  env?: Record<string, string>;
  /** Deadline for the listening line. Default 30 s. */
  timeoutMs?: number;
  /** Which runtime runs the server. Default Deno. */
  runtime?: ShaleRuntime;
}

/**
 * Spawns `shale serve --data-dir DIR --port 0 --log-format json` and waits
 * until it prints `shale listening on http://HOST:PORT` or exits.
 */
export async function startServer(
  dataDir: string,
  opts: StartOptions = {},
): Promise<StartResult> {
  const shale = await shaleCommand(opts.runtime ?? "deno");
  const spawnedAt = performance.now();
  const child = new Deno.Command(shale.command, {
    args: [
      ...shale.args,
      "serve",
      "--data-dir",
      dataDir,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--log-format",
      "json",
      ...(opts.args ?? []),
    ],
    cwd: REPO,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: LogLine[] = [];
  const listening = Promise.withResolvers<LogLine>();
  const onLine = (text: string) => {
    const line: LogLine = { text };
    if (text.startsWith("{")) {
      try {
        line.json = JSON.parse(text);
      } catch {
        // not a log record
      }
    }
    logs.push(line);
    const msg = line.json?.msg;
    if (typeof msg === "string" && msg.startsWith("shale listening on ")) {
      listening.resolve(line);
    }
  };
  const pumps = Promise.all([
    pumpLines(child.stdout, onLine),
    pumpLines(child.stderr, onLine),
  ]);
  let done = false;
  const exited = (async () => {
    const status = await child.status;
    await pumps.catch(() => {});
    done = true;
    return status;
  })();
  const proc: ServerProcess = {
    pid: child.pid,
    dataDir,
    logs,
    exited,
    spawnedAt,
    kill(signal) {
      if (done) return;
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    },
    output: () => logs.map((l) => l.text).join("\n"),
  };
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    listening.promise.then((line) => ({ line })),
    exited.then((status) => ({ status })),
    new Promise<{ timeout: true }>((resolve) => {
      timer = setTimeout(() => resolve({ timeout: true }), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if ("timeout" in outcome) {
    proc.kill("SIGKILL");
    await exited;
    throw new Error(
      `server did not start within ${timeoutMs} ms:\n${proc.output()}`,
    );
  }
  if ("status" in outcome) {
    return {
      ok: false,
      code: outcome.status.code,
      signal: outcome.status.signal,
      output: proc.output(),
    };
  }
  const msg = String(outcome.line.json!.msg);
  const m = /^shale listening on (https?):\/\/(.+):(\d+)$/.exec(msg);
  if (m === null) throw new Error(`unexpected listening line: ${msg}`);
  const port = Number(m[3]);
  const server: ReadyServer = {
    ...proc,
    port,
    base: `${m[1]}://127.0.0.1:${port}`,
    listeningAt: performance.now(),
    recoveryMs: Number(outcome.line.json!.recovery_ms ?? NaN),
  };
  return { ok: true, server };
}

/** {@link startServer}, throwing (with the output) when it does not listen. */
export async function mustStart(
  dataDir: string,
  opts: StartOptions = {},
): Promise<ReadyServer> {
  const r = await startServer(dataDir, opts);
  if (!r.ok) {
    throw new Error(`server exited with code ${r.code}:\n${r.output}`);
  }
  return r.server;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
export async function stopServer(
  s: ServerProcess,
  graceMs = 15_000,
): Promise<Deno.CommandStatus> {
  s.kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    s.exited,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (status !== undefined) return status;
  s.kill("SIGKILL");
  return await s.exited;
}

/** SIGKILL and wait for the process to be gone. */
export async function killServer(
  s: ServerProcess,
): Promise<Deno.CommandStatus> {
  s.kill("SIGKILL");
  return await s.exited;
}

async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const dec = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    rest += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = rest.indexOf("\n")) >= 0) {
      onLine(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
  }
  if (rest !== "") onLine(rest);
}

/** Registers `fn` once per runtime, ignored (with the reason) where it cannot run. */
export function eachRuntime(
  name: string,
  fn: (rt: ShaleRuntime) => Promise<void>,
  runtimes: readonly ShaleRuntime[] = SHALE_RUNTIMES,
): void {
  for (const rt of runtimes) {
    const why = unavailable(rt);
    Deno.test({
      name: `[${rt}] ${name}${why ? ` (ignored: ${why})` : ""}`,
      ignore: why !== undefined,
      fn: () => fn(rt),
    });
  }
}

/** A child process whose stdout and stderr are collected as text. */
export interface PipedProcess {
  child: Deno.ChildProcess;
  /** Everything printed so far, both pipes interleaved. */
  output(): string;
  /** Resolves with the first match of `re` in the output, or throws after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code once both pipes are drained. */
  finished: Promise<number>;
}

/** Spawns `argv` (NO_COLOR set, plus `env`) and collects its output. */
export function spawnPiped(
  argv: readonly string[],
  env: Record<string, string> = {},
): PipedProcess {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let text = "";
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      text += chunk;
    }
  };
  const pipes = Promise.all([drain(child.stdout), drain(child.stderr)]);
  return {
    child,
    output: () => text,
    finished: Promise.all([pipes, child.status]).then(([, s]) => s.code),
    async waitFor(re, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = text.match(re);
        if (m) return m;
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${re}; output:\n${text}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}
