/** The in-flight count and the shutdown gate of `server/drain.ts`. */
import { deepEqual } from "node:assert/strict";
import { Drain, within } from "../../server/drain.ts";

const info = { remoteAddr: { hostname: "127.0.0.1" } };

Deno.test("Drain counts requests in flight and reports idle once they answer", async () => {
  const drain = new Drain();
  const release = Promise.withResolvers<void>();
  const handler = drain.wrap(async () => {
    await release.promise;
    return new Response(null, { status: 204 });
  });
  const pending = handler(
    new Request("http://h/kv/a", { method: "PUT" }),
    info,
  );
  deepEqual(drain.inFlight, 1);
  drain.close();
  deepEqual(await drain.idle(20), false, "still running: not idle");
  const idle = drain.idle(5_000);
  release.resolve();
  deepEqual((await pending).status, 204, "the request inside still answers");
  deepEqual(await idle, true);
  deepEqual(drain.inFlight, 0);
});

Deno.test("a closed Drain answers new requests 503 shutting_down, except those let through", async () => {
  const drain = new Drain();
  let reached = 0;
  const handler = drain.wrap(() => {
    reached++;
    return new Response("ok");
  }, (req) => new URL(req.url).pathname === "/health");
  drain.close();
  const res = await handler(new Request("http://h/kv/a"), info);
  deepEqual(res.status, 503);
  deepEqual(res.headers.get("connection"), "close");
  deepEqual(res.headers.get("retry-after"), "1");
  deepEqual((await res.json()).error.code, "shutting_down");
  deepEqual(reached, 0);
  deepEqual((await handler(new Request("http://h/health"), info)).status, 200);
  deepEqual(reached, 1);
  deepEqual(await drain.idle(0), true);
});

Deno.test("a handler that throws still leaves the count", async () => {
  const drain = new Drain();
  const handler = drain.wrap(() => Promise.reject(new Error("boom")));
  const err = await Promise.resolve(handler(new Request("http://h/"), info))
    .then(() => undefined, (e) => e);
  deepEqual((err as Error).message, "boom");
  deepEqual(drain.inFlight, 0);
});

Deno.test("within: true when the promise settles in time, false otherwise", async () => {
  deepEqual(await within(Promise.resolve(), 1_000), true);
  deepEqual(await within(Promise.reject(new Error("x")), 1_000), true);
  deepEqual(await within(new Promise(() => {}), 10), false);
});
