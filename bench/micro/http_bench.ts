/**
 * The HTTP handler on a `new Request`, without sockets: GET of a present
 * key and PUT of a 100-byte value through `createHandler`, on a store in a
 * temp directory opened with `sync: "none"` (no fsync in the measurement);
 * and what building a refused request's error costs.
 *
 * @module
 */
import { open } from "../../mod.ts";
import { createHandler, HttpError } from "../../server/app.ts";
import { keyFor, ValuePool } from "../_common.ts";

const dir = await Deno.makeTempDir({ prefix: "shale-micro-" });
const db = await open(dir, { sync: "none" });
const handler = createHandler(db);
const KEYS = 10_000;
const values = new ValuePool(9);
const dec = new TextDecoder();
for (let i = 0; i < KEYS; i += 1000) {
  const ops = [];
  for (let j = i; j < i + 1000; j++) {
    ops.push({ type: "put" as const, key: keyFor(j), value: values.next() });
  }
  await db.batch(ops);
}
const urls: string[] = [];
for (let i = 0; i < KEYS; i++) {
  urls.push(`http://localhost/kv/${dec.decode(keyFor((i * 7919) % KEYS))}`);
}
let n = 0;

Deno.bench({
  name: "handler GET /kv/{key} (present, 100 B value)",
  group: "http",
  baseline: true,
  async fn() {
    const res = await handler(new Request(urls[n++ % KEYS]));
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    await res.arrayBuffer();
  },
});

Deno.bench({
  name: "handler PUT /kv/{key} (100 B value, sync none)",
  group: "http",
  async fn() {
    const res = await handler(
      new Request(urls[n++ % KEYS], {
        method: "PUT",
        body: values.next().slice(),
      }),
    );
    if (res.status !== 204) throw new Error(`status ${res.status}`);
  },
});

// A refused request's error: HttpError skips the Error constructor, which
// on Deno captures a detailed stack whatever Error.stackTraceLimit says.
Deno.bench({
  name: "new HttpError (no Error constructor)",
  group: "error",
  baseline: true,
  fn() {
    if (new HttpError(404, "unknown_route", "no route").status !== 404) {
      throw new Error("unreachable");
    }
  },
});

Deno.bench({
  name: "new Error (what HttpError was)",
  group: "error",
  fn() {
    if (new Error("no route").message === "") throw new Error("unreachable");
  },
});

// deno bench has no after-all hook: the store stays open until the process
// ends (nothing in it needs keeping), and its directory goes with it.
globalThis.addEventListener("unload", () => {
  handler.close();
  Deno.removeSync(dir, { recursive: true });
});
