/**
 * Graceful shutdown of the real `shale` process, on every runtime (Deno,
 * Bun, the `dist/shale` binary): a SIGTERM that arrives while a PUT body is
 * still being received lets that upload finish (204, durable after a
 * restart), new connections are refused or answered 503 at once, and an
 * upload that stalls past `--shutdown-timeout` is cut while the process
 * still closes the store and exits 0.
 */
import { deepEqual, match, ok } from "node:assert/strict";
import {
  eachRuntime,
  type PipedProcess,
  shaleCommand,
  type ShaleRuntime,
  spawnPiped,
} from "../_shale.ts";

interface Server extends PipedProcess {
  port: number;
}

async function startServe(
  rt: ShaleRuntime,
  dir: string,
  extra: string[] = [],
): Promise<Server> {
  const c = await shaleCommand(rt);
  const proc = spawnPiped([
    c.command,
    ...c.args,
    "serve",
    "--port",
    "0",
    "--data-dir",
    dir,
    ...extra,
  ]);
  const m = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
  return { ...proc, port: Number(m[1]) };
}

const enc = new TextEncoder();

/** Reads from `conn` until the connection ends or `timeoutMs` passes. */
async function readAll(conn: Deno.Conn, timeoutMs: number): Promise<string> {
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return text;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"timeout">((r) =>
        timer = setTimeout(() => r("timeout"), left)
      ),
    ]);
    clearTimeout(timer);
    if (n === "timeout" || n === null) return text;
    text += new TextDecoder().decode(buf.subarray(0, n));
    // One response is all these tests wait for.
    const head = text.indexOf("\r\n\r\n");
    if (head >= 0) {
      const len = text.slice(0, head).match(/content-length:\s*(\d+)/i);
      if (len && text.length >= head + 4 + Number(len[1])) return text;
      if (!len && /^HTTP\/1\.1 204/.test(text)) return text;
    }
  }
}

/** Starts a PUT of `total` body bytes and sends only `first` of them. */
async function beginUpload(
  port: number,
  key: string,
  first: string,
  total: number,
): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(enc.encode(
    `PUT /kv/${key} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: ${total}\r\n\r\n` +
      first,
  ));
  return conn;
}

/**
 * Waits until the server counts `n` requests in flight besides the
 * `/metrics` request asking, so a signal sent next finds them inside.
 */
async function waitInFlight(port: number, n: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`))
      .text();
    const m = text.match(/^shale_http_requests_in_flight (\d+)$/m);
    if (m && Number(m[1]) - 1 >= n) return;
    if (Date.now() > deadline) {
      throw new Error(`never ${n} requests in flight:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * What a connection opened now gets: "refused" when the connect fails or
 * the socket is closed before any answer, else the raw response.
 */
async function newConnection(port: number): Promise<string> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return "refused";
  }
  try {
    await conn.write(enc.encode(
      `GET /kv/slow HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
    ));
  } catch {
    conn.close();
    return "refused";
  }
  const text = await readAll(conn, 5_000);
  conn.close();
  return text === "" ? "refused" : text;
}

eachRuntime(
  "SIGTERM during an upload lets it finish (204, durable), refuses new connections",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-shutdown-" });
    try {
      const a = await startServe(rt, dir, ["--sync", "always"]);
      const conn = await beginUpload(a.port, "slow", "hello-", 12);
      // The server has started the request and waits for the rest of the body.
      await waitInFlight(a.port, 1);
      a.child.kill("SIGTERM");
      await a.waitFor(/shutting down reason=SIGTERM/);

      const t0 = Date.now();
      const other = await newConnection(a.port);
      const otherMs = Date.now() - t0;
      ok(
        other === "refused" ||
          (/^HTTP\/1\.1 503/.test(other) &&
            /connection: close/i.test(other) &&
            /"code":"shutting_down"/.test(other)),
        `a new connection after SIGTERM got: ${other}`,
      );
      ok(otherMs < 3_000, `the new connection waited ${otherMs} ms`);

      await conn.write(enc.encode("world!"));
      const res = await readAll(conn, 10_000);
      conn.close();
      match(res, /^HTTP\/1\.1 204/, `the upload got: ${res}\n${a.output()}`);
      deepEqual(await a.finished, 0, a.output());
      match(a.output(), /stopped code=0/);

      const b = await startServe(rt, dir);
      const got = await fetch(`http://127.0.0.1:${b.port}/kv/slow`);
      deepEqual(got.status, 200);
      deepEqual(await got.text(), "hello-world!");
      b.child.kill("SIGTERM");
      deepEqual(await b.finished, 0, b.output());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

eachRuntime(
  "an upload stalled past --shutdown-timeout is cut; the store still closes cleanly (exit 0)",
  async (rt) => {
    const dir = await Deno.makeTempDir({ prefix: "shale-shutdown-" });
    try {
      const a = await startServe(rt, dir, [
        "--sync",
        "always",
        "--shutdown-timeout",
        "1",
      ]);
      const put = await fetch(`http://127.0.0.1:${a.port}/kv/before`, {
        method: "PUT",
        body: "kept",
      });
      deepEqual(put.status, 204);
      await put.body?.cancel();
      const conn = await beginUpload(a.port, "stalled", "never-", 100);
      await waitInFlight(a.port, 1);
      const t0 = Date.now();
      a.child.kill("SIGTERM");
      const code = await a.finished;
      const ms = Date.now() - t0;
      conn.close();
      deepEqual(code, 0, a.output());
      match(a.output(), /in-flight requests did not finish in time/);
      match(a.output(), /stopped code=0/);
      // Waited for the deadline (1 s), and not much longer.
      ok(ms >= 900, `exited after ${ms} ms, before the deadline`);
      ok(ms < 6_000, `exited after ${ms} ms`);

      const b = await startServe(rt, dir);
      const got = await fetch(`http://127.0.0.1:${b.port}/kv/before`);
      deepEqual(await got.text(), "kept");
      const gone = await fetch(`http://127.0.0.1:${b.port}/kv/stalled`);
      deepEqual(gone.status, 404);
      await gone.body?.cancel();
      b.child.kill("SIGTERM");
      deepEqual(await b.finished, 0, b.output());
      ok(!/torn/.test(b.output()), b.output());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
