/**
 * The HTTP benchmark's reference handlers: a bare `Deno.serve` handler
 * answering the same routes as shale (`GET/PUT /kv/{key}`,
 * `GET /kv/range?start=&limit=`) from one of two stores. bench/http.ts
 * starts it.
 *
 * - `--store map` (the default): an in-memory Map, no durability at all. The
 *   ceiling: what the runtime's HTTP server does with no storage engine.
 * - `--store leveldb --dir D`: LevelDB (bench/_leveldb.ts), every PUT
 *   `{sync: true}` as shale's `--sync always` is, reads with `getSync()`.
 *   What an established LSM engine does behind the same bare handler, on
 *   the same pinned core (its compaction thread shares it, as shale's
 *   worker does).
 * - `--store shale --dir D`: shale's own engine (mod.ts) with its defaults,
 *   as `shale serve` opens it (`sync: "always"`, memory-mapped tables), reads
 *   with `get()`. What this engine gives behind a handler that adds nothing
 *   of its own: the gap between this and the shale server is the server's
 *   cost, the gap between this and the Map is the engine's.
 *
 *     deno run -A bench/_bare_server.ts --keys 100000
 *     deno run -A bench/_bare_server.ts --keys 100000 --store leveldb --dir /tmp/ldb
 *     deno run -A bench/_bare_server.ts --keys 100000 --store shale --dir /tmp/sh
 *
 * `--sync none` opens shale's engine without its fdatasync, to see what the
 * engine's write path costs apart from it.
 *
 * Both hold `--keys` keys of 100-byte values before they listen, then print
 * `listening on http://127.0.0.1:PORT`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import { type LevelDb, openLevelDb } from "./_leveldb.ts";
import { open } from "../mod.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "0" },
    keys: { type: "string", default: "100000" },
    store: { type: "string", default: "map" },
    dir: { type: "string" },
    // shale's engine only: "none" shows what the engine costs without its
    // fdatasync.
    sync: { type: "string", default: "always" },
  },
});

/** What the handler needs of a store; keys are the URL's path segment. */
interface BareStore {
  get(key: string): Uint8Array | undefined;
  put(key: string, value: Uint8Array): void | Promise<void>;
  /** Up to `limit` entries from the first key at or after `start`. */
  range(
    start: string,
    limit: number,
  ): [string, Uint8Array][] | Promise<[string, Uint8Array][]>;
}

const VALUE = new Uint8Array(100).fill(120);
const keyName = (i: number) => `k${String(i).padStart(15, "0")}`;

function mapStore(n: number): BareStore {
  const map = new Map<string, Uint8Array>();
  for (let i = 0; i < n; i++) map.set(keyName(i), VALUE);
  // Range scans walk a sorted key list (rebuilt lazily after inserts).
  let sorted: string[] | undefined;
  return {
    get: (key) => map.get(key),
    put(key, value) {
      if (!map.has(key)) sorted = undefined;
      map.set(key, value);
    },
    range(start, limit) {
      sorted ??= [...map.keys()].sort();
      const out: [string, Uint8Array][] = [];
      for (
        let i = lowerBound(sorted, start);
        i < sorted.length && out.length < limit;
        i++
      ) {
        out.push([sorted[i], map.get(sorted[i])!]);
      }
      return out;
    },
  };
}

function lowerBound(a: string[], k: string): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The preload: `n` keys in batches of 1000, as shale's preload sends them. */
function* preloadBatches(
  n: number,
): Generator<{ type: "put"; key: Uint8Array; value: Uint8Array }[]> {
  const enc = new TextEncoder();
  for (let i = 0; i < n; i += 1000) {
    const ops = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      ops.push({
        type: "put" as const,
        key: enc.encode(keyName(j)),
        value: VALUE,
      });
    }
    yield ops;
  }
}

/** Resolves once `probe()` has returned the same value for a second. */
async function untilQuiet(probe: () => unknown): Promise<void> {
  let last: unknown = undefined;
  for (let quiet = 0; quiet < 4;) {
    await new Promise((r) => setTimeout(r, 250));
    const now = probe();
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
}

/**
 * LevelDB in `dir`, loaded by {@link preloadBatches} and then left until its
 * level-0 file count has stayed the same for a second, so the measured runs
 * find its compactions done.
 */
async function levelDbStore(dir: string, n: number): Promise<BareStore> {
  const db: LevelDb = await openLevelDb(dir);
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  for (const ops of preloadBatches(n)) await db.batch(ops, { sync: false });
  await untilQuiet(() => db.getProperty("leveldb.num-files-at-level0"));
  const sync = { sync: true };
  return {
    get: (key) => db.getSync(enc.encode(key)),
    put: (key, value) => db.put(enc.encode(key), value, sync),
    async range(start, limit) {
      const it = db.iterator({ gte: enc.encode(start), limit });
      try {
        const items = await it.nextv(limit);
        return items.map(([k, v]): [string, Uint8Array] => [dec.decode(k), v]);
      } finally {
        await it.close();
      }
    },
  };
}

/**
 * shale's engine in `dir`, loaded by {@link preloadBatches} and left until
 * no flush or compaction has run for a second (as bench/http.ts settles the
 * shale server).
 */
async function shaleStore(
  dir: string,
  n: number,
  sync: "always" | "none",
): Promise<BareStore> {
  const db = await open(dir, { sync });
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  for (const ops of preloadBatches(n)) await db.batch(ops);
  await untilQuiet(() => {
    const ops = db.stats().ops as { flushes: number; compactions: number };
    return ops.flushes + ops.compactions;
  });
  return {
    get: (key) => db.get(enc.encode(key))?.value,
    put: async (key, value) => void await db.put(enc.encode(key), value),
    range(start, limit) {
      const out: [string, Uint8Array][] = [];
      for (const e of db.scan({ start: enc.encode(start), limit })) {
        out.push([dec.decode(e.key), e.value]);
      }
      return out;
    },
  };
}

const n = Number(args.keys);
let store: BareStore;
if (args.store === "map") store = mapStore(n);
else if (args.store === "leveldb" && args.dir !== undefined) {
  store = await levelDbStore(args.dir, n);
} else if (
  args.store === "shale" && args.dir !== undefined &&
  (args.sync === "always" || args.sync === "none")
) {
  store = await shaleStore(args.dir, n, args.sync);
} else {
  console.error(
    "--store is map, or leveldb or shale with --dir (shale: --sync always or none)",
  );
  Deno.exit(2);
}

const JSON_HEADERS = { "content-type": "application/json" };
const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");

// Exit through Deno.exit on SIGTERM so that `--cpu-prof` writes its profile.
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));

Deno.serve({
  hostname: "127.0.0.1",
  port: Number(args.port),
  onListen: (a) => console.log(`listening on http://127.0.0.1:${a.port}`),
}, async (req) => {
  const url = req.url;
  const path = url.slice(url.indexOf("/", 8));
  if (path.startsWith("/kv/range")) {
    const q = new URL(url).searchParams;
    const items = await store.range(
      q.get("start") ?? "",
      Number(q.get("limit") ?? 100),
    );
    const parts = items.map(([k, v]) =>
      `{"key":"${b64(k)}","value":"${b64(v)}","version":"1"}`
    );
    return new Response(`{"items":[${parts.join(",")}],"next":null}`, {
      headers: JSON_HEADERS,
    });
  }
  if (path.startsWith("/kv/")) {
    const key = path.slice(4);
    if (req.method === "GET") {
      const v = store.get(key);
      if (v === undefined) {
        return new Response(
          '{"error":{"code":"not_found","message":"no such key"}}',
          { status: 404, headers: JSON_HEADERS },
        );
      }
      return new Response(v as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": "application/octet-stream", etag: '"1"' },
      });
    }
    if (req.method === "PUT") {
      await store.put(key, new Uint8Array(await req.arrayBuffer()));
      return new Response(null, { status: 204, headers: { etag: '"1"' } });
    }
  }
  return new Response("not found", { status: 404 });
});
