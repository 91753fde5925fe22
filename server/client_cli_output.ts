/**
 * A client command's output: bytes shown as UTF-8 text, hex or base64, one
 * JSON or tab-separated line per entry or change, written to stdout.
 *
 * @module
 */
import process from "node:process";
import type { Change, Entry } from "../client.ts";
import { EXIT, Failure } from "./client_cli_exit.ts";

export type Encoding = "utf8" | "hex" | "base64";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Bytes as text in `encoding`; UTF-8 that does not decode is an error. */
export function show(
  bytes: Uint8Array,
  encoding: Encoding,
  what: string,
): string {
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

export function jsonLine(
  e: Entry,
  encoding: Encoding,
  keysOnly: boolean,
): string {
  const o: Record<string, string | number> = {
    key: show(e.key, encoding, "key"),
  };
  if (!keysOnly) o.value = show(e.value, encoding, "value");
  o.version = String(e.version);
  if (e.expiresAt !== undefined) o.expires_at = e.expiresAt;
  return JSON.stringify(o) + "\n";
}

export function changeLine(
  version: number,
  c: Change,
  encoding: Encoding,
): string {
  const o: Record<string, string | number> = { version: String(version) };
  o.type = c.type;
  if (c.type === "delete_range") {
    o.start = show(c.key, encoding, "key");
    if (c.end !== undefined) o.end = show(c.end, encoding, "key");
    return JSON.stringify(o) + "\n";
  }
  o.key = show(c.key, encoding, "key");
  if (c.value !== undefined) o.value = show(c.value, encoding, "value");
  if (c.valueSize !== undefined) o.value_size = c.valueSize;
  if (c.expiresAt !== undefined) o.expires_at = c.expiresAt;
  return JSON.stringify(o) + "\n";
}

/** `key TAB value NL`; UTF-8 text holding a tab or newline cannot be split back. */
export function textLine(
  e: Entry,
  encoding: Encoding,
  keysOnly: boolean,
): string {
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
export function writeOut(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(bytes, (err) => err ? reject(err) : resolve());
  });
}
