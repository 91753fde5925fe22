/**
 * The command-line client, like `etcdctl`: `shale get|put|del|scan|batch|watch`
 * talk to a running server through the typed REST client (`client.ts`).
 *
 * Binary-safe: a key comes from its argument (UTF-8, or hex with
 * `--key-hex`), from a file (`--key-file`) or from stdin (`-`); a value
 * likewise (`--value-file`, `-`). `get` writes the raw value bytes to
 * stdout; `scan` writes one JSON object or one tab-separated line per
 * entry, keys and values as UTF-8 text, or `--hex` / `--base64`; `watch`
 * writes one JSON object per change until interrupted.
 *
 * Exit codes (documented in the README and `--help`): see {@link EXIT}.
 * The token comes from `--token`, `SHALE_TOKEN` or `SHALE_AUTH_TOKEN`, the
 * same order as `shale backup`; it is never printed.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ShaleClient, ShaleClientError } from "../client.ts";
import { batch, del, get, put, scan, watch } from "./client_cli_commands.ts";
import { EXIT, exitOf, Failure, Usage } from "./client_cli_exit.ts";
import { clientHelp } from "./client_cli_help.ts";
import { nonEmpty, positiveInt, str, type Values } from "./client_cli_input.ts";
import type { Encoding } from "./client_cli_output.ts";

const FLAGS = {
  help: { type: "boolean", short: "h" },
  url: { type: "string" },
  token: { type: "string" },
  timeout: { type: "string" },
  "key-hex": { type: "boolean" },
  "key-file": { type: "string" },
  "value-file": { type: "string" },
  ttl: { type: "string" },
  "if-version": { type: "string" },
  "if-absent": { type: "boolean" },
  json: { type: "boolean" },
  hex: { type: "boolean" },
  base64: { type: "boolean" },
  prefix: { type: "string" },
  start: { type: "string" },
  end: { type: "string" },
  limit: { type: "string" },
  "page-size": { type: "string" },
  reverse: { type: "boolean" },
  "keys-only": { type: "boolean" },
  format: { type: "string" },
  since: { type: "string" },
  "no-values": { type: "boolean" },
} as const;

/** The flags each command accepts besides the common ones. */
const ALLOWED: Record<string, string[]> = {
  get: ["json", "hex", "base64"],
  put: ["value-file", "ttl", "if-version", "if-absent"],
  del: ["if-version"],
  scan: [
    "prefix",
    "start",
    "end",
    "limit",
    "page-size",
    "reverse",
    "keys-only",
    "format",
    "hex",
    "base64",
  ],
  batch: [],
  watch: ["prefix", "start", "end", "since", "no-values", "hex", "base64"],
};
const COMMON_FLAGS = ["help", "url", "token", "timeout", "key-hex", "key-file"];

/**
 * Runs a client command (`args[0]` is one of {@link CLIENT_COMMANDS});
 * resolves with the exit code. `env` looks up environment variables.
 */
export async function runClient(
  args: string[],
  env: (name: string) => string | undefined,
): Promise<number> {
  const command = args[0];
  try {
    return await dispatch(command, args.slice(1), env);
  } catch (err) {
    if (err instanceof Usage) {
      console.error(
        `shale: ${err.message}\nRun 'shale ${command} --help' for usage.`,
      );
      return EXIT.usage;
    }
    if (err instanceof Failure) {
      console.error(`shale ${command}: ${err.message}`);
      return err.code;
    }
    if (err instanceof ShaleClientError) {
      console.error(`shale ${command}: ${err.message} (${err.code})`);
      return exitOf(err);
    }
    throw err;
  }
}

async function dispatch(
  command: string,
  argv: string[],
  env: (name: string) => string | undefined,
): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: argv,
      options: FLAGS,
      strict: true,
      allowPositionals: true,
    });
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (err) {
    throw new Usage(err instanceof Error ? err.message.split("\n")[0] : "");
  }
  if (values.help === true) {
    console.log(clientHelp(command));
    return EXIT.ok;
  }
  for (const [name, v] of Object.entries(values)) {
    if (
      v !== undefined && !COMMON_FLAGS.includes(name) &&
      !ALLOWED[command].includes(name)
    ) {
      throw new Usage(`${command} does not take --${name}`);
    }
  }
  const url = str(values.url) ?? nonEmpty(env("SHALE_URL"));
  if (url === undefined) throw new Usage(`${command} needs --url`);
  if (!/^https?:\/\/[^/]/.test(url)) {
    throw new Usage(`--url must be an http:// or https:// URL, got "${url}"`);
  }
  const token = str(values.token) ?? nonEmpty(env("SHALE_TOKEN")) ??
    nonEmpty(env("SHALE_AUTH_TOKEN"));
  const timeoutMs = values.timeout === undefined
    ? undefined
    : positiveInt(values.timeout, "--timeout");
  const client = new ShaleClient(url, { token, timeoutMs });
  if (values.hex && values.base64) {
    throw new Usage("--hex and --base64 exclude each other");
  }
  const encoding: Encoding = values.hex
    ? "hex"
    : values.base64
    ? "base64"
    : "utf8";
  switch (command) {
    case "get":
      return await get(client, values, positionals, encoding);
    case "put":
      return await put(client, values, positionals);
    case "del":
      return await del(client, values, positionals);
    case "scan":
      return await scan(client, values, positionals, encoding);
    case "batch":
      return await batch(client, values, positionals);
    case "watch":
      return await watch(client, values, positionals, encoding);
  }
  throw new Usage(`unknown command "${command}"`);
}
