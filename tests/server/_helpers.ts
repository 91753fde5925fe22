/**
 * Shared fixtures for the server tests: a real `Deno.serve` on port 0 over a
 * fresh data directory, and a raw HTTP/1.1 client for requests `fetch` would
 * refuse to send (bad escapes, dot segments, lying Content-Length).
 *
 * @module
 */
import { type Db, type DbOptions, open } from "../../mod.ts";
import { concat } from "../_helpers.ts";
import {
  createHandler,
  type Handler,
  type HandlerOptions,
} from "../../server/app.ts";

/** A running test server. */
export interface TestServer {
  base: string;
  port: number;
  db: Db;
  handler: Handler;
  dir: string;
  /** Log lines the handler reported (server faults). */
  logs: string[];
  close(): Promise<void>;
}

/** Starts the handler over a temp dir on 127.0.0.1:0 (HTTPS when `tls`). */
export async function startServer(
  opts: {
    db?: DbOptions;
    handler?: HandlerOptions;
    tls?: { cert: string; key: string };
  } = {},
): Promise<TestServer> {
  const dir = await Deno.makeTempDir({ prefix: "shale-server-test-" });
  const db = await open(dir, {
    sync: "none",
    background: "inline",
    ...opts.db,
  });
  const logs: string[] = [];
  const handler = createHandler(db, {
    log: (level, message, fields) =>
      logs.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`),
    ...opts.handler,
  });
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    ...opts.tls,
  }, handler);
  const port = server.addr.port;
  const scheme = opts.tls ? "https" : "http";
  return {
    base: `${scheme}://localhost:${port}`,
    port,
    db,
    handler,
    dir,
    logs,
    async close() {
      await server.shutdown();
      handler.close();
      await db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Runs `fn` against a fresh server and always tears it down. */
export async function withServer(
  opts: Parameters<typeof startServer>[0],
  fn: (s: TestServer) => Promise<void>,
): Promise<void> {
  const s = await startServer(opts);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Bytes of a UTF-8 string. */
export function b(text: string): Uint8Array {
  return enc.encode(text);
}

/** Base64 of a UTF-8 string (or of bytes). */
export function b64(v: string | Uint8Array): string {
  return (typeof v === "string" ? enc.encode(v) : v).toBase64();
}

/** UTF-8 text of base64. */
export function unb64(text: string): string {
  return dec.decode(Uint8Array.fromBase64(text));
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
 * the response until the server closes.
 */
export async function rawRequest(
  port: number,
  head: string,
  body: Uint8Array | string = "",
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const payload = typeof body === "string" ? enc.encode(body) : body;
    const msg = enc.encode(`${head}\r\nConnection: close\r\n\r\n`);
    const all = new Uint8Array(msg.length + payload.length);
    all.set(msg);
    all.set(payload, msg.length);
    // The server may answer (413) and close before taking the whole body.
    await conn.write(all).catch(() => {});
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        break; // reset after the response: keep what arrived
      }
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      // Stop at a complete response: the server may keep the connection
      // open waiting for a body it has already refused.
      if (complete(concat(...chunks))) break;
    }
    return parseResponse(concat(...chunks));
  } finally {
    try {
      conn.close();
    } catch {
      // already closed by the peer
    }
  }
}

function complete(bytes: Uint8Array): boolean {
  const text = dec.decode(bytes);
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) return false;
  const m = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, split));
  if (m === null) return false;
  return bytes.length >=
    enc.encode(text.slice(0, split + 4)).length + Number(m[1]);
}

function parseResponse(bytes: Uint8Array): RawResponse {
  const text = dec.decode(bytes);
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) {
    throw new Error(`no complete response: ${JSON.stringify(text)}`);
  }
  const lines = text.slice(0, split).split("\r\n");
  const status = Number(lines[0].split(" ")[1]);
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  let body = text.slice(split + 4);
  if (headers.get("transfer-encoding") === "chunked") {
    let out = "";
    let rest = body;
    for (;;) {
      const nl = rest.indexOf("\r\n");
      const size = parseInt(rest.slice(0, nl), 16);
      if (!(size > 0)) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  }
  return { status, headers, body };
}

/** Asserts the JSON error shape and returns the code. */
export function errorCode(body: string): string {
  const doc = JSON.parse(body);
  if (
    typeof doc?.error?.code !== "string" ||
    typeof doc?.error?.message !== "string" ||
    !/^[a-z][a-z0-9_]*$/.test(doc.error.code)
  ) {
    throw new Error(`not an error body: ${body}`);
  }
  return doc.error.code;
}

/** Makes a self-signed certificate for localhost with openssl. */
export async function selfSignedCert(
  dir: string,
): Promise<{ cert: string; key: string; certFile: string; keyFile: string }> {
  const certFile = `${dir}/cert.pem`;
  const keyFile = `${dir}/key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      // rustls refuses a CA certificate as the server's own certificate.
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "extendedKeyUsage=serverAuth",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`openssl failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return {
    cert: await Deno.readTextFile(certFile),
    key: await Deno.readTextFile(keyFile),
    certFile,
    keyFile,
  };
}
