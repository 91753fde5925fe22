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
import { readFile } from "node:fs/promises";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  type BatchOp,
  type Change,
  type Entry,
  ShaleClient,
  ShaleClientError,
} from "../client.ts";

/** Exit codes of the client commands, for scripts. */
export const EXIT = {
  ok: 0,
  /** `get`: the key is absent (nothing is written to stdout). */
  notFound: 1,
  /** Bad flags or arguments; nothing was sent. */
  usage: 2,
  /** An `--if-version` / `--if-absent` (or batch check) condition failed. */
  preconditionFailed: 3,
  /** Any other error answer of the server, or output that cannot be shown. */
  serverError: 4,
  /** No answer: connection refused, DNS, TLS, timeout. */
  connection: 5,
} as const;

/** The client commands, with one line each for `shale --help`. */
export const CLIENT_COMMANDS: Record<string, string> = {
  get: "print a key's value (raw bytes) to stdout",
  put: "write a key (value from an argument, --value-file or stdin)",
  del: "delete a key",
  scan: "list a range of keys, one line per entry",
  batch: "apply a JSON batch file (POST /kv/batch format) atomically",
  watch: "print every change in a range as it is committed, one JSON line each",
};

const USAGE: Record<string, string> = {
  get: "shale get KEY [--json] [--hex|--base64]",
  put: "shale put KEY VALUE [--ttl SECONDS] [--if-version V | --if-absent]",
  del: "shale del KEY [--if-version V]",
  scan:
    "shale scan [--prefix P | --start S --end E] [--limit N] [--reverse]\n" +
    "           [--keys-only] [--page-size N] [--format json|text] [--hex|--base64]",
  batch: "shale batch FILE|-",
  watch:
    "shale watch [--prefix P | --start S --end E] [--since V] [--hex|--base64]\n" +
    "           [--no-values]",
};

const COMMON = [
  "  --url URL           server base URL (env SHALE_URL)",
  "  --token TOKEN       bearer token (env SHALE_TOKEN, else SHALE_AUTH_TOKEN;",
  "                      prefer the env vars: flags show in ps)",
  "  --timeout MS        give up after MS milliseconds (exit 5)",
  "  --key-hex           KEY (and --prefix/--start/--end) are hex-encoded bytes",
  "  --key-file F        read the key's bytes from file F (instead of KEY)",
  "  -h, --help          show this help",
  "  --                  what follows is arguments, even if it starts with '-'",
];

const SPECIFIC: Record<string, string[]> = {
  get: [
    "  --json              print {key,value,version[,expires_at]} as one JSON line",
    "  --hex, --base64     encoding of key and value in --json (default UTF-8)",
  ],
  put: [
    "  --value-file F      read the value's bytes from file F (instead of VALUE)",
    "  --ttl SECONDS       expire the key after SECONDS",
    "  --if-version V      write only if the key is at version V",
    "  --if-absent         write only if the key does not exist",
    "  Prints the new version. KEY or VALUE '-' reads stdin (not both).",
  ],
  del: [
    "  --if-version V      delete only if the key is at version V",
    "  Deleting an absent key succeeds (exit 0).",
  ],
  scan: [
    "  --prefix P          keys starting with P",
    "  --start S, --end E  keys in [S, E)",
    "  --limit N           stop after N entries",
    "  --page-size N       entries per request (the scan pages with cursors)",
    "  --reverse           descending key order",
    "  --keys-only         leave values out",
    "  --format json|text  JSON line {key,value,version} (default), or key TAB value",
    "  --hex, --base64     encoding of keys and values (default UTF-8 text)",
  ],
  batch: [
    '  FILE holds {"ops":[{"op":"put","key":B64,"value":B64,"ttl":S,',
    '  "if_match":"V","if_none_match":"*"}, {"op":"delete",...},',
    '  {"op":"check",...}]} as POST /kv/batch takes; "-" reads stdin.',
    '  Prints {"applied":N,"version":"V"}.',
  ],
  watch: [
    "  --prefix P          keys starting with P (default: every key)",
    "  --start S, --end E  keys in [S, E)",
    "  --since V           start after version V (default: from now)",
    "  --no-values         print a put's value_size instead of its value",
    "  --hex, --base64     encoding of keys and values (default UTF-8 text)",
    '  Prints {"version":"V","type":"put","key":K,"value":V[,"expires_at":MS]}',
    '  or {"version":"V","type":"delete","key":K} per change (a batch\'s changes',
    "  share one version), reconnecting by itself without losing or repeating",
    "  one, until Ctrl-C (exit 0) or the server stays unreachable (exit 5).",
  ],
};

/** The exit-code table, shown in the help of every client command. */
export const EXIT_HELP: string[] = [
  "Exit codes: 0 ok, 1 not found (get), 2 usage error, 3 condition failed,",
  "            4 other server error, 5 no connection (refused, timeout)",
];

/** `shale <cmd> --help` text of a client command. */
export function clientHelp(command: string): string {
  return [
    `shale ${command}: ${CLIENT_COMMANDS[command]}`,
    "",
    "Usage:",
    `  ${USAGE[command]} --url URL [--token TOKEN]`,
    "",
    "Flags:",
    ...SPECIFIC[command],
    // scan and watch have bounds, not a key; batch's keys are in its file;
    // watch runs until interrupted.
    ...COMMON.filter((l) =>
      !(command === "scan" && l.includes("--key-file")) &&
      !(command === "watch" && /--key-file|--timeout/.test(l)) &&
      !(command === "batch" && /--key-(file|hex)/.test(l))
    ),
    "",
    ...EXIT_HELP,
  ].join("\n");
}

/** A wrong command line: exit 2 with the message. */
class Usage extends Error {}

/** A failure after the request: exit `code` with the message. */
class Failure extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

type Values = Record<string, string | boolean | undefined>;

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

/** The exit code a client error stands for. */
function exitOf(err: ShaleClientError): number {
  if (err.status === 0) {
    return err.code === "timeout" || err.code === "network_error"
      ? EXIT.connection
      : EXIT.usage; // checked on the client before sending (bad ttl, empty key)
  }
  return err.code === "precondition_failed"
    ? EXIT.preconditionFailed
    : EXIT.serverError;
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

// ---- commands ---------------------------------------------------------------

async function get(
  client: ShaleClient,
  values: Values,
  pos: string[],
  encoding: Encoding,
): Promise<number> {
  const [keyArg] = expect(pos, values, 1, "KEY");
  if (!values.json && (values.hex || values.base64)) {
    throw new Usage("--hex and --base64 apply to --json output");
  }
  const key = await keyBytes(values, keyArg);
  const entry = await client.get(key);
  if (entry === null) {
    console.error(`shale get: not found`);
    return EXIT.notFound;
  }
  if (values.json) {
    await writeOut(encoder.encode(jsonLine(entry, encoding, false)));
  } else {
    await writeOut(entry.value);
  }
  return EXIT.ok;
}

async function put(
  client: ShaleClient,
  values: Values,
  pos: string[],
): Promise<number> {
  const fromFile = values["value-file"] !== undefined;
  const args = expect(pos, values, fromFile ? 1 : 2, "KEY VALUE");
  if (args[0] === "-" && args[1] === "-") {
    throw new Usage("KEY and VALUE cannot both be '-' (stdin)");
  }
  if (values["if-absent"] && values["if-version"] !== undefined) {
    throw new Usage("--if-version and --if-absent exclude each other");
  }
  const ttl = values.ttl === undefined ? undefined : seconds(values.ttl);
  const ifVersion = version(values["if-version"]);
  const key = await keyBytes(values, args[0]);
  const value = fromFile
    ? await readPath(str(values["value-file"])!, "--value-file")
    : args[1] === "-"
    ? await readStdin()
    : encoder.encode(args[1]);
  const v = await client.put(key, value, {
    ttl,
    ifVersion,
    ifAbsent: values["if-absent"] === true ? true : undefined,
  });
  await writeOut(encoder.encode(`${v}\n`));
  return EXIT.ok;
}

async function del(
  client: ShaleClient,
  values: Values,
  pos: string[],
): Promise<number> {
  const [keyArg] = expect(pos, values, 1, "KEY");
  const key = await keyBytes(values, keyArg);
  await client.delete(key, { ifVersion: version(values["if-version"]) });
  return EXIT.ok;
}

async function scan(
  client: ShaleClient,
  values: Values,
  pos: string[],
  encoding: Encoding,
): Promise<number> {
  if (pos.length > 0) {
    throw new Usage(`scan takes no arguments, got "${pos[0]}"`);
  }
  if (values["key-file"] !== undefined) {
    throw new Usage("scan does not take --key-file");
  }
  const format = str(values.format) ?? "json";
  if (format !== "json" && format !== "text") {
    throw new Usage(`--format must be json or text, got "${format}"`);
  }
  const { prefix, start, end } = bounds(values);
  const limit = values.limit === undefined
    ? undefined
    : positiveInt(values.limit, "--limit");
  const pageSize = values["page-size"] === undefined
    ? undefined
    : positiveInt(values["page-size"], "--page-size");
  const keysOnly = values["keys-only"] === true;
  for await (
    const e of client.list({
      prefix,
      start,
      end,
      limit,
      pageSize,
      reverse: values.reverse === true,
      keysOnly,
    })
  ) {
    const line = format === "json"
      ? jsonLine(e, encoding, keysOnly)
      : textLine(e, encoding, keysOnly);
    await writeOut(encoder.encode(line));
  }
  return EXIT.ok;
}

/** --prefix, or --start/--end, as bytes (hex with --key-hex). */
function bounds(values: Values): {
  prefix?: Uint8Array;
  start?: Uint8Array;
  end?: Uint8Array;
} {
  const bound = (name: string): Uint8Array | undefined => {
    const v = str(values[name]);
    if (v === undefined) return undefined;
    return values["key-hex"] ? fromHex(v, `--${name}`) : encoder.encode(v);
  };
  const prefix = bound("prefix");
  const start = bound("start");
  const end = bound("end");
  if (prefix !== undefined && (start !== undefined || end !== undefined)) {
    throw new Usage("--prefix excludes --start and --end");
  }
  return { prefix, start, end };
}

async function watch(
  client: ShaleClient,
  values: Values,
  pos: string[],
  encoding: Encoding,
): Promise<number> {
  if (pos.length > 0) {
    throw new Usage(`watch takes no arguments, got "${pos[0]}"`);
  }
  if (values["key-file"] !== undefined) {
    throw new Usage("watch does not take --key-file");
  }
  if (values.timeout !== undefined) {
    throw new Usage("watch does not take --timeout (it runs until Ctrl-C)");
  }
  const { prefix, start, end } = bounds(values);
  const since = values.since === undefined
    ? undefined
    : version(values.since, "--since");
  // Ctrl-C ends the watch cleanly: the loop stops, the exit code is 0.
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.on("SIGINT", onSigint);
  try {
    for await (
      const ev of client.watch({
        prefix,
        start,
        end,
        since,
        values: values["no-values"] !== true,
        signal: stop.signal,
      })
    ) {
      let lines = "";
      for (const c of ev.changes) lines += changeLine(ev.version, c, encoding);
      // One write per event: a batch's lines go out together, and each
      // event is handed to the OS before the next is read.
      await writeOut(encoder.encode(lines));
    }
  } finally {
    process.off("SIGINT", onSigint);
  }
  return EXIT.ok;
}

async function batch(
  client: ShaleClient,
  values: Values,
  pos: string[],
): Promise<number> {
  if (values["key-file"] !== undefined || values["key-hex"]) {
    throw new Usage("batch takes keys from its file only");
  }
  const [file] = expect(pos, values, 1, "FILE");
  const bytes = file === "-"
    ? await readStdin()
    : await readPath(file, "the batch file");
  const ops = parseBatch(new TextDecoder().decode(bytes));
  try {
    const r = await client.batch(ops);
    await writeOut(
      encoder.encode(
        JSON.stringify({ applied: r.applied, version: String(r.version) }) +
          "\n",
      ),
    );
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ShaleClientError && err.index !== undefined) {
      throw new Failure(
        exitOf(err),
        `op ${err.index}: ${err.message} (${err.code})`,
      );
    }
    throw err;
  }
}

/**
 * A batch file in the JSON of `POST /kv/batch` (keys and values base64),
 * as {@link BatchOp}s. Mistakes are usage errors: nothing is sent.
 */
export function parseBatch(text: string): BatchOp[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Usage(
      `the batch file is not JSON: ${err instanceof Error ? err.message : err}`,
    );
  }
  const ops = (doc as { ops?: unknown })?.ops;
  if (!Array.isArray(ops)) {
    throw new Usage('the batch file must be an object {"ops": [...]}');
  }
  return ops.map((o, i): BatchOp => {
    const at = `ops[${i}]`;
    if (typeof o !== "object" || o === null) {
      throw new Usage(`${at} is not an object`);
    }
    const r = o as Record<string, unknown>;
    const known = ["op", "key", "value", "ttl", "if_match", "if_none_match"];
    for (const k of Object.keys(r)) {
      if (!known.includes(k)) throw new Usage(`${at} has unknown field "${k}"`);
    }
    const key = b64Field(r.key, `${at}.key`);
    let ifVersion: number | undefined;
    if (r.if_match !== undefined) {
      if (typeof r.if_match !== "string" || !/^[0-9]+$/.test(r.if_match)) {
        throw new Usage(`${at}.if_match must be a version in a string`);
      }
      ifVersion = Number(r.if_match);
    }
    if (r.if_none_match !== undefined && r.if_none_match !== "*") {
      throw new Usage(`${at}.if_none_match must be "*"`);
    }
    const ifAbsent = r.if_none_match === "*" ? true : undefined;
    if (r.op === "put") {
      const value = b64Field(r.value, `${at}.value`);
      if (r.ttl !== undefined && typeof r.ttl !== "number") {
        throw new Usage(`${at}.ttl must be a number of seconds`);
      }
      return {
        op: "put",
        key,
        value,
        ttl: r.ttl as number | undefined,
        ifVersion,
        ifAbsent,
      };
    }
    if (r.value !== undefined || r.ttl !== undefined) {
      throw new Usage(`${at}: only a put takes value and ttl`);
    }
    if (r.op === "delete") return { op: "delete", key, ifVersion, ifAbsent };
    if (r.op === "check") return { op: "check", key, ifVersion, ifAbsent };
    throw new Usage(`${at}.op must be put, delete or check`);
  });
}

// ---- input ------------------------------------------------------------------

const encoder = new TextEncoder();

/** Checks the count of positional arguments (none with --key-file). */
function expect(
  pos: string[],
  values: Values,
  n: number,
  names: string,
): string[] {
  const keyFromFile = values["key-file"] !== undefined;
  const want = keyFromFile ? n - 1 : n;
  if (pos.length !== want) {
    throw new Usage(
      `expected ${want === 0 ? "no arguments" : names}${
        keyFromFile ? " (the key comes from --key-file)" : ""
      }, got ${pos.length} argument${pos.length === 1 ? "" : "s"}`,
    );
  }
  return keyFromFile ? ["", ...pos] : pos;
}

/** The key: from --key-file, stdin (`-`), hex (--key-hex) or UTF-8. */
async function keyBytes(values: Values, arg: string): Promise<Uint8Array> {
  let key: Uint8Array;
  const file = str(values["key-file"]);
  if (file !== undefined) key = await readPath(file, "--key-file");
  else if (arg === "-") key = await readStdin();
  else if (values["key-hex"]) key = fromHex(arg, "KEY");
  else key = encoder.encode(arg);
  if (key.length === 0) throw new Usage("the key is empty");
  return key;
}

async function readPath(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new Usage(
      `cannot read ${what} ${path}: ${
        err instanceof Error ? err.message : err
      }`,
    );
  }
}

/** All of stdin, as bytes (node:process works on Deno and Bun alike). */
async function readStdin(): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of process.stdin) {
    chunks.push(typeof c === "string" ? encoder.encode(c) : c);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

function str(v: string | boolean | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

function positiveInt(v: string | boolean, flag: string): number {
  if (typeof v !== "string" || !/^[0-9]+$/.test(v) || Number(v) < 1) {
    throw new Usage(`${flag} must be a positive integer, got "${v}"`);
  }
  return Number(v);
}

function version(
  v: string | boolean | undefined,
  flag = "--if-version",
): number | undefined {
  if (v === undefined) return undefined;
  if (
    typeof v !== "string" || !/^[0-9]+$/.test(v) ||
    !Number.isSafeInteger(Number(v))
  ) {
    throw new Usage(`${flag} must be a version number, got "${v}"`);
  }
  return Number(v);
}

function seconds(v: string | boolean): number {
  const n = typeof v === "string" && /^[0-9]+(\.[0-9]+)?$/.test(v)
    ? Number(v)
    : NaN;
  if (!(n > 0)) {
    throw new Usage(`--ttl must be a positive number of seconds, got "${v}"`);
  }
  return n;
}

function fromHex(text: string, what: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})*$/.test(text)) {
    throw new Usage(
      `${what} is not hex (an even number of 0-9 a-f): "${text}"`,
    );
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

function b64Field(v: unknown, what: string): Uint8Array {
  if (typeof v !== "string") throw new Usage(`${what} must be base64 text`);
  try {
    const bin = atob(v);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    throw new Usage(`${what} is not valid base64`);
  }
}

// ---- output -----------------------------------------------------------------

type Encoding = "utf8" | "hex" | "base64";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Bytes as text in `encoding`; UTF-8 that does not decode is an error. */
function show(bytes: Uint8Array, encoding: Encoding, what: string): string {
  if (encoding === "hex") {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  if (encoding === "base64") {
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin);
  }
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new Failure(
      EXIT.serverError,
      `a ${what} is not valid UTF-8; use --hex or --base64`,
    );
  }
}

function jsonLine(e: Entry, encoding: Encoding, keysOnly: boolean): string {
  const o: Record<string, string | number> = {
    key: show(e.key, encoding, "key"),
  };
  if (!keysOnly) o.value = show(e.value, encoding, "value");
  o.version = String(e.version);
  if (e.expiresAt !== undefined) o.expires_at = e.expiresAt;
  return JSON.stringify(o) + "\n";
}

function changeLine(version: number, c: Change, encoding: Encoding): string {
  const o: Record<string, string | number> = { version: String(version) };
  o.type = c.type;
  o.key = show(c.key, encoding, "key");
  if (c.value !== undefined) o.value = show(c.value, encoding, "value");
  if (c.valueSize !== undefined) o.value_size = c.valueSize;
  if (c.expiresAt !== undefined) o.expires_at = c.expiresAt;
  return JSON.stringify(o) + "\n";
}

/** `key TAB value NL`; UTF-8 text holding a tab or newline cannot be split back. */
function textLine(e: Entry, encoding: Encoding, keysOnly: boolean): string {
  const key = show(e.key, encoding, "key");
  if (encoding === "utf8" && /[\t\n]/.test(key)) {
    throw new Failure(
      EXIT.serverError,
      "a key holds a tab or newline, which --format text cannot show; use --hex, --base64 or --format json",
    );
  }
  if (keysOnly) return key + "\n";
  const value = show(e.value, encoding, "value");
  if (encoding === "utf8" && value.includes("\n")) {
    throw new Failure(
      EXIT.serverError,
      "a value holds a newline, which --format text cannot show; use --hex, --base64 or --format json",
    );
  }
  return `${key}\t${value}\n`;
}

/** Writes bytes to stdout and waits until they are handed to the OS. */
function writeOut(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(bytes, (err) => err ? reject(err) : resolve());
  });
}
