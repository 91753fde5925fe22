/**
 * Bun's HTTP listener with the connection protections `Bun.serve` cannot
 * give (it reports no connection opening or closing, and its one timer,
 * `idleTimeout`, is reset by every byte, so a client trickling a request
 * head is never cut): Bun's `node:http` server, whose `connection` event
 * hands over each socket. Connections are counted there, refused past
 * `maxConnections` (503, then closed), and closed by the same deadlines as
 * on Deno (`connection_clock.ts`): first request head, keep-alive idle,
 * request, write. Requests and responses are converted between
 * `node:http` and the fetch API by `node_http_fetch.ts`.
 *
 * @module
 */
import * as http from "node:http";
import * as http2 from "node:http2";
import type { Socket } from "node:net";
import {
  type ConnClock,
  newClock,
  overdue,
  REFUSED_RESPONSE,
  requestArrived,
  requestDone,
  responseReady,
  sweepPeriodMs,
} from "./connection_clock.ts";
import { readHead, requestUrl, writeResponse } from "./node_http_fetch.ts";
import { NodeRequest } from "./node_request.ts";
import type { Listener, ListenOptions, ServeHandler } from "./runtime.ts";

interface ConnState extends ConnClock {
  socket: Socket;
}

/** Where a socket's state hangs (the TLS socket and its TCP socket both). */
const STATE = Symbol("shale.conn");
type Tagged = Socket & { [STATE]?: ConnState };
/** A response and the connection it is counted on. */
type TaggedResponse = http.ServerResponse & {
  [STATE]?: { conn: ConnState; h2: boolean };
};

const INTERNAL = JSON.stringify({
  error: { code: "internal", message: "internal server error" },
});

/** What a request head the HTTP/1 parser cannot read gets, as on Deno. */
const BAD_REQUEST = new TextEncoder().encode(
  "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
);
const HEAD_TOO_LARGE = new TextEncoder().encode(
  "HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
);

/**
 * Serves `handler` on `opts` with `opts.limits` enforced, counting into
 * `opts.stats`. Rejects when the address cannot be bound.
 */
export function serveNodeHttp(
  opts: ListenOptions,
  handler: ServeHandler,
): Promise<Listener> {
  const limits = opts.limits;
  const stats = opts.stats;
  // Plain HTTP: node:http, HTTP/2 with prior knowledge handed over to `h2c`
  // below. TLS: node:http2's secure server, which speaks HTTP/1.1 or HTTP/2
  // as the client's ALPN asks (Deno's KV client asks for HTTP/2).
  const server: http.Server = opts.tls === undefined
    ? http.createServer()
    : http2.createSecureServer({
      cert: opts.tls.cert,
      key: opts.tls.key,
      allowHTTP1: true,
    }) as unknown as http.Server;
  // Node's own timers are off: the sweeper below enforces the limits (and
  // counts what it closes), and node's keep-alive default of 5 s would cut
  // idle connections early.
  server.keepAliveTimeout = 0;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  // Deno's KV client (Deno.openKv over KV Connect) speaks only HTTP/2, with
  // prior knowledge on http:. Node's HTTP/1 parser stops at the HTTP/2
  // preface (HPE_PAUSED_H2_UPGRADE); the socket, preface pushed back, then
  // goes to this HTTP/2 server, on the same port.
  const h2c = opts.tls === undefined ? http2.createServer() : undefined;
  stats.max = limits.maxConnections;
  const conns = new Set<ConnState>();
  const scheme = opts.tls === undefined ? "http" : "https";
  let closing = false;

  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const s of conns) {
      const why = overdue(s, limits, now);
      if (why === undefined) continue;
      if (why !== "stalled") stats.closed(why); // stalled: counted when it fired
      s.socket.destroy();
    }
  }, sweepPeriodMs(limits));

  server.on("connection", (socket: Tagged) => {
    if (closing || stats.open >= limits.maxConnections) {
      if (!closing) stats.refused("max_connections");
      socket.on("error", () => {});
      // TLS would need a handshake first: just close those. The 503 fits
      // an empty socket buffer; the descriptor is released once it is out
      // (or after 50 ms), not when the client gets round to closing.
      if (opts.tls === undefined) {
        socket.end(REFUSED_RESPONSE, () => socket.destroy());
        setTimeout(() => socket.destroy(), 50);
      } else socket.destroy();
      return;
    }
    const s: ConnState = { ...newClock(), socket };
    socket[STATE] = s;
    conns.add(s);
    stats.open++;
    socket.once("close", () => {
      conns.delete(s);
      stats.open--;
    });
  });
  // Bun emits `secureConnection` with the socket counted above; should it
  // ever be a TLS socket wrapping it, that takes the TCP socket's state.
  server.on("secureConnection", (tls: Tagged) => {
    tls[STATE] ??= (tls as unknown as { _parent?: Tagged })._parent?.[STATE];
  });

  // The compatibility API of node:http2 has the members of node:http's
  // request and response that serveRequest uses.
  const onRequest = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    const isH2 = req.httpVersionMajor === 2;
    const socket = "stream" in req ? req.stream.session?.socket : req.socket;
    const s = (socket as Tagged | undefined)?.[STATE];
    serveRequest(
      req as http.IncomingMessage,
      res as http.ServerResponse,
      s,
      isH2,
    ).catch(() => "stream" in res ? res.stream.destroy() : res.destroy());
  };
  server.on("request", onRequest);
  h2c?.on("request", onRequest);

  server.on(
    "clientError",
    (
      err: Error & { code?: string; rawPacket?: Uint8Array },
      socket: Tagged,
    ) => {
      const s = socket[STATE];
      if (
        h2c !== undefined && s !== undefined &&
        err.code === "HPE_PAUSED_H2_UPGRADE"
      ) {
        if (rawStream(socket)) {
          if (err.rawPacket !== undefined) socket.unshift(err.rawPacket);
          h2c.emit("connection", socket);
        } else socket.destroy();
        return;
      }
      if (socket.writable && err.code !== "ECONNRESET") {
        socket.end(
          err.code === "HPE_HEADER_OVERFLOW" ? HEAD_TOO_LARGE : BAD_REQUEST,
          () => socket.destroy(),
        );
      } else socket.destroy();
    },
  );

  // One listener function for every response (its state hangs on the
  // response), added with on(): a response closes once, and once() would
  // wrap the listener and remove it again, per request.
  function responseClosed(this: TaggedResponse): void {
    const state = this[STATE];
    if (state === undefined) return;
    this[STATE] = undefined;
    const s = state.conn;
    if (state.h2) streamClosed(s);
    else requestDone(s);
    if (closing && s.busy === 0) s.socket.destroy();
  }

  const serveRequest = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    s: ConnState | undefined,
    isH2: boolean,
  ) => {
    if (s !== undefined) {
      if (isH2) streamOpened(s);
      else requestArrived(s);
      (res as TaggedResponse)[STATE] = { conn: s, h2: isH2 };
      res.on("close", responseClosed);
    }
    const raw = req.rawHeaders;
    const head = readHead(raw);
    let response: Response;
    let request: NodeRequest | undefined;
    try {
      request = new NodeRequest(
        req,
        requestUrl(req, head.host, scheme, server),
        raw,
        head.framed,
      );
      response = await handler(request, {
        remoteAddr: { hostname: req.socket.remoteAddress ?? "" },
      });
    } catch {
      response = new Response(INTERNAL, {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    }
    if (s !== undefined && !isH2) responseReady(s, response);
    await writeResponse(
      res,
      response,
      request !== undefined && request.hasBody && !req.complete,
      isH2,
    );
  };

  return new Promise((resolve, reject) => {
    const finished = Promise.withResolvers<void>();
    server.once("error", reject);
    server.listen(opts.port, opts.hostname, () => {
      server.off("error", reject);
      // Out of descriptors Bun's accept loop keeps running (it retries);
      // any later error ends the listener.
      server.on("error", (err) => finished.reject(err));
      server.once("close", () => finished.resolve());
      const a = server.address();
      const addr = typeof a === "object" && a !== null
        ? { hostname: a.address, port: a.port }
        : { hostname: opts.hostname, port: opts.port };
      opts.onListen(addr);
      resolve({
        addr,
        finished: finished.promise,
        async shutdown() {
          closing = true;
          server.close();
          // Idle connections go at once; busy ones when their response is
          // out (the socket then closes, as node:http does once closing).
          const waits: Promise<void>[] = [];
          for (const s of conns) {
            if (s.busy === 0) s.socket.destroy();
            else waits.push(closed(s.socket));
          }
          await Promise.all(waits);
          clearInterval(sweeper);
        },
      });
    });
  });
}

/**
 * An HTTP/2 stream opened on `c`. A session carries many streams at once
 * (watches among them), which one clock cannot time one by one, so a busy
 * session has no deadline: its streamed and large bodies are timed by
 * response_guard.ts; the header and idle deadlines apply as on HTTP/1.
 */
function streamOpened(c: ConnClock): void {
  c.busy++;
  c.responded = true;
  c.timedWrite = false;
  c.chunks = undefined;
  c.since = performance.now();
}

/** An HTTP/2 stream on `c` closed. */
function streamClosed(c: ConnClock): void {
  c.busy--;
  c.served++;
  c.since = performance.now();
}

/**
 * Turns a socket of Bun's node:http server whose HTTP/1 parser stopped at
 * the HTTP/2 preface into a plain byte stream, as Bun itself does for
 * CONNECT and Upgrade: its native handle becomes a tunnel (the native
 * parser would otherwise swallow what follows the preface) and its bytes
 * are delivered as `data` events. Bun exposes no API for this, so its
 * internals are used (Bun 1.4.5, pinned; `tests/server/kv_connect_test.ts`
 * runs Deno's KV client against it). False when they are not there.
 */
function rawStream(socket: Socket): boolean {
  const symbols = new Map<string | undefined, symbol>();
  for (
    let o: object | null = socket;
    o !== null;
    o = Object.getPrototypeOf(o)
  ) {
    for (const sym of Object.getOwnPropertySymbols(o)) {
      if (!symbols.has(sym.description)) symbols.set(sym.description, sym);
    }
  }
  const internals = socket as unknown as Record<symbol, unknown>;
  const handleSym = symbols.get("handle");
  const streamingSym = symbols.get("kEnableStreaming");
  const handle = handleSym === undefined
    ? undefined
    : internals[handleSym] as { upgradeToTunnel?: unknown } | undefined;
  const enable = streamingSym === undefined
    ? undefined
    : internals[streamingSym];
  if (
    typeof handle?.upgradeToTunnel !== "function" ||
    typeof enable !== "function"
  ) {
    return false;
  }
  try {
    handle.upgradeToTunnel(false, undefined);
    enable.call(socket, true);
  } catch {
    return false;
  }
  socket.removeAllListeners("data");
  return true;
}

/** Resolves once `socket` has closed. */
function closed(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => socket.once("close", () => resolve()));
}
