/**
 * A client command's input: positional arguments, keys and values from
 * arguments, files or stdin (hex with `--key-hex`), scan and watch bounds,
 * numbers, and batch files. Every mistake is a {@link Usage} error: nothing
 * is sent.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import process from "node:process";
import type { BatchOp } from "../client.ts";
import { Usage } from "./client_cli_exit.ts";

/** Parsed flags of a client command. */
export type Values = Record<string, string | boolean | undefined>;

export const encoder = new TextEncoder();

/** --prefix, or --start/--end, as bytes (hex with --key-hex). */
export function bounds(values: Values): {
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
    if (r.op === "delete_range") return rangeOp(r, at);
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
    throw new Usage(`${at}.op must be put, delete, check or delete_range`);
  });
}

/** A batch file's `delete_range` op; the server checks the range itself. */
function rangeOp(r: Record<string, unknown>, at: string): BatchOp {
  for (const k of Object.keys(r)) {
    if (!["op", "start", "end", "prefix"].includes(k)) {
      throw new Usage(`${at} has unknown field "${k}" for delete_range`);
    }
  }
  if (r.prefix !== undefined) {
    if (r.start !== undefined || r.end !== undefined) {
      throw new Usage(`${at}: delete_range takes a prefix or start/end`);
    }
    return { op: "delete_range", prefix: b64Field(r.prefix, `${at}.prefix`) };
  }
  const start = b64Field(r.start, `${at}.start`);
  return r.end === undefined
    ? { op: "delete_range", start }
    : { op: "delete_range", start, end: b64Field(r.end, `${at}.end`) };
}

/** Checks the count of positional arguments (none with --key-file). */
export function expect(
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

/** For commands over a range (scan, watch): no KEY, no --key-file. */
export function takesNoArguments(
  command: string,
  pos: string[],
  values: Values,
): void {
  if (pos.length > 0) {
    throw new Usage(`${command} takes no arguments, got "${pos[0]}"`);
  }
  if (values["key-file"] !== undefined) {
    throw new Usage(`${command} does not take --key-file`);
  }
}

/** The key: from --key-file, stdin (`-`), hex (--key-hex) or UTF-8. */
export async function keyBytes(
  values: Values,
  arg: string,
): Promise<Uint8Array> {
  let key: Uint8Array;
  const file = str(values["key-file"]);
  if (file !== undefined) key = await readPath(file, "--key-file");
  else if (arg === "-") key = await readStdin();
  else if (values["key-hex"]) key = fromHex(arg, "KEY");
  else key = encoder.encode(arg);
  if (key.length === 0) throw new Usage("the key is empty");
  return key;
}

export async function readPath(
  path: string,
  what: string,
): Promise<Uint8Array> {
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
export async function readStdin(): Promise<Uint8Array> {
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

export function str(v: string | boolean | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

export function positiveInt(v: string | boolean, flag: string): number {
  if (typeof v !== "string" || !/^[0-9]+$/.test(v) || Number(v) < 1) {
    throw new Usage(`${flag} must be a positive integer, got "${v}"`);
  }
  return Number(v);
}

export function version(
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

export function seconds(v: string | boolean): number {
  const n = typeof v === "string" && /^[0-9]+(\.[0-9]+)?$/.test(v)
    ? Number(v)
    : NaN;
  if (!(n > 0)) {
    throw new Usage(`--ttl must be a positive number of seconds, got "${v}"`);
  }
  return n;
}

export function fromHex(text: string, what: string): Uint8Array {
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

export function b64Field(v: unknown, what: string): Uint8Array {
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
