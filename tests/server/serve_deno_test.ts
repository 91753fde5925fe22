/**
 * The Deno listener's graceful shutdown (server/serve_deno.ts): a response
 * whose body is still being written when `shutdown()` starts arrives whole.
 * If Deno's `info.completed` settled before the body was written, the
 * connection would count as idle and `shutdown()` would cut the body short.
 */
import { equal, ok } from "node:assert/strict";
import { ConnectionStats } from "../../server/connection_stats.ts";
import { serveOnConnection, serveWithLimits } from "../../server/serve_deno.ts";
import type { ConnectionLimits } from "../../server/connection_limits.ts";
import type { ServeHandler } from "../../server/runtime.ts";

const LIMITS: ConnectionLimits = {
  maxConnections: 16,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  writeTimeoutMs: 10_000,
  maxResponseMemoryBytes: 1 << 30,
};

function listen(handler: ServeHandler) {
  const serveOn = serveOnConnection();
  if (serveOn === undefined) throw new Error("no serveHttpOnConnection");
  return serveWithLimits(
    {
      hostname: "127.0.0.1",
      port: 0,
      maxRequestBodyBytes: 1 << 20,
      onListen: () => {},
      limits: LIMITS,
      listener: "hardened",
      stats: new ConnectionStats(),
    },
    handler,
    LIMITS,
    new ConnectionStats(),
    serveOn,
  );
}

/** Reads `conn` to its end; the bytes after the response head. */
async function readBody(conn: Deno.Conn, first: Uint8Array): Promise<number> {
  let head = -1, total = 0, text = "";
  const buf = new Uint8Array(1 << 16);
  for (let chunk: Uint8Array | null = first; chunk !== null;) {
    if (head < 0) {
      text += new TextDecoder().decode(chunk);
      const at = text.indexOf("\r\n\r\n");
      if (at >= 0) {
        head = at + 4;
        total = new TextEncoder().encode(text).length - head;
      }
    } else total += chunk.length;
    const n = await conn.read(buf).catch(() => null);
    chunk = n === null ? null : buf.slice(0, n);
  }
  return total;
}

/** Sends a GET, waits for the first bytes, starts shutdown, reads the rest. */
async function bodyAcrossShutdown(body: () => BodyInit): Promise<number> {
  const l = listen(() =>
    new Response(body(), { headers: { "content-type": "text/plain" } })
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: l.addr.port });
  try {
    await conn.write(
      new TextEncoder().encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n"),
    );
    const buf = new Uint8Array(1 << 10);
    const n = await conn.read(buf);
    ok(n !== null);
    // The client stops reading a while, so the body is still in flight.
    const stopped = l.shutdown();
    await new Promise((r) => setTimeout(r, 300));
    const got = await readBody(conn, buf.slice(0, n));
    await stopped;
    return got;
  } finally {
    conn.close();
  }
}

const BIG = 32 << 20;

Deno.test("a large response in flight when shutdown starts arrives whole", async () => {
  equal(await bodyAcrossShutdown(() => new Uint8Array(BIG)), BIG);
});

Deno.test("a streamed response in flight when shutdown starts arrives whole", async () => {
  const chunks = 20, size = 1 << 16;
  const got = await bodyAcrossShutdown(() => {
    let i = 0;
    return new ReadableStream<Uint8Array>({
      async pull(c) {
        await new Promise((r) => setTimeout(r, 25));
        if (i++ === chunks) c.close();
        else c.enqueue(new Uint8Array(size));
      },
    });
  });
  // Chunked encoding adds its framing to the payload.
  ok(got >= chunks * size, `${got} bytes`);
});
