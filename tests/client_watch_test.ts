/**
 * `ShaleClient.watch` (the change feed client) through real HTTP against a
 * real server: order and batches, values off, stopping by `break` and by an
 * AbortSignal, resume exactly once after the connection is cut (through a
 * TCP proxy the test cuts) and after the server drops a slow consumer, and
 * `410 history_gone` surfaced as a ShaleClientError.
 */
import assert from "node:assert/strict";
import { type ChangeEvent, ShaleClient, ShaleClientError } from "../client.ts";
import { Rng, testSeed } from "./_helpers.ts";
import { withServer } from "./server/_helpers.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** `type key[=value]` per change, one array per event. */
function summary(ev: ChangeEvent): string[] {
  return ev.changes.map((c) =>
    `${c.type} ${text(c.key)}` +
    (c.value !== undefined ? `=${text(c.value)}` : "") +
    (c.valueSize !== undefined ? ` (${c.valueSize} bytes)` : "")
  );
}

/**
 * A TCP proxy in front of the server whose connections the test can cut,
 * as a network failure would.
 */
class CuttableProxy {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #conns = new Set<Deno.Conn>();
  readonly #pipes: Promise<unknown>[] = [];
  readonly #accepting: Promise<void>;
  connections = 0;

  constructor(targetPort: number) {
    this.#accepting = this.#accept(targetPort);
  }

  get base(): string {
    return `http://127.0.0.1:${this.#listener.addr.port}`;
  }

  async #accept(targetPort: number): Promise<void> {
    try {
      for await (const down of this.#listener) {
        const up = await Deno.connect({
          hostname: "127.0.0.1",
          port: targetPort,
        });
        this.connections++;
        this.#conns.add(down);
        this.#conns.add(up);
        this.#pipes.push(
          down.readable.pipeTo(up.writable).catch(() => {}),
          up.readable.pipeTo(down.writable).catch(() => {}),
        );
      }
    } catch {
      // The listener was closed.
    }
  }

  /** Closes every open connection (both sides). */
  cut(): void {
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // Already closed by its pipe.
      }
    }
    this.#conns.clear();
  }

  async close(): Promise<void> {
    this.#listener.close();
    this.cut();
    await this.#accepting;
    await Promise.all(this.#pipes);
  }
}

Deno.test("client watch: changes arrive in commit order, a batch as one event, values off gives sizes, break stops", async () => {
  await withServer({}, async (s) => {
    const shale = new ShaleClient(s.base);
    const since = await shale.put("a/0", "before");
    const v1 = await shale.put("a/1", "one");
    await shale.put("b/1", "outside the prefix");
    const { version: v2 } = await shale.batch([
      { op: "put", key: "a/2", value: "two" },
      { op: "put", key: "b/2", value: "outside" },
      { op: "delete", key: "a/1" },
    ]);
    const v3 = await shale.put("a/3", "three");
    const got: ChangeEvent[] = [];
    for await (const ev of shale.watch({ prefix: "a/", since })) {
      got.push(ev);
      if (got.length === 3) break;
    }
    assert.deepEqual(got.map((e) => e.version), [v1, v2, v3]);
    assert.deepEqual(got.map(summary), [
      ["put a/1=one"],
      ["put a/2=two", "delete a/1"],
      ["put a/3=three"],
    ]);

    // start/end range, values off; changes made while watching arrive too.
    const sizes: string[][] = [];
    const live = (async () => {
      for await (
        const ev of shale.watch({ start: "a/", end: "a/5", values: false })
      ) {
        sizes.push(summary(ev));
        if (sizes.length === 2) return;
      }
    })();
    // The watch starts "now": wait for its stream before writing.
    while (
      (await (await fetch(`${s.base}/metrics`)).text()).match(
        /^shale_watch_streams_open 0$/m,
      )
    ) await new Promise((r) => setTimeout(r, 10));
    await shale.put("a/9", "outside the range");
    await shale.put("a/4", "12345");
    await shale.delete("a/4");
    await live;
    assert.deepEqual(sizes, [["put a/4 (5 bytes)"], ["delete a/4"]]);
  });
});

Deno.test("client watch: an AbortSignal ends the loop without an error", async () => {
  await withServer({}, async (s) => {
    const shale = new ShaleClient(s.base);
    const since = await shale.put("k", "1");
    await shale.put("k", "2");
    const controller = new AbortController();
    const got: number[] = [];
    for await (const ev of shale.watch({ since, signal: controller.signal })) {
      got.push(ev.version);
      // Abort while the loop waits for a change that never comes.
      setTimeout(() => controller.abort(), 50);
    }
    assert.deepEqual(got, [since + 1]);
  });
});

Deno.test("client watch: every change exactly once, in order, while the connection is cut again and again", async () => {
  const rng = new Rng(testSeed(1414));
  await withServer({}, async (s) => {
    const proxy = new CuttableProxy(s.port);
    try {
      const writer = new ShaleClient(s.base);
      const watcher = new ShaleClient(proxy.base);
      const since = await writer.put("start", "-");
      const N = 200;
      const written: number[] = [];
      const seen: number[] = [];
      const it = watcher.watch({ prefix: "w/", since })[Symbol.asyncIterator]();
      for (let i = 0; i < N; i++) {
        written.push(await writer.put(`w/${i}`, String(i)));
        // Cut while the change is on its way, or before the next one.
        if (rng.int(8) === 0) proxy.cut();
        const r = await it.next();
        assert.equal(r.done, false);
        const ev = r.value as ChangeEvent;
        seen.push(ev.version);
        assert.deepEqual(summary(ev), [`put w/${i}=${i}`]);
        if (rng.int(8) === 0) proxy.cut();
      }
      await it.return();
      assert.deepEqual(seen, written);
      assert.ok(
        proxy.connections > N / 8,
        `only ${proxy.connections} connections`,
      );
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("client watch: a consumer the server drops as too slow resumes exactly once", async () => {
  await withServer(
    { handler: { watch: { maxLagBytes: 1 << 20, queueBytes: 4096 } } },
    async (s) => {
      const shale = new ShaleClient(s.base);
      const since = await shale.put("start", "-");
      const it = shale.watch({ prefix: "big/", since })[Symbol.asyncIterator]();
      const value = "x".repeat(60_000);
      const written: number[] = [];
      written.push(await shale.put("big/0", value));
      const first = await it.next();
      assert.equal(first.done, false);
      const seen = [(first.value as ChangeEvent).version];
      // The consumer stalls while more than the socket buffers hold and
      // more than maxLagBytes is written: the server drops the stream.
      const drops = async () =>
        Number(
          /^shale_watch_drops_total ([0-9]+)$/m.exec(
            await (await fetch(`${s.base}/metrics`)).text(),
          )![1],
        );
      let i = 1;
      while (await drops() === 0) {
        for (let j = 0; j < 16; j++, i++) {
          written.push(await shale.put(`big/${i}`, value));
        }
        assert.ok(i < 4000, "the server never dropped the stalled stream");
      }
      for (;;) {
        const r = await it.next();
        assert.equal(r.done, false);
        seen.push((r.value as ChangeEvent).version);
        if (seen.length === written.length) break;
      }
      await it.return();
      assert.deepEqual(seen, written);
    },
  );
});

Deno.test("client watch: a resume point the history no longer holds rejects with 410 history_gone", async () => {
  await withServer({ db: { changeHistoryBytes: 4096 } }, async (s) => {
    const shale = new ShaleClient(s.base);
    for (let i = 0; i < 40; i++) await shale.put(`k${i}`, "x".repeat(200));
    try {
      for await (const _ of shale.watch({ since: 1 })) {
        throw new Error("a change was yielded");
      }
      throw new Error("the watch ended without an error");
    } catch (err) {
      assert.ok(err instanceof ShaleClientError, String(err));
      assert.equal(err.status, 410);
      assert.equal(err.code, "history_gone");
    }
  });
});
