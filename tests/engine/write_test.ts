/**
 * The write path (engine/write.ts) in front of a commit pipeline without a
 * Db: validation, backpressure, and the conditional-write rule (a failed
 * check waits for the in-flight write it saw, and is decided again if that
 * write failed).
 */
import assert from "node:assert/strict";
import { binaryString } from "../../engine/coding.ts";
import {
  InvalidArgumentError,
  PreconditionFailedError,
  ReadOnlyError,
} from "../../engine/errors.ts";
import type { BatchOp } from "../../engine/types.ts";
import { WritePath } from "../../engine/write.ts";
import { dec, enc } from "../_helpers.ts";
import { setup, waitFor } from "./_commit_harness.ts";

function writePath() {
  const h = setup();
  let room: Promise<void> = Promise.resolve();
  const counters = { preconditionFailures: 0 };
  const stored = (space: number, key: Uint8Array) =>
    new Uint8Array([space, ...key]);
  const write = new WritePath({
    limits: { maxKeyBytes: 8, maxValueBytes: 16 },
    commit: h.pipe,
    waitForRoom: () => room,
    checkWritable: () => {
      if (h.pipe.failure) throw h.pipe.failure;
    },
    storedKey: stored,
    visibleVersion: (key) => h.visible.get(binaryString(key)) ?? null,
    counters,
  });
  const put = (key: string, ifVersion?: number | null): BatchOp => ({
    type: "put",
    key: enc(key),
    value: enc(`v-${key}`),
    ifVersion,
  });
  const check = (key: string, ifVersion: number | null): BatchOp => ({
    type: "check",
    key: enc(key),
    ifVersion,
  });
  /** Tracks a promise's outcome without awaiting it. */
  const watch = <T>(p: Promise<T>) => {
    const r: { value?: T; error?: unknown; done: boolean } = { done: false };
    p.then((v) => (r.value = v), (e) => (r.error = e)).finally(() =>
      r.done = true
    );
    return r;
  };
  const setRoom = (p: Promise<void>) => (room = p);
  return { ...h, write, counters, put, check, watch, setRoom };
}

/** Lets timers and promise callbacks run a few times. */
async function ticks(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
}

Deno.test("a batch whose conditions hold is written with the next seqno", async () => {
  const { write, log, mem, put } = writePath();
  const a = write.batch(0, [put("a", null), put("b")]);
  await log.completeSync();
  assert.equal(await a, 1);
  assert.deepEqual(
    mem.groups[0].map((e) => [dec(e.key.subarray(1)), e.seq]),
    [["a", 1], ["b", 1]],
  );
  assert.equal(write.version(0, enc("a")), 1);
});

Deno.test("of two racing creates of one key, the second fails only once the first is visible", async () => {
  const { write, log, put, watch, counters } = writePath();
  const first = watch(write.batch(0, [put("k", null)]));
  // Decided while the first create is in flight (accepted, not visible):
  // it must fail, but may not say so before readers can see the winner.
  const second = watch(write.batch(0, [put("k", null)]));
  await waitFor(() => log.syncs.length === 1);
  await ticks();
  assert.equal(second.done, false, "answered while the winner is in flight");
  assert.equal(counters.preconditionFailures, 0);
  await log.completeSync();
  await waitFor(() => second.done);
  assert.equal(first.value, 1);
  assert.ok(second.error instanceof PreconditionFailedError);
  assert.equal((second.error as PreconditionFailedError).index, 0);
  assert.equal(counters.preconditionFailures, 1);
  assert.equal(log.syncs.length, 0, "the loser wrote nothing");
});

Deno.test("a check that saw a write which then failed is decided again", async () => {
  const { write, log, pipe, put, check, watch } = writePath();
  // Hold the commit loop so the create stays in flight.
  let release!: () => void;
  const held = pipe.exclusive(() => new Promise<void>((r) => (release = r)));
  const create = watch(write.batch(0, [put("k")]));
  const absent = watch(write.batch(0, [check("k", null)]));
  await ticks();
  assert.equal(write.version(0, enc("k")), 1, "the create is in flight");
  assert.equal(absent.done, false, "'absent' failed against it, and waits");
  log.failAppend = Object.assign(new Error("No space left on device"), {
    code: "ENOSPC",
  });
  release();
  await held;
  await waitFor(() => absent.done && create.done);
  assert.equal((create.error as { code?: string }).code, "disk_full");
  // The write it saw never happened: decided again, "absent" holds.
  assert.equal(absent.error, undefined);
  assert.equal(absent.value, 0);
  assert.equal(pipe.failure, undefined);
});

Deno.test("a check waiting on a write whose sync fails reports the read-only store", async () => {
  const { write, log, put, check, watch } = writePath();
  const create = watch(write.batch(0, [put("k")]));
  const absent = watch(write.batch(0, [check("k", null)]));
  await waitFor(() => log.syncs.length === 1);
  assert.equal(absent.done, false);
  log.syncs.shift()!.reject(new Error("EIO"));
  // Decided again, the store is read-only now: that is the answer, not a
  // verdict about a key no later write could act on.
  await waitFor(() => absent.done && create.done);
  assert.ok(create.error instanceof Error);
  assert.ok(absent.error instanceof ReadOnlyError, String(absent.error));
});

Deno.test("a check-only batch that read an in-flight write answers once it is visible", async () => {
  const { write, log, put, check, watch, pipe } = writePath();
  const create = write.batch(0, [put("k")]);
  await waitFor(() => log.syncs.length === 1);
  // The check holds against the in-flight write (version 1), but nothing
  // of its own orders it after that write: it waits until it is visible.
  const held = watch(write.batch(0, [check("k", 1)]));
  await ticks();
  assert.equal(held.done, false);
  assert.equal(pipe.visibleSeq, 0);
  await log.completeSync();
  assert.equal(await create, 1);
  await waitFor(() => held.done);
  assert.equal(held.value, 1, "answered with the visible seqno");
  // Against visible state alone a check answers at once, writing nothing.
  assert.equal(await write.batch(0, [check("k", 1)]), 1);
  await assert.rejects(
    write.batch(0, [check("k", 7)]),
    PreconditionFailedError,
  );
  assert.equal(log.syncs.length, 0);
});

Deno.test("version() and whenSettled() count a write still in flight", async () => {
  const { write, log, put } = writePath();
  assert.equal(write.version(0, enc("k")), null);
  assert.equal(write.whenSettled(enc("k")), undefined);
  const create = write.batch(0, [put("k")]);
  await waitFor(() => log.syncs.length === 1);
  assert.equal(write.version(0, enc("k")), 1, "the accepted write counts");
  assert.equal(write.version(1, enc("k")), null, "in its own key space only");
  const settled = write.whenSettled(enc("k"));
  assert.ok(settled);
  await log.completeSync();
  await create;
  assert.equal(await settled, true);
  assert.equal(write.whenSettled(enc("k")), undefined);
  assert.throws(
    () => write.version(0, enc("too long key")),
    InvalidArgumentError,
  );
});

Deno.test("bad batches are refused before they wait or take a seqno", async () => {
  const { write, log, pipe } = writePath();
  await assert.rejects(write.batch(0, []), InvalidArgumentError);
  await assert.rejects(
    write.batch(0, [{ type: "put", key: enc("k"), value: new Uint8Array(17) }]),
    (e) => e instanceof InvalidArgumentError && e.code === "value_too_large",
  );
  await assert.rejects(
    write.batch(0, [{ type: "delete", key: enc("way too long") }]),
    (e) => e instanceof InvalidArgumentError && e.code === "key_too_long",
  );
  assert.equal(pipe.lastSeq, 0);
  assert.equal(log.syncs.length, 0);
});

Deno.test("a batch is copied at the call and decided only after room is made", async () => {
  const { write, log, mem, pipe, put, watch, setRoom } = writePath();
  let makeRoom!: () => void;
  setRoom(new Promise<void>((r) => (makeRoom = r)));
  const value = enc("first");
  const op: BatchOp = { type: "put", key: enc("k"), value };
  const p = watch(write.batch(0, [op]));
  value.set(enc("XXXXX")); // the caller reuses its buffer at once
  await ticks();
  assert.equal(pipe.lastSeq, 0, "no seqno while writes are held back");
  // A create of the same key made meanwhile waits too, and is decided
  // after the first write was accepted, so it fails.
  const second = watch(write.batch(0, [put("k", null)]));
  makeRoom();
  await waitFor(() => log.syncs.length === 1);
  await log.completeSync();
  await waitFor(() => p.done && second.done);
  assert.equal(p.value, 1);
  assert.equal(dec(mem.groups[0][0].value), "first");
  assert.ok(second.error instanceof PreconditionFailedError);
});
