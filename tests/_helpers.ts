/**
 * Shared test helpers: a seeded PRNG whose seed is printed when a test
 * fails, temporary directories that are always removed, byte helpers and a
 * sorted-Map model of a key/value store.
 *
 * @module
 */
import { compareBytes } from "../engine/coding.ts";
import type { OpenWritableOptions, WritableFile } from "../engine/fs.ts";
import { DenoFileSystem } from "../engine/fs_deno.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of a string. */
export function enc(s: string): Uint8Array {
  return encoder.encode(s);
}

/** The string a UTF-8 byte string decodes to. */
export function dec(b: Uint8Array): string {
  return decoder.decode(b);
}

/** Bytes from a list of numbers: `bytes(0, 0xff)`. */
export function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

/** Lowercase hex of a byte string (model keys, failure messages). */
export function hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

/** Bytes of a hex string. */
export function unhex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** Concatenates byte strings. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

import { Rng } from "./_rng.ts";
export { prng, Rng } from "./_rng.ts";

/**
 * The seed for a test: `SHALE_SEED` when set (to replay a failure), else
 * `fallback`, so default runs are deterministic.
 */
export function testSeed(fallback: number): number {
  const env = Deno.env.get("SHALE_SEED");
  return env !== undefined ? Number(env) : fallback;
}

/**
 * Runs `fn` with a PRNG seeded by `seed`; when it throws, the error message
 * is prefixed with the seed and how to replay it.
 */
export async function withSeed<T>(
  seed: number,
  fn: (rng: Rng) => T | Promise<T>,
): Promise<T> {
  try {
    return await fn(new Rng(seed));
  } catch (err) {
    const msg = `seed ${seed} (replay with SHALE_SEED=${seed})`;
    console.error(`\nFAILED with ${msg}`);
    if (err instanceof Error) err.message = `[${msg}] ${err.message}`;
    throw err;
  }
}

/** Runs `fn` with a fresh temporary directory, removed afterwards whatever happens. */
export async function withTempDir<T>(
  fn: (dir: string) => T | Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "shale_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** One key/value pair of the model. */
export interface ModelEntry {
  key: Uint8Array;
  value: Uint8Array;
  version: number;
  expiresAt: number;
}

/** Range options the model understands (the same as Db.scan's). */
export interface ModelScan {
  start?: Uint8Array;
  end?: Uint8Array;
  prefix?: Uint8Array;
  reverse?: boolean;
  limit?: number;
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (key[i] !== prefix[i]) return false;
  }
  return true;
}

/**
 * A plain sorted-Map model of a key/value store: what a correct shale must
 * answer. Keys are stored by hex; `scan` sorts by unsigned byte order.
 */
export class SortedModel {
  #map = new Map<string, ModelEntry>();

  get size(): number {
    return this.#map.size;
  }

  set(key: Uint8Array, value: Uint8Array, version: number, expiresAt = 0) {
    this.#map.set(hex(key), {
      key: key.slice(),
      value: value.slice(),
      version,
      expiresAt,
    });
  }

  delete(key: Uint8Array): void {
    this.#map.delete(hex(key));
  }

  /** The live entry for `key` at time `now` (expired entries are absent). */
  get(key: Uint8Array, now = 0): ModelEntry | undefined {
    const e = this.#map.get(hex(key));
    if (!e) return undefined;
    if (e.expiresAt !== 0 && e.expiresAt <= now) return undefined;
    return e;
  }

  /** Every live entry matching the range, in order, then limited. */
  scan(o: ModelScan = {}, now = 0): ModelEntry[] {
    let out = [...this.#map.values()].filter((e) => {
      if (e.expiresAt !== 0 && e.expiresAt <= now) return false;
      if (o.start && compareBytes(e.key, o.start) < 0) return false;
      if (o.end && compareBytes(e.key, o.end) >= 0) return false;
      if (o.prefix && !startsWith(e.key, o.prefix)) return false;
      return true;
    });
    out.sort((a, b) => compareBytes(a.key, b.key));
    if (o.reverse) out.reverse();
    if (o.limit !== undefined) out = out.slice(0, Math.max(0, o.limit));
    return out;
  }

  /** A deep copy (for snapshot checks). */
  clone(): SortedModel {
    const m = new SortedModel();
    for (const [k, e] of this.#map) m.#map.set(k, e);
    return m;
  }
}

/**
 * The real file system with every fsync turned into a no-op: for tests of
 * logic (not durability) that would otherwise spend their time waiting on a
 * shared disk. Never use it where a crash or power cut is simulated.
 */
export class NoSyncFileSystem extends DenoFileSystem {
  override openWritable(
    path: string,
    opts?: OpenWritableOptions,
  ): WritableFile {
    const inner = super.openWritable(path, opts);
    return new Proxy(inner, {
      get(target, prop) {
        if (prop === "sync") return () => Promise.resolve();
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  }
  override async truncate(path: string, len: number): Promise<void> {
    await Deno.truncate(path, len);
  }
  override syncDir(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Runs a Deno child script with `args`, collects its stdout lines, and
 * SIGKILLs it `killAfterMs` after it prints `READY`. Asserts that it was the
 * kill that ended it and that it did start. Returns every complete line (a
 * line torn by the kill is not an event).
 */
export async function runUntilKilled(
  script: string,
  args: string[],
  killAfterMs: number,
): Promise<string[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-check", script, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const lines: string[] = [];
  let buffered = "";
  let killed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const decoder = new TextDecoder();
  const stderr = new Response(child.stderr).text();
  try {
    for await (const chunk of child.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (line === "READY" && timer === undefined) {
          timer = setTimeout(() => {
            killed = true;
            child.kill("SIGKILL");
          }, killAfterMs);
        }
      }
    }
  } finally {
    clearTimeout(timer);
  }
  const status = await child.status;
  const err = await stderr;
  if (!(killed && status.signal === "SIGKILL")) {
    throw new Error(`child ended on its own (code ${status.code}): ${err}`);
  }
  if (lines[0] !== "READY") throw new Error(`child did not start: ${err}`);
  return lines;
}
