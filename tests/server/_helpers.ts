/**
 * Shared fixtures for the server tests: the handler in process behind a
 * real `Deno.serve` on port 0 over a fresh data directory (the server as its
 * own process is `tests/fault/_harness.ts`), and the raw HTTP/1.1 client of
 * `tests/_raw_http.ts` for requests `fetch` would refuse to send.
 *
 * @module
 */
import { type Db, type DbOptions, open } from "../../mod.ts";
import {
  createHandler,
  type Handler,
  type HandlerOptions,
} from "../../server/app.ts";

export { rawRequest, type RawResponse } from "../_raw_http.ts";

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
