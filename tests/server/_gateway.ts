/**
 * Gateway fixtures: a shale process serving KV Connect with a token stands
 * in for a distributed backend (Deno Deploy KV, denokv), and gateways in
 * this process serve the REST API from it (`createHandler` over a
 * `KvConnectStore`, behind `Deno.serve` on port 0). No network beyond
 * loopback.
 *
 * @module
 */
import { createHandler, type Handler } from "../../server/app.ts";
import { KvConnectStore } from "../../server/store/kv_connect_store.ts";
import { mustStart, type ReadyServer, stopServer } from "../_shale.ts";

/** The backend's access token. */
export const BACKEND_TOKEN = "gateway-test-backend-token";

/** A backend process and its KV Connect database URL. */
export interface Backend {
  server: ReadyServer;
  dir: string;
  /** Metadata URL of the database the gateways use. */
  url: string;
}

/** Starts `shale serve --auth-token` on a fresh (or given) data directory. */
export async function startBackend(
  dir?: string,
  port = 0,
): Promise<Backend> {
  dir ??= await Deno.makeTempDir({ prefix: "shale-backend-" });
  const server = await mustStart(dir, {
    args: ["--sync", "none", "--port", String(port)],
    env: { SHALE_AUTH_TOKEN: BACKEND_TOKEN },
  });
  return { server, dir, url: `${server.base}/deno-kv/rest` };
}

/** A gateway in this process. */
export interface Gateway {
  base: string;
  handler: Handler;
  store: KvConnectStore;
  close(): Promise<void>;
}

/** Serves the REST API from `url` on 127.0.0.1:0. */
export function startGateway(url: string): Gateway {
  const store = new KvConnectStore({ url, token: BACKEND_TOKEN });
  const handler = createHandler(store, { log: () => {} });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    handler,
  );
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    handler,
    store,
    async close() {
      await server.shutdown();
      handler.close();
    },
  };
}

/** Runs `fn` against a gateway onto a fresh backend; tears both down. */
export async function withGateway(
  fn: (g: Gateway, backend: Backend) => Promise<void>,
): Promise<void> {
  const backend = await startBackend();
  const gateway = startGateway(backend.url);
  try {
    await fn(gateway, backend);
  } finally {
    await gateway.close();
    await stopServer(backend.server);
    await Deno.remove(backend.dir, { recursive: true });
  }
}
