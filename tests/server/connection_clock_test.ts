/**
 * The per-connection deadlines (server/connection_clock.ts) as a pure state
 * machine: which timeout applies in each phase of a connection, the sweep
 * period, and the raw 503 sent to a connection over the cap. Times are set
 * by hand, so nothing here waits.
 */
import assert from "node:assert/strict";
import {
  type ConnClock,
  newClock,
  overdue,
  REFUSED_RESPONSE,
  requestArrived,
  requestDone,
  responseReady,
  sweepPeriodMs,
} from "../../server/connection_clock.ts";
import type { ConnectionLimits } from "../../server/connection_limits.ts";
import { CHUNK_TIMED } from "../../server/response_guard.ts";
import { dec } from "../_helpers.ts";

const LIMITS: ConnectionLimits = {
  maxConnections: 10,
  headerTimeoutMs: 100,
  idleTimeoutMs: 200,
  requestTimeoutMs: 300,
  writeTimeoutMs: 400,
  maxResponseMemoryBytes: 1 << 20,
};

/** `overdue` just before and just after `ms` have passed since `c.since`. */
function boundary(c: ConnClock, ms: number): [unknown, unknown] {
  c.since = 1000;
  return [overdue(c, LIMITS, 1000 + ms), overdue(c, LIMITS, 1000 + ms + 1)];
}

Deno.test("a new connection has the header timeout; after a request, the idle timeout", () => {
  const c = newClock();
  assert.deepEqual(
    { busy: c.busy, served: c.served, responded: c.responded },
    { busy: 0, served: 0, responded: false },
  );
  assert.deepEqual(boundary(c, 100), [undefined, "header_timeout"]);
  requestArrived(c);
  responseReady(c, new Response("ok"));
  requestDone(c);
  assert.equal(c.served, 1);
  assert.deepEqual(boundary(c, 200), [undefined, "idle_timeout"]);
});

Deno.test("a request in progress has the request timeout until its handler returns", () => {
  const c = newClock();
  requestArrived(c);
  assert.equal(c.busy, 1);
  assert.deepEqual(boundary(c, 300), [undefined, "request_timeout"]);
  // The idle and header timeouts do not apply meanwhile.
  c.since = 0;
  assert.equal(overdue(c, LIMITS, 250), undefined);
});

Deno.test("a small fixed response must be written within the write timeout", () => {
  const c = newClock();
  requestArrived(c);
  responseReady(c, new Response("small"));
  assert.ok(c.responded && c.timedWrite);
  assert.equal(c.chunks, undefined);
  assert.deepEqual(boundary(c, 400), [undefined, "write_timeout"]);
});

Deno.test("a chunk-timed response is closed only when its chunk timer says stalled", () => {
  const c = newClock();
  requestArrived(c);
  const res = new Response("large or streamed");
  const state = { stalled: false };
  CHUNK_TIMED.set(res, state);
  responseReady(c, res);
  assert.ok(c.responded && !c.timedWrite);
  assert.equal(c.chunks, state);
  c.since = 0;
  assert.equal(overdue(c, LIMITS, 1e9), undefined); // no overall deadline
  state.stalled = true;
  assert.equal(overdue(c, LIMITS, 1), "stalled");
});

Deno.test("requests on a kept-alive connection reset the phase each time", () => {
  const c = newClock();
  for (let i = 1; i <= 3; i++) {
    requestArrived(c);
    assert.equal(c.responded, false);
    responseReady(c, new Response(null));
    requestDone(c);
    assert.deepEqual([c.busy, c.served, c.responded], [0, i, false]);
  }
  // The time stamp moves with every transition.
  const before = c.since;
  requestArrived(c);
  assert.ok(c.since >= before);
});

Deno.test("sweepPeriodMs is a quarter of the shortest timeout, clamped to 20..1000 ms", () => {
  assert.equal(sweepPeriodMs(LIMITS), 25);
  assert.equal(
    sweepPeriodMs({
      ...LIMITS,
      headerTimeoutMs: 10_000,
      idleTimeoutMs: 10_000,
      requestTimeoutMs: 10_000,
      writeTimeoutMs: 2_000,
    }),
    500,
  );
  assert.equal(sweepPeriodMs({ ...LIMITS, writeTimeoutMs: 40 }), 20);
  const slow = {
    headerTimeoutMs: 60_000,
    idleTimeoutMs: 60_000,
    requestTimeoutMs: 60_000,
    writeTimeoutMs: 60_000,
  };
  assert.equal(sweepPeriodMs({ ...LIMITS, ...slow }), 1000);
});

Deno.test("REFUSED_RESPONSE is a complete HTTP/1.1 503 with a JSON error body", () => {
  const text = dec(REFUSED_RESPONSE);
  const [head, body] = text.split("\r\n\r\n");
  const [status, ...headers] = head.split("\r\n");
  assert.equal(status, "HTTP/1.1 503 Service Unavailable");
  const h = new Map(headers.map((l) => l.split(": ") as [string, string]));
  assert.equal(h.get("content-type"), "application/json");
  assert.equal(h.get("connection"), "close");
  assert.equal(h.get("retry-after"), "1");
  assert.equal(Number(h.get("content-length")), body.length);
  assert.deepEqual(JSON.parse(body), {
    error: {
      code: "too_many_connections",
      message: "the server has too many open connections",
    },
  });
});

Deno.test("responseReady takes the caller's clock reading when given one", () => {
  const c = newClock();
  requestArrived(c);
  responseReady(c, new Response("answered at once"), 1234);
  assert.equal(c.since, 1234);
  assert.deepEqual(boundary(c, 400), [undefined, "write_timeout"]);
});
