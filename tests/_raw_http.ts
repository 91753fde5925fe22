/**
 * The one raw HTTP/1.1 client of the tests: bytes written to a fresh TCP
 * connection as given, for requests `fetch` refuses to send (bad escapes,
 * dot segments, lying Content-Length, split or stalled writes), and the
 * response parsed as far as it arrived.
 *
 * @module
 */
import { concat } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** What a raw exchange came to. */
export interface RawOutcome {
  /** Status of the first response, or undefined when none arrived. */
  status?: number;
  headers?: Headers;
  body?: string;
  /** All bytes received. */
  bytes: number;
  /** The read deadline passed with the connection still open. */
  timedOut: boolean;
  /** The peer reset or refused. */
  error?: string;
}

/**
 * Writes `chunks` to a fresh TCP connection (pausing `pauseMs` between
 * them), optionally half-closes, then reads until the peer closes or one
 * complete response has arrived, at most `timeoutMs`.
 */
export async function rawExchange(
  port: number,
  chunks: Uint8Array[],
  opts: { pauseMs?: number; halfClose?: boolean; timeoutMs?: number } = {},
): Promise<RawOutcome> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const out: RawOutcome = { bytes: 0, timedOut: false };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    const writing = (async () => {
      for (let i = 0; i < chunks.length; i++) {
        if (i > 0 && opts.pauseMs) await sleep(opts.pauseMs);
        await conn.write(chunks[i]);
      }
      if (opts.halfClose) await conn.closeWrite();
    })().catch(() => {}); // the server may answer and close before the end
    const received: Uint8Array[] = [];
    let total = 0;
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await Promise.race([conn.read(buf), deadline]).catch((e) => {
        out.error = String(e);
        return null;
      });
      if (n === "timeout") {
        out.timedOut = true;
        break;
      }
      if (n === null) break;
      received.push(buf.slice(0, n));
      total += n;
      if (total > 64 << 20) break;
      if (completeResponse(concat(...received))) break;
    }
    await Promise.race([writing, deadline]);
    out.bytes = total;
    if (total > 0) Object.assign(out, parseHead(concat(...received)));
    return out;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the peer
    }
  }
}

/** True once `bytes` hold a full response (by Content-Length or chunking). */
function completeResponse(bytes: Uint8Array): boolean {
  const text = decoder.decode(bytes);
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) return false;
  const head = text.slice(0, split).toLowerCase();
  const status = Number(head.split(" ")[1]);
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return true;
  }
  const cl = /\r\ncontent-length: *(\d+)/.exec(head);
  if (cl) return bytes.length - (split + 4) >= Number(cl[1]);
  if (/\r\ntransfer-encoding: *chunked/.test(head)) {
    return text.endsWith("0\r\n\r\n");
  }
  return false;
}

function parseHead(
  bytes: Uint8Array,
): { status?: number; headers?: Headers; body?: string } {
  const text = decoder.decode(bytes);
  const split = text.indexOf("\r\n\r\n");
  const headText = split < 0 ? text : text.slice(0, split);
  const lines = headText.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (m === null) return {};
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) {
      try {
        headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
      } catch {
        // a header value Headers refuses: keep the rest
      }
    }
  }
  let body = split < 0 ? "" : text.slice(split + 4);
  if (headers.get("transfer-encoding")?.toLowerCase() === "chunked") {
    let decoded = "";
    let rest = body;
    for (let guard = 0; guard < 100_000; guard++) {
      const nl = rest.indexOf("\r\n");
      if (nl < 0) break;
      const size = parseInt(rest.slice(0, nl), 16);
      if (!(size > 0)) break;
      decoded += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = decoded;
  }
  return { status: Number(m[1]), headers, body };
}

/** A parsed raw HTTP response. */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

/**
 * Sends `head` (request line and headers, without the blank line) plus an
 * optional body over a fresh connection with `Connection: close`, and reads
 * one response (until it is complete or the server closes). Throws when no
 * response arrived.
 */
export async function rawRequest(
  port: number,
  head: string,
  body: Uint8Array | string = "",
): Promise<RawResponse> {
  const payload = typeof body === "string" ? encoder.encode(body) : body;
  const msg = encoder.encode(`${head}\r\nConnection: close\r\n\r\n`);
  const out = await rawExchange(port, [concat(msg, payload)], {
    timeoutMs: 30_000,
  });
  if (out.status === undefined) {
    throw new Error(
      `no complete response (${out.bytes} bytes${
        out.error ? `, ${out.error}` : ""
      }${out.timedOut ? ", timed out" : ""})`,
    );
  }
  return { status: out.status, headers: out.headers!, body: out.body ?? "" };
}
