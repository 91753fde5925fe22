/**
 * Range cursors cannot pin a snapshot forever (maximum age, 410
 * cursor_expired) and one client cannot evict the cursors of others
 * (per-client share of the cursor cache).
 */
import { equal } from "node:assert/strict";
import { open } from "../../mod.ts";
import { createHandler } from "../../server/app.ts";
import { withTempDir } from "../_helpers.ts";
import { errorCode } from "./_helpers.ts";

const enc = new TextEncoder();

Deno.test("a cursor older than the maximum age gets 410 cursor_expired, even when kept busy", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "inline" });
    const clock = { t: 0 };
    const app = createHandler(db, {
      cursorMaxAgeMs: 60_000,
      cursorTtlMs: 30_000,
      monotonic: () => clock.t,
      log: () => {},
    });
    try {
      for (let i = 0; i < 10; i++) {
        await db.put(enc.encode(`k${i}`), enc.encode("v"));
      }
      let res = await app(new Request("http://localhost/kv/range?limit=1"));
      let next = (await res.json()).next;
      // Used every 20 s: never idle, but older than 60 s after three uses.
      for (let i = 0; i < 2; i++) {
        clock.t += 20_000;
        res = await app(
          new Request(`http://localhost/kv/range?limit=1&cursor=${next}`),
        );
        equal(res.status, 200);
        next = (await res.json()).next;
      }
      clock.t += 20_001;
      res = await app(
        new Request(`http://localhost/kv/range?limit=1&cursor=${next}`),
      );
      equal(res.status, 410);
      equal(errorCode(await res.text()), "cursor_expired");
      const stats = await (await app(new Request("http://localhost/stats")))
        .json();
      equal(stats.server.cursors.open, 0);
      equal(stats.server.refused.cursor_expired, 1);
    } finally {
      app.close();
      await db.close();
    }
  });
});

Deno.test("one client's cursors cannot evict another client's", async () => {
  await withTempDir(async (dir) => {
    const db = await open(dir, { sync: "none", background: "inline" });
    const app = createHandler(db, {
      maxCursors: 10,
      maxCursorsPerClient: 3,
      log: () => {},
    });
    const as = (client: string, url: string) =>
      app(new Request(`http://localhost${url}`), {
        remoteAddr: { hostname: client },
      });
    try {
      await db.put(enc.encode("a"), enc.encode("1"));
      await db.put(enc.encode("c"), enc.encode("1"));
      const first = await (await as("10.0.0.1", "/kv/range?limit=1")).json();
      // Another client opens many cursors.
      for (let i = 0; i < 20; i++) {
        await (await as("10.0.0.2", "/kv/range?limit=1")).json();
      }
      // A key written after the first page: the held snapshot must not see it.
      await db.put(enc.encode("b"), enc.encode("1"));
      const page =
        await (await as("10.0.0.1", `/kv/range?cursor=${first.next}`)).json();
      equal(page.items.length, 1, JSON.stringify(page));
      equal(atob(page.items[0].key), "c");
      const stats = await (await app(new Request("http://localhost/stats")))
        .json();
      equal(stats.server.cursors.open, 3);
    } finally {
      app.close();
      await db.close();
    }
  });
});
