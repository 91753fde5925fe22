/**
 * The in-flight index and the linearizable condition rule
 * (engine/inflight.ts) on their own: hand-made pending writes, no pipeline.
 */
import assert from "node:assert/strict";
import { binaryString } from "../../engine/coding.ts";
import type { Entry } from "../../engine/entry.ts";
import {
  KIND_DELETE,
  KIND_PUT,
  KIND_RANGE_DELETE,
} from "../../engine/entry.ts";
import { PreconditionFailedError } from "../../engine/errors.ts";
import type { ConditionEnv, PendingWrite } from "../../engine/inflight.ts";
import {
  decideConditions,
  InflightIndex,
  settled,
} from "../../engine/inflight.ts";
import { enc } from "../_helpers.ts";

const NOW = 1_000;

/** Stored key of `k` in key space 0. */
function sk(k: string): Uint8Array {
  return new Uint8Array([0, ...enc(k)]);
}

function entry(kind: number, k: string, seq: number, opts: {
  value?: string;
  expiresAt?: number;
} = {}): Entry {
  return {
    key: sk(k),
    seq,
    kind,
    encoding: 0,
    expiresAt: opts.expiresAt ?? 0,
    value: enc(opts.value ?? (kind === KIND_PUT ? "v" : "")),
  };
}

function pending(seq: number, entries: Entry[]): PendingWrite {
  for (const e of entries) e.seq = seq;
  return {
    seq,
    entries,
    resolve: () => {},
    reject: () => {},
  };
}

/** An index over `queue` (oldest first), as the pipeline keeps it. */
function indexOver(queue: PendingWrite[]): InflightIndex {
  const index = new InflightIndex(() => NOW, () => [queue]);
  return index;
}

function accept(index: InflightIndex, queue: PendingWrite[], w: PendingWrite) {
  queue.push(w);
  index.accepted(w);
}

/** Tells a write's watchers it is visible (true) or failed (false). */
function finish(index: InflightIndex, w: PendingWrite, visible: boolean) {
  index.drop(w);
  for (const tell of w.watchers ?? []) tell(visible);
}

Deno.test("find() names the newest in-flight write of a key, and whether it leaves the key live", () => {
  const queue: PendingWrite[] = [];
  const index = indexOver(queue);
  assert.equal(index.find(sk("a")), undefined);
  const w1 = pending(1, [entry(KIND_PUT, "a", 0), entry(KIND_PUT, "b", 0)]);
  accept(index, queue, w1);
  assert.equal(index.find(sk("a"))?.write, w1);
  assert.equal(index.find(sk("a"))?.live, true);
  const w2 = pending(2, [entry(KIND_DELETE, "a", 0)]);
  accept(index, queue, w2);
  assert.equal(index.find(sk("a"))?.write, w2);
  assert.equal(index.find(sk("a"))?.live, false);
  assert.equal(index.find(sk("b"))?.write, w1);
  // An expired put is in flight, but leaves the key absent.
  const w3 = pending(3, [entry(KIND_PUT, "c", 0, { expiresAt: NOW - 1 })]);
  accept(index, queue, w3);
  assert.equal(index.find(sk("c"))?.live, false);
  // Writes leave the index as they become visible (or fail), oldest
  // first: a key stays in flight while a newer write of it is.
  index.drop(w1);
  queue.splice(queue.indexOf(w1), 1);
  assert.equal(index.find(sk("a"))?.write, w2);
  assert.equal(index.find(sk("b")), undefined);
  index.drop(w2);
  queue.splice(queue.indexOf(w2), 1);
  assert.equal(index.find(sk("a")), undefined);
});

Deno.test("writes nobody asks about are never indexed, and are found once someone does", () => {
  const queue: PendingWrite[] = [];
  const index = indexOver(queue);
  const w1 = pending(1, [entry(KIND_PUT, "a", 0)]);
  accept(index, queue, w1);
  // Plain writes pay for no key strings: they come with the first question.
  index.drop(w1);
  queue.splice(queue.indexOf(w1), 1);
  assert.equal(w1.indexed, undefined);
  assert.equal(w1.skeys, undefined);
  const w2 = pending(2, [entry(KIND_PUT, "a", 0), entry(KIND_DELETE, "b", 0)]);
  accept(index, queue, w2);
  assert.equal(index.find(sk("b"))?.write, w2);
  assert.equal(w2.skeys?.length, 2);
  index.drop(w2);
  queue.splice(queue.indexOf(w2), 1);
  assert.equal(index.find(sk("a")), undefined);
});

Deno.test("an in-flight range delete covers its keys, unless a newer write of the key follows", () => {
  const queue: PendingWrite[] = [];
  const index = indexOver(queue);
  const put = pending(1, [entry(KIND_PUT, "m", 0)]);
  accept(index, queue, put);
  // Delete [b, p): covers "m" and "b", not "p" or "a".
  const range = pending(2, [
    entry(KIND_RANGE_DELETE, "b", 0, { value: "p" }),
  ]);
  accept(index, queue, range);
  assert.deepEqual(index.find(sk("m")), { live: false, write: range });
  assert.equal(index.find(sk("b"))?.write, range);
  assert.equal(index.find(sk("p")), undefined);
  assert.equal(index.find(sk("a")), undefined);
  const again = pending(3, [entry(KIND_PUT, "m", 0)]);
  accept(index, queue, again);
  assert.deepEqual(index.find(sk("m")), { live: true, write: again });
  index.drop(range);
  assert.equal(index.find(sk("b")), undefined);
});

function env(visible: Record<string, number> = {}): ConditionEnv {
  return {
    storedKey: (space, key) => new Uint8Array([space, ...key]),
    visibleVersion: (key) => visible[binaryString(key)] ?? null,
    counters: { preconditionFailures: 0 },
  };
}

Deno.test("conditions against visible state alone are decided at once", () => {
  const index = indexOver([]);
  const e = env({ [binaryString(sk("a"))]: 4 });
  assert.equal(
    decideConditions(index, e, 0, [
      { type: "check", key: enc("a"), ifVersion: 4 },
      { type: "put", key: enc("b"), value: enc("x"), ifVersion: null },
    ], true),
    undefined,
  );
  assert.throws(
    () =>
      decideConditions(index, e, 0, [
        { type: "put", key: enc("b"), value: enc("x") },
        { type: "check", key: enc("a"), ifVersion: null },
      ], true),
    (err) =>
      err instanceof PreconditionFailedError && err.index === 1 &&
      /key exists \(version 4\)/.test(err.message),
  );
  assert.throws(
    () =>
      decideConditions(index, e, 0, [
        { type: "delete", key: enc("b"), ifVersion: 2 },
      ], true),
    /op 0: expected version 2, found none/,
  );
  assert.equal(e.counters.preconditionFailures, 2);
  // Another key space is another key.
  assert.equal(
    decideConditions(index, e, 1, [
      { type: "check", key: enc("a"), ifVersion: null },
    ], false),
    undefined,
  );
});

Deno.test("a condition failing against an in-flight write waits for it; a check-only batch waits for what it read", () => {
  const queue: PendingWrite[] = [];
  const index = indexOver(queue);
  const e = env();
  const w = pending(1, [entry(KIND_PUT, "k", 0)]);
  accept(index, queue, w);
  const failed = decideConditions(index, e, 0, [
    { type: "put", key: enc("k"), value: enc("x"), ifVersion: null },
  ], true);
  assert.deepEqual(failed?.waitFor, [w]);
  assert.ok(failed?.error instanceof PreconditionFailedError);
  assert.equal(e.counters.preconditionFailures, 0, "counted once answered");
  // Holding against the in-flight write: a batch that writes goes now (its
  // own fsync orders it after w); a check-only batch must wait for w.
  const ops = [{ type: "check" as const, key: enc("k"), ifVersion: 1 }];
  assert.equal(decideConditions(index, e, 0, ops, true), undefined);
  const held = decideConditions(index, e, 0, ops, false);
  assert.deepEqual(held, { waitFor: [w] });
});

Deno.test("settled() resolves true once every write is visible, false once one failed", async () => {
  const queue: PendingWrite[] = [];
  const index = indexOver(queue);
  const [a, b, c] = [1, 2, 3].map((s) =>
    pending(s, [entry(KIND_PUT, `k${s}`, 0)])
  );
  for (const w of [a, b, c]) accept(index, queue, w);
  let both: boolean | undefined;
  settled([a, b]).then((v) => (both = v));
  let onC: boolean | undefined;
  settled([c]).then((v) => (onC = v));
  finish(index, a, true);
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(both, undefined, "b is still in flight");
  finish(index, b, true);
  finish(index, c, false);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(both, true);
  assert.equal(onC, false);
  assert.equal(await settled([]), true, "nothing to wait for");
});
