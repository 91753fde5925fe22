/**
 * The group-commit pipeline on its own: a fake log whose syncs the test
 * completes (or fails) by hand, and a memtable that records what it is
 * given. Checks the invariants in engine/commit.ts's header.
 */
import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { binaryString } from "../../engine/coding.ts";
import {
  ClosedError,
  PreconditionFailedError,
  ReadOnlyError,
} from "../../engine/errors.ts";
import { enc, testSeed, withSeed } from "../_helpers.ts";
import { setup, waitFor } from "./_commit_harness.ts";

Deno.test("writes of one tick form one group: one append, one sync, one apply", async () => {
  const { log, mem, pipe, write, env } = setup();
  const ps = [write("a"), write("b"), write("c")];
  await log.completeSync();
  assert.deepEqual(await Promise.all(ps), [1, 2, 3]);
  assert.equal(log.appends.length, 1);
  assert.deepEqual(mem.groups.map((g) => g.map((e) => e.seq)), [[1, 2, 3]]);
  assert.equal(env.counters.writeGroups, 1);
  assert.equal(env.counters.walSyncs, 1);
  assert.equal(env.counters.puts, 3);
  assert.equal(pipe.visibleSeq, 3);
});

Deno.test("writes arriving during a sync wait for it and form the next group", async () => {
  const { log, mem, pipe, write } = setup();
  const first = write("a");
  await waitFor(() => log.syncs.length === 1);
  const rest = [write("b"), write("c"), write("d")];
  assert.equal(log.appends.length, 1, "no append while a sync is pending");
  await log.completeSync();
  assert.equal(await first, 1);
  await log.completeSync();
  assert.deepEqual(await Promise.all(rest), [2, 3, 4]);
  assert.deepEqual(mem.groups.map((g) => g.length), [1, 3]);
  assert.deepEqual(log.seqs(), [1, 2, 3, 4]);
  await pipe.idle();
  assert.equal(pipe.busy, false);
});

Deno.test("a write is acknowledged and visible only after its sync", async () => {
  const { log, mem, pipe, write, published } = setup();
  let acked = false;
  const p = write("a").then((v) => (acked = true, v));
  await waitFor(() => log.syncs.length === 1);
  assert.equal(log.appends.length, 1, "appended before the sync");
  assert.equal(acked, false);
  assert.equal(pipe.visibleSeq, 0);
  assert.equal(pipe.lastSeq, 1);
  assert.equal(mem.groups.length, 0);
  assert.deepEqual(published, []);
  assert.equal(pipe.inflight(new Uint8Array([0, ...enc("a")]))?.live, true);
  await log.completeSync();
  assert.equal(await p, 1);
  assert.equal(pipe.visibleSeq, 1);
  assert.deepEqual(published, [1]);
  assert.equal(pipe.inflight(new Uint8Array([0, ...enc("a")])), undefined);
});

Deno.test("the in-flight index follows the newest write of a key across the group and the queue", async () => {
  const { log, pipe, write } = setup();
  const key = (k: string) => new Uint8Array([0, ...enc(k)]);
  const first = write("a");
  await waitFor(() => log.syncs.length === 1);
  assert.equal(pipe.inflight(key("a"))?.write.seq, 1); // indexed while syncing
  // Queued behind the group in its sync, indexed on the next question.
  const second = write("a", true);
  const third = write("b");
  assert.equal(pipe.inflight(key("a"))?.write.seq, 2);
  assert.equal(pipe.inflight(key("a"))?.live, false);
  assert.equal(pipe.inflight(key("b"))?.write.seq, 3);
  await log.completeSync();
  assert.equal(await first, 1);
  // The first write's end does not drop the newer write of its key.
  assert.equal(pipe.inflight(key("a"))?.write.seq, 2);
  await log.completeSync();
  assert.deepEqual(await Promise.all([second, third]), [2, 3]);
  assert.equal(pipe.inflight(key("a")), undefined);
  assert.equal(pipe.inflight(key("b")), undefined);
  // Writes nobody asked about are never indexed, and never linger.
  const fourth = write("c");
  await log.completeSync();
  assert.equal(await fourth, 4);
  assert.equal(pipe.inflight(key("c")), undefined);
});

for (const sync of ["always", "none"] as const) {
  Deno.test(`WAL order is seqno order and the visible seqno only moves up (random load, sync ${sync})`, async () => {
    await withSeed(testSeed(11), async (rng) => {
      const { log, mem, pipe, write } = setup(sync);
      const acks: number[] = [];
      const seen: number[] = [];
      let n = 0;
      for (let round = 0; round < 60; round++) {
        const burst = rng.range(0, 6);
        for (let i = 0; i < burst; i++) {
          n++;
          write(`k${rng.int(20)}`, rng.chance(0.2)).then((seq) => {
            // Acknowledged only once visible.
            assert.ok(pipe.visibleSeq >= seq);
            acks.push(seq);
          });
        }
        if (log.syncs.length > 0 && rng.chance(0.6)) {
          log.syncs.shift()!.resolve();
        }
        await new Promise((r) => setTimeout(r, 0));
        seen.push(pipe.visibleSeq);
      }
      while (acks.length < n) {
        log.syncs.shift()?.resolve();
        await new Promise((r) => setTimeout(r, 0));
      }
      await pipe.idle();
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1]);
      const want = Array.from({ length: n }, (_, i) => i + 1);
      assert.deepEqual(log.seqs(), want);
      assert.deepEqual(acks, want, "acknowledged in seqno order");
      assert.deepEqual(mem.groups.flat().map((e) => e.seq), want);
      assert.equal(pipe.visibleSeq, n);
    });
  });
}

Deno.test("a failed sync rejects its group and every queued write, and sticks", async () => {
  const { log, mem, pipe, write } = setup();
  const a = write("a");
  await waitFor(() => log.syncs.length === 1);
  const b = write("b");
  log.syncs.shift()!.reject(new Error("EIO: input/output error"));
  await assert.rejects(a, ReadOnlyError);
  await assert.rejects(b, ReadOnlyError);
  assert.ok(pipe.failure instanceof ReadOnlyError);
  assert.equal(pipe.visibleSeq, 0);
  assert.equal(mem.groups.length, 0);
  assert.equal(pipe.inflight(new Uint8Array([0, ...enc("a")])), undefined);
  await pipe.idle();
  // Still read-only: the first failure stays.
  pipe.fail(new ReadOnlyError("later"));
  assert.match(pipe.failure!.message, /input\/output error/);
});

Deno.test("a failed append is cut off and only its group is rejected (disk full)", async () => {
  const { log, pipe, write, env } = setup();
  let told = 0;
  env.diskFull = () => told++;
  log.failAppend = Object.assign(new Error("No space left on device"), {
    code: "ENOSPC",
  });
  const sizeBefore = log.size;
  await assert.rejects(write("a"), (e: Error & { code?: string }) => {
    return e.code === "disk_full";
  });
  assert.equal(told, 1);
  assert.equal(pipe.diskFull?.code, "disk_full");
  assert.equal(log.size, sizeBefore, "the partial record was cut off");
  assert.equal(pipe.failure, undefined);
  const b = write("b");
  await log.completeSync();
  assert.equal(await b, 2);
  assert.equal(pipe.diskFull, undefined, "a good append clears disk full");
  assert.deepEqual(log.seqs(), [2]);
});

Deno.test("a failed check waits for the in-flight write it saw", async () => {
  const { log, pipe, write, visible } = setup();
  const put = write("k");
  await waitFor(() => log.syncs.length === 1);
  // The key is absent to readers, but a create is in flight: "absent"
  // fails, and the verdict may not be given before the create is visible.
  const verdict = pipe.checkConditions(0, [
    { type: "put", key: enc("k"), value: enc("x"), ifVersion: null },
  ], true);
  assert.ok(verdict?.error instanceof PreconditionFailedError);
  assert.equal(verdict.waitFor.length, 1);
  let settled: boolean | undefined;
  pipe.settled(verdict.waitFor).then((v) => (settled = v));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(settled, undefined, "not answered while the write is in flight");
  await log.completeSync();
  await put;
  await waitFor(() => settled !== undefined);
  assert.equal(settled, true);

  // Against visible state the answer is immediate.
  visible.set(binaryString(new Uint8Array([0, ...enc("k")])), 1);
  assert.throws(
    () =>
      pipe.checkConditions(0, [
        { type: "check", key: enc("k"), ifVersion: 5 },
      ], false),
    PreconditionFailedError,
  );
  assert.equal(
    pipe.checkConditions(
      0,
      [{ type: "check", key: enc("k"), ifVersion: 1 }],
      false,
    ),
    undefined,
  );
});

Deno.test("a check on a write that then fails is decided again (settled false)", async () => {
  const { log, pipe, write } = setup();
  const put = write("k");
  await waitFor(() => log.syncs.length === 1);
  const verdict = pipe.checkConditions(0, [
    { type: "check", key: enc("k"), ifVersion: null },
  ], false);
  assert.ok(verdict !== undefined);
  const settled = pipe.settled(verdict.waitFor);
  log.syncs.shift()!.reject(new Error("EIO"));
  await assert.rejects(put);
  assert.equal(await settled, false);
});

Deno.test("exclusive() holds groups back; stop() waits, then refuses writes", async () => {
  const { log, pipe, write, mem } = setup();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const task = pipe.exclusive(() => gate);
  const a = write("a");
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(log.appends.length, 0, "no append while the task runs");
  release();
  await task;
  await log.completeSync();
  assert.equal(await a, 1);
  assert.equal(mem.groups.length, 1);
  const b = write("b");
  const stopped = pipe.stop();
  await log.completeSync();
  await stopped;
  assert.equal(await b, 2);
  assert.throws(() => write("c"), ClosedError);
  await assert.rejects(pipe.exclusive(() => Promise.resolve()), ClosedError);
  pipe.close();
  assert.ok(log.closed);
});

Deno.test("sync interval: groups are acknowledged after the append, synced by the timer", async () => {
  const { log, pipe, write, env } = setup("interval");
  assert.equal(await write("a"), 1, "no sync awaited");
  assert.equal(log.syncs.length, 0);
  await waitFor(() => log.syncs.length === 1);
  log.syncs.shift()!.resolve();
  await waitFor(() => env.counters.walSyncs === 1);
  await pipe.stop();
  const closing = pipe.markCleanClose();
  await log.completeSync(); // everything durable
  await log.completeSync(); // the marker
  await closing;
  assert.ok(log.parse().closedAt !== undefined, "ends with a close marker");
  assert.deepEqual(log.seqs(), [1]);
  assert.equal(log.appends.length, 2, "the record, then the close marker");
  pipe.close();
});

Deno.test("sync none: writes arriving over many microtasks share a group", async () => {
  // Without an fsync to wait for, the loop used to take the one queued
  // write and stop, so each write that came after a microtask (as an HTTP
  // request does after reading its body) was a group of its own.
  const { log, mem, pipe, write, env } = setup("none");
  const ps: Promise<number>[] = [];
  const writer = async (i: number) => {
    for (let hop = 0; hop < i; hop++) await Promise.resolve();
    ps.push(write(`k${i}`));
  };
  await Promise.all(Array.from({ length: 64 }, (_, i) => writer(i)));
  await pipe.idle();
  assert.deepEqual(await Promise.all(ps), ps.map((_, i) => i + 1));
  assert.deepEqual(mem.groups.map((g) => g.length), [1, 63]);
  assert.equal(env.counters.writeGroups, 2);
  assert.equal(log.appends.length, 2);
  assert.equal(log.syncs.length, 0);
  assert.deepEqual(log.seqs(), ps.map((_, i) => i + 1));
  assert.equal(pipe.visibleSeq, 64);
});

Deno.test("sync none: writes arriving in separate event-loop turns share the next group", async () => {
  // As HTTP requests arrive: each from its own macrotask. The first goes
  // alone, at once; the rest arrive while the loop waits one turn, and go
  // together.
  const { log, mem, pipe, write, env } = setup("none");
  const ps: Promise<number>[] = [];
  await new Promise<void>((done) => {
    for (let i = 0; i < 64; i++) {
      setImmediate(() => {
        ps.push(write(`k${i}`));
        if (i === 63) done();
      });
    }
  });
  await pipe.idle();
  assert.deepEqual(await Promise.all(ps), ps.map((_, i) => i + 1));
  assert.deepEqual(mem.groups.map((g) => g.length), [1, 63]);
  assert.equal(env.counters.writeGroups, 2);
  assert.deepEqual(log.seqs(), ps.map((_, i) => i + 1));
  assert.equal(pipe.busy, false);
});

Deno.test("sync none: a lone write is acknowledged within its own tick", async () => {
  const { pipe, write, mem } = setup("none");
  let acked = false;
  const turn = new Promise<void>((r) => setImmediate(r));
  const p = write("a").then((seq) => (acked = true, seq));
  await turn; // the next event-loop turn: the write must not have waited for it
  assert.equal(acked, true);
  assert.equal(await p, 1);
  assert.equal(pipe.visibleSeq, 1);
  assert.equal(mem.groups.length, 1);
});

Deno.test("sync none: a write arriving while the loop waits its turn goes in the next turn", async () => {
  const { pipe, write, mem } = setup("none");
  assert.equal(await write("a"), 1);
  assert.equal(pipe.busy, true, "the loop waits one turn for more writes");
  let acked = false;
  const p = write("b").then((seq) => (acked = true, seq));
  await Promise.resolve();
  assert.equal(acked, false);
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(acked, true, "acknowledged in the next turn");
  assert.equal(await p, 2);
  await pipe.idle();
  assert.equal(pipe.busy, false);
  assert.deepEqual(mem.groups.map((g) => g.map((e) => e.seq)), [[1], [2]]);
});

Deno.test("sync none: exclusive() and stop() get the slot under steady writes", async () => {
  // A write every event-loop turn, as under steady HTTP load: the loop
  // would find one after every turn it waits and never end, so a waiter
  // makes it end at the next empty queue instead.
  const { pipe, write } = setup("none");
  let n = 0;
  let running = true;
  const writes: Promise<number>[] = [];
  const tick = () => {
    if (!running || n >= 200) return;
    try {
      writes.push(write(`k${n + 1}`));
      n++;
    } catch (err) {
      // stop() refuses every write from its call on.
      assert.ok(err instanceof ClosedError);
    }
    setImmediate(tick);
  };
  tick();
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(pipe.busy, true);
  let ranAt = 0;
  await pipe.exclusive(() => {
    ranAt = n;
    return Promise.resolve();
  });
  // It ran once the group in progress (the write of the turn it asked in)
  // was done; without the waiter's flag it waited for all 200.
  assert.equal(ranAt, 2, `exclusive() waited for ${ranAt} writes`);
  await pipe.stop();
  const stoppedAt = n;
  running = false;
  assert.equal(stoppedAt, 2, `stop() waited for ${stoppedAt} writes`);
  assert.throws(() => write("late"), ClosedError);
  assert.deepEqual(await Promise.all(writes), writes.map((_, i) => i + 1));
});

Deno.test("sync always: exclusive() gets the slot under steady writes", async () => {
  // A new write arrives during every fdatasync, so no sync ever ends with
  // an empty queue: the loop must still hand the slot to a waiting flush.
  const { log, pipe, write } = setup("always");
  const writes = [write("k0")];
  await waitFor(() => log.syncs.length === 1);
  let ranAfter = -1;
  const ex = pipe.exclusive(() => {
    ranAfter = writes.length;
    return Promise.resolve();
  });
  for (let i = 1; i <= 20 && ranAfter < 0; i++) {
    writes.push(write(`k${i}`));
    await log.completeSync();
    await waitFor(() => ranAfter >= 0 || log.syncs.length === 1);
  }
  assert.equal(ranAfter, 2, `exclusive() ran after ${ranAfter} writes`);
  await ex;
  while (log.syncs.length > 0 || pipe.busy) {
    if (log.syncs.length > 0) log.syncs.shift()!.resolve();
    await new Promise((r) => setTimeout(r, 0));
  }
  assert.deepEqual(await Promise.all(writes), writes.map((_, i) => i + 1));
});

Deno.test("sync always: stop() refuses new writes at once and commits the queued ones", async () => {
  const { log, pipe, write } = setup("always");
  const first = write("a");
  await waitFor(() => log.syncs.length === 1);
  const queued = write("b");
  let stopped = false;
  const stop = pipe.stop().then(() => (stopped = true));
  assert.throws(() => write("c"), ClosedError);
  await log.completeSync();
  await log.completeSync();
  await stop;
  assert.ok(stopped);
  assert.deepEqual(await Promise.all([first, queued]), [1, 2]);
  assert.deepEqual(log.seqs(), [1, 2]);
});
