/**
 * KV Connect amplification limits (server/kv_connect/limits.ts): Deno KV's
 * own key and value sizes, a cap on one read's answer in bytes, watch caps,
 * watches that read nothing while nothing changes, expiring data tokens and
 * a bounded cache of database names.
 */
import { equal, match, ok } from "node:assert/strict";
import { type Db, open } from "../../mod.ts";
import { createHandler, type Handler } from "../../server/app.ts";
import { kvConnectCachedDatabases } from "../../server/kv_connect/handler.ts";
import {
  dataPrefix,
  join,
  kvConnectSpace,
} from "../../server/kv_connect/keyspace.ts";
import { withTempDir } from "../_helpers.ts";
import { fullRead, setMutation, watchOf } from "./_kv_connect_wire.ts";

/** AtomicWrite with one M_SET of `value` at `key`. */
const setWrite = setMutation;

interface Kvc {
  db: Db;
  app: Handler;
  now: { t: number };
  meta(name: string): Promise<{ token: string; databaseId: string }>;
  call(
    name: string,
    method: string,
    meta: { token: string; databaseId: string },
    body: Uint8Array<ArrayBuffer>,
    client?: string,
  ): Promise<Response>;
}

async function withKvc(fn: (k: Kvc) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "inline" });
    const now = { t: Date.now() };
    const app = createHandler(db, { log: () => {}, clock: () => now.t });
    const k: Kvc = {
      db,
      app,
      now,
      async meta(name) {
        const res = await app(
          new Request(`http://localhost/deno-kv/${name}`, {
            method: "POST",
            body: '{"supportedVersions":[3]}',
          }),
        );
        equal(res.status, 200);
        return await res.json();
      },
      call(name, method, meta, body, client = "127.0.0.1") {
        return app(
          new Request(`http://localhost/deno-kv/${name}/${method}`, {
            method: "POST",
            body,
            headers: {
              authorization: `Bearer ${meta.token}`,
              "x-denokv-version": "3",
              "x-denokv-database-id": meta.databaseId,
            },
          }),
          { remoteAddr: { hostname: client } },
        );
      },
    };
    try {
      await fn(k);
    } finally {
      app.drain();
      app.close();
      await db.close();
    }
  });
}

Deno.test("KV Connect enforces Deno KV's key and value sizes", async () => {
  await withKvc(async (k) => {
    const m = await k.meta("lim");
    const big = await k.call(
      "lim",
      "atomic_write",
      m,
      setWrite(new Uint8Array([2, 0x61, 0]), new Uint8Array(65537)),
    );
    equal(big.status, 413);
    match(await big.text(), /65536/);
    const longKey = await k.call(
      "lim",
      "atomic_write",
      m,
      setWrite(new Uint8Array(2049).fill(2), new Uint8Array(1)),
    );
    equal(longKey.status, 414);
    match(await longKey.text(), /2048/);
    const fine = await k.call(
      "lim",
      "atomic_write",
      m,
      setWrite(new Uint8Array([2, 0x61, 0]), new Uint8Array(65536)),
    );
    equal(fine.status, 200);
    await fine.body?.cancel();
  });
});

Deno.test("one snapshot read cannot answer with more than the byte cap", async () => {
  await withKvc(async (k) => {
    const m = await k.meta("big");
    const prefix = dataPrefix("big");
    // Values written outside KV Connect (e.g. by an old server) can be large.
    for (let i = 0; i < 9; i++) {
      await kvConnectSpace(k.db).put(
        join(prefix, new Uint8Array([2, 0x61 + i, 0])),
        new Uint8Array(1 << 20),
      );
    }
    const res = await k.call("big", "snapshot_read", m, fullRead());
    equal(res.status, 400);
    match(await res.text(), /read fewer entries/);
    equal(k.app.refusals.get("kv_read_too_large"), 1);
  });
});

Deno.test("watches are capped per client and read nothing while nothing changes", async () => {
  await withKvc(async (k) => {
    const m = await k.meta("w");
    const key = new Uint8Array([2, 0x6b, 0]);
    const streams: Response[] = [];
    for (let i = 0; i < 64; i++) {
      const r = await k.call("w", "watch", m, watchOf(key), "10.0.0.1");
      equal(r.status, 200);
      streams.push(r);
    }
    const over = await k.call("w", "watch", m, watchOf(key), "10.0.0.1");
    equal(over.status, 429);
    match(await over.text(), /too many open watches/);
    const other = await k.call("w", "watch", m, watchOf(key), "10.0.0.2");
    equal(other.status, 200);
    streams.push(other);
    const tooManyKeys = await k.call(
      "w",
      "watch",
      m,
      watchOf(...Array.from({ length: 11 }, () => key)),
      "10.0.0.3",
    );
    equal(tooManyKeys.status, 400);
    await tooManyKeys.body?.cancel();
    // Count store reads over two poll periods with no writes.
    let gets = 0;
    const get = k.db.get.bind(k.db);
    k.db.get = (...args: Parameters<Db["get"]>) => {
      gets++;
      return get(...args);
    };
    await new Promise((r) => setTimeout(r, 2200));
    k.db.get = get;
    equal(gets, 0, `${gets} reads while nothing changed`);
    for (const s of streams) await s.body?.cancel();
  });
});

Deno.test("data-path tokens expire when the metadata says", async () => {
  await withKvc(async (k) => {
    const m = await k.meta("exp") as {
      token: string;
      databaseId: string;
      expiresAt?: string;
    };
    const ok1 = await k.call("exp", "snapshot_read", m, new Uint8Array(0));
    equal(ok1.status, 200);
    await ok1.body?.cancel();
    k.now.t += 60 * 60 * 1000 + 1000;
    const late = await k.call("exp", "snapshot_read", m, new Uint8Array(0));
    equal(late.status, 401);
    match(await late.text(), /expired/);
    // A tampered expiry does not help.
    const forged = {
      ...m,
      token: `${k.now.t + 1000}.${m.token.split(".")[1]}`,
    };
    const res = await k.call("exp", "snapshot_read", forged, new Uint8Array(0));
    equal(res.status, 401);
    await res.body?.cancel();
  });
});

Deno.test("the cache of database names metadata was asked for is bounded", async () => {
  await withKvc(async (k) => {
    for (let i = 0; i < 1100; i++) await k.meta(`db${i}`);
    ok(
      kvConnectCachedDatabases(k.db) <= 1024,
      String(kvConnectCachedDatabases(k.db)),
    );
    // A name that fell out of the cache still works.
    const m = await k.meta("db0");
    const res = await k.call("db0", "snapshot_read", m, new Uint8Array(0));
    equal(res.status, 200);
    await res.body?.cancel();
  });
});
