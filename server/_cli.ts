/**
 * Command-line parsing for `shale`'s server-side commands: which command,
 * then each flag merged over its `SHALE_*` environment variable over its
 * default (flag tables in `cli_flags.ts`; `serve`'s settings are checked in
 * `serve_config.ts`). Pure: takes argv and an env lookup, returns an
 * {@link Invocation} or throws {@link UsageError}. The client commands
 * (`get`, `put`...) parse their own flags (`client_cli.ts`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runtime } from "./runtime.ts";
import { COMMANDS, envName } from "./cli_flags.ts";
import { commandHelp, mainHelp, VERSION } from "./cli_help.ts";
import { oneOf } from "./cli_values.ts";
import { parseServeConfig, type ServeConfig } from "./serve_config.ts";

/** A command line that cannot be run; main prints it and exits 2. */
export class UsageError extends Error {
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
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
  const raw = (name: string): string | undefined =>
    typeof values[name] === "string"
      ? values[name] as string
      : env(envName(name));
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

  return parseServeConfig({ get, raw, label, fail }, logFormat);
}
