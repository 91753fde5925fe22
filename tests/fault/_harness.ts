/**
 * Shared machinery of the fault suites (tests/fault/): the real server as a
 * subprocess (re-exported from tests/_shale.ts, the one starter), the offline
 * `verify` command, an HTTP client with timeouts, a raw-socket client for
 * requests `fetch` refuses to send, RSS sampling from /proc, percentiles,
 * and a tally that ends every suite with one line `N passed, N failed`.
 *
 * Every suite is loopback-only and bounded: each wait has a deadline, each
 * loop a cap, so a hung server fails a check instead of hanging CI.
 *
 * @module
 */

import { compareBytes } from "../../mod.ts";
import {
  REPO,
  type ServerProcess,
  shaleCommand,
  type ShaleRuntime,
} from "../_shale.ts";

export {
  killServer,
  type LogLine,
  MAIN,
  mustStart,
  type ReadyServer,
  REPO,
  SERVER_PERMISSIONS,
  type ServerProcess,
  SHALE_RUNTIMES,
  type ShaleRuntime,
  type StartOptions,
  type StartResult,
  startServer,
  stopServer,
  unavailable,
} from "../_shale.ts";
export { rawExchange, type RawOutcome } from "../_raw_http.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Integer from an environment variable, else `fallback`. */
export function envInt(name: string, fallback: number): number {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${v}"`);
  }
  return n;
}

/**
 * Polls `GET /health` until it answers 200 `{"status":"ok"}`; resolves with
 * performance.now() at that moment. Throws after `timeoutMs`.
 */
export async function waitHealthy(
  base: string,
  timeoutMs = 30_000,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  while (performance.now() < deadline) {
    try {
      const r = await request(base, "GET", "/health", { timeoutMs: 2000 });
      if (r.status === 200 && JSON.parse(r.text()).status === "ok") {
        return performance.now();
      }
      last = `${r.status} ${r.text()}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(10);
  }
  throw new Error(`server not healthy after ${timeoutMs} ms: ${last}`);
}

/** Runs `shale <args>` to completion (e.g. `verify --data-dir D`). */
export async function runShale(
  args: string[],
  timeoutMs = 60_000,
  runtime: ShaleRuntime = "deno",
): Promise<{ code: number; output: string }> {
  const shale = await shaleCommand(runtime);
  const child = new Deno.Command(shale.command, {
    args: [...shale.args, ...args],
    cwd: REPO,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  const out = await Promise.race([child.output(), timeout]);
  clearTimeout(timer);
  if (out === undefined) {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    await child.status;
    throw new Error(`shale ${args.join(" ")} ran over ${timeoutMs} ms`);
  }
  return {
    code: out.code,
    output: decoder.decode(out.stdout) + decoder.decode(out.stderr),
  };
}

// ---- HTTP -------------------------------------------------------------------

/** A fully read HTTP response. */
export interface HttpResult {
  status: number;
  headers: Headers;
  body: Uint8Array;
  text(): string;
  json(): unknown;
}

/** Options of {@link request}. */
export interface RequestOptions {
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  /** Abort the request (and fail) after this long. Default 10 s. */
  timeoutMs?: number;
  client?: Deno.HttpClient;
}

/** One request over fetch; the body is read whole. Throws on network errors. */
export async function request(
  base: string,
  method: string,
  path: string,
  opts: RequestOptions = {},
): Promise<HttpResult> {
  const body = typeof opts.body === "string"
    ? encoder.encode(opts.body)
    : opts.body;
  const res = await fetch(base + path, {
    method,
    headers: opts.headers,
    body: body === undefined ? undefined : body.slice(),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    client: opts.client,
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return {
    status: res.status,
    headers: res.headers,
    body: bytes,
    text: () => decoder.decode(bytes),
    json: () => JSON.parse(decoder.decode(bytes)),
  };
}

const UNRESERVED = /^[A-Za-z0-9_~-]$/;

/** Percent-encodes every key byte outside `A-Z a-z 0-9 _ ~ -` (dots too). */
export function keyPath(key: Uint8Array | string): string {
  const bytes = typeof key === "string" ? encoder.encode(key) : key;
  let out = "/kv/";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && UNRESERVED.test(c)
      ? c
      : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** True when `text` is the contract's error body `{"error":{"code","message"}}`. */
export function isErrorBody(text: string): boolean {
  try {
    const doc = JSON.parse(text);
    return typeof doc?.error?.code === "string" &&
      /^[a-z][a-z0-9_]*$/.test(doc.error.code) &&
      typeof doc?.error?.message === "string";
  } catch {
    return false;
  }
}

/** The error code of an error body, or undefined. */
export function errorCodeOf(text: string): string | undefined {
  return isErrorBody(text) ? JSON.parse(text).error.code : undefined;
}

/** One item of a full range scan. */
export interface ScanEntry {
  key: Uint8Array;
  value: Uint8Array;
  version: string;
}

/**
 * Pages through `/kv/range` with cursors. Returns the items, or the first
 * non-200 response. `query` is appended to every page (e.g. `reverse=true`).
 */
export async function scanAll(
  base: string,
  query = "",
  pageLimit = 200,
  maxPages = 10_000,
): Promise<{ items: ScanEntry[]; pages: number } | { error: HttpResult }> {
  const items: ScanEntry[] = [];
  let cursor: string | null = null;
  for (let pages = 1; pages <= maxPages; pages++) {
    const q = `limit=${pageLimit}${query ? "&" + query : ""}${
      cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`
    }`;
    const r = await request(base, "GET", `/kv/range?${q}`);
    if (r.status !== 200) return { error: r };
    const doc = r.json() as {
      items: { key: string; value: string; version: string }[];
      next: string | null;
    };
    for (const it of doc.items) {
      items.push({
        key: Uint8Array.fromBase64(it.key),
        value: Uint8Array.fromBase64(it.value),
        version: it.version,
      });
    }
    if (doc.next === null) return { items, pages };
    cursor = doc.next;
  }
  throw new Error(`scan did not end within ${maxPages} pages`);
}

/**
 * Problems with a scan's order: keys must be strictly increasing (or
 * decreasing when `reverse`), which also rules out duplicates.
 */
export function orderProblems(
  items: { key: Uint8Array }[],
  reverse = false,
): string[] {
  const out: string[] = [];
  for (let i = 1; i < items.length; i++) {
    const c = compareBytes(items[i - 1].key, items[i].key);
    if (reverse ? c <= 0 : c >= 0) {
      out.push(
        `${c === 0 ? "duplicate" : "out of order"} at ${i}: ${
          decoder.decode(items[i - 1].key)
        } then ${decoder.decode(items[i].key)}`,
      );
    }
  }
  return out;
}

// ---- processes, numbers, reporting -------------------------------------------

/**
 * Resident set size of `pid` in KiB (VmRSS), and its peak (VmHWM). Throws
 * when they cannot be read; never answers 0.
 */
export function rssKiB(pid: number): { rss: number; peak: number } {
  const path = `/proc/${pid}/status`;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotCapable)) throw err;
    // Deno 2 lets only --allow-all read another process's /proc entry; the
    // suites run with --allow-run, so a child reads it for us.
    const out = new Deno.Command("cat", {
      args: [path],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!out.success) {
      throw new Error(
        `cat ${path} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
    text = new TextDecoder().decode(out.stdout);
  }
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    if (m === null || Number(m[1]) <= 0) {
      throw new Error(`${path} has no ${name} figure`);
    }
    return Number(m[1]);
  };
  return { rss: field("VmRSS"), peak: field("VmHWM") };
}

/**
 * Samples a server's RSS for a suite. A read that fails while the server
 * runs is printed at once and kept in `error`; {@link check} then fails the
 * suite, so a memory limit can never pass because nothing was measured.
 */
export class RssSampler {
  /** Highest RSS seen, in KiB. */
  peakKiB = 0;
  /** Successful reads. */
  samples = 0;
  /** The first failed read, if any. */
  error: string | undefined;
  #exited = false;

  constructor(readonly server: ServerProcess) {
    server.exited.then(() => {
      this.#exited = true;
    });
  }

  /** Reads the RSS now, in KiB; undefined when it failed or the server is gone. */
  sample(): number | undefined {
    if (this.#exited) return undefined;
    try {
      const { rss } = rssKiB(this.server.pid);
      this.samples++;
      this.peakKiB = Math.max(this.peakKiB, rss);
      return rss;
    } catch (err) {
      if (this.#exited) return undefined;
      if (this.error === undefined) {
        this.error = err instanceof Error ? err.message : String(err);
        console.error(
          `RSS sampling of pid ${this.server.pid} failed: ${this.error}`,
        );
      }
      return undefined;
    }
  }

  /** Records in `tally` whether sampling worked (at least one read, no failure). */
  check(tally: Tally): void {
    tally.check(
      this.error === undefined && this.samples > 0,
      `RSS could not be measured: ${this.error ?? "no sample was taken"}`,
    );
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The p-th percentile (0..100) of `values` by nearest rank; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Largest of `values` (-Infinity when empty); safe for millions of values, unlike `Math.max(...values)`. */
export function maxOf(values: readonly number[]): number {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  return max;
}

/** `values`' median. */
export function median(values: number[]): number {
  return percentile(values, 50);
}

/** A number rounded to `digits` decimals, for printing. */
export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Runs `fn` over `items` with at most `limit` running at once. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, worker),
  );
  return out;
}

/**
 * Counts checks. Failures are collected (first 50 kept verbatim) so a suite
 * reports all of them, then `finish()` prints `N passed, N failed` with the
 * suite's figures and throws when anything failed.
 */
export class Tally {
  passed = 0;
  failed = 0;
  readonly failures: string[] = [];
  constructor(readonly suite: string) {}

  /** Records one check; returns `ok`. */
  check(ok: boolean, what: string | (() => string)): boolean {
    if (ok) {
      this.passed++;
    } else {
      this.failed++;
      if (this.failures.length < 50) {
        this.failures.push(typeof what === "string" ? what : what());
      }
    }
    return ok;
  }

  /** Records one failure. */
  fail(what: string): void {
    this.check(false, what);
  }

  /** Prints the figures and the summary line; throws if any check failed. */
  finish(figures: Record<string, unknown> = {}): void {
    const lines = [`[${this.suite}]`];
    for (const [k, v] of Object.entries(figures)) {
      lines.push(`  ${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
    }
    for (const f of this.failures) lines.push(`  FAIL ${f}`);
    lines.push(`${this.passed} passed, ${this.failed} failed`);
    console.log(lines.join("\n"));
    if (this.failed > 0) {
      throw new Error(
        `${this.suite}: ${this.failed} check(s) failed; first: ${
          this.failures[0]
        }`,
      );
    }
  }
}

/** Removes a directory tree, ignoring a missing one. */
export async function removeDir(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** Copies a flat directory (a stopped store) file by file. */
export async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}
