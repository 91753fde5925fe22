/**
 * The HTTP benchmark's ceiling: a bare `Deno.serve` handler answering the
 * same routes as shale (`GET/PUT /kv/{key}`, `GET /kv/range?start=&limit=`)
 * from an in-memory Map, with no durability at all. bench/http.ts starts it.
 *
 *     deno run -A bench/_bare_server.ts --keys 100000
 *
 * Prints `listening on http://127.0.0.1:PORT` once ready.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "0" },
    keys: { type: "string", default: "100000" },
  },
});

const map = new Map<string, Uint8Array>();
const value = new Uint8Array(100).fill(120);
const n = Number(args.keys);
for (let i = 0; i < n; i++) map.set(`k${String(i).padStart(15, "0")}`, value);
// Range scans walk a sorted key list (rebuilt lazily after inserts).
let sorted: string[] | undefined;

const JSON_HEADERS = { "content-type": "application/json" };
const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");

function lowerBound(a: string[], k: string): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

Deno.serve({
  hostname: "127.0.0.1",
  port: Number(args.port),
  onListen: (a) => console.log(`listening on http://127.0.0.1:${a.port}`),
}, async (req) => {
  const url = req.url;
  const path = url.slice(url.indexOf("/", 8));
  if (path.startsWith("/kv/range")) {
    const q = new URL(url).searchParams;
    sorted ??= [...map.keys()].sort();
    const limit = Number(q.get("limit") ?? 100);
    let i = lowerBound(sorted, q.get("start") ?? "");
    const parts: string[] = [];
    for (; i < sorted.length && parts.length < limit; i++) {
      parts.push(
        `{"key":"${b64(sorted[i])}","value":"${
          b64(map.get(sorted[i])!)
        }","version":"1"}`,
      );
    }
    return new Response(`{"items":[${parts.join(",")}],"next":null}`, {
      headers: JSON_HEADERS,
    });
  }
  if (path.startsWith("/kv/")) {
    const key = path.slice(4);
    if (req.method === "GET") {
      const v = map.get(key);
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
      const v = new Uint8Array(await req.arrayBuffer());
      if (!map.has(key)) sorted = undefined;
      map.set(key, v);
      return new Response(null, { status: 204, headers: { etag: '"1"' } });
    }
  }
  return new Response("not found", { status: 404 });
});
